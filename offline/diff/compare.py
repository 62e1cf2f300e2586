"""Comparing the resources and values of two plans, and what is at stake for stored data.

Identity is the URN. A resource whose URN is in one plan only is added or removed; a rename
without ``aliases`` is therefore a removal and an addition, as Pulumi itself sees it, and
:func:`find_renames` points out an added resource that looks like a removed one (same type, and
the same name or the same inputs once the names are swapped).

Whether a changed input replaces a resource is the provider's decision, which the plans do not
carry. For the types in :data:`STATEFUL_TYPES` this module knows, from the providers' schemas,
which inputs force a new resource; for any other resource that is protected or retained on
delete it cannot know, and :func:`data_warnings` says so. A new ``aws:region`` replaces every
AWS resource.

Every :class:`Change` and :class:`ResourceDiff` is redacted already: it is what the report shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from offline.diff.redact import REDACTED, redact_name, redact_text, secret_child
from offline.diff.text import code, safe

STATEFUL_TYPES: dict[str, tuple[str, ...]] = {
    # Docker volumes have no update at all: every input forces a new, empty volume.
    "docker:index/volume:Volume": ("*",),
    "aws:ebs/volume:Volume": (
        "availabilityZone",
        "encrypted",
        "kmsKeyId",
        "multiAttachEnabled",
        "outpostArn",
        "snapshotId",
    ),
    # Both tokens are Terraform's aws_s3_bucket; BucketV2 is pulumi-aws 6's name for it.
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix", "objectLockEnabled"),
    "aws:s3/bucketV2:BucketV2": ("bucket", "bucketPrefix", "objectLockEnabled"),
}
"""Resource types that hold data, with the inputs that replace them when changed ("*": all).
Any other resource with ``protect`` or ``retainOnDelete`` counts as stateful too."""

REGION_KEY = "aws:region"
"""Provider config that moves every AWS resource: a new region replaces them all."""

# A property path as the report writes it: tags.Name, envs[2], labels["a.b"].
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH_PART = re.compile(r'\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\.?([^.\[]+)')


class _Missing:
    def __repr__(self) -> str:
        return "(none)"


MISSING: Any = _Missing()
"""The value of a property one side does not have."""


@dataclass(frozen=True)
class Change:
    """One property (or resource option) that differs between the two plans.

    ``path``, ``before`` and ``after`` are already redacted: they are what the report shows.
    """

    path: str
    before: Any
    after: Any
    secret: bool = False
    replaces: bool = False
    """The provider replaces the resource when this input changes (stateful types only)."""
    ignored: bool = False
    """Under the resource's ``ignoreChanges``: Pulumi will not apply it."""


@dataclass(frozen=True)
class ResourceDiff:
    """A resource that is added, removed or changed (URN, type and name redacted)."""

    urn: str
    type: str
    name: str
    kind: str
    """``added``, ``removed`` or ``changed``."""
    changes: tuple[Change, ...] = ()
    stateful: bool = False
    known_replacements: bool = False
    """Whether this module knows which inputs of the type force replacement."""
    protect: bool = False
    retain: bool = False
    custom: bool = True
    renamed: str | None = None
    """For a removed resource: the added one it looks like (its name)."""

    @property
    def replaced(self) -> bool:
        return any(c.replaces and not c.ignored for c in self.changes)


@dataclass(frozen=True)
class DataWarning:
    """A stateful resource whose data is at stake."""

    resource: ResourceDiff
    message: str


# --- values ----------------------------------------------------------------------------------


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"


def path_order(path: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key of a property path: list indices as numbers (``envs[2]`` before ``envs[10]``)."""
    parts = []
    for index, quoted, name in _PATH_PART.findall(path):
        if index:
            parts.append((0, int(index), ""))
        else:
            parts.append((1, 0, quoted or name))
    return tuple(parts)


@dataclass(frozen=True)
class _Leaf:
    path: str
    """The path as the report shows it (keys redacted)."""
    value: Any
    secret: bool
    """Below a secret key: the whole value is a secret."""


def _leaves(
    value: Any, path: str = "", shown: str = "", secret: bool = False
) -> Iterator[tuple[str, _Leaf]]:
    """``(path, leaf)`` for every leaf; empty objects and lists are leaves too. ``path`` is
    the real path (identity), the leaf's the one to show."""
    if isinstance(value, dict) and value:
        for key in sorted(value):
            shown_key = redact_name(key)
            child_secret = secret or secret_child(value, key) or shown_key != key
            yield from _leaves(value[key], _path(path, key), _path(shown, shown_key), child_secret)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, _path(path, index), _path(shown, index), secret)
    elif path or not isinstance(value, (dict, list)):
        yield path, _Leaf(shown, value, secret)


