"""Compare the offline plans of two revisions and write what changes as markdown.

``python -m offline.diff BASE.json HEAD.json`` reads two plans written by
``python -m offline --json`` (the base branch's and the pull request's) and prints a markdown
report for a pull-request comment: resources added, removed and changed with the properties
that changed, stateful resources that would be replaced or removed, secrets and provider config
that change, the stack outputs that change, and the monthly cost before and after. Everything
here is pure: plans in, text out, and only the standard library, so the comment workflow can run
the default branch's copy of this module on plans made by a pull request's code.

What an offline diff can know, and what it cannot:

- Identity is the URN. A resource whose URN is in one plan only is added or removed; a rename
  without ``aliases`` is therefore a removal and an addition, as Pulumi itself sees it. The
  report points out an added resource that looks like a removed one (same type, and the same
  name or the same inputs once the names are swapped).
- Whether a changed input replaces a resource is the provider's decision, which the plans do
  not carry. For the stateful types in :data:`STATEFUL_TYPES` this module knows, from the
  providers' schemas, which inputs force a new resource; for any other resource that is
  protected or retained on delete it cannot know, and says so. A new ``aws:region`` replaces
  every AWS resource.
- Secret config is a placeholder in both plans. The plans carry a fingerprint of each secret's
  ciphertext in the stack file and which resources its placeholder reaches, so a secret set
  anew is reported with the resources it updates; its value never is.
- Secrets never reach the report: a value the program marked secret is ``[secret]`` in the plan
  already; values under secret-looking keys (``password``, ``clientSecret``, ``TS_AUTHKEY=...``,
  ``--password=...``, ``user:pass@`` in URLs) and values that look like credentials
  (``tskey-...``, private keys, the offline placeholders) are redacted again here, line by line
  in multi-line text, in case a plan was written without redaction.
- Plans are data from a pull request's code: every name is escaped and shortened before it
  reaches markdown, and a plan of the wrong shape is refused with one error line.
"""

from __future__ import annotations

import argparse
import difflib
import html
import json
import math
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

MARKER = "<!-- homelab-plan-diff -->"
"""First line of every report: the pull-request comment is found again by it and updated."""
COMMENT_LIMIT = 65_536
"""GitHub refuses a comment body longer than this many characters. Reports are measured in
UTF-8 bytes, which are never fewer than characters, so a report within the limit always fits."""
MIN_LIMIT = 4_000
"""The smallest ``--limit``: the header, the boxes and the summary need room."""
MAX_PLAN_BYTES = 16 * 1024 * 1024
"""Largest plan file read: about a hundred times the dev stack's plan (140 kB)."""
MAX_DEPTH = 100
"""Deepest nesting a plan may have; the dev stack's is under 15."""
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

REGION_KEY = "aws:region"
"""Provider config that moves every AWS resource: a new region replaces them all."""

# Key names whose values are secrets, compared without case and separators, by their ending:
# DB_PASSWORD, SMTP_PASS, clientSecret, TS_AUTHKEY, apiKey, secretString, connectionString.
# Not "httpTokens", not "keyExpiryDays", not "bypass".
_SECRET_KEY_ENDINGS = (
    "password",
    "passwd",
    "passphrase",
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "authkey",
    "privatekey",
    "secretkey",
    "accesskey",
    "credential",
    "credentials",
    "secretstring",
    "connectionstring",
    "authorization",
    "dsn",
)
_NOT_SECRET_ENDINGS = ("bypass", "compass")
# Values that are credentials wherever they appear: a line holding one is shown as [secret].
_SECRET_VALUE = re.compile(
    r"tskey-[A-Za-z0-9-]+"  # Tailscale auth keys, OAuth client secrets and API keys
    r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids, long-lived and temporary
    r"|\bgh[opsur]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"  # GitHub fine-grained tokens
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|\bpul-[0-9a-f]{40}\b"  # Pulumi access tokens
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."  # JSON web tokens
    r"|offline-placeholder-for-"  # what the offline plan stands in for a real secret
)
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
# NAME=value, NAME: value, "NAME": "value", --NAME=value, --NAME value: the name is checked
# with secret_key(), the value found by _value_end().
_ASSIGNMENT = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<flag>--?)?(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?P<quote>[\"']?)"
    r"(?P<sep>[ \t]*[:=][ \t]*|[ \t]+)"
)
# A value that only names a shell variable ("$DB_PASSWORD", ${TOKEN}, file:$key_file) holds no
# secret: the script reads it at run time.
_VARIABLE_REFERENCE = re.compile(
    r"(?:file:)?\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})"
)
# scheme://user:password@host
_URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:)([^\s/@]+)(@)")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH_PART = re.compile(r'\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\.?([^.\[]+)')

VALUE_WIDTH = 200
"""Characters of a value shown on one line of a report; longer values are cut."""
NAME_WIDTH = 100
"""Characters of a name (resource, stack, label, key) shown in the report."""
TEXT_LINES = 60
"""Lines of a multi-line value's diff shown per property."""
BLOCK_LINES = 150
"""Lines shown per resource."""
TABLE_ROWS = 100
"""Rows of the summary table; more types are summed up in one row."""
LIST_ITEMS = 20
"""Names listed in one sentence (renames, secrets, output keys) before "and N more"."""
HOURS_PER_MONTH = 730


