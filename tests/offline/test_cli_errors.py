"""``python -m offline`` as a user runs it: a bad config or stack file is one line on stderr.

Each bad case runs the real CLI in a subprocess against a temporary project: a copy of
Pulumi.yaml and __main__.py next to a Pulumi.dev.yaml this file writes. ``--dir`` makes the CLI
run ``<tmp>/__main__.py`` with ``<tmp>`` first on ``sys.path``, as Pulumi's language host does;
the packages that program imports (``stacks``, ``components``) and the ``offline`` package itself
come from the repository through ``PYTHONPATH``, so nothing but the three files is copied. The
temporary directory holds no package that could shadow them; the control case (the unchanged dev
config through the same route) shows the route runs the repository's code.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import assert_one_line_error, run_module

ROOT = Path(__file__).resolve().parents[2]
DEV_STACK = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m offline`` with the repository's packages importable."""
    return run_module("offline", *args, cwd=cwd, env={"PYTHONDONTWRITEBYTECODE": "1"})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A temporary project: the repository's Pulumi.yaml and __main__.py, no stack file yet."""
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    return tmp_path


def write_stack(project: Path, document: Any, stack: str = "dev") -> None:
    (project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def dev_stack_with(**changes: Any) -> dict[str, Any]:
    """The dev stack file with ``homelab:<key>`` values replaced (``None`` removes the key)."""
    document = copy.deepcopy(DEV_STACK)
    for key, value in changes.items():
        full = key if ":" in key else f"homelab:{key}"
        if value is None:
            del document["config"][full]
        else:
            document["config"][full] = value
    return document


def _dev(path: str, value: Any) -> dict[str, Any]:
    """The dev stack's value of the structured key that ``path`` starts with, with one change."""
    key, *rest = path.split(".")
    document = copy.deepcopy(DEV_STACK["config"][f"homelab:{key}"])
    node = document
    for part in rest[:-1]:
        node = node[part]
    node[rest[-1]] = value
    return document


def _renamed_magic_dns() -> dict[str, Any]:
    tailnet = copy.deepcopy(DEV_STACK["config"]["homelab:tailnet"])
    tailnet["magicDNS"] = tailnet.pop("magicDns")
    return tailnet


BAD_CONFIGS = [
    pytest.param(
        {"tailnet": _renamed_magic_dns()},
        "error: config key tailnet.magicDNS: is not a known key",
        id="unknown-key-magicDNS",
    ),
    pytest.param(
        {"hosts": _dev("hosts.tequila.gpu", False)},
        "error: config key hosts.tequila.services.media.gpu: asks for a GPU",
        id="gpu-service-on-host-without-gpu",
    ),
    pytest.param(
        {"aws": _dev("aws.vpcCidr", "10.0.0.0/8")},
        "error: config key aws.vpcCidr: '10.0.0.0/8' is not a private IPv4 network",
        id="vpc-cidr-slash-8",
    ),
    pytest.param(
        # A scalar where a mapping belongs fails in Pulumi's get_object, before pydantic.
        {"tailnet": "tail4e2c1.ts.net"},
        "error: config key tailnet: ",
        id="tailnet-not-a-mapping",
    ),
    pytest.param(
        {"tailnet": None},
        "error: config key tailnet: is required",
        id="missing-tailnet",
    ),
    pytest.param(
        # Set in plain text by mistake: refused, and never echoed.
        {"immichDatabasePassword": "hunter2-short"},
        "error: config key immichDatabasePassword: must be stored encrypted",
        id="plain-text-immich-password",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), BAD_CONFIGS)
def test_bad_config_is_one_line(project: Path, changes: dict[str, Any], expected: str) -> None:
    write_stack(project, dev_stack_with(**changes))

    result = run_cli("--dir", str(project), cwd=project)

    assert_one_line_error(result, expected)
    assert "hunter2-short" not in result.stderr


def test_bad_config_fails_the_preview_too(project: Path) -> None:
    write_stack(project, dev_stack_with(hosts=_dev("hosts.tequila.gpu", False)))

    result = run_cli("--dir", str(project), "--preview", "--json", cwd=project)

    assert_one_line_error(result, "error: config key hosts.tequila.services.media.gpu: ")


def test_missing_stack_file(project: Path) -> None:
    result = run_cli("--dir", str(project), "--stack", "prod", cwd=project)

    assert_one_line_error(result, f"{project / 'Pulumi.prod.yaml'} does not exist")


def test_stack_file_not_a_mapping(project: Path) -> None:
    (project / "Pulumi.dev.yaml").write_text("- config\n")

    result = run_cli("--dir", str(project), cwd=project)

    assert_one_line_error(result, "Pulumi.dev.yaml must hold a mapping")


def test_invalid_yaml_stack_file(project: Path) -> None:
    (project / "Pulumi.dev.yaml").write_text("config:\n  homelab:tailnet: [1\n")

    result = run_cli("--dir", str(project), cwd=project)

    assert_one_line_error(result, "Pulumi.dev.yaml is not valid YAML")


def test_stack_config_not_a_mapping(project: Path) -> None:
    (project / "Pulumi.dev.yaml").write_text("config:\n  - homelab:tailnet\n")

    result = run_cli("--dir", str(project), cwd=project)

    assert_one_line_error(result, "Pulumi.dev.yaml")


def _sorted_plan(text: str) -> dict[str, Any]:
    plan = json.loads(text)
    urns = [resource["urn"] for resource in plan["resources"]]
    assert urns == sorted(urns), "the JSON plan lists resources in URN order"
    return plan


@pytest.mark.parametrize("extra", [[], ["--preview"]], ids=["update", "preview"])
def test_good_run_against_the_repository(extra: list[str]) -> None:
    result = run_cli("--json", *extra, cwd=ROOT)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    plan = json.loads(result.stdout)
    assert {"resources", "counts", "outputs"} <= set(plan)
    assert plan["resources"]
    assert plan["counts"]
    # What the plan diff compares beyond resources: provider config and secrets' fingerprints.
    assert plan["providerConfig"] == {"aws:region": "eu-central-1", "tailscale:tailnet": "-"}
    assert plan["secretFingerprints"] == {"homelab:immichDatabasePassword": None}
    assert all(isinstance(r["secretConfig"], list) for r in plan["resources"])


def test_good_text_run_against_the_repository() -> None:
    result = run_cli(cwd=ROOT)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.strip()
    # The total counts resources, as the plan diff does; components are named apart.
    assert re.search(r"^  total +\d+\n  \(and \d+ components, which group", result.stdout, re.M)


def test_temporary_project_runs_the_repository_program(project: Path) -> None:
    """The control for the bad cases: the unchanged dev config plans as it does in the repo."""
    write_stack(project, DEV_STACK)

    copied = run_cli("--dir", str(project), "--json", cwd=project)
    original = run_cli("--json", cwd=ROOT)

    assert copied.returncode == 0, copied.stderr
    assert _sorted_plan(copied.stdout) == _sorted_plan(original.stdout)
