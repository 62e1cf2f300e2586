"""Render the tailnet policy file from what each component needs.

Pure functions: no Pulumi, no I/O. Each component describes its needs as a :class:`PolicyPiece`;
:func:`render_policy` merges the pieces with the people in the tailnet into one document, and
:func:`dump_policy` writes it with sorted keys so the same stack always gives the same bytes.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

ADMINS = "group:admins"
MEMBERS = "group:members"
RECORDER_TAG = "tag:recorder"

SOURCE_AUTOGROUPS = frozenset(
    {
        "autogroup:member",
        "autogroup:admin",
        "autogroup:owner",
        "autogroup:tagged",
        "autogroup:it-admin",
        "autogroup:network-admin",
        "autogroup:billing-admin",
        "autogroup:auditor",
    }
)
DESTINATION_AUTOGROUPS = frozenset(
    {"autogroup:internet", "autogroup:self", "autogroup:member", "autogroup:tagged"}
)
_LOGIN = re.compile(r"[^@\s:]+@[^@\s:]+")
_PORT_RANGE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")


class PolicyError(ValueError):
    """The merged policy would be refused by Tailscale or would lock the admins out.

    ``path`` names the user rule at fault (``rules[0].dst[1]``) when there is one.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Rule:
    """An access rule of the user's own, merged after the stack's: ``src`` may reach ``dst``
    (``host:ports`` entries such as ``tag:svc-photos:443``)."""

    src: tuple[str, ...]
    dst: tuple[str, ...]


@dataclass(frozen=True)
class PolicyPiece:
    """What one component asks of the tailnet policy.

    ``tags`` are the tags its devices carry; ``ports`` are what members may reach on them;
    ``reaches`` are ``(tag, port)`` pairs its devices connect to; ``routes`` are CIDRs its
    devices advertise; ``exit_node``, ``funnel`` and ``ssh`` ask for those features.
    """

    owner: str
    tags: tuple[str, ...]
    ports: tuple[int, ...] = ()
    reaches: tuple[tuple[str, int], ...] = ()
    routes: tuple[str, ...] = ()
    exit_node: bool = False
    funnel: bool = False
    ssh: bool = False


@dataclass(frozen=True)
class People:
    """The humans of the tailnet: admins reach everything, members reach the services."""

    admins: Sequence[str]
    members: Sequence[str] = field(default_factory=tuple)


def render_policy(
    people: People, pieces: Iterable[PolicyPiece], rules: Sequence[Rule] = ()
) -> dict[str, Any]:
    """Merge the pieces and the user's rules into one policy document (a plain dict).

    Raises :class:`PolicyError` when Tailscale would refuse the result (a tag nobody owns) or
    when it would lock the admins out.
    """
    pieces = sorted(pieces, key=lambda piece: (piece.owner, piece.tags))
    if not people.admins:
        raise PolicyError("the tailnet needs at least one admin")
    tags = sorted({tag for piece in pieces for tag in piece.tags})
    for piece in pieces:
        for tag, _port in piece.reaches:
            if tag not in tags:
                raise PolicyError(f"{piece.owner} reaches {tag}, which no device carries")
    _check_rules(rules, tags)

    acls: list[dict[str, Any]] = [
        {"action": "accept", "src": [ADMINS], "dst": ["*:*"]},
    ]
    member_dst = sorted(
        {f"{tag}:{port}" for piece in pieces for tag in piece.tags for port in piece.ports}
    )
    if people.members and member_dst:
        acls.append({"action": "accept", "src": [MEMBERS], "dst": member_dst})
    # Devices that carry the same tags share one rule, so no destination is listed twice.
    reaches: dict[tuple[str, ...], set[str]] = {}
    for piece in pieces:
        if piece.reaches:
            reaches.setdefault(piece.tags, set()).update(
                f"{tag}:{port}" for tag, port in piece.reaches
            )
    for src, dst in sorted(reaches.items()):
        acls.append({"action": "accept", "src": list(src), "dst": sorted(dst)})
    acls += [{"action": "accept", "src": list(rule.src), "dst": list(rule.dst)} for rule in rules]

    policy: dict[str, Any] = {
        "groups": {
            ADMINS: sorted(people.admins),
            MEMBERS: sorted(people.members),
        },
        "tagOwners": {tag: [ADMINS] for tag in tags},
        "acls": acls,
    }

    routes = {
        route: sorted({tag for p in pieces if route in p.routes for tag in p.tags})
        for piece in pieces
        for route in piece.routes
    }
    exit_tags = sorted({tag for piece in pieces if piece.exit_node for tag in piece.tags})
    if routes or exit_tags:
        approvers: dict[str, Any] = {}
        if routes:
            approvers["routes"] = dict(sorted(routes.items()))
        if exit_tags:
            approvers["exitNode"] = exit_tags
        policy["autoApprovers"] = approvers

    # Funnel goes to the tags that only public devices carry, so no private device gets it.
    private_tags = {tag for piece in pieces if not piece.funnel for tag in piece.tags}
    funnel_tags = sorted(
        {tag for piece in pieces if piece.funnel for tag in piece.tags} - private_tags
    )
    for piece in pieces:
        if piece.funnel and not set(piece.tags) - private_tags:
            raise PolicyError(
                f"{piece.owner} asks for Funnel but carries no tag of its own: "
                "every tag it has is also on private devices"
            )
    if funnel_tags:
        policy["nodeAttrs"] = [{"target": funnel_tags, "attr": ["funnel"]}]

    ssh_tags = sorted({tag for piece in pieces if piece.ssh for tag in piece.tags})
    if ssh_tags:
        rule: dict[str, Any] = {
            "action": "check",
            "src": [ADMINS],
            "dst": ssh_tags,
            "users": ["autogroup:nonroot", "root"],
        }
        if RECORDER_TAG in tags:
            # Sessions are refused when no recorder can take them, rather than going unrecorded.
            rule["recorder"] = [RECORDER_TAG]
            rule["enforceRecorder"] = True
        policy["ssh"] = [rule]

    policy["tests"] = _tests(people, pieces, tags, rules)
    if ssh_tags:
        policy["sshTests"] = [
            {"src": sorted(people.admins)[0], "dst": ssh_tags, "check": ["root"]},
        ]
    check_lockout(policy)
    return policy


