"""Render the tailnet policy file from what each component needs.

Pure functions: no Pulumi, no I/O. Each component describes its needs as a :class:`PolicyPiece`;
:func:`render_policy` merges the pieces with the people in the tailnet into one document, and
:func:`dump_policy` writes it with sorted keys so the same stack always gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

ADMINS = "group:admins"
MEMBERS = "group:members"
RECORDER_TAG = "tag:recorder"


class PolicyError(ValueError):
    """The merged policy would be refused by Tailscale or would lock the admins out."""


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


def render_policy(people: People, pieces: Iterable[PolicyPiece]) -> dict[str, Any]:
    """Merge the pieces into one policy document (a plain dict)."""
    pieces = sorted(pieces, key=lambda piece: (piece.owner, piece.tags))
    if not people.admins:
        raise PolicyError("the tailnet needs at least one admin")
    tags = sorted({tag for piece in pieces for tag in piece.tags})
    for piece in pieces:
        for tag, _port in piece.reaches:
            if tag not in tags:
                raise PolicyError(f"{piece.owner} reaches {tag}, which no device carries")

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

    policy["tests"] = _tests(people, pieces, tags)
    if ssh_tags:
        policy["sshTests"] = [
            {"src": sorted(people.admins)[0], "dst": ssh_tags, "check": ["root"]},
        ]
    return policy


def _tests(people: People, pieces: Sequence[PolicyPiece], tags: Sequence[str]) -> list[dict]:
    """Tests Tailscale runs before it accepts the policy: the admins keep their access."""
    admin = sorted(people.admins)[0]
    reachable = sorted(
        {
            f"{tag}:{port}"
            for piece in pieces
            for tag in piece.tags
            for port in (piece.ports or (22,))
        }
    )
    tests: list[dict[str, Any]] = [{"src": admin, "accept": reachable}] if reachable else []
    if people.members:
        member = sorted(people.members)[0]
        served = {tag for piece in pieces if piece.ports for tag in piece.tags}
        denied = sorted(f"{tag}:22" for tag in tags if tag not in served)
        if denied:
            tests.append({"src": member, "deny": denied})
    return tests


def dump_policy(policy: dict[str, Any]) -> str:
    """The policy as the text the Acl resource sends: sorted keys, two-space indent."""
    return json.dumps(policy, indent=2, sort_keys=True) + "\n"
