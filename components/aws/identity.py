"""What every tailnet node in AWS needs: tags, and a join key it can read and nobody else can."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

_ASSUME_EC2 = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def aws_tags(name: str, component: str) -> dict[str, str]:
    """Tags for every AWS resource: its name, the stack and the component that owns it."""
    return {
        "Name": name,
        "homelab:stack": pulumi.get_stack(),
        "homelab:component": component,
    }


def join_key_parameter_name(name: str) -> str:
    """The SSM parameter that holds a node's join key."""
    return f"/homelab/{pulumi.get_stack()}/{name}/tailnet-join-key"


def node_identity(
    name: str, join_key: pulumi.Input[str], component: str, parent: pulumi.Resource
) -> aws.iam.InstanceProfile:
    """Store the join key as a SecureString and give the node a role that may read only it."""
    tags = aws_tags(name, component)
    child = pulumi.ResourceOptions(parent=parent)

    parameter = aws.ssm.Parameter(
        f"{name}-join-key",
        name=join_key_parameter_name(name),
        type="SecureString",
        value=pulumi.Output.secret(join_key),
        description=f"Tailnet join key of {name}",
        tags=tags,
        opts=child,
    )

    role = aws.iam.Role(
        f"{name}-role",
        assume_role_policy=_ASSUME_EC2,
        tags=tags,
        opts=child,
    )

    aws.iam.RolePolicy(
        f"{name}-read-join-key",
        role=role.id,
        policy=parameter.arn.apply(
            lambda arn: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": arn}
                    ],
                }
            )
        ),
        opts=child,
    )

    return aws.iam.InstanceProfile(f"{name}-profile", role=role.name, tags=tags, opts=child)