def _check_rules(rules: Sequence[Rule], tags: Sequence[str]) -> None:
    """Every entry of a rule must be one Tailscale accepts, and every tag must be owned."""
    for index, rule in enumerate(rules):
        if not rule.src or not rule.dst:
            raise PolicyError("a rule needs at least one src and one dst", f"rules[{index}]")
        for position, entry in enumerate(rule.src):
            _check_host(entry, tags, SOURCE_AUTOGROUPS, f"rules[{index}].src[{position}]")
        for position, entry in enumerate(rule.dst):
            path = f"rules[{index}].dst[{position}]"
            host, _, ports = entry.rpartition(":")
            if not host or not _ports_valid(ports):
                raise PolicyError(
                    f"{entry!r} is not host:ports (for example tag:svc-photos:443, ports 1-65535, "
                    "a range low-high, or *)",
                    path,
                )
            if _LOGIN.fullmatch(host):
                raise PolicyError(f"{host!r}: a login is a source, not a destination", path)
            _check_host(host, tags, DESTINATION_AUTOGROUPS, path)


def _check_host(entry: str, tags: Sequence[str], autogroups: frozenset[str], path: str) -> None:
    if entry == "*" or _LOGIN.fullmatch(entry):
        return
    if entry.startswith("tag:"):
        if entry not in tags:
            raise PolicyError(
                f"{entry} is not carried by any device of the stack, so no one owns it "
                f"(tags: {', '.join(tags)})",
                path,
            )
        return
    if entry.startswith("group:"):
        if entry not in (ADMINS, MEMBERS):
            raise PolicyError(f"{entry} is not a group of the tailnet ({ADMINS}, {MEMBERS})", path)
        return
    if entry.startswith("autogroup:"):
        if entry not in autogroups:
            raise PolicyError(
                f"{entry} is not an autogroup usable here ({', '.join(sorted(autogroups))})", path
            )
        return
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise PolicyError(
            f"{entry!r} is not a login, group, tag, autogroup, address or * (the policy defines "
            "no host names)",
            path,
        ) from None


def _ports_valid(ports: str) -> bool:
    """``*``, or ports and ranges in ASCII digits, each within 1-65535 and low to high."""
    if ports == "*":
        return True
    for part in ports.split(","):
        match = _PORT_RANGE.fullmatch(part)
        if match is None:
            return False
        first, last = int(match[1]), int(match[2] or match[1])
        if not 1 <= first <= last <= 65535:
            return False
    return True


