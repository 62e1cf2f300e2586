"""Compare the offline plans of two revisions and write what changes as markdown.

``python -m offline.diff BASE.json HEAD.json`` reads two plans written by
``python -m offline --json`` (the base branch's and the pull request's) and prints a markdown
report for a pull-request comment: resources added, removed and changed with the properties
that changed, stateful resources that would be replaced or removed, the stack outputs that
change, and the monthly cost before and after. Everything here is pure: plans in, text out.

What an offline diff can know, and what it cannot:

- Identity is the URN. A resource whose URN is in one plan only is added or removed; a rename
  without ``aliases`` is therefore a removal and an addition, as Pulumi itself sees it.
- Whether a changed input replaces a resource is the provider's decision, which the plans do
  not carry. For the stateful types in :data:`STATEFUL_TYPES` this module knows, from the
  providers' schemas, which inputs force a new resource; for any other resource that is
  protected or retained on delete it cannot know, and says so.
- Secrets never reach the report: a value the program marked secret is ``[secret]`` in the plan
  already; values under secret-looking keys (``password``, ``clientSecret``, ``TS_AUTHKEY=...``)
  and values that look like credentials (``tskey-...``, private keys, the offline placeholders)
  are redacted again here, in case a plan was written without redaction.
"""

from __future__ import annotations

import argparse
import difflib
import html
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = "<!-- homelab-plan-diff -->"
"""First line of every report: the pull-request comment is found again by it and updated."""
COMMENT_LIMIT = 65_536
"""GitHub refuses a comment body longer than this many characters. Reports are measured in
UTF-8 bytes, which are never fewer than characters, so a report within the limit always fits."""
REDACTED = "[secret]"

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

# Key names whose values are secrets, compared without case and separators, by their ending:
# DB_PASSWORD, clientSecret, TS_AUTHKEY, apiKey. Not "httpTokens", not "keyExpiryDays".
_SECRET_KEY_ENDINGS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "authkey",
    "privatekey",
    "secretkey",
    "accesskey",
    "credentials",
)
# Values that are credentials wherever they appear.
_SECRET_VALUE = re.compile(
    r"tskey-[A-Za-z0-9-]+"  # Tailscale auth keys, OAuth client secrets and API keys
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\bgh[opsur]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|offline-placeholder-for-"  # what the offline plan stands in for a real secret
)
_ENV_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

VALUE_WIDTH = 200
"""Characters of a value shown on one line of a report; longer values are cut."""
TEXT_LINES = 60
"""Lines of a multi-line value's diff shown per property."""
BLOCK_LINES = 150
"""Lines shown per resource."""
HOURS_PER_MONTH = 730


class PlanError(Exception):
    """A plan file cannot be read or is not an offline plan."""


# --- secrets ---------------------------------------------------------------------------------


def secret_key(name: str) -> bool:
    """Whether a property or variable of this name holds a secret."""
    normalized = re.sub(r"[^a-z0-9]", "", name.lower())
    return normalized.endswith(_SECRET_KEY_ENDINGS)


def redact_text(text: str) -> str:
    """A string as a report may show it: credentials and secret assignments redacted."""
    if text == REDACTED or _SECRET_VALUE.search(text):
        return REDACTED
    assignment = _ENV_ASSIGNMENT.match(text)
    if assignment and "\n" not in text and secret_key(assignment[1]):
        return f"{assignment[1]}={REDACTED}"
    return text