def top_key(path: str) -> str:
    """The input or output a property path is under: ``envs`` of ``envs[2]``."""
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _ignored(path: str, ignore_changes: Sequence[str]) -> bool:
    return any(
        path == entry or path.startswith((f"{entry}.", f"{entry}[")) for entry in ignore_changes
    )


def _display(value: Any, secret: bool) -> tuple[Any, bool]:
    """A leaf's value as the report shows it, and whether it is (or holds) a secret."""
    if value is MISSING:
        return value, False
    if secret:
        return REDACTED, True
    if isinstance(value, str):
        shown = redact_text(value)
        return shown, shown != value or value == REDACTED
    return value, False


def compare_values(
    before: Any,
    after: Any,
    *,
    replace_keys: Sequence[str] = (),
    ignore_changes: Sequence[str] = (),
) -> tuple[Change, ...]:
    """The leaves that differ between two input (or output) trees, redacted for showing."""
    missing = _Leaf("", MISSING, False)
    old = dict(_leaves(before))
    new = dict(_leaves(after))
    changes = []
    for path in sorted(old.keys() | new.keys(), key=path_order):
        was, now = old.get(path, missing), new.get(path, missing)
        if was.value == now.value and type(was.value) is type(now.value):
            continue
        shown_before, secret_before = _display(was.value, was.secret)
        shown_after, secret_after = _display(now.value, now.secret)
        changes.append(
            Change(
                path=(now if now is not missing else was).path,
                before=shown_before,
                after=shown_after,
                secret=secret_before or secret_after,
                replaces="*" in replace_keys or top_key(path) in replace_keys,
                ignored=_ignored(path, ignore_changes),
            )
        )
    return tuple(changes)


# --- resources -------------------------------------------------------------------------------


def _option_changes(base: dict[str, Any], head: dict[str, Any]) -> list[Change]:
    changes = []
    for option in ("protect", "retainOnDelete", "ignoreChanges"):
        was, now = base.get(option), head.get(option)
        if option == "ignoreChanges":
            was, now = sorted(map(safe, was or [])), sorted(map(safe, now or []))
        else:
            was, now = bool(was), bool(now)
        if was != now:
            changes.append(Change(path=f"[{option}]", before=was, after=now))
    return changes


SCRATCH_VOLUME_SUFFIXES = ("-tailscale-socket", "-certs")
"""Docker volumes a sidecar service keeps nothing of value in: tailscaled's socket, and the
certificates its renewer fetches again. The policy pack names the same ones."""


def is_stateful(resource: dict[str, Any]) -> bool:
    """A resource that holds data: a type of :data:`STATEFUL_TYPES` (but a scratch Docker
    volume), or protected, or retained on delete."""
    if resource.get("protect") or resource.get("retainOnDelete"):
        return True
    if resource["type"] == "docker:index/volume:Volume":
        name = resource.get("inputs", {}).get("name")
        return not (isinstance(name, str) and name.endswith(SCRATCH_VOLUME_SUFFIXES))
    return resource["type"] in STATEFUL_TYPES


def resource_diff(
    kind: str,
    base: dict[str, Any] | None,
    head: dict[str, Any] | None,
    region: tuple[str, str] | None = None,
) -> ResourceDiff:
    """One resource of either plan or both, its changes redacted; ``region`` is ``(old, new)``
    when the AWS region changes, which replaces every AWS resource."""
    either = head if head is not None else base
    if either is None:
        raise ValueError("a resource diff needs at least one side")
    replace_keys = STATEFUL_TYPES.get(either["type"], ())
    if base is not None and head is not None:
        changes = [
            *compare_values(
                base.get("inputs", {}),
                head.get("inputs", {}),
                replace_keys=replace_keys,
                ignore_changes=head.get("ignoreChanges") or [],
            ),
            *_option_changes(base, head),
        ]
        if region is not None and moves_with_region(either):
            changes.append(Change(f"[{REGION_KEY}]", region[0], region[1], replaces=True))
    elif kind == "added":
        changes = list(compare_values({}, either.get("inputs", {})))
    else:
        changes = list(compare_values(either.get("inputs", {}), {}))
    return ResourceDiff(
        urn=safe(either["urn"], 300),
        type=safe(either["type"]),
        name=safe(either["name"]),
        kind=kind,
        changes=tuple(changes),
        stateful=is_stateful(either) or (base is not None and is_stateful(base)),
        known_replacements=either["type"] in STATEFUL_TYPES,
        protect=bool(either.get("protect")),
        retain=bool(either.get("retainOnDelete")),
        custom=either.get("custom", True) is not False,
    )


def moves_with_region(resource: dict[str, Any]) -> bool:
    """An AWS resource (or the AWS provider) that a new region replaces."""
    return resource.get("custom", True) is not False and resource["type"].startswith(
        ("aws:", "pulumi:providers:aws")
    )


