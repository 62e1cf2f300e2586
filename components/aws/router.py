"""The SubnetRouter component: a VPC reached from the tailnet through one small instance."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.cloud_init import TailnetJoin, render_router_user_data
from components.aws.costs import RouterCost, as_output, router_cost
from components.aws.identity import (
    aws_tags,
    join_key_parameter_name,
    node_identity,
    node_state_parameter,
)

TOKEN = "homelab:aws:SubnetRouter"
TAILSCALE_UDP_PORT = 41641
ROOT_GIB = 8


@dataclass(frozen=True)
class SubnetRouterArgs:
    """Inputs of :class:`SubnetRouter`."""

    vpc_cidr: str
    zones: Sequence[str]
    """One public subnet is made in each of these availability zones."""
    image: pulumi.Input[str]
    join_key: pulumi.Input[str]
    tags: Sequence[str]
    """Tailnet tags of the router."""
    region: str
    instance_type: str = "t4g.nano"
    exit_node: bool = False
    direct_udp: bool = True
    nat_instance: bool = False
    """Also make private subnets whose traffic to the internet the router masquerades."""


def resolver_address(vpc_cidr: str) -> str:
    """The VPC's DNS resolver: the network's base address plus two."""
    return str(ipaddress.IPv4Network(vpc_cidr).network_address + 2)


def subnet_cidrs(vpc_cidr: str, count: int) -> list[str]:
    """One public subnet per availability zone: /20s where the VPC has room, else as large as
    ``count`` subnets allow (a /24 VPC with six zones gets six /27s)."""
    network = ipaddress.IPv4Network(vpc_cidr)
    split_bits = max(2, (count - 1).bit_length())
    new_prefix = max(network.prefixlen + split_bits, min(20, network.prefixlen + 4))
    if new_prefix > 28:
        raise ValueError(f"{vpc_cidr} cannot hold {count} subnets of at least /28")
    return [str(subnet) for subnet in list(network.subnets(new_prefix=new_prefix))[:count]]


class SubnetRouter(pulumi.ComponentResource):
    """A VPC with public subnets and a Tailscale subnet router advertising its CIDR."""

    vpc_id: pulumi.Output[str]
    """The VPC's id."""
    subnet_ids: pulumi.Output[list[str]]
    """The subnets for tailnet nodes, one per zone: private in NAT-instance mode, else public."""
    security_group_id: pulumi.Output[str]
    """The security group for tailnet nodes in the VPC: nothing inbound but Tailscale."""
    resolver: str
    """The VPC's DNS resolver address."""
    hostname: str
    """The router's name on the tailnet."""
    cost: RouterCost | None
    """Its estimated monthly cost (None where the price table has no figure)."""
    egress: list[pulumi.Resource]
    """What instances in the VPC need to reach S3 and the internet."""

    def __init__(
        self, name: str, args: SubnetRouterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            # The resolver at base+2 answers the tailnet's split DNS for private names.
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=aws_tags(f"{name}-vpc", TOKEN),
            opts=child,
        )

        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=aws_tags(f"{name}-igw", TOKEN), opts=child
        )

        routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            tags=aws_tags(f"{name}-public", TOKEN),
            opts=child,
        )
        # The way out of the VPC, completed below: what goes last when the stack goes.
        self.egress = [gateway, routes]

        # Public subnets take the lower half of the VPC, private ones the upper half, so turning
        # NAT-instance mode on or off never moves a public subnet.
        lower, upper = ipaddress.IPv4Network(args.vpc_cidr).subnets(prefixlen_diff=1)
        public = self._subnets(name, "public", vpc, lower, args.zones, routes, public=True)
        private = []
        route_tables = [routes]
        if args.nat_instance:
            private_routes = aws.ec2.RouteTable(
                f"{name}-private",
                vpc_id=vpc.id,
                tags=aws_tags(f"{name}-private", TOKEN),
                opts=child,
            )
            private = self._subnets(
                name, "private", vpc, upper, args.zones, private_routes, public=False
            )
            route_tables.append(private_routes)

        # Workers pull and push their models through this free gateway endpoint: S3 traffic
        # never goes through the internet gateway, nor, in NAT-instance mode, the router.
        endpoint = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in route_tables],
            tags=aws_tags(f"{name}-s3", TOKEN),
            opts=child,
        )
        self.egress.append(endpoint)

        ingress = []
        if args.direct_udp:
            # Direct WireGuard connections; without it, traffic is relayed through DERP.
            ingress.append(
                {
                    "protocol": "udp",
                    "from_port": TAILSCALE_UDP_PORT,
                    "to_port": TAILSCALE_UDP_PORT,
                    "cidr_blocks": ["0.0.0.0/0"],
                    "description": "Tailscale direct connections",
                }
            )
        group = aws.ec2.SecurityGroup(
            f"{name}-nodes",
            vpc_id=vpc.id,
            description="Tailnet nodes: nothing inbound but Tailscale",
            ingress=ingress,
            egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}],
            tags=aws_tags(f"{name}-nodes", TOKEN),
            opts=child,
        )
        router_groups = [group.id]
        if args.nat_instance:
            # Private subnets reach the internet through the router, which must accept them;
            # the workers, in the nodes group only, accept nothing from each other.
            nat_group = aws.ec2.SecurityGroup(
                f"{name}-nat",
                vpc_id=vpc.id,
                description="The NAT instance: everything from the private subnets",
                ingress=[
                    {
                        "protocol": "-1",
                        "from_port": 0,
                        "to_port": 0,
                        "cidr_blocks": [str(upper)],
                        "description": "Private subnets, masqueraded by the router",
                    }
                ],
                tags=aws_tags(f"{name}-nat", TOKEN),
                opts=child,
            )
            router_groups.append(nat_group.id)

        self.hostname = name
        # The router's node state lives in SSM, not on the instance: a replaced router comes
        # back as the same node, and its routes stay approved.
        state = node_state_parameter(name, TOKEN, self)
        profile = node_identity(name, args.join_key, TOKEN, self, state_parameter=state)
        join = TailnetJoin(
            region=args.region,
            key_parameter=join_key_parameter_name(name),
            hostname=self.hostname,
            tags=args.tags,
            routes=(args.vpc_cidr,),
            exit_node=args.exit_node,
        )
        masquerade = str(upper) if args.nat_instance else None
        user_data = state.arn.apply(
            lambda arn: render_router_user_data(join, arn, masquerade=masquerade)
        )

        # The image parameter moves with every Amazon Linux release; a new image must not replace
        # the router on an unrelated update, so the image is only read when the router is created.
        instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=args.image,
            instance_type=args.instance_type,
            subnet_id=public[0].id,
            vpc_security_group_ids=router_groups,
            iam_instance_profile=profile.name,
            user_data=user_data,
            # The router holds no state of its own, so new user data means a new instance that
            # boots with it, rather than an in-place stop and start.
            user_data_replace_on_change=True,
            # Forwarded packets carry tailnet source addresses, not the router's own.
            source_dest_check=False,
            # One hop: nothing but the router's own processes reaches its role's credentials.
            metadata_options={
                "http_tokens": "required",
                "http_endpoint": "enabled",
                "http_put_response_hop_limit": 1,
            },
            root_block_device={"encrypted": True, "volume_type": "gp3", "volume_size": ROOT_GIB},
            tags=aws_tags(f"{name}-instance", TOKEN),
            volume_tags=aws_tags(f"{name}-root", TOKEN),
            # Old and new router would share one tailnet identity: the old one goes first.
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["ami"], delete_before_replace=True
            ),
        )

        if args.nat_instance:
            private_default = aws.ec2.Route(
                f"{name}-private-default",
                route_table_id=private_routes.id,
                destination_cidr_block="0.0.0.0/0",
                network_interface_id=instance.primary_network_interface_id,
                opts=child,
            )
            # The NAT instance is the private subnets' way out.
            self.egress += [instance, private_default]

        self.vpc_id = vpc.id
        self.subnet_ids = pulumi.Output.all(*[subnet.id for subnet in private or public])
        self.security_group_id = group.id
        self.resolver = resolver_address(args.vpc_cidr)
        self.cost = router_cost(args.region, args.instance_type, ROOT_GIB)
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "subnetIds": self.subnet_ids,
                "securityGroupId": self.security_group_id,
                "resolver": self.resolver,
                "hostname": self.hostname,
                "cost": as_output(self.cost),
            }
        )

    def _subnets(
        self,
        name: str,
        role: str,
        vpc: aws.ec2.Vpc,
        network: ipaddress.IPv4Network,
        zones: Sequence[str],
        routes: aws.ec2.RouteTable,
        *,
        public: bool,
    ) -> list[aws.ec2.Subnet]:
        """One subnet per zone in ``network``, on ``routes``; each subnet's route table
        association joins :attr:`egress`, since instances leave the VPC through it."""
        subnets = []
        cidrs = subnet_cidrs(str(network), len(zones))
        for index, (zone, cidr) in enumerate(zip(zones, cidrs, strict=True)):
            subnet = aws.ec2.Subnet(
                f"{name}-{role}-{index}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                # Public instances get an IPv4 address for egress: no NAT gateway to pay for.
                map_public_ip_on_launch=public,
                tags=aws_tags(f"{name}-{role}-{index}", TOKEN),
                opts=pulumi.ResourceOptions(parent=self),
            )
            association = aws.ec2.RouteTableAssociation(
                f"{name}-{role}-{index}",
                subnet_id=subnet.id,
                route_table_id=routes.id,
                opts=pulumi.ResourceOptions(parent=self),
            )
            subnets.append(subnet)
            self.egress.append(association)
        return subnets
