"""The monthly cost of a stack before and after a change, from the plans' ``costs`` output.

The program prices the subnet router and each GPU worker (running per hour, parked per month)
and writes the figures into the stack output ``costs``. :func:`compare_costs` turns the two
plans' figures into the rows of the report's cost table. A plan without that output and without
AWS resources costs $0; a plan with AWS resources but without prices stays "n/a".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from offline.diff.text import LIST_ITEMS, TABLE_ROWS, cell, code, safe

HOURS_PER_MONTH = 730
"""Hours in a month, as the estimate counts them: a worker that ran all month costs its
hourly figure this many times."""


@dataclass(frozen=True)
class CostRow:
    """One row of the cost table: a figure before and after, per ``month`` or ``hour``."""

    label: str
    before: float | None
    after: float | None
    unit: str
    before_text: str | None = None
    """Shown instead of the amount (a stopped worker)."""
    after_text: str | None = None


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
                f"worker {cell(safe(name))}, running",
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


def notes_on_costs(base: Any, head: Any, base_has_aws: bool, head_has_aws: bool) -> list[str]:
    """Sentences under the cost table: a side without an AWS part, and removed workers whose
    retained models bucket keeps billing."""
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
                f"Worker {code(safe(name))} is removed, but its models bucket is retained on "
                f"delete: it keeps costing ${old.parked[name]:,.2f}/month until you empty and "
                "delete it yourself."
            )
        if len(gone) > LIST_ITEMS:
            notes.append(f"And {len(gone) - LIST_ITEMS} more removed workers keep their buckets.")
    return notes
