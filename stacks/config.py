"""The stack's configuration as one pydantic model tree.

Pulumi config arrives as three structured keys in the project's namespace (``homelab:tailnet``,
``homelab:hosts``, ``homelab:aws``), each friendly to ``pulumi config set --path``. Every model
forbids unknown keys and spells keys in camelCase, the style of Pulumi's own config. Validation
runs before any resource is registered; :func:`stacks.load.load_config` turns a failure into one
message that names the key path.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    Strict,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.docker.apps import RECORDER_HOSTNAME, listening_ports, serves_http
from components.docker.serve import FUNNEL_PORTS

# DNS labels: hostnames, service names, tag names.
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Docker's reference grammar: [registry[:port]/]path-component(/path-component)*:tag[@digest].
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?/)?"
    rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
    r"(?:@sha256:[a-f0-9]{64})?"
)
# Tailnet logins: an email, or a GitHub-style login such as alice@github.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_TAILNET_DOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.ts\.net")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_PRIVATE = tuple(
    ipaddress.IPv4Network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
"""RFC 1918: the only ranges a VPC or a home LAN should use (not Tailscale's 100.64.0.0/10)."""
TAILNET_RANGE = ipaddress.IPv4Network("100.64.0.0/10")
"""The addresses Tailscale gives devices (shared address space): tailnet traffic, never a LAN or
a VPC."""
WSL2_DNS = ("1.1.1.1", "9.9.9.9")
"""WSL2 writes a resolv.conf pointing at its NAT gateway, which containers often cannot reach
after the laptop sleeps or joins a VPN; its containers use these resolvers unless told otherwise."""
RESERVED_PORTS = {443: "HTTPS, served by the proxy", 9002: "the sidecar's health endpoint"}
"""Ports an app cannot listen on: its front container shares the sidecar's namespace."""
ROUTER_NAME = "router"
"""The subnet router's name on the tailnet, which no service or worker may take."""
RECORDER_NAME = RECORDER_HOSTNAME
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
_DOCKER_URL = re.compile(
    rf"ssh://[a-z_][a-z0-9_.-]*@{_HOST}(?::(?P<ssh_port>[0-9]{{1,5}}))?"
    r"|unix:///\S+"
    rf"|tcp://{_HOST}:(?P<tcp_port>[0-9]{{1,5}})"
)
_SIZE = re.compile(r"nano|micro|small|medium|large|[0-9]*xlarge|metal(?:-[0-9]+xl)?")
"""The sizes EC2 names its instance types by: nano to 48xlarge, and metal."""
_ARM_INSTANCE = re.compile(r"[a-z]+[0-9]+g[a-z]*\.(?:" + _SIZE.pattern + ")")
"""Graviton (arm64) instance types, which the router's arm64 image needs: t4g.nano, c7g.large."""
NVIDIA_GPU_FAMILIES = ("g4dn", "g5", "g6", "g6e", "gr6", "p4d", "p4de", "p5")
"""Instance families with NVIDIA GPUs that AWS's GPU image supports, which the workers need."""
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
"""Prefixes S3 refuses in bucket names, which start with the worker's name."""
WORKER_NAME_MAX = 40
"""A worker's name leads its bucket's and IAM role's generated names, which AWS caps at 63 and
64 characters."""


class KeyPathError(ValueError):
    """A validation failure below the model being validated, at ``path`` relative to it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def _label(value: str) -> str:
    if not _LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a DNS label: use 1-63 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit"
        )
    return value


def _image(value: str) -> str:
    if not _IMAGE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a pinned image reference: expected repository:tag, "
            "optionally followed by @sha256:<64 hex digits>"
        )
    return value


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a tailnet login: expected an email or a login such as alice@github"
        )
    return value


def _tag(value: str) -> str:
    if not _TAG.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an image tag: use up to 128 letters, digits, '_', '.' and '-'"
        )
    return value


_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def _a_price(value: object) -> object:
    # `pulumi config set --path` stores a decimal such as 0.35 as the text "0.35".
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return float(value)
    return _a_number(value)


def _a_whole_number(value: object) -> object:
    if isinstance(value, float):
        raise ValueError(f"expected a whole number, not {value!r}")
    return _a_number(value)


def _a_number(value: object) -> object:
    # YAML's true is not the number 1, and "8080" in quotes is text: both are mistakes here.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not the boolean {str(value).lower()}")
    if isinstance(value, str):
        raise ValueError(f"expected a number, not the text {value!r}")
    return value


def is_rfc1918(network: ipaddress.IPv4Network) -> bool:
    """Whether the network lies in one of the private ranges of RFC 1918."""
    return any(network.subnet_of(block) for block in _PRIVATE)


def _ipv4(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None
    return value


IPv4 = Annotated[str, AfterValidator(_ipv4)]
Flag = Annotated[bool, Strict()]
"""true or false, never yes, "true" or 1."""
Label = Annotated[str, AfterValidator(_label)]
Image = Annotated[str, AfterValidator(_image)]
Tag = Annotated[str, AfterValidator(_tag)]
Login = Annotated[str, AfterValidator(_email)]
Number = Annotated[int, BeforeValidator(_a_whole_number)]
Port = Annotated[Number, Field(ge=1, le=65535)]


class Model(BaseModel):
    """Base of every config model: unknown keys are errors, keys are camelCase."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        strict=False,
    )


