"""The home lab's invariants, as policies the Pulumi CLI runs on every preview and update.

Each policy reads a resource's inputs as the engine hands them to a policy pack: camelCase
property names, secrets in clear, and, during a preview, values not known yet, which raise
``UnknownValueError`` when read (the CLI then reports the policy as unable to run, not as
passed). Checks are by resource type, so they hold for any program, not only this one: the
subnet router as an ``Instance``, a GPU worker as an ``Instance`` or as a ``LaunchTemplate`` and
autoscaling ``Group``, models on an EBS volume or in an S3 bucket.

This module imports nothing but the policy SDK and the standard library: the pack runs in a
virtualenv of its own (``policy/requirements.txt``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

PACK_NAME = "homelab-invariants"
MANDATORY = EnforcementLevel.MANDATORY

TAILSCALE_UDP_PORT = 41641
"""The one port open to the internet: Tailscale's direct (peer-to-peer) connections."""
ANYWHERE = ("0.0.0.0/0", "::/0")

INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
AUTOSCALING_GROUP = "aws:autoscaling/group:Group"
SPOT_REQUEST = "aws:ec2/spotInstanceRequest:SpotInstanceRequest"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EBS_VOLUME = "aws:ebs/volume:Volume"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
DOCKER_VOLUME = "docker:index/volume:Volume"
DOCKER_CONTAINER = "docker:index/container:Container"
TAILNET_KEY = "tailscale:index/tailnetKey:TailnetKey"
OAUTH_CLIENT = "tailscale:index/oauthClient:OauthClient"

STATEFUL_TYPES = (
    DOCKER_VOLUME,
    EBS_VOLUME,
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:efs/fileSystem:FileSystem",
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
    "aws:dynamodb/table:Table",
)
"""Resources whose loss loses data: each must be protected."""
SCRATCH_VOLUME_SUFFIXES = ("-tailscale-socket", "-certs")
"""Docker volumes that hold nothing worth keeping, by the end of their name: a sidecar's socket
and a certificate that ``tailscale cert`` issues again. Every other Docker volume is data."""

_GPU_FAMILY = re.compile(r"(?:g|gr|p)[0-9][a-z0-9-]*\.[a-z0-9]+")
"""EC2 families with GPUs: g4dn, g5, g6e, gr6, p4d, p5 and their sizes."""
_TAG = re.compile(r"tag:[A-Za-z0-9][A-Za-z0-9_-]*")


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else ()


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_true(value: Any) -> bool:
    # A launch template's EBS settings are strings ("true") in the provider's schema.
    return value is True or value == "true"


# --- Nothing inbound from anywhere but Tailscale's UDP port ----------------------------------


