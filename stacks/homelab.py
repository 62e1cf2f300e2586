"""The one place where the home lab's components are wired together."""

from __future__ import annotations

import re

import pulumi
import pulumi_aws as aws

from components.aws.lookups import look_up
from components.aws.router import SubnetRouter, SubnetRouterArgs, resolver_address
from components.aws.worker import GpuWorker, GpuWorkerArgs
from components.docker.apps import app_spec
from components.docker.host import DockerHost, DockerHostArgs, HostedService
from components.docker.service import SidecarServiceArgs
from components.tailnet.policy import (
    People,
    PolicyError,
    PolicyPiece,
    dump_policy,
    render_policy,
)
from components.tailnet.tailnet import JoinRole, Tailnet, TailnetArgs
from stacks.config import ROUTER_NAME, HomelabConfig, ServiceConfig
from stacks.load import ConfigError, load_config

AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
SERVICE_TAG = "tag:service"
FUNNEL_TAG = "tag:funnel"
ROUTER_TAG = "tag:subnet-router"
WORKER_TAG = "tag:gpu-worker"

ROLES = {
    "service": JoinRole("service", (SERVICE_TAG,)),
    "public-service": JoinRole("public-service", (SERVICE_TAG, FUNNEL_TAG)),
    "router": JoinRole("router", (ROUTER_TAG,)),
    "worker": JoinRole("worker", (WORKER_TAG,)),
}


def service_role(service: ServiceConfig) -> str:
    """The join role of a service: public ones carry the Funnel tag as well."""
    return "public-service" if service.public else "service"


def service_ports(service: ServiceConfig) -> tuple[int, ...]:
    """The ports a service answers on the tailnet."""
    spec = app_spec(service.app, image=service.image, port=service.port)
    return ((443,) if spec.http else ()) + spec.tcp_ports


def policy_pieces(config: HomelabConfig) -> list[PolicyPiece]:
    """What each component of the stack needs from the tailnet policy."""
    services = {name: service for _, name, service in config.each_service()}
    pieces = [
        PolicyPiece(
            owner=f"service {name}",
            tags=ROLES[service_role(service)].tags,
            ports=service_ports(service),
            reaches=tuple(
                (SERVICE_TAG, port)
                for target in service.reaches
                for port in service_ports(services[target])
            ),
            funnel=service.public,
        )
        for name, service in services.items()
    ]
    if config.aws is not None:
        pieces.append(
            PolicyPiece(
                owner="subnet router",
                tags=(ROUTER_TAG,),
                routes=(config.aws.vpc_cidr,),
                exit_node=config.aws.router.exit_node,
                ssh=True,
            )
        )
        if config.aws.workers:
            pieces.append(
                PolicyPiece(owner="gpu workers", tags=(WORKER_TAG,), ports=(443,), ssh=True)
            )
    return pieces


def join_roles(config: HomelabConfig) -> list[JoinRole]:
    """The device roles the stack has: Tailscale refuses keys for tags no policy owns."""
    needed = {service_role(service) for _, _, service in config.each_service()}
    if config.aws is not None:
        needed.add("router")
        if config.aws.workers:
            needed.add("worker")
    return [role for name, role in ROLES.items() if name in needed]


def split_dns(config: HomelabConfig, region: str) -> dict[str, list[str]]:
    """The VPC's private DNS names, answered by its resolver through the subnet router."""
    if config.aws is None:
        return {}
    internal = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return {internal: [resolver_address(config.aws.vpc_cidr)]}