class RuleConfig(Model):
    """``homelab:tailnet.rules[]``: ``src`` (logins, groups, tags) may reach ``dst``
    (``host:ports``, for example ``tag:svc-photos:443``)."""

    src: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    dst: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


class TailnetConfig(Model):
    """``homelab:tailnet``: the tailnet every host, service, router and worker joins."""

    domain: str = Field(description="The tailnet's MagicDNS suffix, for example tail1234.ts.net.")
    magic_dns: Flag = True
    https_certificates: Flag = True
    device_approval: Flag = False
    key_expiry_days: Number = Field(default=180, ge=1, le=180)
    admins: list[Login] = Field(min_length=1)
    members: list[Login] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(
        default_factory=list, description="Access rules of your own, merged after the stack's."
    )
    adopt_existing_policy: Flag = Field(
        default=False, description="Let the first update replace a hand-edited policy file."
    )

    @model_validator(mode="after")
    def _check_domain(self) -> TailnetConfig:
        if not _TAILNET_DOMAIN.fullmatch(self.domain):
            raise KeyPathError(
                "domain",
                f"{self.domain!r} is not a tailnet DNS name: expected <name>.ts.net "
                "(the admin console shows it under DNS)",
            )
        return self


class ServiceConfig(Model):
    """``homelab:hosts.<host>.services.<name>``: one service with its sidecar and proxy."""

    app: Literal["immich", "home-assistant", "jellyfin", "mosquitto", "web"]
    proxy: Literal["nginx", "serve"] = "serve"
    version: Tag | None = Field(
        default=None, description="Overrides the app's pinned image tag (all its containers)."
    )
    image: Image | None = Field(
        default=None, description="The front container's image; required for the web app."
    )
    port: Port | None = Field(
        default=None, description="The front container's HTTP port; required for the web app."
    )
    public: Flag = False
    userspace: Flag = Field(
        default=False, description="Userspace networking for the sidecar (no TUN device)."
    )
    lan_ports: list[Port] = Field(default_factory=list)
    gpu: Flag = False
    reaches: list[Label] = Field(
        default_factory=list, description="Other services this one connects to over the tailnet."
    )

    @model_validator(mode="after")
    def _check_web(self) -> ServiceConfig:
        for key in ("image", "port"):
            if self.app == "web" and getattr(self, key) is None:
                raise KeyPathError(key, "is required for app 'web'")
            if self.app != "web" and getattr(self, key) is not None:
                raise KeyPathError(
                    key, f"is only for app 'web'; app {self.app!r} brings its own (use version)"
                )
        if self.port in RESERVED_PORTS:
            raise KeyPathError(
                "port",
                f"{self.port} is taken in the sidecar's namespace ({RESERVED_PORTS[self.port]})",
            )
        if self.app == "web" and self.version is not None:
            raise KeyPathError("version", "is not for app 'web': pin the tag in image")
        if self.public and not serves_http(self.app):
            raise KeyPathError(
                "public",
                f"Funnel serves HTTPS on ports {', '.join(map(str, FUNNEL_PORTS))} only, and "
                f"{self.app} answers on {', '.join(map(str, listening_ports(self.app)))}",
            )
        if self.proxy == "nginx" and not serves_http(self.app):
            raise KeyPathError("proxy", f"{self.app} does not serve HTTP: it needs proxy serve")
        if self.public and self.proxy != "serve":
            raise KeyPathError("public", "Funnel is served by tailscale serve: use proxy serve")
        if self.userspace and self.reaches:
            raise KeyPathError(
                "userspace",
                "a service that reaches others needs kernel networking: in userspace mode its "
                "app has no route to the tailnet",
            )
        listening = listening_ports(self.app, self.port)
        for index, port in enumerate(self.lan_ports):
            if port not in listening:
                raise KeyPathError(
                    f"lanPorts[{index}]",
                    f"nothing in this service listens on {port} (it listens on "
                    f"{', '.join(map(str, listening))})",
                )
        if len(set(self.lan_ports)) != len(self.lan_ports):
            raise KeyPathError("lanPorts", f"lists a port twice: {self.lan_ports}")
        return self