def check_lockout(policy: dict[str, Any]) -> None:
    """Refuse a policy that would lock the admins out of the tailnet or out of a device."""
    admins = policy.get("groups", {}).get(ADMINS, [])
    if not admins:
        raise PolicyError(f"{ADMINS} is empty: nobody could manage the tailnet")
    if not any(
        ADMINS in rule["src"] and "*:*" in rule["dst"] and rule["action"] == "accept"
        for rule in policy.get("acls", [])
    ):
        raise PolicyError(f"no rule lets {ADMINS} reach every device")
    for tag, owners in policy.get("tagOwners", {}).items():
        if ADMINS not in owners:
            raise PolicyError(f"{tag} is not owned by {ADMINS}: they could not re-tag devices")
    tested = {
        entry.rsplit(":", 1)[0]
        for test in policy.get("tests", [])
        if test["src"] in admins
        for entry in test.get("accept", [])
    }
    untested = sorted(set(policy.get("tagOwners", {})) - tested)
    if untested:
        raise PolicyError(f"no policy test proves the admins reach {', '.join(untested)}")


def _tests(
    people: People, pieces: Sequence[PolicyPiece], tags: Sequence[str], rules: Sequence[Rule]
) -> list[dict]:
    """Tests Tailscale runs before it accepts the policy: the admins keep their access, and
    nobody else reaches more than the stack grants. Where the user's own rules grant more, the
    deny tests leave out the hosts those rules open, and keep the rest."""
    admin = sorted(people.admins)[0]
    reachable = sorted(
        {
            f"{tag}:{port}"
            for piece in pieces
            for tag in piece.tags
            for port in (*piece.ports, *((22,) if piece.ssh or not piece.ports else ()))
        }
    )
    tests: list[dict[str, Any]] = [{"src": admin, "accept": reachable}] if reachable else []

    if people.members:
        # Members reach what the services serve, and never a device's SSH port.
        member = sorted(people.members)[0]
        opened = _opened_by_rules(rules, {MEMBERS, "autogroup:member", member}, tags)
        served = sorted(
            {f"{tag}:{port}" for piece in pieces for tag in piece.tags for port in piece.ports}
        )
        member_test: dict[str, Any] = {"src": member}
        if served:
            member_test["accept"] = served
        denied = [f"{tag}:22" for tag in tags if tag not in opened]
        if denied:
            member_test["deny"] = denied
        tests.append(member_test)

    # A device reaches only what it declares: each kind is denied one port it did not ask for.
    denied_by_source: dict[str, str] = {}
    for piece in pieces:
        if not piece.tags:
            continue
        own = set(piece.tags)
        opened = _opened_by_rules(rules, own, tags)
        declared = {f"{tag}:{port}" for tag, port in piece.reaches}
        undeclared = sorted(
            f"{other.tags[0]}:{port}"
            for other in pieces
            if not own & set(other.tags) and other.tags[0] not in opened
            for port in other.ports
            if f"{other.tags[0]}:{port}" not in declared
        )
        if undeclared:
            denied_by_source.setdefault(piece.tags[0], undeclared[0])
    tests += [{"src": src, "deny": [dst]} for src, dst in sorted(denied_by_source.items())]
    return tests


TAILNET_RANGES = (
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("fd7a:115c:a1e0::/48"),
)
"""The addresses Tailscale gives devices: a rule naming a network that overlaps them may name
any device."""


def _covers_devices(entry: str) -> bool:
    """Whether a rule's source or host stands for any device: ``*``, or an address range that
    overlaps the tailnet's."""
    if entry == "*":
        return True
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return any(network.overlaps(block) for block in TAILNET_RANGES)


def _opened_by_rules(rules: Sequence[Rule], sources: set[str], tags: Sequence[str]) -> set[str]:
    """The tags that the user's rules open to any of ``sources`` (on any port).

    Wildcards count: ``*`` or an address range that overlaps the tailnet's, as a source or a
    host, ``autogroup:tagged`` for tagged sources and ``autogroup:member`` for members. Logins
    compare without case, as Tailscale compares them.
    """
    wanted = {source.lower() for source in sources}

    def applies(rule: Rule) -> bool:
        src = {entry.lower() for entry in rule.src}
        return bool(
            src & wanted
            or any(_covers_devices(entry) for entry in src)
            or ("autogroup:tagged" in src and any(s.startswith("tag:") for s in sources))
        )

    opened: set[str] = set()
    for rule in rules:
        if not applies(rule):
            continue
        for dst in rule.dst:
            host = dst.rpartition(":")[0]
            wide = host == "autogroup:tagged" or _covers_devices(host)
            opened |= set(tags) if wide else {host}
    return opened


def dump_policy(policy: dict[str, Any]) -> str:
    """The policy as the text the Acl resource sends: sorted keys, two-space indent."""
    return json.dumps(policy, indent=2, sort_keys=True) + "\n"
