"""The report: a :class:`PlanDiff` as markdown for a pull-request comment, under a limit.

:func:`render_markdown` writes the header, the boxes about stored data, secrets and provider
config, the cost table, the summary of resources and the per-resource details, and drops whole
details (never part of one) until the report fits GitHub's comment limit. :func:`render_failure`
writes the report of a revision whose plan failed. Every report starts with :data:`MARKER`.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections.abc import Sequence
from typing import Any

from offline.diff.compare import MISSING, REGION_KEY, Change, ResourceDiff, top_key
from offline.diff.costs import HOURS_PER_MONTH
from offline.diff.plan_diff import PlanDiff
from offline.diff.redact import redact_text
from offline.diff.text import LIST_ITEMS, TABLE_ROWS, cell, code, cut, safe

MARKER = "<!-- homelab-plan-diff -->"
"""First line of every report: the pull-request comment is found again by it and updated."""
COMMENT_LIMIT = 65_536
"""GitHub refuses a comment body longer than this many characters. Reports are measured in
UTF-8 bytes, which are never fewer than characters, so a report within the limit always fits."""
VALUE_WIDTH = 200
"""Characters of a value shown on one line of a report; longer values are cut."""
TEXT_LINES = 60
"""Lines of a multi-line value's diff shown per property."""
BLOCK_LINES = 150
"""Lines shown per resource."""


def size(text: str) -> int:
    """The length a comment limit is checked against (UTF-8 bytes, never fewer than
    characters)."""
    return len(text.encode("utf-8"))


# --- markdown that holds anything ------------------------------------------------------------


def _html_code(text: str) -> str:
    return f"<code>{html.escape(text, quote=False)}</code>"


def _fenced(lines: Sequence[str], language: str = "diff") -> list[str]:
    run = max((len(m) for line in lines for m in re.findall(r"`{3,}", line)), default=2)
    fence = "`" * max(3, run + 1)
    return [f"{fence}{language}", *lines, fence]


def _listed(items: Sequence[str], limit: int = LIST_ITEMS) -> str:
    """Names as inline code, comma separated, at most ``limit`` of them."""
    shown = ", ".join(code(item) for item in items[:limit])
    return shown + (f", and {len(items) - limit} more" if len(items) > limit else "")


def _shown(value: Any) -> str:
    """One value on one line, as the report shows it: quoted, cut to width."""
    if value is MISSING:
        return "(none)"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."


# --- details: a block a resource -------------------------------------------------------------


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
    count = len({top_key(c.path) for c in outputs})
    return _details(f"~ stack outputs: {count} changed", lines)


# --- sections --------------------------------------------------------------------------------


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
            f"> **`{REGION_KEY}` changes from {code(diff.region[0])} to "
            f"{code(diff.region[1])}: all {moved} AWS resources are replaced** (created anew "
            "in the new region, the old ones deleted); protected ones, the workers' model "
            "buckets among them, stop `pulumi up` until unprotected, and no data moves.",
        ]
    if warnings:
        count = len(warnings)
        lines.append(f"> **{count} change{'' if count == 1 else 's'} put stored data at stake.**")
    for warning in warnings[:shown]:
        resource = warning.resource
        lines.append(f"> - {code(resource.name)} ({code(resource.type)}): {warning.message}")
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
            lines.append(f"> - {code(secret.key)}: {what}")
        if len(diff.secrets) > LIST_ITEMS:
            lines.append(f"> - and {len(diff.secrets) - LIST_ITEMS} more")
        lines.append("")
    if diff.provider_config:
        lines.append("> [!IMPORTANT]")
        lines.append("> **Provider config changes:**")
        for change in diff.provider_config[:LIST_ITEMS]:
            was = "(unset)" if change.before is MISSING else code(change.before)
            now = "(unset)" if change.after is MISSING else code(change.after)
            lines.append(f"> - {code(change.path)}: {was} → {now}")
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
        lines.append(f"| {cell(type_)} | {add} | {change} | {remove} |")
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
        pairs = ", ".join(f"{code(r.name)} → {code(r.renamed or '')}" for r in renames[:LIST_ITEMS])
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
    keys = sorted({top_key(c.path) for c in diff.outputs})
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
        f"### Offline plan diff of stack {code(diff.stack)}",
        "",
        f"{code(safe(base_label))} → {code(safe(head_label))}: "
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


# --- the report ------------------------------------------------------------------------------


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
            candidate = names + (", " if names else ": ") + code(name)
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
    # The whole text first: a private key or a value below its key spans several lines.
    shown = redact_text(error.strip())
    lines = [cut(line, VALUE_WIDTH) for line in shown.splitlines()[-20:]]
    lines = lines or ["(no output)"]
    while True:
        body = [
            MARKER,
            f"### Offline plan of {code(safe(label))} failed",
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