class HostConfig(Model):
    """``homelab:hosts.<name>``: one Docker host and the services it runs."""

    kind: Literal["wsl2", "linux"] = "linux"
    docker: str = Field(description="Docker endpoint: ssh://user@host, unix:///path or tcp://h:p.")
    lan_address: str | None = Field(
        default=None, description="The host's LAN address, where LAN ports are published."
    )
    gpu: Flag = False
    cert_path: str | None = Field(
        default=None,
        description="Directory with ca.pem, cert.pem and key.pem for a tcp:// endpoint (TLS).",
    )
    dns: list[IPv4] | None = Field(
        default=None, description="Resolvers for the containers; WSL2 hosts get public ones."
    )
    session_recorder: Flag = Field(
        default=False, description="Run the tailnet's SSH session recorder on this host."
    )
    services: dict[Label, ServiceConfig] = Field(default_factory=dict)

    def container_dns(self) -> list[str]:
        """The resolvers the host's containers use: its own setting, or public ones on WSL2."""
        if self.dns is not None:
            return list(self.dns)
        return list(WSL2_DNS) if self.kind == "wsl2" else []

    @model_validator(mode="after")
    def _check_host(self) -> HostConfig:
        endpoint = _DOCKER_URL.fullmatch(self.docker)
        port = endpoint and (endpoint["ssh_port"] or endpoint["tcp_port"])
        if not endpoint or (port and not 1 <= int(port) <= 65535):
            raise KeyPathError(
                "docker",
                f"{self.docker!r} is not a Docker endpoint: expected ssh://user@host, "
                "unix:///path/to/docker.sock or tcp://host:port",
            )
        is_tcp = self.docker.startswith("tcp://")
        if is_tcp and self.cert_path is None:
            raise KeyPathError(
                "certPath",
                "is required with a tcp:// endpoint: Docker's TCP socket must use TLS",
            )
        if not is_tcp and self.cert_path is not None:
            raise KeyPathError("certPath", "is only for tcp:// endpoints")
        if is_tcp and not self.cert_path.startswith("/"):
            # An empty path would turn TLS off; a relative one depends on where pulumi runs.
            raise KeyPathError(
                "certPath",
                f"{self.cert_path!r} is not an absolute path to a directory with ca.pem, "
                "cert.pem and key.pem",
            )
        if self.dns == []:
            raise KeyPathError(
                "dns",
                "lists no resolver: name at least one, or leave dns out for the defaults",
            )
        if self.lan_address is not None:
            expected = "an IPv4 address in a private LAN range (10/8, 172.16/12, 192.168/16)"
            try:
                address = ipaddress.IPv4Network(ipaddress.IPv4Address(self.lan_address))
            except ValueError:
                raise KeyPathError(
                    "lanAddress", f"{self.lan_address!r} is not {expected}"
                ) from None
            if address.subnet_of(TAILNET_RANGE):
                raise KeyPathError(
                    "lanAddress",
                    f"{self.lan_address} lies in the tailnet's range {TAILNET_RANGE}, which "
                    f"Tailscale routes over the tailnet; expected {expected}",
                )
            if not is_rfc1918(address):
                raise KeyPathError("lanAddress", f"{self.lan_address!r} is not {expected}")
        published: dict[int, str] = {}
        for name, service in self.services.items():
            for port in service.lan_ports:
                if port in published:
                    raise KeyPathError(
                        f"services.{name}.lanPorts",
                        f"port {port} is already published on the LAN by {published[port]}",
                    )
                published[port] = name
            if service.gpu and not self.gpu:
                raise KeyPathError(
                    f"services.{name}.gpu", "asks for a GPU but the host sets gpu: false"
                )
            if service.lan_ports and self.lan_address is None:
                raise KeyPathError(
                    f"services.{name}.lanPorts", "needs the host's lanAddress to publish on"
                )
        return self