class PlanError(Exception):
    """A plan file cannot be read or is not an offline plan."""


# --- secrets ---------------------------------------------------------------------------------


def secret_key(name: str) -> bool:
    """Whether a property or variable of this name holds a secret."""
    normalized = re.sub(r"[^a-z0-9]", "", name.lower())
    return normalized.endswith(_SECRET_KEY_ENDINGS) and not normalized.endswith(_NOT_SECRET_ENDINGS)


def _value_end(line: str, start: int, *, whole_line: bool) -> int:
    """Where the value that starts at ``start`` ends: a quoted value at its closing quote, a
    value that may hold spaces (env and YAML style) at the line's end, any other at a space."""
    if start >= len(line):
        return start
    if line[start] in "\"'":
        close = line.find(line[start], start + 1)
        return len(line) if close < 0 else close + 1
    if whole_line:
        return len(line)
    match = re.compile(r"[\s,;&]").search(line, start)
    return match.start() if match else len(line)


def _redact_assignments(line: str) -> str:
    spans: list[tuple[int, int, str]] = []
    position = 0
    while True:
        match = _ASSIGNMENT.search(line, position)
        if match is None:
            break
        position = match.end()
        sep = match["sep"]
        spaced = not sep.strip()
        if not secret_key(match["name"]) or (spaced and match["flag"] != "--"):
            position = match.start("sep")
            if position <= match.start():
                position = match.start() + 1
            continue
        start = match.end()
        # NAME=value at the start of a line is an environment entry, NAME: value a YAML or
        # log field: both may hold spaces.
        at_start = not match["flag"] and not line[: match.start()].strip(" \t-\"'{")
        end = _value_end(line, start, whole_line=":" in sep or at_start)
        value = line[start:end]
        if end > start and not _VARIABLE_REFERENCE.fullmatch(value.replace("\\", "").strip("\"'")):
            quote = value[0] if value[0] in "\"'" and value[-1:] == value[0] else ""
            spans.append((start, end, f"{quote}{REDACTED}{quote}"))
        position = max(end, position)
    for start, end, text in reversed(spans):
        line = line[:start] + text + line[end:]
    return line


def _redact_line(line: str) -> str:
    if line == REDACTED:
        return line
    if _SECRET_VALUE.search(line):
        indent = line[: len(line) - len(line.lstrip())]
        return indent + REDACTED
    line = _URL_CREDENTIALS.sub(rf"\g<1>{REDACTED}\g<3>", line)
    return _redact_assignments(line)


def redact_text(text: str) -> str:
    """A string as a report may show it: a line holding a credential becomes ``[secret]``,
    the value of a secret assignment (``DB_PASSWORD=x``, ``--password x``, ``token: x``) and
    the password of a URL become ``[secret]``; text holding a private key is all ``[secret]``.
    Multi-line text is redacted line by line."""
    if "\n" not in text:
        return _redact_line(text)
    if _PRIVATE_KEY.search(text):
        return REDACTED
    return "\n".join(_redact_line(line) for line in text.split("\n"))


def _redact_name(name: str) -> str:
    """A key, name, type or URN as a report may show it: names can hold credentials too, but
    they are not assignments (``aws:secretsmanager/secret:Secret`` is a type, not a secret)."""
    if _SECRET_VALUE.search(name):
        return REDACTED
    return _URL_CREDENTIALS.sub(rf"\g<1>{REDACTED}\g<3>", name)


def _secret_child(parent: dict[str, Any], key: str) -> bool:
    """Whether ``parent[key]`` is secret by its name, or as an SSM SecureString's value."""
    if secret_key(key):
        return True
    return key in ("value", "insecureValue") and parent.get("type") == "SecureString"