def redact(value: Any, *, under_secret_key: bool = False) -> Any:
    """``value`` with everything secret replaced by ``[secret]``, at any depth."""
    if under_secret_key:
        return REDACTED
    if isinstance(value, dict):
        return {key: redact(item, under_secret_key=secret_key(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


# --- reading plans ---------------------------------------------------------------------------


def read_plan(path: Path) -> dict[str, Any]:
    """A plan file, checked to be an offline plan, or one :class:`PlanError` that names it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise PlanError(f"{path} is a directory, not a plan file") from None
    except UnicodeDecodeError:
        raise PlanError(f"{path} is not UTF-8 text") from None
    except OSError as error:
        raise PlanError(f"{path} cannot be read: {error.strerror}") from None
    try:
        plan = json.loads(text)
    except json.JSONDecodeError as error:
        raise PlanError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    except RecursionError:
        raise PlanError(f"{path} nests deeper than a plan can") from None
    check_plan(plan, str(path))
    return plan


def check_plan(plan: Any, name: str) -> None:
    """Raise :class:`PlanError` unless ``plan`` has the shape ``python -m offline --json``
    writes."""
    what = f"{name} is not an offline plan (python -m offline --json)"
    if not isinstance(plan, dict):
        raise PlanError(f"{what}: expected a JSON object")
    resources = plan.get("resources")
    if not isinstance(resources, list):
        raise PlanError(f"{what}: it has no resources list")
    seen: set[str] = set()
    for index, resource in enumerate(resources):
        where = f"{what}: resources[{index}]"
        if not isinstance(resource, dict):
            raise PlanError(f"{where} is not an object")
        for key in ("urn", "type", "name"):
            if not isinstance(resource.get(key), str):
                raise PlanError(f"{where} has no {key}")
        if not isinstance(resource.get("inputs", {}), dict):
            raise PlanError(f"{where}: inputs is not an object")
        if resource["urn"] in seen:
            raise PlanError(f"{where}: URN {resource['urn']} appears twice")
        seen.add(resource["urn"])
    if not isinstance(plan.get("outputs", {}), dict):
        raise PlanError(f"{what}: outputs is not an object")


# --- comparing -------------------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "(none)"


MISSING: Any = _Missing()
"""The value of a property one side does not have."""


@dataclass(frozen=True)
class Change:
    """One property (or resource option) that differs between the two plans."""

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
    """A resource that is added, removed or changed."""

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

    @property
    def replaced(self) -> bool:
        return any(c.replaces and not c.ignored for c in self.changes)


@dataclass(frozen=True)
class DataWarning:
    """A stateful resource whose data is at stake."""

    resource: ResourceDiff
    message: str


@dataclass(frozen=True)
class CostRow:
    label: str
    before: float | None
    after: float | None
    unit: str


@dataclass(frozen=True)
class PlanDiff:
    """Everything that differs between a base plan and a head plan."""

    stack: str
    added: tuple[ResourceDiff, ...]
    removed: tuple[ResourceDiff, ...]
    changed: tuple[ResourceDiff, ...]
    unchanged: int
    outputs: tuple[Change, ...]
    warnings: tuple[DataWarning, ...]
    costs: tuple[CostRow, ...]
    price_date: str | None
    notes: tuple[str, ...] = field(default=())

    @property
    def resources(self) -> tuple[ResourceDiff, ...]:
        return self.added + self.changed + self.removed

    @property
    def empty(self) -> bool:
        return not (self.resources or self.outputs)


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key)}]"


def _leaves(value: Any, path: str = "", secret: bool = False) -> Iterator[tuple[str, Any, bool]]:
    """``(path, value, secret)`` for every leaf; empty objects and lists are leaves too.

    ``secret`` is true below a key whose name says secret, whatever the value looks like.
    """
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from _leaves(value[key], _path(path, key), secret or secret_key(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, _path(path, index), secret)
    elif path or not isinstance(value, (dict, list)):
        shows_secret = isinstance(value, str) and (value == REDACTED or redact_text(value) != value)
        yield path, value, secret or shows_secret


def _top(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _ignored(path: str, ignore_changes: Sequence[str]) -> bool:
    return any(
        path == entry or path.startswith((f"{entry}.", f"{entry}["))
        for entry in ignore_changes
        if isinstance(entry, str)
    )


def compare_values(
    before: Any,
    after: Any,
    *,
    replace_keys: Sequence[str] = (),
    ignore_changes: Sequence[str] = (),
) -> tuple[Change, ...]:
    """The leaves that differ between two input (or output) trees, secrets marked."""
    old = {path: (value, secret) for path, value, secret in _leaves(before)}
    new = {path: (value, secret) for path, value, secret in _leaves(after)}
    changes = []
    for path in sorted(old.keys() | new.keys()):
        was, was_secret = old.get(path, (MISSING, False))
        now, now_secret = new.get(path, (MISSING, False))
        if was == now:
            continue
        changes.append(
            Change(
                path=path,
                before=was,
                after=now,
                secret=was_secret or now_secret,
                replaces="*" in replace_keys or _top(path) in replace_keys,
                ignored=_ignored(path, ignore_changes),
            )
        )
    return tuple(changes)


def _option_changes(base: dict[str, Any], head: dict[str, Any]) -> list[Change]:
    changes = []
    for option in ("protect", "retainOnDelete", "ignoreChanges"):
        was, now = base.get(option), head.get(option)
        if option == "ignoreChanges":
            was, now = sorted(was or []), sorted(now or [])
        else:
            was, now = bool(was), bool(now)
        if was != now:
            changes.append(Change(path=f"[{option}]", before=was, after=now))
    return changes


def is_stateful(resource: dict[str, Any]) -> bool:
    """A resource that holds data: a type of :data:`STATEFUL_TYPES`, or protected, or
    retained on delete."""
    return (
        resource["type"] in STATEFUL_TYPES
        or bool(resource.get("protect"))
        or bool(resource.get("retainOnDelete"))
    )


def _resource_diff(
    kind: str, base: dict[str, Any] | None, head: dict[str, Any] | None
) -> ResourceDiff:
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
    elif kind == "added":
        changes = list(compare_values({}, either.get("inputs", {})))
    else:
        changes = list(compare_values(either.get("inputs", {}), {}))
    return ResourceDiff(
        urn=either["urn"],
        type=either["type"],
        name=either["name"],
        kind=kind,
        changes=tuple(changes),
        stateful=is_stateful(either) or (base is not None and is_stateful(base)),
        known_replacements=either["type"] in STATEFUL_TYPES,
        protect=bool(either.get("protect")),
        retain=bool(either.get("retainOnDelete")),
    )


def _inputs_of(resource: ResourceDiff) -> tuple[tuple[str, str], ...]:
    side = "after" if resource.kind == "added" else "before"
    return tuple((c.path, json.dumps(getattr(c, side), sort_keys=True)) for c in resource.changes)


def _renamed_to(resource: ResourceDiff, added: Sequence[ResourceDiff]) -> ResourceDiff | None:
    """An added resource that looks like ``resource`` moved to a new URN: same type, and the
    same name (a new parent) or the same inputs (a new name)."""
    for candidate in added:
        if candidate.type == resource.type and (
            candidate.name == resource.name or _inputs_of(candidate) == _inputs_of(resource)
        ):
            return candidate
    return None


def _warnings(
    changed: Sequence[ResourceDiff], removed: Sequence[ResourceDiff], added: Sequence[ResourceDiff]
) -> list[DataWarning]:
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
        twin = _renamed_to(resource, added)
        if twin is not None:
            fate += (
                f"; {_code(twin.name)} is added in its place: if it was renamed or moved, give "
                "it `aliases` so Pulumi keeps the existing one"
            )
        warnings.append(DataWarning(resource, fate))
    for resource in changed:
        if not resource.stateful:
            continue
        inputs = [c for c in resource.changes if not c.path.startswith("[") and not c.ignored]
        options = {c.path: c for c in resource.changes if c.path.startswith("[")}
        if resource.replaced:
            forcing = sorted({_top(c.path) for c in inputs if c.replaces})
            warnings.append(
                DataWarning(
                    resource,
                    "**replaced**: "
                    + ", ".join(f"`{key}`" for key in forcing)
                    + " cannot change in place; the new one starts empty"
                    + (" (the old one is retained)" if resource.retain else ""),
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


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _cost_figures(costs: Any) -> dict[str, float | None]:
    """The figures a reviewer compares, from a plan's ``costs`` output (None: not priced)."""
    if not isinstance(costs, dict):
        return {}
    router = costs.get("router") if isinstance(costs.get("router"), dict) else None
    workers = costs.get("workers") if isinstance(costs.get("workers"), dict) else {}
    nat = costs.get("natGatewayInstead")
    figures: dict[str, float | None] = {}
    figures["router"] = _number(router.get("monthlyUsd")) if router else None
    storage = 0.0
    hourly = 0.0
    priced = router is not None
    for name in sorted(workers):
        worker = workers[name] if isinstance(workers[name], dict) else {}
        running = _number(worker.get("runningHourlyUsd"))
        # What a worker costs while it does not run: its models in S3 when parked
        # (parkedMonthlyUsd), its volumes in plans of the earlier design (storageMonthlyUsd).
        stored = _number(worker.get("parkedMonthlyUsd", worker.get("storageMonthlyUsd")))
        figures[f"worker {name}"] = running
        if running is None or stored is None:
            priced = False
            continue
        storage += stored
        hourly += running
    figures["volumes"] = storage if priced else None
    figures["idle"] = (figures["router"] or 0.0) + storage if priced else None
    figures["gpu"] = hourly if priced and workers else (0.0 if priced else None)
    figures["nat"] = _number(nat.get("monthlyUsd")) if isinstance(nat, dict) else None
    return figures


def compare_costs(base: Any, head: Any) -> tuple[CostRow, ...]:
    """Rows of the cost table: what the stack costs before and after the change."""
    old, new = _cost_figures(base), _cost_figures(head)
    if not old and not new:
        return ()
    rows = [
        CostRow("every month, workers parked", old.get("idle"), new.get("idle"), "month"),
        CostRow("subnet router, always on", old.get("router"), new.get("router"), "month"),
        CostRow("workers parked (their models)", old.get("volumes"), new.get("volumes"), "month"),
        CostRow("all workers running", old.get("gpu"), new.get("gpu"), "hour"),
    ]
    workers = sorted({k for k in old.keys() | new.keys() if k.startswith("worker ")})
    for key in workers:
        # A worker only one plan has costs nothing in the other, if that plan is priced.
        before = old.get(key, 0.0 if old.get("idle") is not None else None)
        after = new.get(key, 0.0 if new.get("idle") is not None else None)
        rows.append(CostRow(f"{key}, running", before, after, "hour"))
    rows.append(
        CostRow("a NAT gateway instead (not built)", old.get("nat"), new.get("nat"), "month")
    )
    return tuple(rows)


def diff_plans(base: dict[str, Any], head: dict[str, Any]) -> PlanDiff:
    """Compare two offline plans (both checked with :func:`check_plan`)."""
    old = {r["urn"]: r for r in base["resources"]}
    new = {r["urn"]: r for r in head["resources"]}
    added = tuple(_resource_diff("added", None, new[urn]) for urn in sorted(new.keys() - old))
    removed = tuple(_resource_diff("removed", old[urn], None) for urn in sorted(old.keys() - new))
    changed = []
    unchanged = 0
    for urn in sorted(old.keys() & new.keys()):
        resource = _resource_diff("changed", old[urn], new[urn])
        if resource.changes:
            changed.append(resource)
        else:
            unchanged += 1
    base_outputs = base.get("outputs", {})
    head_outputs = head.get("outputs", {})
    notes = []
    if base.get("stack") != head.get("stack"):
        notes.append(
            f"The plans are of different stacks: {base.get('stack')} and {head.get('stack')}."
        )
    if base.get("mode") != head.get("mode"):
        notes.append(
            f"The plans were made in different modes: {base.get('mode')} and {head.get('mode')}."
        )
    base_costs = base_outputs.get("costs")
    head_costs = head_outputs.get("costs")
    price_date = next(
        (c.get("priceDate") for c in (head_costs, base_costs) if isinstance(c, dict)), None
    )
    return PlanDiff(
        stack=str(head.get("stack") or base.get("stack") or "?"),
        added=added,
        removed=removed,
        changed=tuple(changed),
        unchanged=unchanged,
        outputs=compare_values(base_outputs, head_outputs),
        warnings=tuple(_warnings(changed, removed, added)),
        costs=compare_costs(base_costs, head_costs),
        price_date=price_date if isinstance(price_date, str) else None,
        notes=tuple(notes),
    )


# --- markdown --------------------------------------------------------------------------------


def size(text: str) -> int:
    """The length a comment limit is checked against (UTF-8 bytes, never fewer than
    characters)."""
    return len(text.encode("utf-8"))


def _code(text: str) -> str:
    """Inline markdown code that holds any text (backticks included)."""
    text = text.replace("\n", " ")
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _html_code(text: str) -> str:
    return f"<code>{html.escape(text, quote=False)}</code>"


def _fenced(lines: Sequence[str], language: str = "diff") -> list[str]:
    run = max((len(m) for line in lines for m in re.findall(r"`{3,}", line)), default=2)
    fence = "`" * max(3, run + 1)
    return [f"{fence}{language}", *lines, fence]


def _shown(value: Any, secret: bool) -> str:
    """One value on one line, as the report shows it: redacted, quoted, cut to width."""
    if value is MISSING:
        return "(none)"
    if secret:
        shown = redact_text(value) if isinstance(value, str) else REDACTED
        value = shown if shown != value else REDACTED
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."


def _multiline(change: Change) -> bool:
    return (
        not change.secret
        and isinstance(change.before, str)
        and isinstance(change.after, str)
        and ("\n" in change.before or "\n" in change.after)
    )


def _change_lines(change: Change) -> list[str]:
    notes = []
    if change.replaces and not change.ignored:
        notes.append("forces replacement")
    if change.ignored:
        notes.append("ignored: ignoreChanges")
    if change.secret:
        notes.append("secret")
    note = f"  # {', '.join(notes)}" if notes else ""
    if _multiline(change):
        text = list(
            difflib.unified_diff(
                change.before.splitlines(), change.after.splitlines(), lineterm="", n=1
            )
        )[2:]
        shown = [
            (f"      {line}" if line.startswith("@@") else f"{line[:1]}     {line[1:]}")[
                : VALUE_WIDTH + 6
            ]
            for line in text
        ]
        if len(shown) > TEXT_LINES:
            shown = [*shown[:TEXT_LINES], f"      ... {len(shown) - TEXT_LINES} more lines"]
        return [f"~ {change.path} (text){note}", *shown]
    lines = []
    if change.before is not MISSING:
        lines.append(f"- {change.path}: {_shown(change.before, change.secret)}")
    if change.after is not MISSING:
        lines.append(f"+ {change.path}: {_shown(change.after, change.secret)}")
    lines[-1] += note
    return lines


_KIND_SIGN = {"added": "+", "changed": "~", "removed": "-"}


def _flags(resource: ResourceDiff) -> str:
    flags = [
        flag
        for flag, on in (
            ("replaced", resource.replaced),
            ("stateful", resource.stateful),
            ("protected", resource.protect),
            ("retained", resource.retain),
        )
        if on
    ]
    return f" [{', '.join(flags)}]" if flags else ""


def _details(summary: str, lines: Sequence[str]) -> str:
    if len(lines) > BLOCK_LINES:
        lines = [*lines[:BLOCK_LINES], f"# ... {len(lines) - BLOCK_LINES} more lines"]
    return "\n".join(
        [f"<details><summary>{summary}</summary>", "", *_fenced(lines), "", "</details>", ""]
    )


def _resource_block(resource: ResourceDiff) -> str:
    count = len(resource.changes)
    what = {"added": "input", "removed": "input", "changed": "change"}[resource.kind]
    summary = (
        f"{_KIND_SIGN[resource.kind]} {_html_code(resource.name)} {_html_code(resource.type)}: "
        f"{resource.kind}, {count} {what}{'' if count == 1 else 's'}"
        f"{html.escape(_flags(resource), quote=False)}"
    )
    lines = [f"# {resource.urn}"]
    for change in resource.changes:
        lines += _change_lines(change)
    return _details(summary, lines)


def _outputs_block(outputs: Sequence[Change], resources: Sequence[ResourceDiff]) -> str:
    # A text output is often an input too (the policy file): its diff is shown once.
    texts = {
        (c.before, c.after): f"{c.path} of {r.name}"
        for r in resources
        for c in r.changes
        if _multiline(c)
    }
    lines = []
    for change in outputs:
        same = texts.get((change.before, change.after)) if _multiline(change) else None
        if same is not None:
            lines.append(f"~ {change.path} (text): the same change as {same}")
        else:
            lines += _change_lines(change)
    count = len({_top(c.path) for c in outputs})
    return _details(f"~ stack outputs: {count} changed", lines)


def _money(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.3f}/{unit}" if unit == "hour" else f"${value:,.2f}/{unit}"


def _delta(before: float | None, after: float | None, unit: str) -> str:
    if before is None or after is None:
        return "n/a"
    delta = round(after - before, 3 if unit == "hour" else 2)
    if delta == 0:
        return "no change"
    sign = "+" if delta > 0 else "-"
    amount = f"{abs(delta):,.3f}" if unit == "hour" else f"{abs(delta):,.2f}"
    return f"**{sign}${amount}/{unit}**"


def _cost_section(diff: PlanDiff) -> list[str]:
    lines = ["#### Estimated AWS cost", ""]
    if not diff.costs:
        return [*lines, "Neither plan has cost data (a stack without `homelab:aws`).", ""]
    lines += [
        "| estimate | base | head | change |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in diff.costs:
        lines.append(
            f"| {row.label} | {_money(row.before, row.unit)} | {_money(row.after, row.unit)} "
            f"| {_delta(row.before, row.after, row.unit)} |"
        )
    source = f"prices of {diff.price_date}, " if diff.price_date else ""
    lines += [
        "",
        f"From the plans' `costs` output ({source}`components/aws/prices.json`); a worker "
        f"that ran all month would cost {HOURS_PER_MONTH} times its hourly figure.",
        "",
    ]
    return lines


def _warning_lines(warnings: Sequence[DataWarning], shown: int) -> list[str]:
    if not warnings:
        return []
    lines = [
        "> [!CAUTION]",
        f"> **{len(warnings)} change{'' if len(warnings) == 1 else 's'} put stored data at "
        "stake.**",
    ]
    for warning in warnings[:shown]:
        resource = warning.resource
        lines.append(f"> - {_code(resource.name)} ({_code(resource.type)}): {warning.message}")
    if len(warnings) > shown:
        lines.append(f"> - and {len(warnings) - shown} more, not shown to keep this comment short")
    return [*lines, ""]


def _summary_section(diff: PlanDiff) -> list[str]:
    by_type: dict[str, list[int]] = {}
    for index, group in enumerate((diff.added, diff.changed, diff.removed)):
        for resource in group:
            by_type.setdefault(resource.type, [0, 0, 0])[index] += 1
    replaced = sum(1 for r in diff.changed if r.replaced)
    lines = ["#### Resources", ""]
    if not by_type:
        return [*lines, f"No resource changes ({diff.unchanged} unchanged).", ""]
    lines += ["| type | add | change | remove |", "| --- | ---: | ---: | ---: |"]
    for type_, (add, change, remove) in sorted(by_type.items()):
        lines.append(f"| {_code(type_)} | {add} | {change} | {remove} |")
    lines += [
        f"| **total** | **{len(diff.added)}** | **{len(diff.changed)}** "
        f"| **{len(diff.removed)}** |",
        "",
        f"{diff.unchanged} unchanged."
        + (f" {replaced} of the changes replace a stateful resource." if replaced else ""),
        "",
    ]
    return lines


def _outputs_section(diff: PlanDiff) -> list[str]:
    if not diff.outputs:
        return []
    keys = sorted({_top(c.path) for c in diff.outputs})
    return ["#### Stack outputs", "", "Changed: " + ", ".join(_code(k) for k in keys) + ".", ""]


def _header(diff: PlanDiff, base_label: str, head_label: str) -> list[str]:
    counts = (
        f"**{len(diff.added)} to add, {len(diff.changed)} to change, "
        f"{len(diff.removed)} to remove**"
    )
    lines = [
        MARKER,
        f"### Offline plan diff of stack {_code(diff.stack)}",
        "",
        f"{_code(base_label)} → {_code(head_label)}: "
        + (counts if diff.resources else "**no resource changes**")
        + ". Made from the offline plans of both revisions (mock engine: no credentials, "
        "nothing contacted); secrets are shown as `[secret]`.",
        "",
    ]
    for note in diff.notes:
        lines += [f"> {note}", ""]
    return lines


def _priority(resource: ResourceDiff) -> tuple[int, str]:
    order = {"changed": 1, "removed": 2, "added": 3}[resource.kind]
    return (0 if resource.stateful else order, resource.urn)


def render_markdown(
    diff: PlanDiff,
    *,
    base_label: str = "base",
    head_label: str = "head",
    limit: int = COMMENT_LIMIT,
    details_url: str | None = None,
) -> str:
    """The report, never longer than ``limit`` (see :func:`size`).

    The header, the stateful warnings, the cost table and the summary are always kept; the
    per-resource details are dropped (stateful first kept, then changed, removed, added) until
    the report fits, and the report says which were dropped.
    """
    where = (
        f"the whole diff is in [the workflow run]({details_url})"
        if details_url
        else "run `make plan-diff` for the whole diff"
    )
    reserve = 1_500
    shown = len(diff.warnings)
    while True:
        fixed = [
            *_header(diff, base_label, head_label),
            *_warning_lines(diff.warnings, shown),
            *_cost_section(diff),
            *_summary_section(diff),
            *_outputs_section(diff),
        ]
        fixed_text = "\n".join(fixed)
        if size(fixed_text) + reserve <= limit or shown == 0:
            break
        shown = max(0, min(shown - 1, shown // 2))

    blocks: list[tuple[str, str]] = []
    if diff.outputs:
        blocks.append(("stack outputs", _outputs_block(diff.outputs, diff.resources)))
    for resource in sorted(diff.resources, key=_priority):
        noun = resource.type.rsplit(":", 1)[-1]
        blocks.append((f"{resource.name} ({noun})", _resource_block(resource)))
    # The stateful ones first, then the outputs (the policy file among them), then the rest.
    stateful = sum(1 for r in diff.resources if r.stateful)
    if diff.outputs:
        blocks = blocks[1 : stateful + 1] + blocks[:1] + blocks[stateful + 1 :]

    budget = limit - size(fixed_text) - reserve
    kept: list[str] = []
    dropped: list[str] = []
    for name, block in blocks:
        if size(block) + 1 <= budget:
            kept.append(block)
            budget -= size(block) + 1
        else:
            dropped.append(name)

    parts = [fixed_text]
    if kept:
        parts.append("#### Details\n\n" + "\n".join(kept))
    if dropped:
        bound = (
            f"GitHub's {COMMENT_LIMIT:,}-character comment limit"
            if limit == COMMENT_LIMIT
            else f"{limit:,} bytes"
        )
        note = (
            f"> [!NOTE]\n> Trimmed to stay under {bound}: the details of {len(dropped)} of "
            f"{len(blocks)} entries are left out ({where})"
        )
        names = ""
        for index, name in enumerate(dropped):
            candidate = names + (", " if names else ": ") + _code(name)
            if len(note) + len(candidate) > reserve - 100:
                names += f", and {len(dropped) - index} more"
                break
            names = candidate
        parts.append(f"{note}{names}.\n")
    text = "\n".join(parts)
    if size(text) > limit:
        # Only a pathological plan gets here (thousands of warnings or types): cut on a line.
        cut = text.encode("utf-8")[: limit - 200].decode("utf-8", "ignore")
        text = cut[: cut.rfind("\n") + 1] + f"\n> Cut at GitHub's comment limit; {where}.\n"
    return text


def render_failure(label: str, error: str, *, limit: int = COMMENT_LIMIT) -> str:
    """The report when a revision's plan fails: its last error lines, redacted."""
    lines = [redact_text(line) for line in error.strip().splitlines()[-20:]] or ["(no output)"]
    body = [
        MARKER,
        f"### Offline plan of {_code(label)} failed",
        "",
        "`python -m offline --json` stopped with:",
        "",
        *_fenced([line[:VALUE_WIDTH] for line in lines], "text"),
        "",
    ]
    text = "\n".join(body)
    return text if size(text) <= limit else text.encode()[:limit].decode("utf-8", "ignore")


# --- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m offline.diff",
        description="Compare two offline plans (python -m offline --json) and write the "
        "difference as markdown for a pull-request comment.",
    )
    parser.add_argument("base", type=Path, nargs="?", help="the base revision's plan (JSON)")
    parser.add_argument("head", type=Path, nargs="?", help="the head revision's plan (JSON)")
    parser.add_argument("--base-label", default="base", help="name of the base revision")
    parser.add_argument("--head-label", default="head", help="name of the head revision")
    parser.add_argument(
        "--limit",
        type=int,
        default=COMMENT_LIMIT,
        help=f"longest report in UTF-8 bytes (default {COMMENT_LIMIT}, GitHub's comment limit)",
    )
    parser.add_argument("--details-url", help="where the whole diff can be read when trimmed")
    parser.add_argument(
        "--failed",
        metavar="ERROR_FILE",
        type=Path,
        help="write the report of a failed plan (its stderr in ERROR_FILE) instead",
    )
    parser.add_argument("-o", "--output", type=Path, help="write the report here, not stdout")
    args = parser.parse_args(argv)

    try:
        if args.failed is not None:
            error = args.failed.read_text(encoding="utf-8", errors="replace")
            report = render_failure(args.head_label, error, limit=args.limit)
        else:
            if args.base is None or args.head is None:
                parser.error("BASE and HEAD plan files are required")
            if args.limit < 4_000:
                parser.error("--limit must be at least 4000")
            diff = diff_plans(read_plan(args.base), read_plan(args.head))
            report = render_markdown(
                diff,
                base_label=args.base_label,
                head_label=args.head_label,
                limit=args.limit,
                details_url=args.details_url,
            )
        if args.output is not None:
            args.output.write_text(report, encoding="utf-8")
        else:
            sys.stdout.write(report)
    except PlanError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    except OSError as error:
        sys.stderr.write(f"error: {error.filename}: {error.strerror}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
