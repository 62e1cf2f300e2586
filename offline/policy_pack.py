"""Run the policy pack (``policy/``) over an offline plan, as ``pulumi preview --policy-pack``
runs it over a real one: ``python -m offline.policy_pack [--stack dev] [--preview]``.

Each recorded resource reaches the policies the way the engine sends it to an analyzer: its
inputs with camelCase names, secrets in clear, values unknown in a preview as the engine's
unknown marker (reading one raises ``UnknownValueError``, which counts as "could not check",
not as a pass), its ``protect`` option, parent and dependencies. Stack policies get what the
engine gives them of each resource's outputs that the offline plan knows: its inputs and its
``id`` (unknown in a preview, as for a resource still to be created). ``retainOnDelete`` is not
among the options the engine gives policies; the test suite checks it on the recording instead.

The pack's config is read, completed with the policies' defaults and validated against their
config schemas as the Pulumi CLI does for ``--policy-pack-config``, before any policy runs.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The CLI validates pack config with a JSON Schema library (gojsonschema); jsonschema comes with
# check-jsonschema (requirements-dev.txt), and the pack's own runtime does not need it.
import jsonschema
from pulumi.runtime import rpc
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from offline.engine import Recording, Registration, Secret, Unknown


@dataclass(frozen=True)
class Violation:
    """A policy's finding: which policy, on which resource (the stack's URN when none)."""

    policy: str
    urn: str
    message: str
    level: EnforcementLevel = EnforcementLevel.MANDATORY


@dataclass
class PolicyReport:
    """Everything the pack found, and what it could not check in a preview."""

    violations: list[Violation] = field(default_factory=list)
    unknown: list[Violation] = field(default_factory=list)

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == EnforcementLevel.MANDATORY]


class PolicyConfigError(ValueError):
    """The pack's config, refused as the Pulumi CLI refuses it."""


@dataclass(frozen=True)
class PolicySettings:
    """One policy's config after the CLI's reading: its enforcement level, if the config sets
    one, and its properties with the schema's defaults filled in."""

    level: EnforcementLevel | None
    properties: dict[str, Any]


_LEVELS = {level.value: level for level in EnforcementLevel}


def _level(value: Any, policy: str) -> EnforcementLevel:
    if not isinstance(value, str) or value not in _LEVELS:
        raise PolicyConfigError(
            f"{policy}: enforcementLevel {value!r} is not one of {', '.join(sorted(_LEVELS))}"
        )
    return _LEVELS[value]


def pack_config(policies: Iterable[Policy], config: Any) -> dict[str, PolicySettings]:
    """The settings of each policy: ``config`` (policy name to an enforcement level, or to an
    object of properties and an optional ``enforcementLevel``; ``all`` sets every policy's
    level) over the defaults in the policies' config schemas, each validated against its schema.

    Raises :class:`PolicyConfigError` naming the policy, the property and what was expected, as
    ``pulumi preview --policy-pack-config`` refuses such a config. Names of no policy are
    ignored, as the CLI ignores them.
    """
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise PolicyConfigError(f"the pack's config must be an object, not {config!r}")
    given: dict[str, PolicySettings] = {}
    for name, value in config.items():
        if isinstance(value, str):
            given[name] = PolicySettings(_level(value, name), {})
        elif isinstance(value, Mapping):
            properties = {k: v for k, v in value.items() if k != "enforcementLevel"}
            level = value.get("enforcementLevel")
            given[name] = PolicySettings(None if level is None else _level(level, name), properties)
        else:
            raise PolicyConfigError(
                f"{name}: {value!r} is not a valid value; must be an enforcement level or an object"
            )
    every = given.get("all")
    settings: dict[str, PolicySettings] = {}
    for policy in policies:
        schema = policy.config_schema
        declared = dict(schema.properties or {}) if schema else {}
        properties = {k: p["default"] for k, p in declared.items() if "default" in p}
        own = given.get(policy.name)
        properties.update(own.properties if own else {})
        level = own.level if own and own.level else (every.level if every else None)
        if schema is not None:
            document = {"type": "object", "properties": declared}
            if schema.required:
                document["required"] = list(schema.required)
            for error in jsonschema.Draft7Validator(document).iter_errors(properties):
                where = ".".join(str(step) for step in error.absolute_path) or "(config)"
                raise PolicyConfigError(f"{policy.name}: {where}: {error.message}")
        settings[policy.name] = PolicySettings(level, properties)
    return settings


def _wire(value: Any) -> Any:
    """A recorded value as the engine hands it to a policy pack."""
    if isinstance(value, Secret):
        return _wire(value.value)
    if isinstance(value, Unknown):
        return rpc.UNKNOWN
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    return value


def _options(resource: Registration) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=list(resource.ignore_changes),
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent or None,
    )


def _run(result: Any) -> None:
    if inspect.isawaitable(result):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(result)
        finally:
            loop.close()


