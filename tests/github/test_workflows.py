"""The pull-request workflows: linted by actionlint (with shellcheck on every script) and
GitHub's JSON schemas, and held to the security rules the README explains."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from offline.diff import COMMENT_LIMIT, MARKER
from tests.conftest import ROOT, require_tool

WORKFLOWS = ROOT / ".github" / "workflows"
SETUP_ACTION = ROOT / ".github" / "actions" / "pulumi-setup" / "action.yml"
FILES = sorted(WORKFLOWS.glob("*.yml"))


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as true.
    document["on"] = document.pop(True, document.get("on"))
    return document


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def test_there_are_three_workflows():
    assert [path.name for path in FILES] == ["plan-diff-comment.yml", "plan-diff.yml", "pulumi.yml"]


@pytest.mark.tool
def test_actionlint_and_shellcheck_find_nothing():
    result = subprocess.run(
        [
            require_tool("actionlint"),
            "-no-color",
            "-oneline",
            "-shellcheck",
            require_tool("shellcheck"),
            *map(str, FILES),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.tool
@pytest.mark.parametrize(
    ("schema", "paths"),
    [
        pytest.param("vendor.github-workflows", FILES, id="workflows"),
        pytest.param("vendor.github-actions", [SETUP_ACTION], id="setup-action"),
    ],
)
def test_github_schemas_accept_the_files(schema, paths):
    result = subprocess.run(
        [require_tool("check-jsonschema"), "--builtin-schema", schema, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_to_a_major_version_or_is_local():
    for path in [*FILES, SETUP_ACTION]:
        for ref in re.findall(r"uses:\s*(\S+)", path.read_text()):
            assert ref.startswith("./") or re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", ref), (
                f"{path.name}: {ref}"
            )


def test_no_workflow_runs_pull_request_code_with_a_write_token():
    for path in FILES:
        assert "pull_request_target" not in load(path.name)["on"], path.name


def test_the_plan_diff_runs_on_every_pull_request_without_secrets():
    workflow = load("plan-diff.yml")
    assert set(workflow["on"]) == {"pull_request"}
    assert workflow["permissions"] == {"contents": "read"}
    text = (WORKFLOWS / "plan-diff.yml").read_text()
    assert "secrets." not in text
    assert "secrets:" not in text
    (job,) = workflow["jobs"].values()
    assert "permissions" not in job
    assert "if" not in job  # forks included
    checkouts = [s for s in steps(job) if s.get("uses", "").startswith("actions/checkout@")]
    assert [c["with"]["path"] for c in checkouts] == ["head", "base"]
    assert all(c["with"]["persist-credentials"] is False for c in checkouts)
    # The base is the merge commit's first parent, not pull_request.base.sha, which goes stale.
    assert checkouts[0]["with"]["fetch-depth"] == 2
    assert checkouts[1]["with"]["ref"] == "${{ steps.base.outputs.sha }}"
    assert "${{ github.event.pull_request.base.sha }}" not in text
    assert 'make --no-print-directory -C "$revision" plan-json' in text


def test_the_comment_is_written_by_the_default_branch_from_the_plans_alone():
    workflow = load("plan-diff-comment.yml")
    assert workflow["on"] == {"workflow_run": {"workflows": ["plan diff"], "types": ["completed"]}}
    assert workflow["permissions"] == {}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert "workflow_run.head_branch" in workflow["concurrency"]["group"]
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"actions": "read", "contents": "read", "pull-requests": "write"}
    (checkout,) = [s for s in steps(job) if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"] == {
        "ref": "${{ github.event.repository.default_branch }}",
        "path": "trusted",
        "persist-credentials": False,
    }
    text = (WORKFLOWS / "plan-diff-comment.yml").read_text()
    assert "secrets." not in text
    scripts = "\n".join(s.get("run", "") for s in steps(job))
    # No pull-request code runs: no make, no install, nothing from the artifact imported.
    for forbidden in ("make ", "pip ", "source ", ". report", "bash report", "report/*.sh"):
        assert forbidden not in scripts
    assert "cd trusted" in scripts
    assert "python3 -m offline.diff" in scripts
    post = steps(job)[-1]
    # The comment is found by the report's marker, and no report over the limit is posted.
    assert post["env"]["MARKER"] == MARKER
    assert int(post["env"]["LIMIT"]) == COMMENT_LIMIT
    assert "--method PATCH" in post["run"]
    assert "HEAD_SHA" in post["run"]


def test_the_report_needs_only_the_standard_library():
    """The comment workflow runs offline/diff/ with the runner's python3, installing nothing."""
    modules = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for path in sorted((ROOT / "offline" / "diff").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    # The package's own modules, and nothing else of this repository.
    own = {name for name in modules if name.split(".")[:2] == ["offline", "diff"]}
    outside = {name.split(".")[0] for name in modules - own}
    assert outside - {"__future__"} <= set(sys.stdlib_module_names), modules


def test_the_preview_uses_the_current_pulumi_action_and_comments_once():
    workflow = load("pulumi.yml")
    preview = workflow["jobs"]["preview"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in preview["if"]
    (pulumi,) = [s for s in steps(preview) if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["uses"] == "pulumi/actions@v7"
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["diff"] is True
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["edit-pr-comment"] is True
    assert preview["permissions"]["pull-requests"] == "write"


def test_every_job_with_secrets_takes_them_from_an_environment():
    for path in FILES:
        for name, job in load(path.name)["jobs"].items():
            text = yaml.safe_dump(job)
            if "secrets." in text:
                assert job.get("environment"), f"{path.name}: job {name} has repository secrets"
    jobs = load("pulumi.yml")["jobs"]
    assert jobs["preview"]["environment"] == "preview"
    assert jobs["up"]["environment"] == "dev"


def test_the_pulumi_cli_is_the_release_of_the_pinned_sdk():
    (pin,) = re.findall(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    for job in load("pulumi.yml")["jobs"].values():
        (pulumi,) = [s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions@")]
        assert str(pulumi["with"]["pulumi-version"]) == pin


def test_a_runner_already_on_the_tailnet_skips_joining_it():
    action = yaml.safe_load(SETUP_ACTION.read_text())
    assert action["inputs"]["join-tailnet"]["default"] == "true"
    (join,) = [s for s in action["runs"]["steps"] if s.get("uses", "").startswith("tailscale/")]
    assert join["if"] == "inputs.join-tailnet == 'true'"
    scripts = "\n".join(s.get("run", "") for s in action["runs"]["steps"])
    assert "~/.ssh" not in scripts
    assert "$HOME" not in scripts
    for job in load("pulumi.yml")["jobs"].values():
        (setup,) = [s for s in steps(job) if s.get("uses") == "./.github/actions/pulumi-setup"]
        assert setup["with"]["join-tailnet"] == "${{ vars.RUNNER_ON_TAILNET != 'true' }}"


def test_the_deployment_is_optional_and_gated_by_an_environment():
    workflow = load("pulumi.yml")
    assert set(workflow["on"]) == {"pull_request", "push"}
    assert workflow["on"]["push"] == {"branches": ["main"]}
    up = workflow["jobs"]["up"]
    assert "github.event_name == 'push'" in up["if"]
    assert "vars.PULUMI_UP == 'true'" in up["if"]
    assert up["environment"] == "dev"
    assert up["concurrency"]["cancel-in-progress"] is False
    (pulumi,) = [s for s in steps(up) if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "up"


def test_the_readme_documents_every_secret_and_variable_the_workflows_use():
    readme = (ROOT / "README.md").read_text()
    names = set()
    for path in [*FILES, SETUP_ACTION]:
        names |= set(re.findall(r"\b(?:secrets|vars)\.([A-Z][A-Z0-9_]+)", path.read_text()))
    assert names >= {"PULUMI_ACCESS_TOKEN", "PULUMI_STACK", "AWS_ROLE_ARN", "TS_OAUTH_SECRET"}
    for name in sorted(names):
        assert f"`{name}`" in readme, f"README does not document {name}"
