"""The Tailnet component: policy, DNS, settings and the keys devices join with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_tailscale as tailscale


@dataclass(frozen=True)
class JoinRole:
    """A kind of device that joins the tailnet with its own reusable key and tags."""

    name: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class TailnetArgs:
    """Inputs of :class:`Tailnet`."""

    policy: str
    """The rendered policy file (see :mod:`components.tailnet.policy`)."""
    roles: Sequence[JoinRole]
    magic_dns: bool = True
    https_certificates: bool = True
    device_approval: bool = False
    key_expiry_days: int = 180
    join_key_expiry_days: int = 90
    split_dns: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Domain -> resolver addresses, for example a VPC's private zone to its resolver."""


class Tailnet(pulumi.ComponentResource):
    """One tailnet: its policy file, DNS, settings and a join key per device role."""

    policy: pulumi.Output[str]
    """The policy file the tailnet enforces."""
    join_keys: dict[str, pulumi.Output[str]]
    """Role name -> secret auth key that devices of that role join with."""

    def __init__(
        self, name: str, args: TailnetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("homelab:tailnet:Tailnet", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # The Acl resource owns the whole policy file. It refuses to overwrite a policy that was
        # edited by hand, and leaves the last policy in place when the stack is destroyed, so a
        # destroy never locks the admins out.
        acl = tailscale.Acl(
            f"{name}-policy",
            acl=args.policy,
            overwrite_existing_content=False,
            reset_acl_on_destroy=False,
            opts=child,
        )

        tailscale.DnsConfiguration(
            f"{name}-dns",
            magic_dns=args.magic_dns,
            split_dns=[
                tailscale.DnsConfigurationSplitDnArgs(
                    domain=domain,
                    nameservers=[
                        tailscale.DnsConfigurationSplitDnNameserverArgs(address=address)
                        for address in addresses
                    ],
                )
                for domain, addresses in sorted(args.split_dns.items())
            ],
            opts=child,
        )

        tailscale.TailnetSettings(
            f"{name}-settings",
            https_enabled=args.https_certificates,
            devices_approval_on=args.device_approval,
            devices_key_duration_days=args.key_expiry_days,
            opts=child,
        )

        # Tailscale refuses a key whose tags the policy does not own yet, hence depends_on.
        self.join_keys = {}
        for role in args.roles:
            key = tailscale.TailnetKey(
                f"{name}-{role.name}-key",
                description=f"homelab {role.name}"[:50],
                reusable=True,
                preauthorized=True,
                ephemeral=False,
                tags=list(role.tags),
                expiry=args.join_key_expiry_days * 24 * 3600,
                recreate_if_invalid="always",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[acl]),
            )
            self.join_keys[role.name] = pulumi.Output.secret(key.key)

        self.policy = acl.acl
        self.register_outputs({"policy": self.policy})
