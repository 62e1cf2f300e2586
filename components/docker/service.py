"""The SidecarService component: one app behind its own Tailscale node and TLS proxy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_docker as docker

from components.docker.apps import NGINX_IMAGE, TAILSCALE_IMAGE, AppSpec, ContainerSpec
from components.docker.nginx import (
    CERT_DIR,
    render_cert_renewer_script,
    render_nginx_config,
    render_nginx_entrypoint,
)
from components.docker.serve import dump_serve_config, render_serve_config

TS_STATE_DIR = "/var/lib/tailscale"
TS_SOCKET_DIR = "/var/run/tailscale"
TS_HEALTH_ADDR = "127.0.0.1:9002"
SERVE_CONFIG_PATH = "/config/serve.json"
NGINX_CONF_PATH = "/etc/nginx/nginx.conf"
LOG_OPTIONS = {"max-size": "10m", "max-file": "3"}
"""json-file log rotation for every container: at most 30 MB of logs each."""
TUN_DEVICE = {"host_path": "/dev/net/tun", "container_path": "/dev/net/tun", "permissions": "rwm"}
WSL2_MTU = "1280"
"""WSL2's virtual NIC plus the tailnet's WireGuard overhead leave less than Docker's 1500."""


@dataclass(frozen=True)
class SidecarServiceArgs:
    """Inputs of :class:`SidecarService`."""

    app: AppSpec
    domain: str
    """The tailnet's MagicDNS suffix; the service is at https://<name>.<domain>."""
    join_key: pulumi.Input[str]
    tags: Sequence[str]
    images: Mapping[str, pulumi.Input[str]]
    """Image reference -> pulled image id, for every image this service runs."""
    proxy: Literal["nginx", "serve"] = "serve"
    public: bool = False
    lan_address: str | None = None
    lan_ports: Sequence[int] = ()
    gpu: bool = False
    host_kind: Literal["wsl2", "linux"] = "linux"
    userspace: bool = False
    """Userspace networking: no TUN device or NET_ADMIN, for hosts that cannot give them."""
    dns: Sequence[str] = ()
    """Resolvers for the service's containers instead of the host's (WSL2's is unreliable)."""
    tailnet_dns: bool = False
    """Resolve tailnet names (MagicDNS) in the namespace, for a service that reaches others."""
    secret_env: Mapping[str, Mapping[str, pulumi.Input[str]]] = field(default_factory=dict)
    """Container role -> environment variable -> secret value."""


