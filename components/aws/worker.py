"""The GpuWorker component: a spot GPU instance that joins the tailnet and serves one workload."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.aws.cloud_init import (
    SAVE_HOOK,
    Parking,
    TailnetJoin,
    Workload,
    render_worker_user_data,
)
from components.aws.costs import WorkerCost, as_output, worker_cost
from components.aws.identity import (
    aws_tags,
    join_key_parameter_name,
    node_identity,
    node_state_parameter,
)

TOKEN = "homelab:aws:GpuWorker"
ROOT_DEVICE = "/dev/sda1"
"""The root device of AWS's Ubuntu images."""
ROOT_GIB = 100
"""The GPU image's root volume holds the driver, CUDA and Docker's images; it ends with the
instance."""
CAPACITY_TIMEOUT = "15m"
SAVE_TIMEOUT_SECONDS = 1800
"""How long an ending instance may take to push its models before it ends regardless."""
DELETE_TIMEOUT = "40m"
TAGGED_AT_LAUNCH = (
    ("instance", "instance"),
    ("volume", "root"),
    ("network-interface", "interface"),
    ("spot-instances-request", "spot-request"),
)
"""What each launch creates, tagged as it is created: (resource type, name suffix)."""

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
        # The image runs as its own user, not root.
        uid=1000,
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
    subnet_ids: pulumi.Input[Sequence[str]]
    """One subnet per availability zone: the worker starts wherever spot capacity is free."""
    security_group_id: pulumi.Input[str]
    join_key: pulumi.Input[str]
    tags: Sequence[str]
    region: str
    domain: str
    """The tailnet's MagicDNS suffix."""
    instance_type: str = "g4dn.xlarge"
    max_spot_price: float = 0.35
    models_gib: int = 20
    """How much the models take in S3, for the cost estimate."""
    state: Literal["running", "stopped"] = "running"
    """The state `pulumi up` puts the worker in (see the README on waking a parked worker)."""
    idle_minutes: int = 15
    """The worker parks itself after this long without requests or GPU use."""
    public_ipv4: bool = True
    """Whether its subnets give it a public address (not behind a NAT instance)."""
    egress: Sequence[pulumi.Resource] = ()
    """What the worker's way to S3 and AWS's APIs depends on: a worker being deleted still
    pushes its models, so these go after it."""


