"""The home lab's invariants, as policies the Pulumi CLI runs on every preview and update.

Resource policies judge one resource at a time, from its inputs as the engine hands them to a
policy pack: camelCase property names, secrets in clear, and, during a preview, values not known
yet, which raise ``UnknownValueError`` when read (the CLI then reports the policy as unable to
run, not as passed). They run before each resource is created or changed.

Stack policies judge what no single resource shows: an instance and the launch template it
starts from, a container and the image, key and volumes it uses, a security group and the prefix
list it lets in. The engine runs them once every resource is registered, on the resources'
outputs. A reference that is not known yet in a preview (a new template's id, a new auth key) is
followed through the resource's dependencies instead; any other value not known yet leaves that
resource unchecked, reported as such once the others are checked.

Checks are by resource type, so they hold for any program, not only this one: the subnet router
as an ``Instance``, a GPU worker as an ``Instance``, a ``LaunchTemplate`` and autoscaling
``Group``, a fleet or a launch configuration, models on an EBS volume or in an S3 bucket.

This module imports nothing but the policy SDK and the standard library: the pack runs in a
virtualenv of its own (``policy/requirements.txt``).
"""

from __future__ import annotations

import base64
import binascii
import email
import ipaddress
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

PACK_NAME = "homelab-invariants"
MANDATORY = EnforcementLevel.MANDATORY

TAILSCALE_UDP_PORT = 41641
"""The one port open to the internet: Tailscale's direct (peer-to-peer) connections."""
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "10.0.0.0/8",  # RFC 1918
        "172.16.0.0/12",  # RFC 1918
        "192.168.0.0/16",  # RFC 1918
        "100.64.0.0/10",  # shared address space (RFC 6598): the tailnet's IPv4 addresses
        "fd00::/8",  # unique local IPv6 (RFC 4193): the tailnet's fd7a:115c:a1e0::/48 among them
    )
)
"""Where an ingress rule may let traffic in from: address space no one on the internet holds.
Everything else, link-local and loopback included, counts as public."""

INSTANCE = "aws:ec2/instance:Instance"
SPOT_REQUEST = "aws:ec2/spotInstanceRequest:SpotInstanceRequest"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
LAUNCH_CONFIGURATION = "aws:ec2/launchConfiguration:LaunchConfiguration"
AUTOSCALING_GROUP = "aws:autoscaling/group:Group"
FLEET = "aws:ec2/fleet:Fleet"
SPOT_FLEET = "aws:ec2/spotFleetRequest:SpotFleetRequest"
METADATA_DEFAULTS = "aws:ec2/instanceMetadataDefaults:InstanceMetadataDefaults"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
PREFIX_LIST = "aws:ec2/managedPrefixList:ManagedPrefixList"
PREFIX_LIST_ENTRY = "aws:ec2/managedPrefixListEntry:ManagedPrefixListEntry"
EBS_VOLUME = "aws:ebs/volume:Volume"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
DOCKER_VOLUME = "docker:index/volume:Volume"
DOCKER_CONTAINER = "docker:index/container:Container"
DOCKER_IMAGE = "docker:index/remoteImage:RemoteImage"
TAILNET_KEY = "tailscale:index/tailnetKey:TailnetKey"
OAUTH_CLIENT = "tailscale:index/oauthClient:OauthClient"

LAUNCHERS = (INSTANCE, SPOT_REQUEST, AUTOSCALING_GROUP, FLEET, SPOT_FLEET)
"""Resources that start EC2 instances, from their own settings or a launch template."""
STATEFUL_TYPES = (
    DOCKER_VOLUME,
    EBS_VOLUME,
    "aws:ebs/snapshot:Snapshot",
    "aws:ebs/snapshotCopy:SnapshotCopy",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:s3/directoryBucket:DirectoryBucket",
    "aws:efs/fileSystem:FileSystem",
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
    "aws:dynamodb/table:Table",
)
"""Resources whose loss loses data: each must be protected. An Aurora cluster instance is not
among them: the cluster's storage holds the data, and the cluster is."""
SCRATCH_VOLUME_SUFFIXES = ("-tailscale-socket", "-certs")
"""Docker volumes that hold nothing worth keeping, by the end of their name: a sidecar's socket
and a certificate that ``tailscale cert`` issues again. Every other Docker volume is data."""
KEY_MINTING_SCOPES = frozenset({"all", "auth_keys", "devices:core", "devices"})
"""OAuth client scopes whose tokens create auth keys or tag devices. Tailscale requires tags
with ``auth_keys`` and ``devices:core``; ``all`` includes both, ``devices`` is their legacy
name. The ``:read`` scopes mint nothing."""
CONTAINERBOOT_IMAGE = "tailscale/tailscale"
"""Tailscale's container image: its entrypoint (containerboot) joins with TS_AUTHKEY and takes
``tailscale up`` flags from TS_EXTRA_ARGS. Tailscale's other images (``tailscale/tsrecorder``)
join through tsnet, whose tags come from the auth key alone."""
AUTH_KEY_VARIABLES = ("TS_AUTHKEY", "TS_AUTH_KEY")

_GPU_FAMILY = re.compile(r"(?:g|gr|p)[0-9][a-z0-9-]*\.[a-z0-9]+")
"""EC2 families with GPUs: g4dn, g5, g6e, gr6, p4d, p5 and their sizes."""
_TAG = re.compile(r"tag:[A-Za-z0-9][A-Za-z0-9_-]*")
_MENTIONS_TAILSCALE = re.compile(r"\btailscale\b", re.IGNORECASE)
_MENTIONS_JOIN = re.compile(r"\b(?:up|login)\b", re.IGNORECASE)
_MENTIONS_TAILSCALED = re.compile(r"\btailscaled\b", re.IGNORECASE)
_ADVERTISE_TAGS = re.compile(
    r"""(?<![\w-])--?advertise-tags(?:=|[\s"',\[\]]+)["']?([^\s"'\\;&|\]]*)"""
)
"""``--advertise-tags=tag:a,tag:b`` (or ``-advertise-tags tag:a``, or a list item in
cloud-config), its value the group."""
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_GZIP_MAGIC = b"\x1f\x8b"
USER_DATA_BUDGET = 1 << 20
"""Bytes the user data check reads at most, every layer undone (1 MiB; AWS takes 16 KiB of user
data, which gzip may expand): more is refused as unreadable rather than read without end."""
_T = TypeVar("_T")
_UNKNOWN: Any = object()
"""A value the engine does not know yet (a preview), as :func:`_peek` returns it."""


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else ()


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_true(value: Any) -> bool:
    # A launch template's EBS settings are strings ("true") in the provider's schema.
    return value is True or value == "true"


