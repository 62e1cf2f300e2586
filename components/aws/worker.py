"""The GpuWorker component: a spot GPU instance that joins the tailnet and serves one workload."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.aws.cloud_init import TailnetJoin, Workload, render_worker_user_data
from components.aws.costs import WorkerCost, as_output, worker_cost
from components.aws.identity import aws_tags, join_key_parameter_name, node_identity

TOKEN = "homelab:aws:GpuWorker"
MODELS_DEVICE = "/dev/sdf"
ROOT_GIB = 100
"""The GPU image's root volume holds the driver, CUDA and Docker's images."""

WORKLOADS: dict[str, Workload] = {
    "ollama": Workload(
        name="ollama",
        image="docker.io/ollama/ollama:0.12.6",
        port=11434,
        models_path="/root/.ollama",
        env={"OLLAMA_HOST": "0.0.0.0:11434"},
    ),
    "fooocus": Workload(
        name="fooocus",
        image="ghcr.io/lllyasviel/fooocus:v2.5.5",
        port=7865,
        models_path="/content/data",
        env={"CMDARGS": "--listen"},
    ),
    "whisper": Workload(
        name="whisper",
        image="docker.io/onerahmet/openai-whisper-asr-webservice:v1.9.1-gpu",
        port=9000,
        models_path="/root/.cache",
        env={"ASR_MODEL": "medium", "ASR_ENGINE": "faster_whisper"},
    ),
}
"""The workloads a worker can run, with pinned images."""


@dataclass(frozen=True)
class GpuWorkerArgs:
    """Inputs of :class:`GpuWorker`."""

    workload: str
    image: pulumi.Input[str]
    """The GPU machine image, looked up once per stack."""
    subnet_id: pulumi.Input[str]
    zone: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    join_key: pulumi.Input[str]
    tags: Sequence[str]
    region: str
    domain: str
    """The tailnet's MagicDNS suffix."""
    instance_type: str = "g4dn.xlarge"
    max_spot_price: float = 0.35
    models_volume_gib: int = 100
    state: Literal["running", "stopped"] = "running"
    """The state `pulumi up` puts the worker in (see the README on waking a stopped worker)."""
    idle_minutes: int = 15
    """The worker stops itself after this long without requests or GPU use."""
    public_ipv4: bool = True
    """Whether its subnet gives it a public address (not behind a NAT instance)."""


class GpuWorker(pulumi.ComponentResource):
    """A g4dn spot instance with a persistent models volume, serving its workload on the tailnet."""

    url: str
    """Where the workload answers on the tailnet."""
    instance_id: pulumi.Output[str]
    """The instance's id."""
    cost: WorkerCost | None
    """Its estimated cost: hourly while it runs, monthly for its volumes."""

    def __init__(
        self,
        name: str,
        args: GpuWorkerArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Models outlive every instance: an interruption or a replacement never downloads them
        # again, and deleting the worker from the stack keeps the volume.
        models = aws.ebs.Volume(
            f"{name}-models",
            availability_zone=args.zone,
            size=args.models_volume_gib,
            type="gp3",
            encrypted=True,
            tags=aws_tags(f"{name}-models", TOKEN),
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )

        profile = node_identity(name, args.join_key, TOKEN, self)
        join = TailnetJoin(
            region=args.region,
            key_parameter=join_key_parameter_name(name),
            hostname=name,
            tags=args.tags,
        )
        workload = WORKLOADS[args.workload]
        user_data = models.id.apply(
            lambda volume_id: render_worker_user_data(join, workload, volume_id, args.idle_minutes)
        )

        # As for the router, a newer GPU image must not replace a worker on an unrelated update.
        instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=args.image,
            instance_type=args.instance_type,
            subnet_id=args.subnet_id,
            vpc_security_group_ids=[args.security_group_id],
            iam_instance_profile=profile.name,
            user_data=user_data,
            # New user data means a new instance that boots with it; the models volume and the
            # node state on it carry over.
            user_data_replace_on_change=True,
            # A persistent spot request that stops on interruption: the instance, its root
            # volume and its tailnet identity come back when capacity does.
            instance_market_options={
                "market_type": "spot",
                "spot_options": {
                    "instance_interruption_behavior": "stop",
                    "spot_instance_type": "persistent",
                    "max_price": f"{args.max_spot_price:.4f}",
                },
            },
            # Idle stop shuts the system down; that stops the instance instead of ending it.
            instance_initiated_shutdown_behavior="stop",
            metadata_options={"http_tokens": "required", "http_endpoint": "enabled"},
            root_block_device={"encrypted": True, "volume_type": "gp3", "volume_size": ROOT_GIB},
            tags=aws_tags(f"{name}-instance", TOKEN),
            volume_tags=aws_tags(f"{name}-root", TOKEN),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"]),
        )

        aws.ec2.VolumeAttachment(
            f"{name}-models-attachment",
            device_name=MODELS_DEVICE,
            volume_id=models.id,
            instance_id=instance.id,
            # Stop the instance before detaching, so the filesystem is never cut off mid-write.
            stop_instance_before_detaching=True,
            opts=child,
        )

        # The spot request that the instance made is tagged like everything else, so the
        # billing console shows which worker it belongs to.
        for key, value in sorted(aws_tags(f"{name}-spot-request", TOKEN).items()):
            aws.ec2.Tag(
                f"{name}-spot-request-{key.replace(':', '-').lower()}",
                resource_id=instance.spot_instance_request_id,
                key=key,
                value=value,
                opts=child,
            )

        # The desired state from config. Pulumi compares it with the state it last set, not with
        # the instance, so a worker that stopped itself stays stopped through an unrelated
        # `pulumi up`; only a refresh (or setting the state) starts it again.
        aws.ec2transitgateway.InstanceState(
            f"{name}-state", instance_id=instance.id, state=args.state, opts=child
        )

        self.url = f"https://{name}.{args.domain}"
        self.instance_id = instance.id
        self.cost = worker_cost(
            args.region,
            args.instance_type,
            args.max_spot_price,
            ROOT_GIB,
            args.models_volume_gib,
            public_ipv4=args.public_ipv4,
        )
        self.register_outputs(
            {"url": self.url, "instanceId": self.instance_id, "cost": as_output(self.cost)}
        )
