"""Provider lookups the AWS components share, made once per stack and passed down."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_aws as aws

ROUTER_IMAGE_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
"""Amazon Linux 2023 for arm64, published by AWS as a public SSM parameter."""
GPU_IMAGE_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
)
"""AWS's Deep Learning Base image: Ubuntu 22.04 with the NVIDIA driver, Docker and the NVIDIA
container toolkit."""


@dataclass(frozen=True)
class AwsLookups:
    """Results of the stack's AWS lookups."""

    zones: list[str]
    """The region's available zones, sorted."""
    router_image: str
    gpu_image: str | None


def look_up(*, gpu: bool) -> AwsLookups:
    """Availability zones and images; the GPU image only when some worker needs it.

    Plain (blocking) lookups: they depend on no resource, and their results let the stack
    check its config against the region before it registers anything.
    """
    # Local and Wavelength Zones are opt-in; only the region's own zones hold the subnets.
    zones = sorted(
        aws.get_availability_zones(
            state="available",
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
        ).names
    )
    router_image = aws.ssm.get_parameter(name=ROUTER_IMAGE_PARAMETER).value
    gpu_image = aws.ssm.get_parameter(name=GPU_IMAGE_PARAMETER).value if gpu else None
    return AwsLookups(zones=zones, router_image=router_image, gpu_image=gpu_image)
