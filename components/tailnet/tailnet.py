"""The Tailnet component: policy, DNS, settings and the keys devices join with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_tailscale as tailscale

JOIN_OPTIONS = "?ephemeral=false&preauthorized=true"
AUTH_KEY_SECONDS = 90 * 24 * 3600
"""The longest life Tailscale gives an auth key."""
"""Appended to an OAuth client secret, it makes ``tailscale up`` join as a lasting node."""


@dataclass(frozen=True)
class Identity:
    """A device of the stack: it joins the tailnet with a credential of its own and may
    advertise only its own tags."""

    name: str
    tags: tuple[str, ...]
    credential: Literal["oauth-client", "auth-key"] = "oauth-client"
    """An OAuth client secret never expires; an auth key (90 days at most) suits a device that
    joins once and keeps its node state, and whose software cannot use a client secret."""


@dataclass(frozen=True)
class TailnetArgs:
    """Inputs of :class:`Tailnet`."""

    policy: str
    """The rendered policy file (see :mod:`components.tailnet.policy`)."""
    identities: Sequence[Identity]
    magic_dns: bool = True
    https_certificates: bool = True
    device_approval: bool = False
    key_expiry_days: int = 180
    adopt_existing_policy: bool = False
    """Let the first update replace a policy file that was edited by hand."""
    split_dns: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Domain -> resolver addresses, for example a VPC's private zone to its resolver."""


class Tailnet(pulumi.ComponentResource):
    """One tailnet: its policy file, DNS, settings and a join credential per device."""

    policy: pulumi.Output[str]
    """The policy file the tailnet enforces."""
    auth_keys: dict[str, pulumi.Output[str]]
    """Device name -> the secret it joins with (``tailscale up --auth-key``, ``TS_AUTHKEY``)."""

    def __init__(
        self, name: str, args: TailnetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("homelab:tailnet:Tailnet", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # The Acl resource owns the whole policy file. Unless told to adopt it, it refuses to
        # overwrite a policy that was edited by hand, and it leaves the last policy in place when
        # the stack is destroyed, so a destroy never locks the admins out.
        acl = tailscale.Acl(
            f"{name}-policy",
            acl=args.policy,
            overwrite_existing_content=args.adopt_existing_policy,
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

        # Each device joins with an OAuth client of its own: client secrets do not expire, and a
        # client may only mint keys for its device's tags. Tailscale refuses a client whose tags
        # the policy does not own yet, hence depends_on.
        self.auth_keys = {}
        for identity in args.identities:
            after_policy = pulumi.ResourceOptions(parent=self, depends_on=[acl])
            if identity.credential == "auth-key":
                key = tailscale.TailnetKey(
                    f"{name}-{identity.name}-key",
                    description=f"homelab {identity.name}"[:50],
                    tags=list(identity.tags),
                    reusable=False,
                    preauthorized=True,
                    ephemeral=False,
                    expiry=AUTH_KEY_SECONDS,
                    # An expired key is replaced on the next update; the node that joined with
                    # it keeps its own node key and is not touched.
                    recreate_if_invalid="always",
                    opts=after_policy,
                )
                self.auth_keys[identity.name] = pulumi.Output.secret(key.key)
                continue
            client = tailscale.OauthClient(
                f"{name}-{identity.name}-client",
                description=f"homelab {identity.name}"[:50],
                scopes=["auth_keys"],
                tags=list(identity.tags),
                opts=after_policy,
            )
            self.auth_keys[identity.name] = pulumi.Output.secret(
                pulumi.Output.concat(client.key, JOIN_OPTIONS)
            )

        self.policy = acl.acl
        self.register_outputs({"policy": self.policy})