def _number(value: Any) -> Any:
    """A number as people write it: the engine sends every number as a float."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _amount(value: Any) -> float:
    """A capacity or count; anything that is not a number counts as none."""
    if isinstance(value, bool) or value is None:
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _peek(node: Any, *path: str | int) -> Any:
    """The value at ``path`` below ``node``: None where it is absent or empty, ``_UNKNOWN``
    where the engine does not know it yet. For references, which unknown values do not stop."""
    for step in path:
        if node is _UNKNOWN:
            return _UNKNOWN
        try:
            if isinstance(step, int):
                items = _sequence(node)
                node = items[step] if step < len(items) else None
            else:
                node = _mapping(node).get(step)
        except UnknownValueError:
            return _UNKNOWN
        if node is None or node == "":
            return None
    return node


def _peek_items(node: Any) -> list[Any]:
    """A list's items, ``_UNKNOWN`` for each the engine does not know yet (for the whole list
    when it is not known)."""
    if node is _UNKNOWN:
        return [_UNKNOWN]
    return [_peek(node, index) for index in range(len(_sequence(node)))]


def _of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]


def _resolve(
    reference: Any, candidates: Iterable[PolicyResource], user: PolicyResource, field: str
) -> list[PolicyResource]:
    """The stack's resources among ``candidates`` that ``reference`` (an id, a name, a key)
    names by their ``field``. Where either side is not known (a preview, or an output the
    engine does not give), the user's dependencies decide instead."""
    found = []
    for candidate in candidates:
        value = _peek(candidate.props, field)
        if reference is not _UNKNOWN and value is not _UNKNOWN and value is not None:
            if value == reference:
                found.append(candidate)
        elif candidate in user.dependencies:
            found.append(candidate)
    return found


def _each(items: Iterable[_T], check: Callable[[_T], None]) -> None:
    """``check`` on every item (a resource, a launch). A value not known yet stops only that
    item's check; the first such is raised once every other item is checked, so the CLI reports
    the policy as unable to run in this preview rather than as passed."""
    unknown: UnknownValueError | None = None
    for item in items:
        try:
            check(item)
        except UnknownValueError as error:
            unknown = unknown or error
    if unknown is not None:
        raise unknown


# --- Nothing inbound from the internet but Tailscale's UDP port ------------------------------


@dataclass(frozen=True)
class _Ingress:
    """One ingress rule: where it is written, what it lets in, and from where."""

    where: str
    protocol: Any
    from_port: Any
    to_port: Any
    cidrs: tuple[Any, ...]
    prefix_lists: tuple[Any, ...]

    @property
    def tailscale_only(self) -> bool:
        return (
            str(_number(self.protocol)).lower() in ("udp", "17")
            and _number(self.from_port) == TAILSCALE_UDP_PORT
            and _number(self.to_port) == TAILSCALE_UDP_PORT
        )

    def describe(self, sources: str) -> str:
        ports = f"{_number(self.from_port)}-{_number(self.to_port)}"
        return f"{self.where} lets {sources} in on {_number(self.protocol)} {ports}"


def _ingress(resource_type: str, props: Mapping[str, Any]) -> Iterator[_Ingress]:
    """The ingress rules of a security group, a default security group or a rule resource.
    Prefix list ids are peeked (they may be a new list's id in a preview); the rest is read."""
    if resource_type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        for index, rule in enumerate(_sequence(props.get("ingress"))):
            rule = _mapping(rule)
            yield _Ingress(
                f"ingress[{index}]",
                rule.get("protocol"),
                rule.get("fromPort"),
                rule.get("toPort"),
                (*_sequence(rule.get("cidrBlocks")), *_sequence(rule.get("ipv6CidrBlocks"))),
                tuple(_peek_items(_peek(rule, "prefixListIds"))),
            )
    elif resource_type == SECURITY_GROUP_RULE and props.get("type") == "ingress":
        yield _Ingress(
            "the rule",
            props.get("protocol"),
            props.get("fromPort"),
            props.get("toPort"),
            (*_sequence(props.get("cidrBlocks")), *_sequence(props.get("ipv6CidrBlocks"))),
            tuple(_peek_items(_peek(props, "prefixListIds"))),
        )
    elif resource_type == INGRESS_RULE:
        prefix_list = _peek(props, "prefixListId")
        yield _Ingress(
            "the rule",
            props.get("ipProtocol"),
            props.get("fromPort"),
            props.get("toPort"),
            tuple(v for v in (props.get("cidrIpv4"), props.get("cidrIpv6")) if v is not None),
            () if prefix_list is None else (prefix_list,),
        )


def is_private(source: Any) -> bool:
    """Whether an address range lies wholly inside :data:`PRIVATE_NETWORKS`. A source that is
    no address range at all is not private: nothing shows it is."""
    try:
        network = ipaddress.ip_network(str(source).strip(), strict=False)
    except ValueError:
        return False
    return any(
        network.version == private.version and network.subnet_of(private)
        for private in PRIVATE_NETWORKS
    )


