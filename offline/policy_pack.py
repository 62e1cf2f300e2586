"""Run the policy pack (``policy/``) over an offline plan, as ``pulumi preview --policy-pack``
runs it over a real one: ``python -m offline.policy_pack [--stack dev] [--preview]``.

Each recorded resource reaches the policies the way the engine sends it to an analyzer: its
inputs with camelCase names, secrets in clear, values unknown in a preview as the engine's
unknown marker (reading one raises ``UnknownValueError``, which counts as "could not check",
not as a pass), its ``protect`` option, parent and dependencies. ``retainOnDelete`` is not among
the options the engine gives policies; the test suite checks it on the recording instead.
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


def _policy_resources(resources: Sequence[Registration]) -> list[PolicyResource]:
    made = {
        r.urn: PolicyResource(
            r.type,
            unknown_checking_proxy(_wire(r.inputs)),
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
    config: Mapping[str, Mapping[str, Any]] | None = None,
    pack_level: EnforcementLevel = EnforcementLevel.MANDATORY,
) -> PolicyReport:
    """Run ``policies`` (the pack's, by default) over the recorded resources.

    ``config`` is the pack's config, policy name to its settings, as given to
    ``pulumi preview --policy-pack-config``.
    """
    if policies is None:
        from policy.invariants import POLICIES

        policies = POLICIES
    config = config or {}
    report = PolicyReport()
    for policy in policies:
        level = policy.enforcement_level or pack_level
        if level == EnforcementLevel.DISABLED:
            continue
        settings = dict(config.get(policy.name, {}))
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
    from offline.engine import run_program
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

    try:
        project = read_project(args.dir.resolve(), args.stack)
        recording = run_program(
            args.dir.resolve(),
            project=project.project,
            stack=project.stack,
            config=project.config,
            secret_keys=project.secret_keys,
            preview=args.preview,
            region=project.config.get("aws:region", "eu-central-1"),
        )
    except (ProjectError, pulumi.RunError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    config = json.loads(args.config.read_text()) if args.config else None
    report = check(recording, config=config)
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