def _number(value: Any) -> Any:
    """A port as people write it: the engine sends every number as a float."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _tailscale_only(protocol: Any, from_port: Any, to_port: Any) -> bool:
    return (
        str(protocol).lower() in ("udp", "17")
        and from_port == TAILSCALE_UDP_PORT
        and to_port == TAILSCALE_UDP_PORT
    )


def _open_rules(resource_type: str, props: Mapping[str, Any]) -> Iterator[str]:
    """A description of each rule that lets the whole internet in on something else."""
    if resource_type == SECURITY_GROUP:
        for index, rule in enumerate(_sequence(props.get("ingress"))):
            rule = _mapping(rule)
            sources = [*_sequence(rule.get("cidrBlocks")), *_sequence(rule.get("ipv6CidrBlocks"))]
            open_to = [source for source in sources if source in ANYWHERE]
            if open_to and not _tailscale_only(
                rule.get("protocol"), rule.get("fromPort"), rule.get("toPort")
            ):
                yield (
                    f"ingress[{index}] lets {', '.join(open_to)} in on {rule.get('protocol')} "
                    f"{_number(rule.get('fromPort'))}-{_number(rule.get('toPort'))}"
                )
    elif resource_type == SECURITY_GROUP_RULE and props.get("type") == "ingress":
        sources = [*_sequence(props.get("cidrBlocks")), *_sequence(props.get("ipv6CidrBlocks"))]
        open_to = [source for source in sources if source in ANYWHERE]
        if open_to and not _tailscale_only(
            props.get("protocol"), props.get("fromPort"), props.get("toPort")
        ):
            yield f"the rule lets {', '.join(open_to)} in"
    elif resource_type == INGRESS_RULE:
        open_to = [props.get(key) for key in ("cidrIpv4", "cidrIpv6") if props.get(key) in ANYWHERE]
        if open_to and not _tailscale_only(
            props.get("ipProtocol"), props.get("fromPort"), props.get("toPort")
        ):
            yield f"the rule lets {', '.join(open_to)} in"


def _validate_ingress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for problem in _open_rules(args.resource_type, args.props):
        report(
            f"{problem}: nothing may be reachable from the internet but UDP "
            f"{TAILSCALE_UDP_PORT}; everything else is reached over the tailnet"
        )


# --- IMDSv2 ----------------------------------------------------------------------------------


def _validate_imdsv2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (INSTANCE, LAUNCH_TEMPLATE, SPOT_REQUEST):
        return
    metadata = _mapping(args.props.get("metadataOptions"))
    if not metadata and "launchTemplate" in args.props:
        return  # the launch template's own settings apply, and are checked there
    if metadata.get("httpEndpoint") == "disabled":
        return  # no metadata service at all
    if metadata.get("httpTokens") != "required":
        report(
            "metadataOptions.httpTokens must be 'required' (IMDSv2): with IMDSv1, anything that "
            "can make the instance fetch a URL can read its role's credentials"
        )


# --- Encrypted volumes -----------------------------------------------------------------------


def _unencrypted_disks(resource_type: str, props: Mapping[str, Any]) -> Iterator[str]:
    if resource_type == EBS_VOLUME and not _is_true(props.get("encrypted")):
        yield "the volume"
    if resource_type in (INSTANCE, SPOT_REQUEST):
        root = props.get("rootBlockDevice")
        if root is None and "launchTemplate" not in props:
            yield "rootBlockDevice (not set, so encrypted only if the account says so)"
        elif root is not None and not _is_true(_mapping(root).get("encrypted")):
            yield "rootBlockDevice"
        for index, device in enumerate(_sequence(props.get("ebsBlockDevices"))):
            if not _is_true(_mapping(device).get("encrypted")):
                yield f"ebsBlockDevices[{index}]"
    if resource_type == LAUNCH_TEMPLATE:
        for index, mapping in enumerate(_sequence(props.get("blockDeviceMappings"))):
            ebs = _mapping(mapping).get("ebs")
            if ebs is not None and not _is_true(_mapping(ebs).get("encrypted")):
                yield f"blockDeviceMappings[{index}].ebs"


def _validate_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for disk in _unencrypted_disks(args.resource_type, args.props):
        report(f"{disk} must be encrypted (encrypted: true)")


# --- No NAT gateway unless the stack allows one ----------------------------------------------


def _validate_nat_gateway(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != NAT_GATEWAY:
        return
    if not args.get_config().get("allowNatGateway", False):
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


def _user_data(props: Mapping[str, Any]) -> str:
    """An instance's user data in clear (a launch template's is base64)."""
    text = props.get("userData")
    if not isinstance(text, str):
        text = props.get("userDataBase64")
    if not isinstance(text, str):
        return ""
    if "tailscale" not in text:
        with contextlib.suppress(binascii.Error, ValueError):
            text = base64.b64decode(text, validate=True).decode("utf-8", "replace")
    return text


def _validate_tagged(args: ResourceValidationArgs, report: ReportViolation) -> None:
    kind, props = args.resource_type, args.props
    if kind == TAILNET_KEY:
        problem = _tags_problem(props.get("tags"))
        if problem:
            report(f"the auth key {problem}: a device that joins with it would be a user's device")
    elif kind == OAUTH_CLIENT:
        scopes = {str(scope).split(":")[0] for scope in _sequence(props.get("scopes"))}
        problem = _tags_problem(props.get("tags"))
        if scopes & {"auth_keys", "devices"} and problem:
            report(f"the OAuth client mints device keys but {problem}")
    elif kind == DOCKER_CONTAINER:
        envs = [env for env in _sequence(props.get("envs")) if isinstance(env, str)]
        names = {env.split("=", 1)[0] for env in envs}
        if "TS_HOSTNAME" in names:
            extra = " ".join(env for env in envs if env.startswith("TS_EXTRA_ARGS="))
            if "--advertise-tags=tag:" not in extra:
                report("the Tailscale container joins without --advertise-tags in TS_EXTRA_ARGS")
    elif kind in (INSTANCE, LAUNCH_TEMPLATE, SPOT_REQUEST):
        user_data = _user_data(props)
        if "tailscale up" in user_data and "--advertise-tags=" not in user_data:
            report("the user data runs tailscale up without --advertise-tags")


# --- GPU workers run on spot -----------------------------------------------------------------


def _has_gpu(instance_type: Any) -> bool:
    return isinstance(instance_type, str) and bool(_GPU_FAMILY.fullmatch(instance_type))


def _validate_spot(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == INSTANCE and _has_gpu(props.get("instanceType")):
        market = _mapping(props.get("instanceMarketOptions")).get("marketType")
        if market != "spot":
            report(
                f"{props.get('instanceType')} has a GPU: it must run on spot "
                "(instanceMarketOptions.marketType: spot), at a fraction of the on-demand price"
            )


def _on_demand_capacity(group: Any) -> bool:
    """Whether a group with a mixed instances policy starts any instance on demand."""
    mixed = _mapping(group.props.get("mixedInstancesPolicy"))
    distribution = _mapping(mixed.get("instancesDistribution"))
    # AWS's default for a mixed instances policy is all on demand.
    base = distribution.get("onDemandBaseCapacity") or 0
    above = distribution.get("onDemandPercentageAboveBaseCapacity", 100)
    return bool(base or above)


def _validate_templates_and_groups(args: StackValidationArgs, report: ReportViolation) -> None:
    """GPU instances that launch templates and autoscaling groups start are spot: the template
    asks for spot, or (a template in a mixed instances policy may not) the group's policy has no
    on-demand capacity."""
    templates = {r.urn: r for r in args.resources if r.resource_type == LAUNCH_TEMPLATE}
    mixed_users: dict[str, list[Any]] = {urn: [] for urn in templates}
    for group in args.resources:
        if group.resource_type != AUTOSCALING_GROUP:
            continue
        mixed = _mapping(group.props.get("mixedInstancesPolicy"))
        used = [templates[d.urn] for d in group.dependencies if d.urn in templates]
        if not mixed:
            continue
        for template in used:
            mixed_users[template.urn].append(group)
        overrides = _sequence(_mapping(mixed.get("launchTemplate")).get("overrides"))
        types = [t.props.get("instanceType") for t in used]
        types += [_mapping(override).get("instanceType") for override in overrides]
        if any(_has_gpu(kind) for kind in types) and _on_demand_capacity(group):
            report(
                "the group starts GPU instances on demand: set onDemandBaseCapacity and "
                "onDemandPercentageAboveBaseCapacity to 0",
                group.urn,
            )
    for urn, template in templates.items():
        if not _has_gpu(template.props.get("instanceType")) or mixed_users[urn]:
            continue
        market = _mapping(template.props.get("instanceMarketOptions")).get("marketType")
        if market != "spot":
            report(
                f"{template.props.get('instanceType')} has a GPU: the launch template must ask "
                "for spot (instanceMarketOptions.marketType: spot)",
                urn,
            )


# --- Stateful resources are protected --------------------------------------------------------


def is_stateful(resource_type: str, props: Mapping[str, Any]) -> bool:
    """Whether deleting the resource loses data."""
    if resource_type not in STATEFUL_TYPES:
        return False
    name = props.get("name") if resource_type == DOCKER_VOLUME else None
    return not (isinstance(name, str) and name.endswith(SCRATCH_VOLUME_SUFFIXES))


def _validate_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if is_stateful(args.resource_type, args.props) and not args.opts.protect:
        report(
            "it holds data: protect it (protect=True, and retain_on_delete=True so removing it "
            "from the program keeps the data)"
        )


POLICIES = [
    ResourceValidationPolicy(
        name="no-open-ingress",
        description=f"Nothing is reachable from 0.0.0.0/0 or ::/0 but UDP {TAILSCALE_UDP_PORT}.",
        validate=_validate_ingress,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="imdsv2-required",
        description="Instances and launch templates require IMDSv2 session tokens.",
        validate=_validate_imdsv2,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="encrypted-volumes",
        description="EBS volumes, root devices and launch template disks are encrypted.",
        validate=_validate_encryption,
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
        description="Every credential, container and instance that joins the tailnet is tagged.",
        validate=_validate_tagged,
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
        description="Launch templates and autoscaling groups start GPU instances on spot.",
        validate=_validate_templates_and_groups,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="stateful-resources-protected",
        description="Volumes, buckets and databases that hold data are protected.",
        validate=_validate_protected,
        enforcement_level=MANDATORY,
    ),
]
"""The pack's policies, every one mandatory."""