class GpuWorker(pulumi.ComponentResource):
    """A spot GPU instance in an Auto Scaling group of at most one, serving its workload on the
    tailnet, with its models in S3 and its node state in SSM.

    Nothing of a worker lives on its instance: parking it (idle stop, or ``state: stopped``)
    ends the instance, and the next one pulls the models back onto its local disk and joins
    as the same node.
    """

    url: str
    """Where the workload answers on the tailnet."""
    group_name: str
    """The name of its Auto Scaling group: set its desired capacity to 1 to wake it."""
    models_bucket: pulumi.Output[str]
    """The S3 bucket holding its models."""
    cost: WorkerCost | None
    """Its estimated cost: hourly while it runs, monthly while parked."""

    def __init__(
        self,
        name: str,
        args: GpuWorkerArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.group_name = f"homelab-{pulumi.get_stack()}-{name}"

        models = self._models_bucket(name)
        state = node_state_parameter(name, TOKEN, self)
        profile = node_identity(name, args.join_key, TOKEN, self, state_parameter=state)
        join = TailnetJoin(
            region=args.region,
            key_parameter=join_key_parameter_name(name),
            hostname=name,
            tags=args.tags,
        )
        workload = WORKLOADS[args.workload]
        parking = Parking(region=args.region, group=self.group_name, idle_minutes=args.idle_minutes)
        user_data = pulumi.Output.all(models.bucket, state.arn).apply(
            lambda values: _base64(
                render_worker_user_data(
                    join,
                    workload,
                    bucket=values[0],
                    state_parameter_arn=values[1],
                    parking=parking,
                )
            )
        )

        # The instance needs these from its first boot, so they exist before the group does.
        permissions = aws.iam.RolePolicy(
            f"{name}-models-and-parking",
            role=profile.role,
            policy=models.arn.apply(
                lambda bucket_arn: _worker_policy(bucket_arn, args.region, self.group_name)
            ),
            opts=child,
        )

        template = aws.ec2.LaunchTemplate(
            f"{name}-template",
            image_id=args.image,
            instance_type=args.instance_type,
            iam_instance_profile={"arn": profile.arn},
            user_data=user_data,
            network_interfaces=[
                {
                    "associate_public_ip_address": str(args.public_ipv4).lower(),
                    "security_groups": [args.security_group_id],
                    "delete_on_termination": "true",
                }
            ],
            instance_initiated_shutdown_behavior="terminate",
            # One hop: the containers on the instance never reach its role's credentials.
            metadata_options={
                "http_tokens": "required",
                "http_endpoint": "enabled",
                "http_put_response_hop_limit": 1,
            },
            block_device_mappings=[
                {
                    "device_name": ROOT_DEVICE,
                    "ebs": {
                        "encrypted": "true",
                        "volume_type": "gp3",
                        "volume_size": ROOT_GIB,
                        "delete_on_termination": "true",
                    },
                }
            ],
            tag_specifications=[
                {"resource_type": kind, "tags": aws_tags(f"{name}-{suffix}", TOKEN)}
                for kind, suffix in TAGGED_AT_LAUNCH
            ],
            tags=aws_tags(f"{name}-template", TOKEN),
            update_default_version=True,
            # As for the router, a newer GPU image must not change the worker on an unrelated
            # update: the image is read when the worker is created.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["image_id"]),
        )

        aws.autoscaling.Group(
            f"{name}-group",
            name=self.group_name,
            min_size=0,
            # `stopped` allows no instance at all, which parks a running worker; `running`
            # allows one, started when the group is created and woken on demand after that.
            max_size=1 if args.state == "running" else 0,
            desired_capacity=1 if args.state == "running" else 0,
            vpc_zone_identifiers=args.subnet_ids,
            # Spot only, at most the maximum price. An interrupted instance ends, and the group
            # starts a replacement in whichever zone has capacity; nothing is lost with it.
            mixed_instances_policy={
                "instances_distribution": {
                    "on_demand_base_capacity": 0,
                    "on_demand_percentage_above_base_capacity": 0,
                    "spot_allocation_strategy": "price-capacity-optimized",
                    "spot_max_price": f"{args.max_spot_price:.4f}",
                },
                "launch_template": {
                    # Each launch takes the newest template; a change never touches a running
                    # instance.
                    "launch_template_specification": {
                        "launch_template_id": template.id,
                        "version": "$Latest",
                    },
                    "overrides": [{"instance_type": args.instance_type}],
                },
            },
            health_check_type="EC2",
            # No early replacement on a rebalance recommendation: two instances would share one
            # tailnet identity, and the old one would end without a push.
            capacity_rebalance=False,
            # Every instance the group ends waits in this hook until it has pushed to S3.
            initial_lifecycle_hooks=[
                {
                    "name": SAVE_HOOK,
                    "lifecycle_transition": "autoscaling:EC2_INSTANCE_TERMINATING",
                    "default_result": "CONTINUE",
                    "heartbeat_timeout": SAVE_TIMEOUT_SECONDS,
                }
            ],
            # With no spot capacity in any zone, `pulumi up` fails after this long instead of
            # reporting a worker that never starts (the group's activity history says why).
            wait_for_capacity_timeout=CAPACITY_TIMEOUT,
            ignore_failed_scaling_activities=True,
            tags=[
                {"key": key, "value": value, "propagate_at_launch": False}
                for key, value in sorted(aws_tags(f"{name}-group", TOKEN).items())
            ],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[permissions, *args.egress],
                # Deleting the group waits for its instance, which the hook holds until it has
                # pushed to S3.
                custom_timeouts=pulumi.CustomTimeouts(delete=DELETE_TIMEOUT),
                # The worker parks and wakes itself: Pulumi sets the capacity when it creates
                # the group and never again, so no update ever wakes a parked worker.
                ignore_changes=["desired_capacity"],
            ),
        )

        self.url = f"https://{name}.{args.domain}"
        self.models_bucket = models.bucket
        self.cost = worker_cost(
            args.region,
            args.instance_type,
            args.max_spot_price,
            ROOT_GIB,
            args.models_gib,
            public_ipv4=args.public_ipv4,
        )
        self.register_outputs(
            {
                "url": self.url,
                "groupName": self.group_name,
                "modelsBucket": self.models_bucket,
                "cost": as_output(self.cost),
            }
        )

    def _models_bucket(self, name: str) -> aws.s3.Bucket:
        """A private, encrypted bucket for the models that outlives every instance, and the
        worker itself: deleting the worker from the stack keeps it."""
        tags = aws_tags(f"{name}-models", TOKEN)
        # The bucket's settings stay with the bucket when the worker goes.
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        bucket = aws.s3.Bucket(
            f"{name}-models",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-models",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-models",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-models",
            bucket=bucket.id,
            # An upload cut short by an interruption leaves parts that cost money until removed.
            rules=[
                {
                    "id": "abort-incomplete-uploads",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 2},
                }
            ],
            opts=child,
        )
        return bucket


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _worker_policy(bucket_arn: str, region: str, group_name: str) -> str:
    """The worker may read and write its bucket, park itself and let its instance end."""
    partition = bucket_arn.split(":")[1]
    group_arn = (
        f"arn:{partition}:autoscaling:{region}:*:autoScalingGroup:*"
        f":autoScalingGroupName/{group_name}"
    )
    statements = [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": f"{bucket_arn}/*",
        },
        {
            "Effect": "Allow",
            "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:CompleteLifecycleAction"],
            "Resource": group_arn,
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})