# --- renames ---------------------------------------------------------------------------------


def _inputs_text(resource: ResourceDiff) -> str:
    side = "after" if resource.kind == "added" else "before"
    return json.dumps(
        [(c.path, getattr(c, side)) for c in resource.changes], sort_keys=True, default=str
    )


def _name_parts(old: str, new: str) -> tuple[str, str]:
    """The parts of two names that differ, their common prefix and suffix (on ``-``) taken
    away: ``quiz-volume-data`` and ``trivia-volume-data`` give ``quiz`` and ``trivia``."""
    a, b = old.split("-"), new.split("-")
    while len(a) > 1 and len(b) > 1 and a[-1] == b[-1]:
        a, b = a[:-1], b[:-1]
    while len(a) > 1 and len(b) > 1 and a[0] == b[0]:
        a, b = a[1:], b[1:]
    return "-".join(a), "-".join(b)


def _looks_renamed(removed: ResourceDiff, added: ResourceDiff) -> bool:
    """Same type, and the same name (a new parent) or the same inputs with the names swapped."""
    if removed.type != added.type:
        return False
    if removed.name == added.name:
        return True
    if not removed.changes:
        return False
    old_part, new_part = _name_parts(removed.name, added.name)
    old_inputs, new_inputs = _inputs_text(removed), _inputs_text(added)
    if old_inputs == new_inputs:
        return True
    return len(old_part) >= 2 and old_inputs.replace(old_part, new_part) == new_inputs


def find_renames(
    removed: Sequence[ResourceDiff], added: Sequence[ResourceDiff]
) -> dict[str, ResourceDiff]:
    """Removed URN to the added resource that looks like it renamed or moved, one to one."""
    taken: set[str] = set()
    renames = {}
    for resource in removed:
        for candidate in added:
            if candidate.urn not in taken and _looks_renamed(resource, candidate):
                renames[resource.urn] = candidate
                taken.add(candidate.urn)
                break
    return renames


# --- stored data at stake --------------------------------------------------------------------


def _protected_note(resource: ResourceDiff) -> str:
    return (
        "; it is protected, so `pulumi up` will stop at it until it is unprotected"
        if resource.protect
        else ""
    )


def data_warnings(
    changed: Sequence[ResourceDiff],
    removed: Sequence[ResourceDiff],
    renames: dict[str, ResourceDiff],
    region: tuple[str, str] | None,
) -> list[DataWarning]:
    """What happens to the data of each stateful resource that is removed or changed: deleted,
    replaced (empty), perhaps replaced, or no longer protected or retained."""
    warnings = []
    for resource in removed:
        if not resource.stateful:
            continue
        if resource.protect:
            fate = (
                "**removed**: it is protected, so `pulumi up` will stop at it until it is "
                "unprotected"
            )
        elif resource.retain:
            fate = "**removed**: Pulumi forgets it; the data stays in place (retained on delete)"
        else:
            fate = "**removed and deleted with its data**"
        twin = renames.get(resource.urn)
        if twin is not None:
            fate += (
                f"; {code(twin.name)} is added in its place: if it was renamed or moved, give "
                "it `aliases` so Pulumi keeps the existing one"
            )
        warnings.append(DataWarning(resource, fate))
    for resource in changed:
        if not resource.stateful:
            continue
        inputs = [c for c in resource.changes if not c.path.startswith("[") and not c.ignored]
        options = {c.path: c for c in resource.changes if c.path.startswith("[")}
        retained = " (the old one is retained)" if resource.retain else ""
        if region is not None and f"[{REGION_KEY}]" in options:
            warnings.append(
                DataWarning(
                    resource,
                    f"**replaced**: it moves to {code(region[1])}, where the new one starts "
                    f"empty; the data stays in {code(region[0])}{retained}"
                    + _protected_note(resource),
                )
            )
        elif resource.replaced:
            forcing = sorted({top_key(c.path) for c in inputs if c.replaces})
            warnings.append(
                DataWarning(
                    resource,
                    "**replaced**: "
                    + ", ".join(code(key) for key in forcing)
                    + " cannot change in place; the new one starts empty"
                    + retained
                    + _protected_note(resource),
                )
            )
        elif inputs and not resource.known_replacements:
            warnings.append(
                DataWarning(
                    resource,
                    "**may be replaced**: its inputs change and the offline diff does not know "
                    "which inputs of this type force a new resource; check `pulumi preview`",
                )
            )
        for option, word in (("[protect]", "protection"), ("[retainOnDelete]", "retainOnDelete")):
            change = options.get(option)
            if change is not None and change.before and not change.after:
                warnings.append(DataWarning(resource, f"**loses {word}**"))
    return warnings