class SidecarService(pulumi.ComponentResource):
    """An app whose front container lives in a Tailscale sidecar's network namespace."""

    url: pulumi.Output[str]
    """Where the service answers on the tailnet."""
    sidecar_id: pulumi.Output[str]
    """The sidecar container's id."""

    def __init__(
        self, name: str, args: SidecarServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("homelab:docker:SidecarService", name, None, opts)
        self._name = name
        self._args = args
        fqdn = f"{name}.{args.domain}"

        network_options = {"com.docker.network.driver.mtu": WSL2_MTU}
        # Named apart from the service: Docker predefines networks called bridge, host and none.
        network = docker.Network(
            f"{name}-network",
            name=f"{name}-network",
            driver="bridge",
            options=network_options if args.host_kind == "wsl2" else None,
            opts=pulumi.ResourceOptions(parent=self),
        )

        # The node's identity lives here: keeping it keeps the name, address and certificate.
        state = self._volume("tailscale-state", data=True)
        socket = self._volume("tailscale-socket", data=False)

        uploads = []
        envs: list[pulumi.Input[str]] = [
            pulumi.Output.concat("TS_AUTHKEY=", args.join_key),
            f"TS_HOSTNAME={name}",
            f"TS_STATE_DIR={TS_STATE_DIR}",
            f"TS_SOCKET={TS_SOCKET_DIR}/tailscaled.sock",
            f"TS_USERSPACE={'true' if args.userspace else 'false'}",
            f"TS_EXTRA_ARGS=--advertise-tags={','.join(args.tags)}",
            "TS_ENABLE_HEALTH_CHECK=true",
            f"TS_LOCAL_ADDR_PORT={TS_HEALTH_ADDR}",
            # With MagicDNS the app reaches other services at <name>.<tailnet>; names Docker
            # answers (a back end's role) are still resolved, through the original resolvers.
            f"TS_ACCEPT_DNS={'true' if args.tailnet_dns else 'false'}",
        ]
        if args.proxy == "serve":
            serve = render_serve_config(
                http_port=args.app.port if args.app.http else None,
                tcp_ports=args.app.tcp_ports,
                tls_tcp_ports=args.app.tls_tcp_ports,
                public=args.public,
            )
            envs.append(f"TS_SERVE_CONFIG={SERVE_CONFIG_PATH}")
            uploads.append({"file": SERVE_CONFIG_PATH, "content": dump_serve_config(serve)})

        sidecar = docker.Container(
            f"{name}-tailscale",
            name=f"{name}-tailscale",
            image=args.images[TAILSCALE_IMAGE],
            hostname=name,
            envs=envs,
            uploads=uploads,
            # Kernel networking: a real TUN device gives the app the node's tailnet address.
            devices=None if args.userspace else [TUN_DEVICE],
            capabilities=None if args.userspace else {"adds": ["NET_ADMIN"]},
            # Containers in this network namespace share its resolv.conf.
            dns=list(args.dns) or None,
            mounts=[
                _mount(state, TS_STATE_DIR),
                _mount(socket, TS_SOCKET_DIR),
            ],
            ports=[
                {"internal": port, "external": port, "ip": args.lan_address, "protocol": "tcp"}
                for port in args.lan_ports
            ],
            networks_advanced=[{"name": network.name}],
            healthcheck={
                "tests": [
                    "CMD",
                    "wget",
                    "-q",
                    "-O",
                    "/dev/null",
                    f"http://{TS_HEALTH_ADDR}/healthz",
                ],
                "interval": "30s",
                "timeout": "5s",
                "retries": 3,
                "start_period": "20s",
            },
            restart="unless-stopped",
            log_driver="json-file",
            log_opts=LOG_OPTIONS,
            opts=pulumi.ResourceOptions(parent=self),
        )
        namespace = sidecar.id.apply(lambda container_id: f"container:{container_id}")

        started: dict[str, docker.Container] = {}
        for spec in args.app.others:
            started[spec.role] = self._container(
                spec,
                networks_advanced=[{"name": network.name, "aliases": [spec.role]}],
                dns=list(args.dns) or None,
                depends_on=[started[role] for role in spec.after if role in started],
            )

        front = args.app.front
        self._container(
            front,
            network_mode=namespace,
            gpus="all" if args.gpu else None,
            depends_on=[started[role] for role in front.after if role in started],
        )

        if args.proxy == "nginx":
            certs = self._volume("certs", data=False)
            self._child_container(
                "cert-renewer",
                image=args.images[TAILSCALE_IMAGE],
                entrypoints=["/bin/sh", "-c", render_cert_renewer_script(fqdn)],
                network_mode=namespace,
                mounts=[_mount(socket, TS_SOCKET_DIR), _mount(certs, CERT_DIR)],
            )
            self._child_container(
                "nginx",
                image=args.images[NGINX_IMAGE],
                entrypoints=["/bin/sh", "-c", render_nginx_entrypoint(fqdn)],
                network_mode=namespace,
                mounts=[_mount(certs, CERT_DIR, read_only=True)],
                uploads=[
                    {
                        "file": NGINX_CONF_PATH,
                        "content": render_nginx_config(
                            fqdn=fqdn, upstream_port=args.app.port, needs=args.app.proxy
                        ),
                    }
                ],
            )

        self.url = pulumi.Output.from_input(f"https://{fqdn}" if args.app.http else f"tcp://{fqdn}")
        self.sidecar_id = sidecar.id
        self.register_outputs({"url": self.url, "sidecarId": self.sidecar_id})

    def _volume(self, role: str, *, data: bool) -> docker.Volume:
        # Data volumes outlive the stack: protected against deletes, kept if removed from code.
        return docker.Volume(
            f"{self._name}-volume-{role}",
            name=f"{self._name}-{role}",
            opts=pulumi.ResourceOptions(parent=self, protect=data, retain_on_delete=data),
        )

    def _container(self, spec: ContainerSpec, **extra: Any) -> docker.Container:
        mounts = [
            _mount(self._volume(role, data=True), path) for role, path in spec.volumes.items()
        ]
        envs: list[pulumi.Input[str]] = [
            f"{key}={value}" for key, value in sorted(spec.env.items())
        ]
        for key, value in sorted(self._args.secret_env.get(spec.role, {}).items()):
            envs.append(pulumi.Output.concat(f"{key}=", value))
        healthcheck = None
        wait = None
        if spec.healthcheck is not None:
            # Wait until healthy, so the containers that start after this one find it ready.
            wait = True
            check = spec.healthcheck
            healthcheck = {
                "tests": list(check.test),
                "interval": check.interval,
                "timeout": check.timeout,
                "retries": check.retries,
                "start_period": check.start_period,
            }
        return self._child_container(
            spec.role,
            image=self._args.images[spec.image],
            envs=envs,
            mounts=mounts,
            command=list(spec.command) or None,
            uploads=[
                {"file": path, "content": content} for path, content in sorted(spec.files.items())
            ],
            healthcheck=healthcheck,
            wait=wait,
            **extra,
        )

    def _child_container(
        self, role: str, *, depends_on: Sequence[pulumi.Resource] = (), **kwargs: Any
    ) -> docker.Container:
        return docker.Container(
            f"{self._name}-{role}",
            name=f"{self._name}-{role}",
            restart="unless-stopped",
            log_driver="json-file",
            log_opts=LOG_OPTIONS,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
            **kwargs,
        )


def _mount(volume: docker.Volume, target: str, *, read_only: bool = False) -> dict[str, Any]:
    return {"type": "volume", "source": volume.name, "target": target, "read_only": read_only}