def _validate_ingress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Refuses a security group, default security group or ingress rule that lets in any
    source overlapping public address space (``0.0.0.0/1``, ``::/1`` and ``0::/0`` as much as
    ``0.0.0.0/0``), on anything but UDP 41641: every service is reached over the tailnet."""
    for rule in _ingress(args.resource_type, args.props):
        public = [str(source) for source in rule.cidrs if not is_private(source)]
        if public and not rule.tailscale_only:
            report(
                f"{rule.describe(', '.join(public))}: nothing may be reachable from the "
                f"internet but UDP {TAILSCALE_UDP_PORT}; everything else is reached over the "
                "tailnet (private sources: RFC 1918, 100.64.0.0/10, fd00::/8)"
            )


def _public_entries(
    plist: PolicyResource, entries: Sequence[PolicyResource], lists: Sequence[PolicyResource]
) -> list[str]:
    """The public address ranges in a prefix list of the stack: its own entries and the
    separate entry resources that name it."""
    cidrs = [_mapping(entry).get("cidr") for entry in _sequence(plist.props.get("entries"))]
    for entry in entries:
        if plist in _resolve(_peek(entry.props, "prefixListId"), lists, entry, "id"):
            cidrs.append(entry.props.get("cidr"))
    return [str(cidr) for cidr in cidrs if cidr is not None and not is_private(cidr)]


def _validate_prefix_list_ingress(args: StackValidationArgs, report: ReportViolation) -> None:
    """Refuses ingress from a managed prefix list of the stack that holds a public address
    range, on anything but UDP 41641. A prefix list from outside the stack (AWS's, another
    account's) cannot be checked."""
    lists = _of_type(args.resources, PREFIX_LIST)
    entries = _of_type(args.resources, PREFIX_LIST_ENTRY)
    if not lists:
        return

    def check(resource: PolicyResource) -> None:
        for rule in _ingress(resource.resource_type, resource.props):
            if rule.tailscale_only:
                continue
            for reference in rule.prefix_lists:
                for plist in _resolve(reference, lists, resource, "id"):
                    public = _public_entries(plist, entries, lists)
                    if public:
                        report(
                            f"{rule.describe(f'prefix list {plist.name}')}: it holds "
                            f"public address space ({', '.join(public)}), and nothing may be "
                            f"reachable from the internet but UDP {TAILSCALE_UDP_PORT}",
                            resource.urn,
                        )

    rules = (SECURITY_GROUP, DEFAULT_SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE)
    _each(_of_type(args.resources, *rules), check)


# --- Launch templates and the resources that launch from them ---------------------------------


@dataclass(frozen=True)
class _Reference:
    """A launch template or launch configuration a resource starts instances from."""

    where: str
    value: Any
    found: tuple[PolicyResource, ...]
    """The stack's resources it names; none when it names one from outside the stack."""

    def outside(self) -> str:
        """The reference, as a message says it names nothing of the stack."""
        shown = "a value not known yet" if self.value is _UNKNOWN else repr(self.value)
        return f"{self.where} ({shown}) names no launch template or configuration of the stack"


def _references(user: PolicyResource, sources: Sequence[PolicyResource]) -> list[_Reference]:
    """Every launch template and launch configuration ``user`` names, found among the stack's
    ``sources`` or not."""
    props, kind = user.props, user.resource_type
    templates = _of_type(sources, LAUNCH_TEMPLATE)
    found: list[_Reference] = []

    def add(where: str, spec: Any, id_key: str, name_key: str) -> None:
        if spec is None:
            return
        ident, name = _peek(spec, id_key), _peek(spec, name_key)
        if ident is None and name is None:
            return
        field, value = ("id", ident) if ident is not None else ("name", name)
        found.append(_Reference(where, value, tuple(_resolve(value, templates, user, field))))

    if kind in (INSTANCE, SPOT_REQUEST, AUTOSCALING_GROUP):
        add("launchTemplate", _peek(props, "launchTemplate"), "id", "name")
    if kind == AUTOSCALING_GROUP:
        mixed = _peek(props, "mixedInstancesPolicy", "launchTemplate")
        where = "mixedInstancesPolicy.launchTemplate"
        spec = _peek(mixed, "launchTemplateSpecification")
        add(f"{where}.launchTemplateSpecification", spec, "launchTemplateId", "launchTemplateName")
        for index, override in enumerate(_peek_items(_peek(mixed, "overrides"))):
            spec = _peek(override, "launchTemplateSpecification")
            add(
                f"{where}.overrides[{index}].launchTemplateSpecification",
                spec,
                "launchTemplateId",
                "launchTemplateName",
            )
        configuration = _peek(props, "launchConfiguration")
        if configuration is not None:
            configurations = _of_type(sources, LAUNCH_CONFIGURATION)
            named = _resolve(configuration, configurations, user, "name")
            found.append(_Reference("launchConfiguration", configuration, tuple(named)))
    if kind in (FLEET, SPOT_FLEET):
        # The same specification, spelled two ways by the provider.
        keys = ("launchTemplateId", "launchTemplateName") if kind == FLEET else ("id", "name")
        for index, config in enumerate(_peek_items(_peek(props, "launchTemplateConfigs"))):
            where = f"launchTemplateConfigs[{index}].launchTemplateSpecification"
            add(where, _peek(config, "launchTemplateSpecification"), *keys)
    return found


@dataclass(frozen=True)
class _Launch:
    """A resource that starts instances, and the templates and configurations it names."""

    user: PolicyResource
    references: list[_Reference]

    @property
    def outside(self) -> list[_Reference]:
        """The references to templates or configurations that are not the stack's."""
        return [reference for reference in self.references if not reference.found]

    @property
    def sources(self) -> list[PolicyResource]:
        """The stack's templates and configurations it launches from."""
        return [source for reference in self.references for source in reference.found]

    @property
    def is_instance(self) -> bool:
        return self.user.resource_type in (INSTANCE, SPOT_REQUEST)


def _launches(args: StackValidationArgs) -> list[_Launch]:
    """Each resource of the stack that starts instances."""
    sources = _of_type(args.resources, LAUNCH_TEMPLATE, LAUNCH_CONFIGURATION)
    users = _of_type(args.resources, *LAUNCHERS)
    return [_Launch(user, _references(user, sources)) for user in users]


def _fix(user: PolicyResource, own_setting: str) -> str:
    """What a message asks for: a template of the stack, or for an instance its own setting."""
    fix = "launch from one of the stack's templates"
    if user.resource_type in (INSTANCE, SPOT_REQUEST):
        fix += f", or set {own_setting} on the {_kind(user)}"
    return fix


def _kind(resource: PolicyResource) -> str:
    """A resource type as a message names it: ``instance``, ``group``, ``fleet``."""
    return {
        INSTANCE: "instance",
        SPOT_REQUEST: "spot request",
        AUTOSCALING_GROUP: "group",
        FLEET: "fleet",
        SPOT_FLEET: "spot fleet",
    }.get(resource.resource_type, resource.resource_type)


# --- IMDSv2 ----------------------------------------------------------------------------------


def _validate_imdsv2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Refuses an instance, spot request, launch template or launch configuration that allows
    IMDSv1, an account default that allows it, and a spot fleet's own launch specifications
    (they cannot require IMDSv2). With IMDSv1, anything that can make the instance fetch a URL
    can read its role's credentials."""
    kind, props = args.resource_type, args.props
    if kind == METADATA_DEFAULTS:
        if props.get("httpTokens") == "optional":
            report(
                "the account's default lets new instances use IMDSv1 (httpTokens: optional): "
                "set it to required, or leave it to no-preference"
            )
        return
    if kind == SPOT_FLEET:
        for index, _ in enumerate(_sequence(props.get("launchSpecifications"))):
            report(
                f"launchSpecifications[{index}] cannot require IMDSv2 (a spot fleet's own "
                "specifications have no metadata options): launch from a launch template that "
                "sets metadataOptions.httpTokens to required"
            )
        return
    if kind not in (INSTANCE, LAUNCH_TEMPLATE, SPOT_REQUEST, LAUNCH_CONFIGURATION):
        return
    metadata = _mapping(props.get("metadataOptions"))
    if not metadata and kind in (INSTANCE, SPOT_REQUEST) and props.get("launchTemplate"):
        return  # the template's settings apply: imdsv2-required-at-launch judges them
    if metadata.get("httpEndpoint") == "disabled":
        return  # no metadata service at all
    if metadata.get("httpTokens") != "required":
        report(
            "metadataOptions.httpTokens must be 'required' (IMDSv2): with IMDSv1, anything that "
            "can make the instance fetch a URL can read its role's credentials"
        )


def _validate_imdsv2_at_launch(args: StackValidationArgs, report: ReportViolation) -> None:
    """Refuses an instance, group or fleet that starts instances from a launch template or
    launch configuration outside the stack, whose metadata options no policy can see, unless
    it is an instance or spot request whose own metadata options require IMDSv2."""

    def check(launch: _Launch) -> None:
        if not launch.outside:
            return
        metadata = _mapping(launch.user.props.get("metadataOptions")) if launch.is_instance else {}
        if metadata.get("httpTokens") == "required" or metadata.get("httpEndpoint") == "disabled":
            return
        for reference in launch.outside:
            report(
                f"{reference.outside()}, so IMDSv2 cannot be verified: "
                f"{_fix(launch.user, 'metadataOptions.httpTokens: required')}",
                launch.user.urn,
            )

    _each(_launches(args), check)


# --- Encrypted volumes -----------------------------------------------------------------------


def _unencrypted_disks(resource_type: str, props: Mapping[str, Any]) -> Iterator[str]:
    """Each disk of a volume, instance, spot request, launch template, launch configuration or
    spot fleet that is not encrypted, or whose encryption is left to the account."""
    if resource_type == EBS_VOLUME and not _is_true(props.get("encrypted")):
        yield "the volume"
    if resource_type in (INSTANCE, SPOT_REQUEST, LAUNCH_CONFIGURATION):
        root = props.get("rootBlockDevice")
        from_template = resource_type != LAUNCH_CONFIGURATION and props.get("launchTemplate")
        if root is None and not from_template:
            yield "rootBlockDevice (not set, so encrypted only if the account says so)"
        elif root is not None and not _is_true(_mapping(root).get("encrypted")):
            yield "rootBlockDevice"
        for index, device in enumerate(_sequence(props.get("ebsBlockDevices"))):
            if not _is_true(_mapping(device).get("encrypted")):
                yield f"ebsBlockDevices[{index}]"
    if resource_type == LAUNCH_TEMPLATE:
        mappings = [_mapping(m) for m in _sequence(props.get("blockDeviceMappings"))]
        disks = [(index, m["ebs"]) for index, m in enumerate(mappings) if m.get("ebs") is not None]
        if not disks:
            yield (
                "blockDeviceMappings (no EBS mapping, so the root device is encrypted only if "
                "the account says so)"
            )
        for index, ebs in disks:
            if not _is_true(_mapping(ebs).get("encrypted")):
                yield f"blockDeviceMappings[{index}].ebs"
    if resource_type == SPOT_FLEET:
        for index, spec in enumerate(_sequence(props.get("launchSpecifications"))):
            spec = _mapping(spec)
            roots = _sequence(spec.get("rootBlockDevices"))
            if not roots:
                yield f"launchSpecifications[{index}].rootBlockDevices (not set)"
            for kind in ("rootBlockDevices", "ebsBlockDevices"):
                for number, device in enumerate(_sequence(spec.get(kind))):
                    if not _is_true(_mapping(device).get("encrypted")):
                        yield f"launchSpecifications[{index}].{kind}[{number}]"


def _validate_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Refuses an EBS volume, root or EBS device, launch template or launch configuration disk
    that is not encrypted, and a launch template with no EBS mapping: a lost or shared snapshot
    of an unencrypted disk is readable by whoever holds it."""
    for disk in _unencrypted_disks(args.resource_type, args.props):
        report(f"{disk} must be encrypted (encrypted: true)")


def _validate_encryption_at_launch(args: StackValidationArgs, report: ReportViolation) -> None:
    """Refuses an instance or spot request that leaves its root device to a launch template
    without an encrypted EBS mapping, and anything that launches from a template or launch
    configuration outside the stack (whose disks no policy can see), unless it is an instance
    or spot request with an encrypted rootBlockDevice of its own."""

    def check(launch: _Launch) -> None:
        if not launch.references:
            return
        if launch.is_instance:
            root = _mapping(launch.user.props.get("rootBlockDevice"))
            if _is_true(root.get("encrypted")):
                return  # its own root device wins
        for reference in launch.outside:
            report(
                f"{reference.outside()}, so its disks' encryption cannot be verified: "
                f"{_fix(launch.user, 'an encrypted rootBlockDevice')}",
                launch.user.urn,
            )
        for template in launch.sources if launch.is_instance else ():
            disks = list(_unencrypted_disks(template.resource_type, template.props))
            if disks:
                report(
                    f"the {_kind(launch.user)} takes its disks from {template.name}, whose "
                    f"{disks[0]} is not encrypted: set an encrypted rootBlockDevice on it, or "
                    "encrypt the template's mapping",
                    launch.user.urn,
                )

    _each(_launches(args), check)


# --- No NAT gateway unless the stack allows one ----------------------------------------------


def _validate_nat_gateway(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Refuses a NAT gateway unless the pack's config allows one: it costs tens of dollars a
    month before data, and the stack's instances have public addresses or a NAT instance."""
    if args.resource_type != NAT_GATEWAY:
        return
    if args.get_config().get("allowNatGateway", False) is not True:
        report(
            "a NAT gateway costs tens of dollars a month before data; the stack's instances "
            "have public addresses or a NAT instance. Allow one with the pack's config "
            "(no-nat-gateway: {allowNatGateway: true})"
        )


# --- Every Tailscale device is tagged --------------------------------------------------------


def _tags_problem(tags: Any) -> str | None:
    tags = list(_sequence(tags))
    if not tags:
        return "carries no tags"
    wrong = [tag for tag in tags if not isinstance(tag, str) or not _TAG.fullmatch(tag)]
    return f"has tags that are not tag:<name>: {wrong}" if wrong else None


def _advertised_tags_problem(text: str) -> str | None:
    """What is wrong with the ``--advertise-tags`` flags in a command line, a script or
    cloud-config: none, or one that is empty or names something other than ``tag:<name>``."""
    values = _ADVERTISE_TAGS.findall(text)
    if not values:
        return "without --advertise-tags=tag:<name>"
    for value in values:
        tags = value.split(",")
        if not all(_TAG.fullmatch(tag) for tag in tags):
            return f"with --advertise-tags={value}, which is not a list of tag:<name>"
    return None


def joins_tailnet(text: str) -> bool:
    """Whether a script, cloud-config or command line may join a tailnet: it mentions
    ``tailscale`` and ``up`` or ``login`` in any form (a shell line, a cloud-config list, options
    in between), or starts ``tailscaled``. Deliberately broad: a false alarm is fixed by
    advertising tags, a miss lets an untagged device in."""
    mentions = _MENTIONS_TAILSCALE.search(text) and _MENTIONS_JOIN.search(text)
    return bool(mentions or _MENTIONS_TAILSCALED.search(text))


def _text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\0" in text else text


def _gunzip(data: bytes) -> bytes | None:
    """gzip undone, every member of it (as cloud-init reads it); None when it is broken or
    larger than :data:`USER_DATA_BUDGET`."""
    inflated = b""
    while data:
        inflater = zlib.decompressobj(wbits=31)
        try:
            inflated += inflater.decompress(data, USER_DATA_BUDGET - len(inflated))
        except zlib.error:
            return None
        if not inflater.eof or inflater.unconsumed_tail or len(inflated) >= USER_DATA_BUDGET:
            return None
        data = inflater.unused_data
    return inflated


def _undone(data: bytes) -> bytes | None:
    """One layer of encoding undone, gzip or base64 (which must hide gzip or text); None when
    there is none."""
    if data.startswith(_GZIP_MAGIC):
        return _gunzip(data)
    try:
        decoded = base64.b64decode(re.sub(rb"\s+", b"", data), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if decoded.startswith(_GZIP_MAGIC) or _text(decoded) is not None else None


def readable_user_data(data: Any) -> str | None:
    """User data as cloud-init would run it, every form in one text: as written, with its
    base64 and gzip layers undone, each part of a MIME multipart message, and the base64 blobs
    inside it (cloud-config ``write_files`` with ``encoding: b64`` or ``gz+b64``). None when some
    layer is neither text nor an encoding of text, or when undoing them all takes more than
    :data:`USER_DATA_BUDGET`: then nothing can be said about it."""
    if not isinstance(data, str):
        return None
    texts: list[str] = []
    layers, seen, spent = [data.encode()], set(), 0
    while layers:
        layer = layers.pop()
        if layer in seen:
            continue
        seen.add(layer)
        spent += len(layer)
        if spent > USER_DATA_BUDGET:
            return None
        undone = _undone(layer)
        if undone is not None:
            layers.append(undone)
        text = _text(layer)
        if text is None:
            if undone is None:
                return None
            continue
        texts.append(text)
        if text.lstrip().lower().startswith(("content-type:", "mime-version:")):
            for part in email.message_from_string(text).walk():
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    layers.append(payload)
        blobs = (run.encode() for run in _BASE64_RUN.findall(text))
        layers.extend(blob for blob in blobs if _undone(blob) is not None)
    return "\n".join(texts)


def _user_data(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Each user data of an instance, spot request, launch template, launch configuration or
    spot fleet, with where it is written."""
    if resource_type in (INSTANCE, SPOT_REQUEST, LAUNCH_TEMPLATE, LAUNCH_CONFIGURATION):
        for key in ("userData", "userDataBase64"):
            if props.get(key) is not None:
                yield key, props.get(key)
    if resource_type == SPOT_FLEET:
        for index, spec in enumerate(_sequence(props.get("launchSpecifications"))):
            if _mapping(spec).get("userData") is not None:
                yield f"launchSpecifications[{index}].userData", _mapping(spec).get("userData")


def _validate_tagged(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Refuses an auth key without tags, an OAuth client whose scopes mint keys or tag devices
    (``all``, ``auth_keys``, ``devices:core``) without tags, and user data that joins the
    tailnet (or cannot be read) without ``--advertise-tags=tag:<name>``: an untagged device
    belongs to the user who joined it, with that user's access."""
    kind, props = args.resource_type, args.props
    if kind == TAILNET_KEY:
        problem = _tags_problem(props.get("tags"))
        if problem:
            report(f"the auth key {problem}: a device that joins with it would be a user's device")
    elif kind == OAUTH_CLIENT:
        scopes = {str(scope).strip().lower() for scope in _sequence(props.get("scopes"))}
        problem = _tags_problem(props.get("tags"))
        if scopes & KEY_MINTING_SCOPES and problem:
            minting = sorted(scopes & KEY_MINTING_SCOPES)
            report(
                f"the OAuth client mints device keys but {problem} (scopes: {', '.join(minting)})"
            )
    for where, data in _user_data(kind, props):
        text = readable_user_data(data)
        if text is None:
            report(f"{where} cannot be read (neither text nor base64 or gzip of text)")
        elif joins_tailnet(text):
            problem = _advertised_tags_problem(text)
            if problem:
                report(f"{where} runs tailscale up or login {problem}")


def _env(props: Mapping[str, Any]) -> tuple[list[tuple[str, str]], int]:
    """A container's environment as (name, value) pairs, and how many entries are not known
    yet (a new auth key in a preview)."""
    pairs, unknown = [], 0
    for entry in _peek_items(_peek(props, "envs")):
        if entry is _UNKNOWN:
            unknown += 1
        elif isinstance(entry, str):
            name, _, value = entry.partition("=")
            pairs.append((name, value))
    return pairs, unknown


def image_repository(image: str) -> str:
    """An image reference without its registry (Docker Hub, GHCR), tag or digest:
    ``ghcr.io/tailscale/tailscale:v1.88.3`` becomes ``tailscale/tailscale``."""
    name = image.strip().lower().split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    for registry in ("docker.io/", "index.docker.io/", "registry-1.docker.io/", "ghcr.io/"):
        if name.startswith(registry):
            name = name[len(registry) :]
            break
    return name.removeprefix("library/")


def _image_names(container: PolicyResource, images: Sequence[PolicyResource]) -> set[str]:
    """The repositories a container runs: the stack's image it names (by id or name), else the
    reference as written."""
    image = _peek(container.props, "image")
    found = [*_resolve(image, images, container, "imageId")]
    if isinstance(image, str):
        found += [i for i in _resolve(image, images, container, "name") if i not in found]
    names = {_peek(i.props, "name") for i in found}
    if not found and isinstance(image, str):
        names = {image}
    return {image_repository(name) for name in names if isinstance(name, str)}


def _container_tags_problem(
    container: PolicyResource, images: Sequence[PolicyResource], keys: Sequence[PolicyResource]
) -> str | None:
    """Why a container that joins the tailnet may join untagged; None when it joins tagged or
    does not join. A tagged auth key of the stack settles it; otherwise the tags must be where
    the program that joins reads them."""
    props = container.props
    env, unknown = _env(props)
    names = _image_names(container, images)
    program = " ".join(
        str(part) for key in ("entrypoints", "command") for part in _sequence(props.get(key))
    )
    containerboot = "containerboot" in program or (not program and CONTAINERBOOT_IMAGE in names)
    own_join = not containerboot and joins_tailnet(program)
    tsnet_image = any(n.startswith("tailscale/") and n != CONTAINERBOOT_IMAGE for n in names)
    key_values = [value for name, value in env if name in AUTH_KEY_VARIABLES]
    joins = containerboot or own_join or tsnet_image or bool(key_values)
    joins = joins or any(name == "TS_HOSTNAME" for name, _ in env)
    if not joins:
        return None
    references = [*key_values, *[_UNKNOWN] * unknown]
    used = [k for ref in references for k in _resolve(ref, keys, container, "key")]
    if any(_tags_problem(k.props.get("tags")) is None for k in used):
        return None
    if containerboot:
        extra = [value for name, value in env if name == "TS_EXTRA_ARGS"]
        if len(extra) != 1:
            problem = f"{len(extra)} TS_EXTRA_ARGS entries; containerboot takes its tags from one"
        else:
            problem = _advertised_tags_problem(extra[0])
            problem = problem and f"TS_EXTRA_ARGS {problem}"
    elif own_join:
        problem = _advertised_tags_problem(program)
        problem = problem and f"its command runs tailscale {problem}"
    else:
        problem = (
            "it joins through tsnet, whose tags are its auth key's: give it a tagged TailnetKey "
            "of the stack as TS_AUTHKEY"
        )
    if problem and unknown:
        # An entry not known yet may hold what is missing: not checked in this preview.
        raise UnknownValueError(UNKNOWN_STRING_VALUE, ["envs"])
    return problem


def _validate_tagged_containers(args: StackValidationArgs, report: ReportViolation) -> None:
    """Refuses a container that joins the tailnet untagged. It joins when it runs Tailscale's
    image (containerboot or tsrecorder), runs ``tailscaled`` or ``tailscale up`` itself, or is
    given an auth key. Its tags may come from a tagged TailnetKey of the stack given as
    TS_AUTHKEY; otherwise from exactly one TS_EXTRA_ARGS with ``--advertise-tags=tag:<name>``
    for containerboot, or from ``--advertise-tags`` in its own command."""
    images = _of_type(args.resources, DOCKER_IMAGE)
    keys = _of_type(args.resources, TAILNET_KEY)

    def check(container: PolicyResource) -> None:
        problem = _container_tags_problem(container, images, keys)
        if problem:
            report(f"the container joins the tailnet untagged: {problem}", container.urn)

    _each(_of_type(args.resources, DOCKER_CONTAINER), check)


# --- GPU workers run on spot -----------------------------------------------------------------


def _has_gpu(instance_type: Any) -> bool:
    return isinstance(instance_type, str) and bool(_GPU_FAMILY.fullmatch(instance_type))


def _requires_gpu(requirements: Any) -> bool:
    """Whether attribute-based instance requirements ask for GPUs: ``acceleratorTypes`` has
    ``gpu``, or accelerators are required and of any type."""
    requirements = _mapping(requirements)
    types = [str(t).lower() for t in _sequence(requirements.get("acceleratorTypes"))]
    if types:
        return "gpu" in types
    return _amount(_mapping(requirements.get("acceleratorCount")).get("min")) > 0


def _gpu_in(choices: Iterable[tuple[Any, Any]]) -> str | None:
    """The first GPU among (instance type, instance requirements) pairs, as a message names it."""
    for instance_type, requirements in choices:
        if _has_gpu(instance_type):
            return str(instance_type)
        if _requires_gpu(requirements):
            return "instanceRequirements with GPU accelerators"
    return None


def _source_choice(source: PolicyResource) -> tuple[Any, Any]:
    return source.props.get("instanceType"), source.props.get("instanceRequirements")


def _asks_for_spot(source: PolicyResource) -> bool:
    """Whether a launch template asks for spot, or a launch configuration sets a spot price."""
    if source.resource_type == LAUNCH_CONFIGURATION:
        return source.props.get("spotPrice") not in (None, "")
    market = _mapping(source.props.get("instanceMarketOptions")).get("marketType")
    return market == "spot"


def _overrides(props: Mapping[str, Any], *path: str) -> list[tuple[Any, Any]]:
    node: Any = props
    for step in path:
        node = _mapping(node).get(step)
    return [
        (_mapping(o).get("instanceType"), _mapping(o).get("instanceRequirements"))
        for o in _sequence(node)
    ]


def _gpu_launched(launch: _Launch) -> str | None:
    """The GPU a resource may start: its own instance type or overrides, or its templates'."""
    props, kind = launch.user.props, launch.user.resource_type
    if launch.is_instance and props.get("instanceType"):
        return _gpu_in([(props.get("instanceType"), None)])  # it overrides the template's
    choices = [_source_choice(source) for source in launch.sources]
    if kind == AUTOSCALING_GROUP:
        choices += _overrides(props, "mixedInstancesPolicy", "launchTemplate", "overrides")
    if kind in (FLEET, SPOT_FLEET):
        for config in _sequence(props.get("launchTemplateConfigs")):
            choices += _overrides(_mapping(config), "overrides")
    if kind == SPOT_FLEET:
        choices += _overrides(props, "launchSpecifications")
    return _gpu_in(choices)


def _on_demand_capacity(launch: _Launch) -> str | None:
    """How a resource starts instances on demand, as a message says what to change; None when
    it starts spot only."""
    props, kind, sources = launch.user.props, launch.user.resource_type, launch.sources
    if kind == INSTANCE:
        market = _mapping(props.get("instanceMarketOptions")).get("marketType")
        if market == "spot" or (market is None and sources and all(map(_asks_for_spot, sources))):
            return None
        return (
            "the instance starts on demand: set instanceMarketOptions.marketType to spot on it "
            "or on its launch template"
        )
    if kind == AUTOSCALING_GROUP:
        mixed = _mapping(props.get("mixedInstancesPolicy"))
        if mixed:
            distribution = _mapping(mixed.get("instancesDistribution"))
            # AWS's default for a mixed instances policy is all on demand.
            base = _amount(distribution.get("onDemandBaseCapacity"))
            above = distribution.get("onDemandPercentageAboveBaseCapacity", 100)
            if not base and not _amount(above):
                return None
            return (
                "the group starts GPU instances on demand: set onDemandBaseCapacity and "
                "onDemandPercentageAboveBaseCapacity to 0"
            )
        if sources and all(map(_asks_for_spot, sources)):
            return None
        return (
            "the group starts them on demand: its launch template must ask for spot "
            "(instanceMarketOptions.marketType: spot) or its launch configuration set spotPrice, "
            "or the group use a mixed instances policy with no on-demand capacity"
        )
    if kind == FLEET:
        target = _mapping(props.get("targetCapacitySpecification"))
        on_demand = _amount(target.get("onDemandTargetCapacity"))
        rest = _amount(target.get("totalTargetCapacity")) - _amount(
            target.get("spotTargetCapacity")
        )
        if not on_demand and not (target.get("defaultTargetCapacityType") != "spot" and rest > 0):
            return None
        return (
            "the fleet starts them on demand: set onDemandTargetCapacity to 0 and "
            "defaultTargetCapacityType to spot"
        )
    if kind == SPOT_FLEET and _amount(props.get("onDemandTargetCapacity")):
        return "the spot fleet starts them on demand: set onDemandTargetCapacity to 0"
    return None


def _validate_spot(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Refuses an instance with a GPU, not launched from a template, that runs on demand: GPU
    hours cost several times their spot price. Instances launched from templates are judged with
    their template by gpu-templates-on-spot."""
    props = args.props
    if args.resource_type != INSTANCE or props.get("launchTemplate"):
        return
    if _has_gpu(props.get("instanceType")):
        market = _mapping(props.get("instanceMarketOptions")).get("marketType")
        if market != "spot":
            report(
                f"{props.get('instanceType')} has a GPU: it must run on spot "
                "(instanceMarketOptions.marketType: spot), at a fraction of the on-demand price"
            )


def _validate_templates_and_groups(args: StackValidationArgs, report: ReportViolation) -> None:
    """Refuses every resource that starts GPU instances on demand from a launch template or
    launch configuration, from its own overrides or attribute-based requirements, or as a fleet:
    an instance or group from a template that does not ask for spot, a mixed instances policy
    with on-demand capacity, an EC2 fleet with on-demand target capacity, a spot fleet with
    on-demand target capacity. A GPU template or launch configuration that nothing in the stack
    uses must ask for spot itself (a template in a mixed instances policy may not, so it is
    judged by its groups)."""
    launches = _launches(args)
    used = {source.urn for launch in launches for source in launch.sources}

    def check(launch: _Launch) -> None:
        if launch.user.resource_type == INSTANCE and not launch.references:
            return  # gpu-workers-on-spot judges it
        gpu = _gpu_launched(launch)
        on_demand = gpu and _on_demand_capacity(launch)
        if on_demand:
            report(f"{gpu} has a GPU: {on_demand}", launch.user.urn)

    for source in _of_type(args.resources, LAUNCH_TEMPLATE, LAUNCH_CONFIGURATION):
        gpu = _gpu_in([_source_choice(source)])
        if gpu and source.urn not in used and not _asks_for_spot(source):
            if source.resource_type == LAUNCH_CONFIGURATION:
                must = "the launch configuration must set spotPrice"
            else:
                must = (
                    "the launch template must ask for spot (instanceMarketOptions.marketType: spot)"
                )
            report(f"{gpu} has a GPU: {must}", source.urn)
    _each(launches, check)


# --- Stateful resources are protected --------------------------------------------------------


def is_stateful(resource_type: str, props: Mapping[str, Any]) -> bool:
    """Whether deleting the resource loses data."""
    if resource_type not in STATEFUL_TYPES:
        return False
    name = props.get("name") if resource_type == DOCKER_VOLUME else None
    return not (isinstance(name, str) and name.endswith(SCRATCH_VOLUME_SUFFIXES))


def _validate_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Refuses a volume, snapshot, bucket, file system or database that holds data and is not
    protected: a rename or a removed line in the program would delete it."""
    if is_stateful(args.resource_type, args.props) and not args.opts.protect:
        report(
            "it holds data: protect it (protect=True, and retain_on_delete=True so removing it "
            "from the program keeps the data)"
        )


def _volume_mounts(props: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Each Docker volume a container mounts, with where it is written: its name (peeked, it
    may be a new volume's in a preview), None for an anonymous volume."""
    for index, mount in enumerate(_sequence(props.get("mounts"))):
        if _mapping(mount).get("type") == "volume":
            yield f"mounts[{index}]", _peek(mount, "source")
    for index, volume in enumerate(_sequence(props.get("volumes"))):
        volume = _mapping(volume)
        if volume.get("hostPath") is None and volume.get("fromContainer") is None:
            yield f"volumes[{index}]", _peek(volume, "volumeName")


def _validate_container_volumes(args: StackValidationArgs, report: ReportViolation) -> None:
    """Refuses a container that mounts a Docker volume no volume resource of the stack declares
    (Docker creates it on first use, and nothing protects it) or an anonymous one (removed with
    the container)."""
    volumes = _of_type(args.resources, DOCKER_VOLUME)

    def check(container: PolicyResource) -> None:
        for where, source in _volume_mounts(container.props):
            if _resolve(_UNKNOWN if source is None else source, volumes, container, "name"):
                continue
            what = "an anonymous volume" if source is None else f"volume {source!r}"
            report(
                f"{where} mounts {what}, which no Docker volume of the stack declares: Docker "
                "creates it unprotected; declare it as a protected docker.Volume",
                container.urn,
            )

    _each(_of_type(args.resources, DOCKER_CONTAINER), check)


POLICIES = [
    ResourceValidationPolicy(
        name="no-open-ingress",
        description=f"Nothing is reachable from public address space but UDP {TAILSCALE_UDP_PORT}.",
        validate=_validate_ingress,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="no-open-prefix-list-ingress",
        description=(
            f"No ingress but UDP {TAILSCALE_UDP_PORT} from a prefix list of the stack that holds "
            "public address space."
        ),
        validate=_validate_prefix_list_ingress,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="imdsv2-required",
        description="Instances, launch templates and configurations require IMDSv2 tokens.",
        validate=_validate_imdsv2,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="imdsv2-required-at-launch",
        description="Nothing launches from a template outside the stack without its own IMDSv2.",
        validate=_validate_imdsv2_at_launch,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="encrypted-volumes",
        description="EBS volumes, root devices and launch template disks are encrypted.",
        validate=_validate_encryption,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="encrypted-volumes-at-launch",
        description="Instances launched from templates get encrypted disks from them.",
        validate=_validate_encryption_at_launch,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="no-nat-gateway",
        description="No NAT gateway unless the pack's config allows one.",
        validate=_validate_nat_gateway,
        enforcement_level=MANDATORY,
        config_schema=PolicyConfigSchema(
            properties={"allowNatGateway": {"type": "boolean", "default": False}}
        ),
    ),
    ResourceValidationPolicy(
        name="tailscale-devices-tagged",
        description="Every auth key, OAuth client and instance that joins the tailnet is tagged.",
        validate=_validate_tagged,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="tailscale-containers-tagged",
        description="Every container that joins the tailnet is tagged.",
        validate=_validate_tagged_containers,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="gpu-workers-on-spot",
        description="Instances with GPUs run on spot.",
        validate=_validate_spot,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="gpu-templates-on-spot",
        description="Templates, groups and fleets start GPU instances on spot.",
        validate=_validate_templates_and_groups,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="stateful-resources-protected",
        description="Volumes, snapshots, buckets and databases that hold data are protected.",
        validate=_validate_protected,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="container-volumes-declared",
        description="Containers mount only Docker volumes the stack declares.",
        validate=_validate_container_volumes,
        enforcement_level=MANDATORY,
    ),
]
"""The pack's policies, every one mandatory."""