class RouterConfig(Model):
    """``homelab:aws.router``: the subnet router that advertises the VPC to the tailnet."""

    instance_type: str = Field(default="t4g.nano", description="An arm64 (Graviton) type.")
    exit_node: Flag = False
    direct_udp: Flag = Field(
        default=True, description="Open UDP 41641 for direct tailnet connections."
    )

    @model_validator(mode="after")
    def _check_type(self) -> RouterConfig:
        if not _ARM_INSTANCE.fullmatch(self.instance_type):
            raise KeyPathError(
                "instanceType",
                f"{self.instance_type!r} is not an arm64 (Graviton) instance type such as "
                "t4g.nano: the router runs AWS's arm64 image",
            )
        return self


class WorkerConfig(Model):
    """``homelab:aws.workers.<name>``: one spot GPU worker."""

    workload: Literal["ollama", "fooocus", "whisper"]
    instance_type: str = "g4dn.xlarge"
    max_spot_price: Annotated[float, BeforeValidator(_a_price)] = Field(
        default=0.35, ge=0.001, le=10, allow_inf_nan=False, description="USD per hour."
    )
    models_gib: Number = Field(
        default=20, ge=1, le=16384, description="What the models take in S3, for the estimate."
    )
    state: Literal["running", "stopped"] = "running"
    idle_minutes: Number = Field(default=15, ge=5, le=1440)

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "modelsVolumeGib" in data:
            raise KeyPathError(
                "modelsVolumeGib",
                "workers keep their models in S3 now, not on a volume: remove the key, or "
                "write modelsGib (what the models take, for the cost estimate)",
            )
        return data

    @model_validator(mode="after")
    def _check_type(self) -> WorkerConfig:
        _check_gpu_type(self.instance_type)
        return self


def _check_gpu_type(instance_type: str) -> None:
    family, dot, size = instance_type.partition(".")
    if not dot or not _SIZE.fullmatch(size) or family not in NVIDIA_GPU_FAMILIES:
        raise KeyPathError(
            "instanceType",
            f"{instance_type!r} is not an instance type with an NVIDIA GPU (families: "
            f"{', '.join(NVIDIA_GPU_FAMILIES)})",
        )


