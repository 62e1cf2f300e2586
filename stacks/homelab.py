"""The one place where the home lab's components are wired together."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.aws.costs import as_output, nat_gateway_cost, price_date
from components.aws.lookups import AwsLookups, look_up
from components.aws.router import SubnetRouter, SubnetRouterArgs, resolver_address
from components.aws.worker import GpuWorker, GpuWorkerArgs
from components.docker.apps import app_spec
from components.docker.host import DockerHost, DockerHostArgs, HostedService
from components.docker.service import SidecarServiceArgs
from components.tailnet.policy import (
    RECORDER_TAG,
    People,
    PolicyError,
    PolicyPiece,
    Rule,
    dump_policy,
    render_policy,
)
from components.tailnet.tailnet import Identity, Tailnet, TailnetArgs
from stacks.config import RECORDER_NAME, ROUTER_NAME, AwsConfig, HomelabConfig, ServiceConfig
from stacks.load import ConfigError, load_config

AWS_REGIONS = frozenset(region.value for region in aws.Region)
"""The regions the AWS provider knows."""
ROUTER_TAG = "tag:subnet-router"
WORKER_TAG = "tag:gpu-worker"
RECORDER_PORT = 80
"""SSH servers send their recordings to the recorder on this port, over the tailnet."""


def service_tag(name: str) -> str:
    """Each service carries a tag of its own, so access is granted service by service."""
    return f"tag:svc-{name}"


def service_ports(service: ServiceConfig) -> tuple[int, ...]:
    """The ports a service answers on the tailnet."""
    spec = app_spec(service.app, image=service.image, port=service.port)
    return ((443,) if spec.http else ()) + spec.tcp_ports + tuple(spec.tls_tcp_ports)


def has_recorder(config: HomelabConfig) -> bool:
    return any(host.session_recorder for host in config.hosts.values())


def policy_pieces(config: HomelabConfig) -> list[PolicyPiece]:
    """What each device of the stack needs from the tailnet policy."""
    services = {name: service for _, name, service in config.each_service()}
    pieces = [
        PolicyPiece(
            owner=f"service {name}",
            tags=(service_tag(name),),
            ports=service_ports(service),
            reaches=tuple(
                (service_tag(target), port)
                for target in service.reaches
                for port in service_ports(services[target])
            ),
            funnel=service.public,
        )
        for name, service in services.items()
    ]
    # Tailscale SSH servers upload each session to the recorder as it happens.
    to_recorder: tuple[tuple[str, int], ...] = ()
    if has_recorder(config):
        pieces.append(PolicyPiece(owner="session recorder", tags=(RECORDER_TAG,)))
        to_recorder = ((RECORDER_TAG, RECORDER_PORT),)
    if config.aws is not None:
        pieces.append(
            PolicyPiece(
                owner="subnet router",
                tags=(ROUTER_TAG,),
                routes=(config.aws.vpc_cidr,),
                exit_node=config.aws.router.exit_node,
                ssh=True,
                reaches=to_recorder,
            )
        )
        if config.aws.workers:
            pieces.append(
                PolicyPiece(
                    owner="gpu workers",
                    tags=(WORKER_TAG,),
                    ports=(443,),
                    ssh=True,
                    reaches=to_recorder,
                )
            )
    return pieces


def identities(config: HomelabConfig) -> list[Identity]:
    """Every device of the stack, with the tags it may advertise."""
    devices = [Identity(name, (service_tag(name),)) for _, name, _ in config.each_service()]
    if has_recorder(config):
        # tsrecorder joins once and keeps its node state on its volume; it takes an auth key.
        devices.append(Identity(RECORDER_NAME, (RECORDER_TAG,), credential="auth-key"))
    if config.aws is not None:
        devices.append(Identity(ROUTER_NAME, (ROUTER_TAG,)))
        devices += [Identity(name, (WORKER_TAG,)) for name in config.aws.workers]
    return devices


def split_dns(config: HomelabConfig, region: str) -> dict[str, list[str]]:
    """The VPC's private DNS names, answered by its resolver through the subnet router."""
    if config.aws is None:
        return {}
    internal = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return {internal: [resolver_address(config.aws.vpc_cidr)]}


def build() -> None:
    """Read the config, check it against the region, build every component, export outputs.

    Everything that can be wrong with the config is found before the first resource.
    """
    config = load_config()
    region, lookups = _check_aws(config)
    try:
        policy = render_policy(
            People(admins=config.tailnet.admins, members=config.tailnet.members),
            policy_pieces(config),
            [Rule(src=tuple(rule.src), dst=tuple(rule.dst)) for rule in config.tailnet.rules],
        )
    except PolicyError as error:
        key = f"tailnet.{error.path}" if error.path else "tailnet"
        raise ConfigError(f"config key {key}: {error}") from None

    tailnet = Tailnet(
        "tailnet",
        TailnetArgs(
            policy=dump_policy(policy),
            identities=identities(config),
            adopt_existing_policy=config.tailnet.adopt_existing_policy,
            magic_dns=config.tailnet.magic_dns,
            https_certificates=config.tailnet.https_certificates,
            device_approval=config.tailnet.device_approval,
            key_expiry_days=config.tailnet.key_expiry_days,
            split_dns=split_dns(config, region or ""),
        ),
    )
    urls = _docker_hosts(config, tailnet)
    if config.aws is not None and lookups is not None and region is not None:
        urls.update(_aws(config.aws, config.tailnet.domain, lookups, tailnet, region))

    pulumi.export("tailnetDomain", config.tailnet.domain)
    pulumi.export("tailnetPolicy", tailnet.policy)
    pulumi.export("urls", urls)


