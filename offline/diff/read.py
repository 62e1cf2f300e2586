"""Reading plan files: a plan is data from a pull request's code, so it is checked first.

:func:`read_plan` reads a file written by ``python -m offline --json`` and :func:`check_plan`
checks that a plan has that shape. A file that is too large, not UTF-8, not JSON (NaN and
Infinity included), nested deeper than a plan can be or of the wrong shape is refused with one
:class:`PlanError` whose message names the file and what is wrong.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from offline.diff.text import safe

MAX_PLAN_BYTES = 16 * 1024 * 1024
"""Largest plan file read: about a hundred times the dev stack's plan (140 kB)."""
MAX_DEPTH = 100
"""Deepest nesting a plan may have; the dev stack's is under 15."""


class PlanError(Exception):
    """A plan file cannot be read or is not an offline plan."""


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
            raise PlanError(f"{where}: URN {safe(resource['urn'])} appears twice")
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