def build() -> None:
    """Read the config, build every component, and export the stack's outputs."""
    config = load_config()
    region = aws.config.region if config.aws is not None else None
    if config.aws is not None and not region:
        raise ConfigError("config key aws:region: is required when homelab:aws is set")
    if region is not None and not AWS_REGION.fullmatch(region):
        raise ConfigError(
            f"config key aws:region: {region!r} is not an AWS region name, for example eu-central-1"
        )
    lookups = None
    if config.aws is not None:
        lookups = look_up(gpu=bool(config.aws.workers))
        wanted = config.aws.availability_zones
        if len(lookups.zones) < wanted:
            raise ConfigError(
                f"config key aws.availabilityZones: {wanted} zones asked for, but {region} has "
                f"{len(lookups.zones)} available ({', '.join(lookups.zones)})"
            )

    try:
        policy = render_policy(
            People(admins=config.tailnet.admins, members=config.tailnet.members),
            policy_pieces(config),
        )
    except PolicyError as error:
        raise ConfigError(f"config key tailnet: the tailnet policy is invalid: {error}") from None

    tailnet = Tailnet(
        "tailnet",
        TailnetArgs(
            policy=dump_policy(policy),
            roles=join_roles(config),
            magic_dns=config.tailnet.magic_dns,
            https_certificates=config.tailnet.https_certificates,
            device_approval=config.tailnet.device_approval,
            key_expiry_days=config.tailnet.key_expiry_days,
            join_key_expiry_days=config.tailnet.join_key_expiry_days,
            split_dns=split_dns(config, region or ""),
        ),
    )

    urls: dict[str, pulumi.Input[str]] = {}
    password = config.secrets.immich_database_password
    for host_name, host in config.hosts.items():
        hosted = []
        for name, service in host.services.items():
            spec = app_spec(
                service.app, version=service.version, image=service.image, port=service.port
            )
            secret_env = {}
            if service.app == "immich" and password is not None:
                secret = pulumi.Output.secret(password.get_secret_value())
                secret_env = {
                    "server": {"DB_PASSWORD": secret},
                    "database": {"POSTGRES_PASSWORD": secret},
                }
            role = service_role(service)
            hosted.append(
                HostedService(
                    name,
                    SidecarServiceArgs(
                        app=spec,
                        domain=config.tailnet.domain,
                        join_key=tailnet.join_keys[role],
                        tags=ROLES[role].tags,
                        images={},
                        proxy=service.proxy,
                        public=service.public,
                        lan_address=host.lan_address,
                        lan_ports=service.lan_ports,
                        gpu=service.gpu,
                        secret_env=secret_env,
                    ),
                )
            )
        docker_host = DockerHost(
            host_name,
            DockerHostArgs(docker_url=host.docker, kind=host.kind, services=hosted),
        )
        urls.update({name: svc.url for name, svc in docker_host.services.items()})

    if config.aws is not None and lookups is not None:
        router = SubnetRouter(
            ROUTER_NAME,
            SubnetRouterArgs(
                vpc_cidr=config.aws.vpc_cidr,
                zones=lookups.zones[: config.aws.availability_zones],
                image=lookups.router_image,
                join_key=tailnet.join_keys["router"],
                tags=ROLES["router"].tags,
                region=region,
                instance_type=config.aws.router.instance_type,
                exit_node=config.aws.router.exit_node,
                direct_udp=config.aws.router.direct_udp,
            ),
        )
        for index, (name, worker) in enumerate(config.aws.workers.items()):
            # Spread workers across zones: spot capacity differs from zone to zone.
            zone_index = index % config.aws.availability_zones
            gpu_worker = GpuWorker(
                name,
                GpuWorkerArgs(
                    workload=worker.workload,
                    image=lookups.gpu_image,
                    subnet_id=router.subnet_ids.apply(lambda ids, i=zone_index: ids[i]),
                    zone=lookups.zones[zone_index],
                    security_group_id=router.security_group_id,
                    join_key=tailnet.join_keys["worker"],
                    tags=ROLES["worker"].tags,
                    region=region,
                    domain=config.tailnet.domain,
                    instance_type=worker.instance_type,
                    max_spot_price=worker.max_spot_price,
                    models_volume_gib=worker.models_volume_gib,
                ),
            )
            urls[name] = gpu_worker.url
        pulumi.export("vpcId", router.vpc_id)
        pulumi.export("vpcCidr", config.aws.vpc_cidr)
        pulumi.export("vpcResolver", router.resolver)
        pulumi.export("routerHostname", router.hostname)

    pulumi.export("tailnetDomain", config.tailnet.domain)
    pulumi.export("tailnetPolicy", tailnet.policy)
    pulumi.export("urls", urls)
