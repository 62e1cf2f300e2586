"""Provider lookups the AWS components share, made once per stack and passed down."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
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

    zones: pulumi.Output[list[str]]
    router_image: pulumi.Output[str]
    gpu_image: pulumi.Output[str] | None


def look_up(zone_count: int, *, gpu: bool) -> AwsLookups:
    """Availability zones and images; the GPU image only when some worker needs it."""
    zones = aws.get_availability_zones_output(state="available").names.apply(
        lambda names: sorted(names)[:zone_count]
    )
    router_image = aws.ssm.get_parameter_output(name=ROUTER_IMAGE_PARAMETER).value
    gpu_image = aws.ssm.get_parameter_output(name=GPU_IMAGE_PARAMETER).value if gpu else None
    return AwsLookups(zones=zones, router_image=router_image, gpu_image=gpu_image)
