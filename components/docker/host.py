"""The DockerHost component: a Docker engine and the sidecar-proxied services it runs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import pulumi
import pulumi_docker as docker

from components.docker.apps import (
    NGINX_IMAGE,
    RECORDER_HOSTNAME,
    RECORDER_IMAGE,
    TAILSCALE_IMAGE,
)
from components.docker.service import LOG_OPTIONS, SidecarService, SidecarServiceArgs

RECORDER_DATA = "/data"


@dataclass(frozen=True)
class HostedService:
    """A service to run on the host: its name and its args without the pulled images."""

    name: str
    args: SidecarServiceArgs


@dataclass(frozen=True)
class DockerHostArgs:
    """Inputs of :class:`DockerHost`."""

    docker_url: str
    """ssh://user@host (through the tailnet), unix:///path/to/docker.sock or tcp://host:port."""
    kind: Literal["wsl2", "linux"]
    services: Sequence[HostedService]
    dns: Sequence[str] = ()
    """Resolvers for the host's containers, instead of the host's own."""
    cert_path: str | None = None
    """For tcp:// endpoints: the directory with the TLS client's ca.pem, cert.pem and key.pem."""
    recorder_auth_key: pulumi.Input[str] | None = None
    """Run the tailnet's SSH session recorder here, joining with this secret key."""


class DockerHost(pulumi.ComponentResource):
    """One Docker engine: its provider, the images it pulls, and its services."""

    services: dict[str, SidecarService]
    """Service name -> the service component."""
    urls: pulumi.Output[dict[str, str]]
    """Service name -> where it answers on the tailnet."""

    def __init__(
        self, name: str, args: DockerHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("homelab:docker:DockerHost", name, None, opts)

        provider = docker.Provider(
            f"{name}-docker",
            host=args.docker_url,
            cert_path=args.cert_path,
            # Keep the SSH session alive across long image pulls over the tailnet.
            ssh_opts=["-o", "ServerAliveInterval=30", "-o", "ServerAliveCountMax=4"]
            if args.docker_url.startswith("ssh://")
            else None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_host = pulumi.ResourceOptions(parent=self, provider=provider)

        # Each image is pulled once per host, whatever number of services run it. Containers
        # reference the pulled image's id, so an unchanged stack plans no replacement.
        needed = {TAILSCALE_IMAGE} if args.services else set()
        if args.recorder_auth_key is not None:
            needed.add(RECORDER_IMAGE)
        for service in args.services:
            needed.update(spec.image for spec in service.args.app.containers)
            if service.args.proxy == "nginx":
                needed.add(NGINX_IMAGE)
        images = {
            reference: docker.RemoteImage(
                f"{name}-image-{_image_slug(reference)}",
                name=reference,
                keep_locally=True,
                opts=on_host,
            ).image_id
            for reference in sorted(needed)
        }

        self.services = {}
        for service in args.services:
            self.services[service.name] = SidecarService(
                service.name,
                replace(service.args, images=images, host_kind=args.kind, dns=args.dns),
                opts=pulumi.ResourceOptions(parent=self, providers={"docker": provider}),
            )

        if args.recorder_auth_key is not None:
            self._session_recorder(
                name, args.recorder_auth_key, images[RECORDER_IMAGE], args.dns, on_host
            )

        self.urls = pulumi.Output.from_input(
            {service_name: svc.url for service_name, svc in self.services.items()}
        )
        self.register_outputs({"urls": self.urls})

    def _session_recorder(
        self,
        name: str,
        auth_key: pulumi.Input[str],
        image: pulumi.Input[str],
        dns: Sequence[str],
        on_host: pulumi.ResourceOptions,
    ) -> None:
        # Recordings are evidence: their volume is protected and outlives the stack. The node's
        # state lives beside them, so a recreated container is the same recorder.
        recordings = docker.Volume(
            f"{name}-recorder-data",
            # An underscore, which service names cannot have, so no service volume takes it.
            name="session_recordings",
            opts=pulumi.ResourceOptions.merge(
                on_host, pulumi.ResourceOptions(protect=True, retain_on_delete=True)
            ),
        )

        docker.Container(
            f"{name}-recorder",
            name="recorder",
            image=image,
            hostname=RECORDER_HOSTNAME,
            dns=list(dns) or None,
            envs=[pulumi.Output.concat("TS_AUTHKEY=", auth_key)],
            command=[
                "/tsrecorder",
                f"--dst={RECORDER_DATA}/recordings",
                f"--statedir={RECORDER_DATA}/state",
                f"--hostname={RECORDER_HOSTNAME}",
                "--ui",
            ],
            mounts=[{"type": "volume", "source": recordings.name, "target": RECORDER_DATA}],
            restart="unless-stopped",
            log_driver="json-file",
            log_opts=LOG_OPTIONS,
            # The key is only read on the first join; the node state on the volume does the
            # rest. A key renewed after expiry must not recreate the recorder every 90 days.
            opts=pulumi.ResourceOptions.merge(
                on_host, pulumi.ResourceOptions(ignore_changes=["envs"])
            ),
        )


def _image_slug(reference: str) -> str:
    """A stable, unique resource-name fragment for an image reference.

    The readable part drops the registry; the short hash of the whole reference keeps apart
    references that differ only by registry, digest or punctuation.
    """
    parts = reference.split("@", 1)[0].split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0]):
        parts = parts[1:]
    readable = re.sub(r"[^a-z0-9]+", "-", "/".join(parts).lower()).strip("-")
    return f"{readable}-{hashlib.sha256(reference.encode()).hexdigest()[:8]}"
