"""The whole diff of two plans: :func:`diff_plans` puts together what the other modules compare.

Its :class:`PlanDiff` holds everything the report shows, redacted and cut already: resources
added, removed and changed, the warnings about stored data, stack outputs, secrets and provider
config that change, the cost rows and notes about the plans themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from offline.diff.compare import (
    Change,
    DataWarning,
    ResourceDiff,
    compare_values,
    data_warnings,
    find_renames,
    resource_diff,
)
from offline.diff.config import SecretChange, compare_provider_config, compare_secrets, has_aws
from offline.diff.costs import CostRow, compare_costs, notes_on_costs
from offline.diff.text import code, safe


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


def diff_plans(base: dict[str, Any], head: dict[str, Any]) -> PlanDiff:
    """Compare two offline plans (both checked with :func:`check_plan`)."""
    old = {r["urn"]: r for r in base["resources"]}
    new = {r["urn"]: r for r in head["resources"]}
    provider_changes, region = compare_provider_config(base, head)
    added = tuple(resource_diff("added", None, new[urn]) for urn in sorted(new.keys() - old))
    removed_plain = [resource_diff("removed", old[urn], None) for urn in sorted(old.keys() - new)]
    renames = find_renames(removed_plain, added)
    removed = tuple(
        replace(r, renamed=renames[r.urn].name) if r.urn in renames else r for r in removed_plain
    )
    changed = []
    unchanged = 0
    unchanged_components = 0
    for urn in sorted(old.keys() & new.keys()):
        resource = resource_diff("changed", old[urn], new[urn], region)
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
            f"The plans are of different stacks: {code(safe(base.get('stack')))} and "
            f"{code(safe(head.get('stack')))}."
        )
    if base.get("mode") != head.get("mode"):
        notes.append(
            f"The plans were made in different modes: {code(safe(base.get('mode')))} and "
            f"{code(safe(head.get('mode')))}."
        )
    base_costs = base_outputs.get("costs")
    head_costs = head_outputs.get("costs")
    price_date = next(
        (c.get("priceDate") for c in (head_costs, base_costs) if isinstance(c, dict)), None
    )
    secrets, unseen = compare_secrets(base, head)
    base_aws, head_aws = has_aws(base), has_aws(head)
    return PlanDiff(
        stack=safe(head.get("stack") or base.get("stack") or "?"),
        added=added,
        removed=removed,
        changed=tuple(changed),
        unchanged=unchanged,
        outputs=compare_values(base_outputs, head_outputs),
        warnings=tuple(data_warnings(changed, removed, renames, region)),
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
        cost_notes=tuple(notes_on_costs(base_costs, head_costs, base_aws, head_aws)),
    )