def _check_aws(config: HomelabConfig) -> tuple[str | None, AwsLookups | None]:
    """The region and the stack's AWS lookups, checked against the config."""
    if config.aws is None:
        return None, None
    region = aws.config.region
    if not region:
        raise ConfigError("config key aws:region: is required when homelab:aws is set")
    if region not in AWS_REGIONS:
        raise ConfigError(
            f"config key aws:region: {region!r} is not an AWS region, for example eu-central-1"
        )
    lookups = look_up(gpu=bool(config.aws.workers))
    wanted = config.aws.availability_zones
    if len(lookups.zones) < wanted:
        raise ConfigError(
            f"config key aws.availabilityZones: {wanted} zones asked for, but {region} has "
            f"{len(lookups.zones)} available ({', '.join(lookups.zones)})"
        )
    return region, lookups


def _docker_hosts(config: HomelabConfig, tailnet: Tailnet) -> dict[str, pulumi.Input[str]]:
    """Every Docker host with its services; returns the services' URLs."""
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
            hosted.append(
                HostedService(
                    name,
                    SidecarServiceArgs(
                        app=spec,
                        domain=config.tailnet.domain,
                        join_key=tailnet.auth_keys[name],
                        tags=(service_tag(name),),
                        images={},
                        proxy=service.proxy,
                        public=service.public,
                        lan_address=host.lan_address,
                        lan_ports=service.lan_ports,
                        gpu=service.gpu,
                        userspace=service.userspace,
                        tailnet_dns=bool(service.reaches),
                        secret_env=secret_env,
                    ),
                )
            )
        docker_host = DockerHost(
            host_name,
            DockerHostArgs(
                docker_url=host.docker,
                cert_path=host.cert_path,
                dns=host.container_dns(),
                kind=host.kind,
                services=hosted,
                recorder_auth_key=tailnet.auth_keys[RECORDER_NAME]
                if host.session_recorder
                else None,
            ),
        )
        urls.update({name: svc.url for name, svc in docker_host.services.items()})
    return urls


def _aws(
    config: AwsConfig, domain: str, lookups: AwsLookups, tailnet: Tailnet, region: str
) -> dict[str, pulumi.Input[str]]:
    """The VPC with its subnet router and the GPU workers; exports the AWS outputs and returns
    the workers' URLs."""
    router = SubnetRouter(
        ROUTER_NAME,
        SubnetRouterArgs(
            vpc_cidr=config.vpc_cidr,
            zones=lookups.zones[: config.availability_zones],
            image=lookups.router_image,
            join_key=tailnet.auth_keys[ROUTER_NAME],
            tags=(ROUTER_TAG,),
            region=region,
            instance_type=config.router.instance_type,
            exit_node=config.router.exit_node,
            direct_udp=config.router.direct_udp,
            nat_instance=config.nat_instance,
        ),
    )

    urls: dict[str, pulumi.Input[str]] = {}
    worker_costs: dict[str, object] = {}
    groups: dict[str, str] = {}
    for name, worker in config.workers.items():
        gpu_worker = GpuWorker(
            name,
            GpuWorkerArgs(
                workload=worker.workload,
                image=lookups.gpu_image,
                # Every zone: spot capacity differs from zone to zone.
                subnet_ids=router.subnet_ids,
                security_group_id=router.security_group_id,
                join_key=tailnet.auth_keys[name],
                tags=(WORKER_TAG,),
                region=region,
                domain=domain,
                instance_type=worker.instance_type,
                max_spot_price=worker.max_spot_price,
                models_gib=worker.models_gib,
                state=worker.state,
                idle_minutes=worker.idle_minutes,
                public_ipv4=not config.nat_instance,
                egress=router.egress,
            ),
        )
        urls[name] = gpu_worker.url
        cost = as_output(gpu_worker.cost)
        # A stopped worker cannot run: the cost report leaves it out of "all workers running".
        worker_costs[name] = None if cost is None else {**cost, "state": worker.state}
        groups[name] = gpu_worker.group_name

    pulumi.export("vpcId", router.vpc_id)
    pulumi.export("vpcCidr", config.vpc_cidr)
    pulumi.export("vpcResolver", router.resolver)
    pulumi.export("routerHostname", router.hostname)
    if groups:
        # What a user sets to wake a parked worker (see the README).
        pulumi.export("workerGroups", groups)
    pulumi.export(
        "costs",
        {
            "priceDate": price_date(),
            "router": as_output(router.cost),
            "workers": worker_costs,
            "natGatewayInstead": as_output(nat_gateway_cost(region)),
        },
    )
    return urls