def redact(value: Any, *, under_secret_key: bool = False) -> Any:
    """``value`` with everything secret replaced by ``[secret]``, at any depth, keys too."""
    if under_secret_key:
        return REDACTED
    if isinstance(value, dict):
        redacted: dict[str, Any] = {}
        for key, item in value.items():
            shown = _redact_name(key)
            if shown in redacted:
                shown = f"{shown}#{len(redacted)}"
            secret = _secret_child(value, key) or shown != key
            redacted[shown] = redact(item, under_secret_key=secret)
        return redacted
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _cut(text: str, width: int = NAME_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _safe(text: Any, width: int = NAME_WIDTH) -> str:
    """Any name from a plan as the report may show it: one line, redacted, cut."""
    return _cut(_redact_name(str(text).replace("\r", " ").replace("\n", " ")), width)


# --- reading plans ---------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_plan(path: Path) -> dict[str, Any]:
    """A plan file, checked to be an offline plan, or one :class:`PlanError` that names it."""
    try:
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise PlanError(f"{path} is larger than {MAX_PLAN_BYTES:,} bytes, more than a plan")
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
        plan = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise PlanError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    except ValueError as error:
        raise PlanError(f"{path} is not valid JSON: {error} (NaN and Infinity are not)") from None
    except RecursionError:
        raise PlanError(f"{path} nests deeper than a plan can") from None
    check_plan(plan, str(path))
    return plan


def _check_values(value: Any, where: str) -> None:
    """Refuse numbers JSON has not got (NaN, Infinity) and nesting deeper than a plan has."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise PlanError(f"{where} nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, float) and not math.isfinite(item):
            raise PlanError(f"{where} holds {item}, which is not a JSON number")
        if isinstance(item, dict):
            stack += [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list):
            stack += [(child, depth + 1) for child in item]


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


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
        for key in ("custom", "protect", "retainOnDelete"):
            if resource.get(key) is not None and not isinstance(resource[key], bool):
                raise PlanError(f"{where}: {key} is not true or false")
        for key in ("ignoreChanges", "secretConfig"):
            if resource.get(key) is not None and not _strings(resource[key]):
                raise PlanError(f"{where}: {key} is not a list of property names")
        if resource["urn"] in seen:
            raise PlanError(f"{where}: URN {_safe(resource['urn'])} appears twice")
        seen.add(resource["urn"])
    if not isinstance(plan.get("outputs", {}), dict):
        raise PlanError(f"{what}: outputs is not an object")
    for key in ("project", "stack", "mode"):
        if plan.get(key) is not None and not isinstance(plan[key], str):
            raise PlanError(f"{what}: {key} is not a string")
    if plan.get("placeholders") is not None and not _strings(plan["placeholders"]):
        raise PlanError(f"{what}: placeholders is not a list of config keys")
    for key in ("secretFingerprints", "providerConfig"):
        mapping = plan.get(key)
        if mapping is not None and not (
            isinstance(mapping, dict)
            and all(isinstance(v, str) or v is None for v in mapping.values())
        ):
            raise PlanError(f"{what}: {key} is not an object of strings")
    _check_values(plan, what)


# --- comparing -------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class SecretChange:
    """Secret config whose ciphertext in the stack file differs between the plans."""

    key: str
    kind: str
    """``changed``, ``added`` or ``removed``."""
    resources: tuple[str, ...] = ()
    """Names of the resources its placeholder reaches in the head plan (base, if removed)."""


@dataclass(frozen=True)
class CostRow:
    label: str
    before: float | None
    after: float | None
    unit: str
    before_text: str | None = None
    """Shown instead of the amount (a stopped worker)."""
    after_text: str | None = None


@dataclass(frozen=True)
class PlanDiff:
    """Everything that differs between a base plan and a head plan."""

    stack: str
    added: tuple[ResourceDiff, ...]
    removed: tuple[ResourceDiff, ...]
    changed: tuple[ResourceDiff, ...]
    unchanged: int
    """Unchanged resources (custom resources, as ``make plan`` counts them)."""
    outputs: tuple[Change, ...]
    warnings: tuple[DataWarning, ...]
    costs: tuple[CostRow, ...]
    price_date: str | None
    notes: tuple[str, ...] = field(default=())
    unchanged_components: int = 0
    secrets: tuple[SecretChange, ...] = ()
    unseen_secrets: tuple[str, ...] = ()
    """Secret config the stack file does not hold: its changes cannot be seen offline."""
    provider_config: tuple[Change, ...] = ()
    region: tuple[str, str] | None = None
    """``(before, after)`` when ``aws:region`` changes in a stack with AWS resources."""
    cost_notes: tuple[str, ...] = ()

    @property
    def resources(self) -> tuple[ResourceDiff, ...]:
        return self.added + self.changed + self.removed

    @property
    def renames(self) -> tuple[ResourceDiff, ...]:
        return tuple(r for r in self.removed if r.renamed is not None)

    @property
    def empty(self) -> bool:
        return not (self.resources or self.outputs or self.secrets or self.provider_config)


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
            shown_key = _redact_name(key)
            child_secret = secret or _secret_child(value, key) or shown_key != key
            yield from _leaves(value[key], _path(path, key), _path(shown, shown_key), child_secret)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, _path(path, index), _path(shown, index), secret)
    elif path or not isinstance(value, (dict, list)):
        yield path, _Leaf(shown, value, secret)


def _top(path: str) -> str:
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
            was, now = sorted(map(_safe, was or [])), sorted(map(_safe, now or []))
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
    kind: str,
    base: dict[str, Any] | None,
    head: dict[str, Any] | None,
    region: tuple[str, str] | None = None,
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
        if region is not None and _moves_with_region(either):
            changes.append(Change(f"[{REGION_KEY}]", region[0], region[1], replaces=True))
    elif kind == "added":
        changes = list(compare_values({}, either.get("inputs", {})))
    else:
        changes = list(compare_values(either.get("inputs", {}), {}))
    return ResourceDiff(
        urn=_safe(either["urn"], 300),
        type=_safe(either["type"]),
        name=_safe(either["name"]),
        kind=kind,
        changes=tuple(changes),
        stateful=is_stateful(either) or (base is not None and is_stateful(base)),
        known_replacements=either["type"] in STATEFUL_TYPES,
        protect=bool(either.get("protect")),
        retain=bool(either.get("retainOnDelete")),
        custom=either.get("custom", True) is not False,
    )


def _moves_with_region(resource: dict[str, Any]) -> bool:
    """An AWS resource (or the AWS provider) that a new region replaces."""
    return resource.get("custom", True) is not False and resource["type"].startswith(
        ("aws:", "pulumi:providers:aws")
    )


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


def _protected_note(resource: ResourceDiff) -> str:
    return (
        "; it is protected, so `pulumi up` will stop at it until it is unprotected"
        if resource.protect
        else ""
    )


def _warnings(
    changed: Sequence[ResourceDiff],
    removed: Sequence[ResourceDiff],
    renames: dict[str, ResourceDiff],
    region: tuple[str, str] | None,
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
        twin = renames.get(resource.urn)
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
        retained = " (the old one is retained)" if resource.retain else ""
        if region is not None and f"[{REGION_KEY}]" in options:
            warnings.append(
                DataWarning(
                    resource,
                    f"**replaced**: it moves to {_code(region[1])}, where the new one starts "
                    f"empty; the data stays in {_code(region[0])}{retained}"
                    + _protected_note(resource),
                )
            )
        elif resource.replaced:
            forcing = sorted({_top(c.path) for c in inputs if c.replaces})
            warnings.append(
                DataWarning(
                    resource,
                    "**replaced**: "
                    + ", ".join(_code(key) for key in forcing)
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


# --- cost ------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class _Costs:
    """The figures a reviewer compares, from one plan's ``costs`` output (None: not priced)."""

    figures: dict[str, float | None]
    stopped: frozenset[str] = frozenset()
    parked: dict[str, float] = field(default_factory=dict)
    """Each priced worker's models in S3 per month."""
    absent: bool = False
    """The plan has no AWS part at all: everything costs $0."""


def _cost_figures(costs: Any, *, has_aws: bool = True) -> _Costs | None:
    if not isinstance(costs, dict):
        if has_aws:
            return None  # AWS resources without a cost output: a plan that did not price them
        zero: dict[str, float | None] = {"router": 0.0, "volumes": 0.0, "idle": 0.0, "gpu": 0.0}
        zero["nat"] = None
        return _Costs(zero, absent=True)
    router = costs.get("router") if isinstance(costs.get("router"), dict) else None
    workers = costs.get("workers") if isinstance(costs.get("workers"), dict) else {}
    nat = costs.get("natGatewayInstead")
    figures: dict[str, float | None] = {}
    figures["router"] = _number(router.get("monthlyUsd")) if router else None
    storage = 0.0
    hourly = 0.0
    priced = figures["router"] is not None
    stopped = set()
    parked = {}
    for name in sorted(workers):
        worker = workers[name] if isinstance(workers[name], dict) else {}
        running = _number(worker.get("runningHourlyUsd"))
        # What a worker costs while it does not run: its models in S3 when parked
        # (parkedMonthlyUsd), its volumes in plans of the earlier design (storageMonthlyUsd).
        stored = _number(worker.get("parkedMonthlyUsd", worker.get("storageMonthlyUsd")))
        if worker.get("state") == "stopped":
            stopped.add(name)
        figures[f"worker {name}"] = running
        if running is None or stored is None:
            priced = False
            continue
        parked[name] = stored
        storage += stored
        # A stopped worker's group allows no instance: it never runs.
        hourly += 0.0 if name in stopped else running
    figures["volumes"] = storage if priced else None
    figures["idle"] = (figures["router"] or 0.0) + storage if priced else None
    figures["gpu"] = hourly if priced else None
    figures["nat"] = _number(nat.get("monthlyUsd")) if isinstance(nat, dict) else None
    return _Costs(figures, frozenset(stopped), parked)


def compare_costs(
    base: Any, head: Any, *, base_has_aws: bool = True, head_has_aws: bool = True
) -> tuple[CostRow, ...]:
    """Rows of the cost table: what the stack costs before and after the change. A plan
    without a ``costs`` output and without AWS resources costs $0; a region without prices
    costs "n/a"."""
    if not isinstance(base, dict) and not isinstance(head, dict):
        return ()
    old_costs = _cost_figures(base, has_aws=base_has_aws)
    new_costs = _cost_figures(head, has_aws=head_has_aws)
    old = old_costs.figures if old_costs else {}
    new = new_costs.figures if new_costs else {}
    rows = [
        CostRow("every month, workers parked", old.get("idle"), new.get("idle"), "month"),
        CostRow("subnet router, always on", old.get("router"), new.get("router"), "month"),
        CostRow("workers parked (their models)", old.get("volumes"), new.get("volumes"), "month"),
        CostRow("all workers running", old.get("gpu"), new.get("gpu"), "hour"),
    ]
    workers = sorted({k for k in old.keys() | new.keys() if k.startswith("worker ")})
    for key in workers[:TABLE_ROWS]:
        name = key.removeprefix("worker ")
        # A worker only one plan has costs nothing in the other, if that plan is priced.
        before = old.get(key, 0.0 if old.get("idle") is not None else None)
        after = new.get(key, 0.0 if new.get("idle") is not None else None)
        old_stopped = old_costs is not None and name in old_costs.stopped
        new_stopped = new_costs is not None and name in new_costs.stopped
        rows.append(
            CostRow(
                f"worker {_cell(_safe(name))}, running",
                0.0 if old_stopped else before,
                0.0 if new_stopped else after,
                "hour",
                before_text="stopped" if old_stopped else None,
                after_text="stopped" if new_stopped else None,
            )
        )
    if len(workers) > TABLE_ROWS:
        rows.append(CostRow(f"and {len(workers) - TABLE_ROWS} more workers", None, None, "hour"))
    rows.append(
        CostRow("a NAT gateway instead (not built)", old.get("nat"), new.get("nat"), "month")
    )
    return tuple(rows)


def _cost_notes(base: Any, head: Any, base_has_aws: bool, head_has_aws: bool) -> list[str]:
    old = _cost_figures(base, has_aws=base_has_aws)
    new = _cost_figures(head, has_aws=head_has_aws)
    notes = []
    for side, costs in (("base", old), ("head", new)):
        if costs is not None and costs.absent:
            notes.append(f"The {side} has no AWS part (no `costs` output): its AWS cost is $0.")
    if old is not None and new is not None:
        gone = sorted(set(old.parked) - {k.removeprefix("worker ") for k in new.figures})
        for name in gone[:LIST_ITEMS]:
            notes.append(
                f"Worker {_code(_safe(name))} is removed, but its models bucket is retained on "
                f"delete: it keeps costing ${old.parked[name]:,.2f}/month until you empty and "
                "delete it yourself."
            )
        if len(gone) > LIST_ITEMS:
            notes.append(f"And {len(gone) - LIST_ITEMS} more removed workers keep their buckets.")
    return notes


# --- secrets and provider config ---------------------------------------------------------------


def _secret_users(plan: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(
        sorted(
            {_safe(r["name"]) for r in plan["resources"] if key in (r.get("secretConfig") or [])}
        )
    )


def compare_secrets(
    base: dict[str, Any], head: dict[str, Any]
) -> tuple[tuple[SecretChange, ...], tuple[str, ...]]:
    """Secret config set anew between the plans (by the fingerprints of their ciphertexts),
    and the secrets whose changes neither plan can show (not held in the stack file)."""
    old, new = base.get("secretFingerprints"), head.get("secretFingerprints")
    if not isinstance(old, dict) or not isinstance(new, dict):
        return (), ()  # a plan of an earlier version, without fingerprints
    changes = []
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key, MISSING), new.get(key, MISSING)
        if was == now or (was is None and now is MISSING) or (was is MISSING and now is None):
            continue
        if was is MISSING or was is None:
            changes.append(SecretChange(_safe(key), "added", _secret_users(head, key)))
        elif now is MISSING or now is None:
            changes.append(SecretChange(_safe(key), "removed", _secret_users(base, key)))
        else:
            changes.append(SecretChange(_safe(key), "changed", _secret_users(head, key)))
    unseen = tuple(sorted(_safe(key) for key, value in new.items() if value is None))
    return tuple(changes), unseen


def _has_aws(plan: dict[str, Any]) -> bool:
    return any(_moves_with_region(r) for r in plan["resources"])


def compare_provider_config(
    base: dict[str, Any], head: dict[str, Any]
) -> tuple[tuple[Change, ...], tuple[str, str] | None]:
    """Provider config that changes, and ``(old, new)`` when the AWS region does in a stack
    that has AWS resources in both plans."""
    old, new = base.get("providerConfig"), head.get("providerConfig")
    if not isinstance(old, dict) or not isinstance(new, dict):
        return (), None
    changes = []
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key, MISSING), new.get(key, MISSING)
        if was != now:
            changes.append(
                Change(
                    _safe(key),
                    MISSING if was is MISSING else _cut(redact_text(str(was))),
                    MISSING if now is MISSING else _cut(redact_text(str(now))),
                )
            )
    region = None
    was, now = old.get(REGION_KEY), new.get(REGION_KEY)
    if was and now and was != now and _has_aws(base) and _has_aws(head):
        region = (_safe(was), _safe(now))
    return tuple(changes), region


