"""The apps a service can run: their containers, pinned images, data and proxy needs.

Plain data, no Pulumi. A service's config names an app; :func:`app_spec` turns the name (plus the
config's overrides) into the containers :class:`~components.docker.service.SidecarService` builds.
Image tags are pinned here and bumped by a reviewed change; ``version`` in config overrides them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

TAILSCALE_IMAGE = "tailscale/tailscale:v1.88.3"
NGINX_IMAGE = "nginx:1.28.0-alpine"
RECORDER_IMAGE = "tailscale/tsrecorder:v1.88.3"
RECORDER_HOSTNAME = "recorder"
"""The SSH session recorder's name on the tailnet."""


@dataclass(frozen=True)
class ProxyNeeds:
    """What an app asks of its TLS proxy."""

    websockets: bool = False
    max_body_size: str = "10m"
    read_timeout_seconds: int = 60
    forwarded_headers: bool = True


@dataclass(frozen=True)
class Healthcheck:
    """A container health check, run inside the container."""

    test: tuple[str, ...]
    interval: str = "30s"
    timeout: str = "5s"
    retries: int = 3
    start_period: str = "30s"


@dataclass(frozen=True)
class ContainerSpec:
    """One container of an app. ``volumes`` maps a volume role to its mount path."""

    role: str
    image: str
    env: Mapping[str, str] = field(default_factory=dict)
    volumes: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    """Path -> content of files written into the container before it starts."""
    healthcheck: Healthcheck | None = None
    after: tuple[str, ...] = ()
    """Roles that must be healthy-started before this one (start order)."""
    versioned: bool = True
    """Whether the service's ``version`` override applies to this container's tag."""


@dataclass(frozen=True)
class AppSpec:
    """An app: the front container is served through the sidecar; others stay private."""

    name: str
    front: ContainerSpec
    port: int
    """The front container's HTTP port, reached by the proxy on 127.0.0.1."""
    others: tuple[ContainerSpec, ...] = ()
    tcp_ports: tuple[int, ...] = ()
    """Plain TCP ports served on the tailnet as they are (MQTT)."""
    tls_tcp_ports: Mapping[int, int] = field(default_factory=dict)
    """Tailnet port -> local port, TLS terminated by the sidecar (MQTT over TLS)."""
    http: bool = True
    proxy: ProxyNeeds = field(default_factory=ProxyNeeds)

    @property
    def containers(self) -> tuple[ContainerSpec, ...]:
        return (*self.others, self.front)


def _retag(image: str, version: str) -> str:
    repository = image.rsplit("@", 1)[0].rsplit(":", 1)[0]
    return f"{repository}:{version}"


MOSQUITTO_CONF = "/etc/homelab/mosquitto.conf"
MOSQUITTO_CONFIG = """\
listener 1883
allow_anonymous true
persistence true
persistence_location /mosquitto/data/
log_dest stdout
"""

_IMMICH_DB = {
    "DB_HOSTNAME": "database",
    "DB_USERNAME": "immich",
    "DB_DATABASE_NAME": "immich",
    "REDIS_HOSTNAME": "redis",
}

_APPS: dict[str, AppSpec] = {
    "immich": AppSpec(
        name="immich",
        port=2283,
        front=ContainerSpec(
            role="server",
            image="ghcr.io/immich-app/immich-server:v2.0.1",
            env={**_IMMICH_DB, "IMMICH_MACHINE_LEARNING_URL": "http://machine-learning:3003"},
            volumes={"library": "/data"},
            after=("database", "redis"),
        ),
        others=(
            ContainerSpec(
                role="machine-learning",
                image="ghcr.io/immich-app/immich-machine-learning:v2.0.1",
                volumes={"model-cache": "/cache"},
            ),
            ContainerSpec(
                role="database",
                image="ghcr.io/immich-app/postgres:14-vectorchord0.4.3-pgvectors0.2.0",
                env={
                    "POSTGRES_USER": "immich",
                    "POSTGRES_DB": "immich",
                    "POSTGRES_INITDB_ARGS": "--data-checksums",
                },
                volumes={"database": "/var/lib/postgresql/data"},
                healthcheck=Healthcheck(test=("CMD-SHELL", "pg_isready -U immich -d immich")),
                versioned=False,
            ),
            ContainerSpec(
                role="redis",
                image="docker.io/valkey/valkey:8.1-bookworm",
                healthcheck=Healthcheck(test=("CMD-SHELL", "valkey-cli ping || exit 1")),
                versioned=False,
            ),
        ),
        # Photo and video uploads are large and slow; the web app holds a websocket open.
        proxy=ProxyNeeds(websockets=True, max_body_size="50000m", read_timeout_seconds=600),
    ),
    "home-assistant": AppSpec(
        name="home-assistant",
        port=8123,
        front=ContainerSpec(
            role="app",
            image="ghcr.io/home-assistant/home-assistant:2025.10.4",
            volumes={"config": "/config"},
        ),
        proxy=ProxyNeeds(websockets=True, forwarded_headers=True),
    ),
    "jellyfin": AppSpec(
        name="jellyfin",
        port=8096,
        front=ContainerSpec(
            role="app",
            image="docker.io/jellyfin/jellyfin:10.10.7",
            volumes={"config": "/config", "cache": "/cache", "media": "/media"},
        ),
        proxy=ProxyNeeds(websockets=True, read_timeout_seconds=300),
    ),
    "mosquitto": AppSpec(
        name="mosquitto",
        port=1883,
        front=ContainerSpec(
            role="broker",
            image="docker.io/eclipse-mosquitto:2.0.22",
            volumes={"data": "/mosquitto/data"},
            # The image's default listens on localhost only; LAN devices need every interface.
            command=("mosquitto", "-c", MOSQUITTO_CONF),
            files={MOSQUITTO_CONF: MOSQUITTO_CONFIG},
        ),
        tcp_ports=(1883,),
        # MQTT over TLS for phones and laptops, with the node's own certificate.
        tls_tcp_ports={8883: 1883},
        http=False,
    ),
}


def app_spec(
    app: str, *, version: str | None = None, image: str | None = None, port: int | None = None
) -> AppSpec:
    """The app's spec with the service config's overrides applied."""
    if app == "web":
        if image is None or port is None:
            raise ValueError("app 'web' needs an image and a port")
        return AppSpec(
            name="web",
            port=port,
            front=ContainerSpec(role="app", image=image, volumes={"data": "/data"}),
        )
    spec = _APPS[app]
    front = spec.front
    others = spec.others
    if version is not None:
        front = replace(front, image=_retag(front.image, version))
        others = tuple(
            replace(c, image=_retag(c.image, version)) if c.versioned else c for c in others
        )
    if image is not None:
        front = replace(front, image=image)
    return replace(spec, front=front, others=others)


def listening_ports(app: str, port: int | None = None) -> tuple[int, ...]:
    """The ports the app's front container listens on (``port`` for the web app)."""
    if app == "web":
        return (port,) if port is not None else ()
    spec = _APPS[app]
    return tuple(sorted({*spec.tcp_ports, *((spec.port,) if spec.http else ())}))


def serves_http(app: str) -> bool:
    """Whether the app's front container speaks HTTP (the web app always does)."""
    return app == "web" or _APPS[app].http


APPS = (*_APPS, "web")
"""Every app name a service config may use."""
