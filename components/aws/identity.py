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
    name: str,
    join_key: pulumi.Input[str],
    component: str,
    parent: pulumi.Resource,
    state_parameter: aws.ssm.Parameter | None = None,
) -> aws.iam.InstanceProfile:
    """Store the join key as a SecureString and give the node a role that may read only it
    (and read and write its node state, when that lives in ``state_parameter``)."""
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

    policy = aws.iam.RolePolicy(
        f"{name}-read-join-key",
        role=role.id,
        policy=pulumi.Output.all(
            parameter.arn, state_parameter.arn if state_parameter is not None else None
        ).apply(lambda arns: _parameter_policy(*arns)),
        opts=child,
    )

    # Whatever boots with the profile can read its key and state from the first second.
    return aws.iam.InstanceProfile(
        f"{name}-profile",
        role=role.name,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[policy]),
    )


def _parameter_policy(join_key_arn: str, state_arn: str | None) -> str:
    statements = [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": join_key_arn}]
    if state_arn is not None:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["ssm:GetParameter", "ssm:PutParameter"],
                "Resource": state_arn,
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def node_state_parameter(name: str, component: str, parent: pulumi.Resource) -> aws.ssm.Parameter:
    """An SSM SecureString where tailscaled keeps the node's state (``--state=<arn>``).

    It starts empty and tailscaled owns its value from then on, so the stack never changes it.
    """
    return aws.ssm.Parameter(
        f"{name}-node-state",
        name=f"/homelab/{pulumi.get_stack()}/{name}/tailscaled-state",
        type="SecureString",
        value="{}",
        description=f"tailscaled state of {name}, written by the node itself",
        tags=aws_tags(name, component),
        opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["value"]),
    )