# --- the whole diff ----------------------------------------------------------------------------


def diff_plans(base: dict[str, Any], head: dict[str, Any]) -> PlanDiff:
    """Compare two offline plans (both checked with :func:`check_plan`)."""
    old = {r["urn"]: r for r in base["resources"]}
    new = {r["urn"]: r for r in head["resources"]}
    provider_changes, region = compare_provider_config(base, head)
    added = tuple(_resource_diff("added", None, new[urn]) for urn in sorted(new.keys() - old))
    removed_plain = [_resource_diff("removed", old[urn], None) for urn in sorted(old.keys() - new)]
    renames = find_renames(removed_plain, added)
    removed = tuple(
        replace(r, renamed=renames[r.urn].name) if r.urn in renames else r for r in removed_plain
    )
    changed = []
    unchanged = 0
    unchanged_components = 0
    for urn in sorted(old.keys() & new.keys()):
        resource = _resource_diff("changed", old[urn], new[urn], region)
        if resource.changes:
            changed.append(resource)
        elif resource.custom:
            unchanged += 1
        else:
            unchanged_components += 1
    base_outputs = base.get("outputs", {})
    head_outputs = head.get("outputs", {})
    notes = []
    if base.get("stack") != head.get("stack"):
        notes.append(
            f"The plans are of different stacks: {_code(_safe(base.get('stack')))} and "
            f"{_code(_safe(head.get('stack')))}."
        )
    if base.get("mode") != head.get("mode"):
        notes.append(
            f"The plans were made in different modes: {_code(_safe(base.get('mode')))} and "
            f"{_code(_safe(head.get('mode')))}."
        )
    base_costs = base_outputs.get("costs")
    head_costs = head_outputs.get("costs")
    price_date = next(
        (c.get("priceDate") for c in (head_costs, base_costs) if isinstance(c, dict)), None
    )
    secrets, unseen = compare_secrets(base, head)
    base_aws, head_aws = _has_aws(base), _has_aws(head)
    return PlanDiff(
        stack=_safe(head.get("stack") or base.get("stack") or "?"),
        added=added,
        removed=removed,
        changed=tuple(changed),
        unchanged=unchanged,
        outputs=compare_values(base_outputs, head_outputs),
        warnings=tuple(_warnings(changed, removed, renames, region)),
        costs=compare_costs(base_costs, head_costs, base_has_aws=base_aws, head_has_aws=head_aws),
        price_date=(
            price_date
            if isinstance(price_date, str) and re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", price_date)
            else None
        ),
        notes=tuple(notes),
        unchanged_components=unchanged_components,
        secrets=secrets,
        unseen_secrets=unseen,
        provider_config=provider_changes,
        region=region,
        cost_notes=tuple(_cost_notes(base_costs, head_costs, base_aws, head_aws)),
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


def _cell(text: str) -> str:
    """Inline code in a table cell: a pipe would end the cell."""
    return _code(text).replace("|", "\\|")


def _html_code(text: str) -> str:
    return f"<code>{html.escape(text, quote=False)}</code>"


def _fenced(lines: Sequence[str], language: str = "diff") -> list[str]:
    run = max((len(m) for line in lines for m in re.findall(r"`{3,}", line)), default=2)
    fence = "`" * max(3, run + 1)
    return [f"{fence}{language}", *lines, fence]


def _listed(items: Sequence[str], limit: int = LIST_ITEMS) -> str:
    """Names as inline code, comma separated, at most ``limit`` of them."""
    shown = ", ".join(_code(item) for item in items[:limit])
    return shown + (f", and {len(items) - limit} more" if len(items) > limit else "")


def _shown(value: Any) -> str:
    """One value on one line, as the report shows it: quoted, cut to width."""
    if value is MISSING:
        return "(none)"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."


def _multiline(change: Change) -> bool:
    return (
        isinstance(change.before, str)
        and isinstance(change.after, str)
        and ("\n" in change.before or "\n" in change.after)
    )


def _text_lines(sign: str, text: str) -> list[str]:
    """A whole multi-line value, each line marked as added or removed."""
    lines = text.split("\n")
    return [f"{sign}     {line}"[: VALUE_WIDTH + 6] for line in lines]


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
        if change.before == change.after:
            return [f"~ {change.path} (text): a secret line in it changes{note}"]
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
    # A multi-line value on one side only (an added or removed resource): all of its lines.
    for sign, value, other in (
        ("+", change.after, change.before),
        ("-", change.before, change.after),
    ):
        if other is MISSING and isinstance(value, str) and "\n" in value:
            count = len(value.split("\n"))
            return [f"{sign} {change.path} (text, {count} lines){note}", *_text_lines(sign, value)]
    lines = []
    if change.before is not MISSING:
        lines.append(f"- {change.path}: {_shown(change.before)}")
    if change.after is not MISSING:
        lines.append(f"+ {change.path}: {_shown(change.after)}")
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
    renamed = (
        f", looks renamed to {_html_code(resource.renamed)}" if resource.renamed is not None else ""
    )
    summary = (
        f"{_KIND_SIGN[resource.kind]} {_html_code(resource.name)} {_html_code(resource.type)}: "
        f"{resource.kind}, {count} {what}{'' if count == 1 else 's'}"
        f"{html.escape(_flags(resource), quote=False)}{renamed}"
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


def _money(value: float | None, unit: str, text: str | None = None) -> str:
    if text is not None:
        return text
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
        before = _money(row.before, row.unit, row.before_text)
        after = _money(row.after, row.unit, row.after_text)
        lines.append(
            f"| {row.label} | {before} | {after} | {_delta(row.before, row.after, row.unit)} |"
        )
    source = f"prices of {diff.price_date}, " if diff.price_date else ""
    lines += [
        "",
        f"From the plans' `costs` output ({source}`components/aws/prices.json`); a worker "
        f"that ran all month would cost {HOURS_PER_MONTH} times its hourly figure, and a "
        "stopped worker never runs.",
        "",
    ]
    for note in diff.cost_notes:
        lines += [note, ""]
    return lines


def _warning_lines(diff: PlanDiff, shown: int) -> list[str]:
    warnings = diff.warnings
    if not warnings and diff.region is None:
        return []
    lines = ["> [!CAUTION]"]
    if diff.region is not None:
        moved = sum(1 for r in diff.changed if any(c.path == f"[{REGION_KEY}]" for c in r.changes))
        lines += [
            f"> **`{REGION_KEY}` changes from {_code(diff.region[0])} to "
            f"{_code(diff.region[1])}: all {moved} AWS resources are replaced** (created anew "
            "in the new region, the old ones deleted); protected ones, the workers' model "
            "buckets among them, stop `pulumi up` until unprotected, and no data moves.",
        ]
    if warnings:
        count = len(warnings)
        lines.append(f"> **{count} change{'' if count == 1 else 's'} put stored data at stake.**")
    for warning in warnings[:shown]:
        resource = warning.resource
        lines.append(f"> - {_code(resource.name)} ({_code(resource.type)}): {warning.message}")
    if len(warnings) > shown:
        lines.append(f"> - and {len(warnings) - shown} more, not shown to keep this comment short")
    return [*lines, ""]


def _secrets_lines(diff: PlanDiff) -> list[str]:
    lines: list[str] = []
    if diff.secrets:
        count = len(diff.secrets)
        lines += [
            "> [!IMPORTANT]",
            f"> **{count} secret{'' if count == 1 else 's'} set anew** (the encrypted value in "
            "the stack file differs; both plans use the same placeholder, so the resources "
            "below show no change for it):",
        ]
        for secret in diff.secrets[:LIST_ITEMS]:
            if secret.kind == "removed":
                what = "removed from the stack file"
            elif secret.resources:
                what = (
                    f"{'added; ' if secret.kind == 'added' else ''}"
                    f"{_listed(secret.resources, 10)} get the new value"
                )
            else:
                what = (
                    f"{'added; ' if secret.kind == 'added' else ''}"
                    "no resource carries it as it is; the resources that use it will still be "
                    "updated"
                )
            lines.append(f"> - {_code(secret.key)}: {what}")
        if len(diff.secrets) > LIST_ITEMS:
            lines.append(f"> - and {len(diff.secrets) - LIST_ITEMS} more")
        lines.append("")
    if diff.provider_config:
        lines.append("> [!IMPORTANT]")
        lines.append("> **Provider config changes:**")
        for change in diff.provider_config[:LIST_ITEMS]:
            was = "(unset)" if change.before is MISSING else _code(change.before)
            now = "(unset)" if change.after is MISSING else _code(change.after)
            lines.append(f"> - {_code(change.path)}: {was} → {now}")
        lines.append("")
    return lines


def _summary_section(diff: PlanDiff) -> list[str]:
    by_type: dict[str, list[int]] = {}
    for index, group in enumerate((diff.added, diff.changed, diff.removed)):
        for resource in group:
            by_type.setdefault(resource.type, [0, 0, 0])[index] += 1
    replaced = sum(1 for r in diff.changed if r.replaced)
    lines = ["#### Resources", ""]
    unchanged = f"{diff.unchanged} resource{'' if diff.unchanged == 1 else 's'}"
    if diff.unchanged_components:
        count = diff.unchanged_components
        unchanged += f" and {count} component{'' if count == 1 else 's'}"
    if not by_type:
        return [*lines, f"No resource changes ({unchanged} unchanged).", ""]
    lines += ["| type | add | change | remove |", "| --- | ---: | ---: | ---: |"]
    rows = sorted(by_type.items())
    for type_, (add, change, remove) in rows[:TABLE_ROWS]:
        lines.append(f"| {_cell(type_)} | {add} | {change} | {remove} |")
    if len(rows) > TABLE_ROWS:
        rest = [sum(counts[i] for _, counts in rows[TABLE_ROWS:]) for i in range(3)]
        lines.append(f"| {len(rows) - TABLE_ROWS} more types | {rest[0]} | {rest[1]} | {rest[2]} |")
    lines += [
        f"| **total** | **{len(diff.added)}** | **{len(diff.changed)}** "
        f"| **{len(diff.removed)}** |",
        "",
        f"{unchanged} unchanged."
        + (
            f" {replaced} of the changes replace{'s' if replaced == 1 else ''} a stateful resource."
            if replaced
            else ""
        ),
        "",
    ]
    renames = diff.renames
    if renames:
        pairs = ", ".join(
            f"{_code(r.name)} → {_code(r.renamed or '')}" for r in renames[:LIST_ITEMS]
        )
        more = f", and {len(renames) - LIST_ITEMS} more" if len(renames) > LIST_ITEMS else ""
        lines += [
            f"Removed and added, but they look renamed or moved ({len(renames)}): {pairs}{more}. "
            "Give the new ones `aliases` to keep the existing resources.",
            "",
        ]
    return lines


def _outputs_section(diff: PlanDiff) -> list[str]:
    if not diff.outputs:
        return []
    keys = sorted({_top(c.path) for c in diff.outputs})
    return ["#### Stack outputs", "", "Changed: " + _listed(keys, 50) + ".", ""]


def _header(diff: PlanDiff, base_label: str, head_label: str) -> list[str]:
    counts = (
        f"**{len(diff.added)} to add, {len(diff.changed)} to change, "
        f"{len(diff.removed)} to remove**"
    )
    if not diff.resources:
        counts = "**no resource changes**"
        if diff.secrets:
            counts = "**no resource changes seen, but secrets change** (below)"
    lines = [
        MARKER,
        f"### Offline plan diff of stack {_code(diff.stack)}",
        "",
        f"{_code(_safe(base_label))} → {_code(_safe(head_label))}: "
        + counts
        + ". Made from the offline plans of both revisions (mock engine: no credentials, "
        "nothing contacted); secrets are shown as `[secret]`.",
        "",
    ]
    for note in diff.notes:
        lines += [f"> {note}", ""]
    if diff.unseen_secrets:
        lines += [
            f"Secret config not held in the stack file ({_listed(diff.unseen_secrets)}) is a "
            "placeholder in both plans: its changes cannot be seen here.",
            "",
        ]
    return lines


def _priority(resource: ResourceDiff) -> tuple[int, str]:
    order = {"changed": 1, "removed": 2, "added": 3}[resource.kind]
    return (0 if resource.stateful else order, resource.urn)


def _within(sections: Sequence[str], limit: int, cut_note: str) -> str:
    """Whole sections, in order, while they fit with the note that says the rest was cut."""
    kept: list[str] = []
    for section in sections:
        if size("\n".join([*kept, section, cut_note])) > limit:
            break
        kept.append(section)
    return "\n".join([*kept, cut_note])


def render_markdown(
    diff: PlanDiff,
    *,
    base_label: str = "base",
    head_label: str = "head",
    limit: int = COMMENT_LIMIT,
    details_url: str | None = None,
) -> str:
    """The report, never longer than ``limit`` (see :func:`size`).

    The header, the caution and secret boxes, the cost table and the summary are always kept;
    the per-resource details are dropped (stateful first kept, then changed, removed, added)
    until the report fits, and the report says which were dropped. Nothing is ever cut inside
    a section: when even those do not fit, whole sections go from the end.
    """
    where = (
        f"the whole diff is in [the workflow run]({details_url})"
        if details_url
        else "run `make plan-diff` for the whole diff"
    )
    reserve = 1_500
    shown = len(diff.warnings)
    while True:
        sections = [
            "\n".join(_header(diff, base_label, head_label)),
            "\n".join(_warning_lines(diff, shown)),
            "\n".join(_secrets_lines(diff)),
            "\n".join(_cost_section(diff)),
            "\n".join(_summary_section(diff)),
            "\n".join(_outputs_section(diff)),
        ]
        sections = [s for s in sections if s]
        fixed_text = "\n".join(sections)
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
            if size(note) + size(candidate) > reserve - 100:
                names += f", and {len(dropped) - index} more"
                break
            names = candidate
        parts.append(f"{note}{names}.\n")
    text = "\n".join(parts)
    if size(text) > limit:
        # Only a pathological plan gets here (thousands of warnings or notes): whole sections.
        text = _within(sections, limit, f"> [!NOTE]\n> Cut at the comment limit; {where}.\n")
    return text


def render_failure(label: str, error: str, *, limit: int = COMMENT_LIMIT) -> str:
    """The report when a revision's plan fails: its last error lines, redacted, as many as
    fit under ``limit``."""
    lines = [_cut(redact_text(line), VALUE_WIDTH) for line in error.strip().splitlines()[-20:]]
    lines = lines or ["(no output)"]
    while True:
        body = [
            MARKER,
            f"### Offline plan of {_code(_safe(label))} failed",
            "",
            "`python -m offline --json` stopped with:",
            "",
            *_fenced(lines, "text"),
            "",
        ]
        text = "\n".join(body)
        if size(text) <= limit or len(lines) == 1:
            return text
        lines = lines[1:]


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
        "--allow-different-stacks",
        action="store_true",
        help="compare plans of two different stacks (refused by default)",
    )
    parser.add_argument(
        "--failed",
        metavar="ERROR_FILE",
        type=Path,
        help="write the report of a failed plan (its stderr in ERROR_FILE) instead",
    )
    parser.add_argument("-o", "--output", type=Path, help="write the report here, not stdout")
    args = parser.parse_args(argv)
    if args.limit < MIN_LIMIT:
        parser.error(f"--limit must be at least {MIN_LIMIT}")

    try:
        if args.failed is not None:
            error = args.failed.read_text(encoding="utf-8", errors="replace")
            report = render_failure(args.head_label, error, limit=args.limit)
        else:
            if args.base is None or args.head is None:
                parser.error("BASE and HEAD plan files are required")
            base, head = read_plan(args.base), read_plan(args.head)
            if base.get("stack") != head.get("stack") and not args.allow_different_stacks:
                raise PlanError(
                    f"the plans are of different stacks ({_safe(base.get('stack'))!r} and "
                    f"{_safe(head.get('stack'))!r}); pass --allow-different-stacks to compare "
                    "them anyway"
                )
            report = render_markdown(
                diff_plans(base, head),
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