class AwsConfig(Model):
    """``homelab:aws``: the VPC, its subnet router and the GPU workers."""

    vpc_cidr: str = "10.60.0.0/16"
    availability_zones: Number = Field(default=2, ge=2, le=6)
    nat_instance: Flag = Field(
        default=False,
        description="Workers in private subnets, reaching the internet through the router.",
    )
    router: RouterConfig = Field(default_factory=RouterConfig)
    workers: dict[Label, WorkerConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_cidr(self) -> AwsConfig:
        expected = "a private IPv4 network from /16 to /24, for example 10.60.0.0/16"
        try:
            network = ipaddress.IPv4Network(self.vpc_cidr, strict=True)
        except ValueError:
            raise KeyPathError("vpcCidr", f"{self.vpc_cidr!r} is not {expected}") from None
        if network.overlaps(TAILNET_RANGE):
            raise KeyPathError(
                "vpcCidr",
                f"{self.vpc_cidr} overlaps the tailnet's range {TAILNET_RANGE}: the router could "
                f"not tell VPC addresses from tailnet ones; expected {expected}",
            )
        if not is_rfc1918(network) or not 16 <= network.prefixlen <= 24:
            raise KeyPathError("vpcCidr", f"{self.vpc_cidr!r} is not {expected}")
        if str(network) != self.vpc_cidr:
            raise KeyPathError("vpcCidr", f"{self.vpc_cidr!r} must be written as {network}")
        return self

    @model_validator(mode="after")
    def _check_worker_names(self) -> AwsConfig:
        for name in self.workers:
            if len(name) > WORKER_NAME_MAX:
                raise KeyPathError(
                    f"workers.{name}",
                    f"a worker's name has at most {WORKER_NAME_MAX} characters (it leads the "
                    f"names of its S3 bucket and IAM role); this one has {len(name)}",
                )
            reserved = next((p for p in BUCKET_RESERVED_PREFIXES if name.startswith(p)), None)
            if reserved:
                raise KeyPathError(
                    f"workers.{name}",
                    f"a worker's name cannot start with {reserved}, as S3 bucket names cannot",
                )
        return self


class SecretsConfig(Model):
    """Secret config keys, each set with ``pulumi config set --secret``."""

    immich_database_password: SecretStr | None = None


class HomelabConfig(Model):
    """The whole stack: one tailnet, the Docker hosts, and optionally AWS."""

    tailnet: TailnetConfig
    hosts: dict[Label, HostConfig] = Field(default_factory=dict)
    aws: AwsConfig | None = None
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)

    def each_service(self) -> Iterator[tuple[str, str, ServiceConfig]]:
        """``(key path, name, service)`` for every service on every host."""
        for host_name, host in self.hosts.items():
            for name, service in host.services.items():
                yield f"hosts.{host_name}.services.{name}", name, service

    @model_validator(mode="after")
    def _check_names(self) -> HomelabConfig:
        recorders = [name for name, host in self.hosts.items() if host.session_recorder]
        if len(recorders) > 1:
            raise KeyPathError(
                f"hosts.{recorders[1]}.sessionRecorder",
                f"hosts.{recorders[0]} already runs the session recorder; the tailnet has one",
            )

        admins = {admin.lower() for admin in self.tailnet.admins}
        for index, member in enumerate(self.tailnet.members):
            # Tailscale compares logins without case.
            if member.lower() in admins:
                raise KeyPathError(
                    f"tailnet.members[{index}]",
                    f"{member} is already an admin; a login is one or the other",
                )
        if any(True for _ in self.each_service()):
            for key, enabled in (
                ("magicDns", self.tailnet.magic_dns),
                ("httpsCertificates", self.tailnet.https_certificates),
            ):
                if not enabled:
                    raise KeyPathError(
                        f"tailnet.{key}",
                        "must stay on: services are reached at https://<name>.<tailnet> with "
                        "certificates issued for that name",
                    )

        # Names whose containers and volumes would collide: p-model's cache and p's
        # model-cache are both p-model-cache.
        service_names = sorted(name for _, name, _ in self.each_service())
        for path, name, _ in self.each_service():
            for other in service_names:
                if other != name and name.startswith(f"{other}-"):
                    raise KeyPathError(
                        path,
                        f"{name!r} extends the service name {other!r} with a hyphen; their "
                        "containers and volumes could share names",
                    )

        addresses: dict[str, str] = {}
        for host_name, host in self.hosts.items():
            if host.lan_address is None:
                continue
            if host.lan_address in addresses:
                raise KeyPathError(
                    f"hosts.{host_name}.lanAddress",
                    f"{host.lan_address} is already hosts.{addresses[host.lan_address]}'s",
                )
            addresses[host.lan_address] = host_name

        # Every device joins the tailnet under its own name; MagicDNS needs them unique.
        devices = [(name, f"hosts.{name} (the host's own name)") for name in self.hosts]
        devices += [(name, path) for path, name, _ in self.each_service()]
        if recorders:
            devices.insert(
                0, (RECORDER_NAME, f"hosts.{recorders[0]}.sessionRecorder (the recorder's name)")
            )
        if self.aws is not None:
            devices.insert(0, (ROUTER_NAME, "aws.router (the subnet router's own name)"))
            devices += [(name, f"aws.workers.{name}") for name in self.aws.workers]
        seen: dict[str, str] = {}
        for name, path in devices:
            if name in seen:
                raise KeyPathError(path, f"tailnet name {name!r} is already used by {seen[name]}")
            seen[name] = path

        if self.aws is not None:
            # Packets for the VPC leave through the router: a LAN inside it would be cut off.
            vpc = ipaddress.IPv4Network(self.aws.vpc_cidr)
            for host_name, host in self.hosts.items():
                if host.lan_address and ipaddress.IPv4Address(host.lan_address) in vpc:
                    raise KeyPathError(
                        f"hosts.{host_name}.lanAddress",
                        f"{host.lan_address} lies inside aws.vpcCidr {vpc}: the VPC and the LAN "
                        "must not overlap",
                    )

        password = self.secrets.immich_database_password
        for path, _, service in self.each_service():
            if service.app == "immich" and (
                password is None or len(password.get_secret_value()) < 16
            ):
                raise KeyPathError(
                    "immichDatabasePassword",
                    f"needs a secret of at least 16 characters for {path} (set it with "
                    "pulumi config set --secret immichDatabasePassword)",
                )

        services = {name for _, name, _ in self.each_service()}
        for path, name, service in self.each_service():
            for index, target in enumerate(service.reaches):
                if target == name:
                    raise KeyPathError(
                        f"{path}.reaches[{index}]", "a service does not need to reach itself"
                    )
                if target not in services:
                    raise KeyPathError(
                        f"{path}.reaches[{index}]", f"no service is named {target!r}"
                    )
        return self
