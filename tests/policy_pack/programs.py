"""Small programs for the policy pack's tests: resources that keep every invariant unless a test
changes one setting, and the shapes they are launched in (a group, a mixed group)."""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_aws as aws

PROTECTED = pulumi.ResourceOptions(protect=True, retain_on_delete=True)
IMAGE = "ami-0123456789abcdef0"
REQUIRED_TOKENS = {"http_tokens": "required"}
GOOD_INSTANCE = {
    "ami": IMAGE,
    "metadata_options": REQUIRED_TOKENS,
    "root_block_device": {"encrypted": True},
}
ENCRYPTED_ROOT = [{"device_name": "/dev/sda1", "ebs": {"encrypted": "true"}}]


def one(factory: Callable[[], object]) -> Callable[[], None]:
    """A program that makes what ``factory`` makes."""

    def program() -> None:
        factory()

    return program


def security_group(**ingress: object) -> Callable[[], None]:
    """A security group with one ingress rule."""

    def program() -> None:
        aws.ec2.SecurityGroup("nodes", ingress=[ingress])

    return program


def instance(**changes: object) -> Callable[[], None]:
    """A small instance that keeps every invariant but for ``changes``."""

    def program() -> None:
        aws.ec2.Instance("node", **{**GOOD_INSTANCE, "instance_type": "t4g.nano", **changes})

    return program


def gpu_template(spot: bool, **changes: object) -> Callable[[], aws.ec2.LaunchTemplate]:
    """A GPU launch template, asking for spot or not, that keeps every other invariant."""
    settings = {
        "image_id": IMAGE,
        "instance_type": "g4dn.xlarge",
        "instance_market_options": {"market_type": "spot"} if spot else None,
        "metadata_options": REQUIRED_TOKENS,
        "block_device_mappings": ENCRYPTED_ROOT,
    }

    def program() -> aws.ec2.LaunchTemplate:
        return aws.ec2.LaunchTemplate("worker", **{**settings, **changes})

    return program


def mixed_policy(template: aws.ec2.LaunchTemplate, on_demand: int) -> dict[str, object]:
    """A mixed instances policy over ``template`` that keeps ``on_demand`` percent on demand."""
    return {
        "launch_template": {
            "launch_template_specification": {"launch_template_id": template.id},
            "overrides": [{"instance_type": "g5.xlarge"}],
        },
        "instances_distribution": {
            "on_demand_base_capacity": 0,
            "on_demand_percentage_above_base_capacity": on_demand,
        },
    }


def group(name: str, **source: object) -> aws.autoscaling.Group:
    """An autoscaling group of at most one instance, launched from ``source``."""
    return aws.autoscaling.Group(
        name, min_size=0, max_size=1, availability_zones=["eu-central-1a"], **source
    )


def group_from(
    template: Callable[[], aws.ec2.LaunchTemplate], on_demand: int | None = None
) -> Callable[[], None]:
    """A group of at most one worker; with ``on_demand``, through a mixed instances policy
    that keeps that percentage of its instances on demand."""

    def program() -> None:
        launched = template()
        if on_demand is None:
            group("worker", launch_template={"id": launched.id, "version": "$Latest"})
        else:
            group("worker", mixed_instances_policy=mixed_policy(launched, on_demand))

    return program


def launch_configuration(**changes: object) -> aws.ec2.LaunchConfiguration:
    """A GPU launch configuration asking for spot that keeps every invariant but ``changes``."""
    settings = {
        "image_id": IMAGE,
        "instance_type": "g4dn.xlarge",
        "spot_price": "0.35",
        "metadata_options": REQUIRED_TOKENS,
        "root_block_device": {"encrypted": True},
    }
    return aws.ec2.LaunchConfiguration("worker", **{**settings, **changes})