def _stack_props(resource: Registration) -> Any:
    """What the engine gives a stack policy of a resource's outputs, as far as the offline plan
    knows them: its inputs, and the id a custom resource gets (not known yet in a preview)."""
    props = _wire(resource.inputs)
    if resource.custom and "id" not in props:
        props["id"] = resource.id or rpc.UNKNOWN
    return unknown_checking_proxy(props)


def _policy_resources(resources: Sequence[Registration]) -> list[PolicyResource]:
    made = {
        r.urn: PolicyResource(
            r.type,
            _stack_props(r),
            r.urn,
            r.name,
            _options(r),
            None,
            None,
            [],
            {},
        )
        for r in resources
    }
    for r in resources:
        made[r.urn].parent = made.get(r.parent)
        made[r.urn].dependencies = [made[urn] for urn in r.depends_on if urn in made]
    return list(made.values())


def check(
    recording: Recording,
    policies: Iterable[Policy] | None = None,
    config: Mapping[str, Any] | None = None,
    pack_level: EnforcementLevel = EnforcementLevel.MANDATORY,
) -> PolicyReport:
    """Run ``policies`` (the pack's, by default) over the recorded resources.

    ``config`` is the pack's config, policy name to its settings, as given to
    ``pulumi preview --policy-pack-config``; it is validated first (:func:`pack_config`).
    """
    if policies is None:
        from policy.invariants import POLICIES

        policies = POLICIES
    policies = list(policies)
    configured = pack_config(policies, config)
    report = PolicyReport()
    for policy in policies:
        level = configured[policy.name].level or policy.enforcement_level or pack_level
        if level == EnforcementLevel.DISABLED:
            continue
        settings = dict(configured[policy.name].properties)
        if isinstance(policy, ResourceValidationPolicy):
            for resource in recording.resources:
                props = unknown_checking_proxy(_wire(resource.inputs))
                args = ResourceValidationArgs(
                    resource.type,
                    props,
                    resource.urn,
                    resource.name,
                    _options(resource),
                    None,
                    settings,
                )
                # As for the engine, a resource policy's findings are about that resource.
                found = _reporter(report, policy.name, level, resource.urn, fixed=True)
                try:
                    _run(policy.validate(args, found))
                except UnknownValueError as error:
                    report.unknown.append(Violation(policy.name, resource.urn, error.message))
        elif isinstance(policy, StackValidationPolicy):
            args = StackValidationArgs(_policy_resources(recording.resources), settings)
            found = _reporter(report, policy.name, level, recording.stack_urn, fixed=False)
            try:
                _run(policy.validate(args, found))
            except UnknownValueError as error:
                report.unknown.append(Violation(policy.name, recording.stack_urn, error.message))
    return report


def _reporter(
    report: PolicyReport, policy: str, level: EnforcementLevel, urn: str, *, fixed: bool
) -> Callable[..., None]:
    def found(message: str, at: str | None = None) -> None:
        where = urn if fixed or not at else at
        report.violations.append(Violation(policy, where, message, level))

    return found


def main(argv: list[str] | None = None) -> int:
    from offline.__main__ import OUTSIDE_CONFIG
    from offline.engine import run_project
    from offline.project import ProjectError, read_project

    parser = argparse.ArgumentParser(
        prog="python -m offline.policy_pack",
        description="Run the policy pack over the offline plan of a stack.",
    )
    parser.add_argument("--stack", default="dev", help="stack name (reads Pulumi.<stack>.yaml)")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="the project directory")
    parser.add_argument("--preview", action="store_true", help="plan as `pulumi preview` does")
    parser.add_argument(
        "--config", type=Path, help="the pack's config as JSON (--policy-pack-config)"
    )
    args = parser.parse_args(argv)
    for variable in OUTSIDE_CONFIG:
        os.environ.pop(variable, None)

    import pulumi

    from policy.invariants import POLICIES

    # As the CLI does, a config the policies refuse stops everything before the program runs.
    try:
        config = json.loads(args.config.read_text()) if args.config else None
        pack_config(POLICIES, config)
    except (OSError, json.JSONDecodeError, PolicyConfigError) as error:
        sys.stderr.write(f"error: the pack's config: {error}\n")
        return 2
    try:
        project = read_project(args.dir.resolve(), args.stack)
        recording = run_project(args.dir.resolve(), project, preview=args.preview)
    except (ProjectError, pulumi.RunError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    report = check(recording, POLICIES, config=config)
    for violation in report.violations:
        sys.stdout.write(f"{violation.level.value}: [{violation.policy}] {violation.urn}\n")
        sys.stdout.write(f"    {violation.message}\n")
    for unknown in report.unknown:
        sys.stdout.write(f"not checked: [{unknown.policy}] {unknown.urn}: {unknown.message}\n")
    checked = len(recording.resources)
    sys.stdout.write(
        f"{len(report.violations)} violation(s) in {checked} resources of stack {args.stack}\n"
    )
    return 1 if report.mandatory else 0


if __name__ == "__main__":
    sys.exit(main())
