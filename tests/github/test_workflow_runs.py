"""The pull-request workflows, run: the `run:` scripts of plan-diff.yml and
plan-diff-comment.yml, taken from the YAML and executed with bash as GitHub's runner does, in a
temporary workspace whose `head/` is a merge commit of this repository's tree and whose `base/`
is that commit's first parent.

Only what GitHub itself provides is stood in for: the `uses:` actions (checkout as a local
clone, setup-python as the running interpreter, the artifact actions as a copied directory), the
`${{ }}` expressions of the event, the runner's files (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY) and
`gh`, GitHub's API client, which records what it would post. The revisions plan with their own
Makefiles; in place of two pip installs, each revision's `.venv` links to this repository's
installed one, with the requirement files dated before its install stamp so `make` finds it
current. About five seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline.diff import MARKER
from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
STACK_FILE = "Pulumi.dev.yaml"
OLD_IMAGE = "ghcr.io/example/quiz:1.4.2"
NEW_IMAGE = "ghcr.io/example/quiz:1.5.0"
PR_NUMBER = 42
PR_HEAD_SHA_FILE = "pr-head-sha"
GH_STUB = """\
#!/usr/bin/env bash
# GitHub's API as the comment step sees it: the pull request is at the commit the plans were
# made for, it has no comment yet, and what would be posted is kept.
printf '%s\\n' "$*" >> "$GH_STUB_DIR/calls"
case "$*" in
  *"/pulls/"*) cat "$GH_STUB_DIR/head-sha" ;;
  *"--method POST"* | *"--method PATCH"*) cp "${@: -1}" "$GH_STUB_DIR/posted.json" ;;
esac
"""


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True, document.get("on"))
    return document


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "test",
            "GIT_AUTHOR_EMAIL": "test@example.invalid",
            "GIT_COMMITTER_NAME": "test",
            "GIT_COMMITTER_EMAIL": "test@example.invalid",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
        },
    )
    return result.stdout.strip()


def tree_files() -> list[str]:
    """This repository's files as a checkout has them: tracked ones and new ones not ignored."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def make_repository(path: Path, *, head_stack: str) -> tuple[str, str, str]:
    """A repository like the one GitHub checks out for a pull request: a base commit, the pull
    request's commit on top of it, and the merge commit of the two (HEAD). Returns the shas
    of the base, the pull request's head and the merge."""
    for name in tree_files():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    git("init", "--quiet", "--initial-branch=main", cwd=path)
    git("add", "--all", cwd=path)
    git("commit", "--quiet", "--message=base", cwd=path)
    base = git("rev-parse", "HEAD", cwd=path)
    git("checkout", "--quiet", "-b", "pr", cwd=path)
    (path / STACK_FILE).write_text(head_stack)
    git("commit", "--quiet", "--all", "--message=pull request", cwd=path)
    pr_head = git("rev-parse", "HEAD", cwd=path)
    git("checkout", "--quiet", "--detach", base, cwd=path)
    git("merge", "--quiet", "--no-ff", "--message=merge", pr_head, cwd=path)
    return base, pr_head, git("rev-parse", "HEAD", cwd=path)


def use_installed_venv(revision: Path) -> None:
    """The stand-in for `make`'s pip install: this repository's venv, already current."""
    (revision / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    stamp = (ROOT / ".venv" / ".installed").stat().st_mtime
    for name in ("requirements.txt", "requirements-dev.txt"):
        os.utime(revision / name, (stamp - 60, stamp - 60))


@dataclass
class Runner:
    """One job's runner: a workspace, the runner's files, the expression context."""

    workspace: Path
    context: dict[str, str]
    artifacts: Path
    repository: Path
    """The repository the checkout action fetches from."""
    tools: Path
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workspace.mkdir(parents=True)
        self.home = self.workspace.parent / f"{self.workspace.name}-home"
        self.temp = self.workspace.parent / f"{self.workspace.name}-temp"
        self.home.mkdir()
        self.temp.mkdir()
        self.summary = self.temp / "step-summary.md"
        self.summary.touch()

    def expand(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            expression = match[1].strip()
            if expression not in self.context:
                pytest.fail(f"the test has no value for the expression {expression!r}")
            return self.context[expression]

        return re.sub(r"\$\{\{(.*?)\}\}", value, text, flags=re.DOTALL)

    def env(self, step: dict[str, Any]) -> dict[str, str]:
        env = {
            "PATH": os.pathsep.join([str(self.tools), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_OUTPUT": str(self.temp / "output"),
            "GITHUB_ENV": str(self.temp / "env"),
            "GITHUB_PATH": str(self.temp / "path"),
            "RUNNER_TEMP": str(self.temp),
            "GH_STUB_DIR": str(self.temp),
        }
        for key, item in (step.get("env") or {}).items():
            env[key] = self.expand(str(item))
        return env

    def run(self, step: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        (self.temp / "output").write_text("")
        script = self.temp / "step.sh"
        script.write_text(self.expand(step["run"]))
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace / step.get("working-directory", "."),
            env=self.env(step),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.log.append(f"--- {step.get('name')}\n{result.stdout}{result.stderr}")
        if "id" in step:
            for line in (self.temp / "output").read_text().splitlines():
                key, _, value = line.partition("=")
                self.context[f"steps.{step['id']}.outputs.{key}"] = value
        return result

    def use(self, step: dict[str, Any]) -> None:
        action = step["uses"].split("@")[0]
        inputs = {key: self.expand(str(value)) for key, value in (step.get("with") or {}).items()}
        if action == "actions/checkout":
            target = self.workspace / inputs.get("path", ".")
            git("clone", "--quiet", "--no-checkout", str(self.repository), str(target), cwd=ROOT)
            ref = inputs.get("ref") or self.context["github.sha"]
            branch = subprocess.run(
                ["git", "rev-parse", "--verify", "--quiet", f"origin/{ref}"],
                cwd=target,
                capture_output=True,
                text=True,
                check=False,
            )
            git("checkout", "--quiet", "--detach", branch.stdout.strip() or ref, cwd=target)
            if (target / "requirements.txt").exists():
                use_installed_venv(target)
        elif action == "actions/setup-python":
            pass  # the tools directory's python is on PATH already
        elif action == "actions/upload-artifact":
            for line in inputs["path"].split():
                source = self.workspace / line
                if source.is_file():
                    shutil.copy2(source, self.artifacts / source.name)
        elif action == "actions/download-artifact":
            shutil.copytree(self.artifacts, self.workspace / inputs["path"])
        else:
            pytest.fail(f"the test does not stand in for {action}")

    def job(self, job: dict[str, Any]) -> str | None:
        """Run the steps in order as GitHub does; the name of the step that failed, if any."""
        for step in job["steps"]:
            if "uses" in step:
                self.use(step)
            elif self.run(step).returncode != 0:
                return step.get("name")
        return None


def tools(path: Path) -> Path:
    """What the runner image and setup-python put on PATH that this machine may name
    differently: python and python3 (the running interpreter), and the stand-in for gh."""
    path.mkdir()
    interpreter = Path(sys.executable)
    for name in ("python", "python3"):
        (path / name).symlink_to(interpreter)
    gh = path / "gh"
    gh.write_text(GH_STUB)
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    return path


@dataclass
class Runs:
    plan_failed_at: str | None
    comment_failed_at: str | None
    summary: str
    comment: Path
    posted: Path
    artifacts: Path
    log: str


def run_workflows(tmp_path: Path, head_stack: str) -> Runs:
    repository = tmp_path / "origin"
    repository.mkdir()
    base, pr_head, merge = make_repository(repository, head_stack=head_stack)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    path = tools(tmp_path / "tools")
    plan = Runner(
        tmp_path / "plan-diff",
        {
            "github.sha": merge,
            "github.event.pull_request.number": str(PR_NUMBER),
            "vars.PLAN_STACK || 'dev'": "dev",
            "github.event.pull_request.head.sha": pr_head,
        },
        artifacts,
        repository,
        path,
    )
    plan_failed_at = plan.job(load("plan-diff.yml")["jobs"]["plan-diff"])
    assert plan.context["steps.base.outputs.sha"] == base

    comment = Runner(
        tmp_path / "comment",
        {
            "github.sha": base,  # the default branch's newest commit
            "github.event.repository.default_branch": "main",
            "github.event.workflow_run.id": "1",
            "github.event.workflow_run.head_sha": pr_head,
            "github.event.workflow_run.html_url": "https://github.invalid/o/r/actions/runs/1",
            "github.token": "not-a-token",
            "github.repository": "o/r",
        },
        artifacts,
        repository,
        path,
    )
    (comment.temp / "head-sha").write_text(pr_head + "\n")
    comment_failed_at = comment.job(load("plan-diff-comment.yml")["jobs"]["comment"])
    return Runs(
        plan_failed_at,
        comment_failed_at,
        plan.summary.read_text(),
        comment.workspace / "report" / "comment.md",
        comment.temp / "posted.json",
        artifacts,
        "\n".join(plan.log + comment.log),
    )


def test_a_pull_request_gets_its_plan_diff_posted(tmp_path):
    stack = (ROOT / STACK_FILE).read_text()
    assert OLD_IMAGE in stack
    runs = run_workflows(tmp_path, stack.replace(OLD_IMAGE, NEW_IMAGE))

    assert runs.plan_failed_at is None, runs.log
    assert runs.comment_failed_at is None, runs.log
    # The plans are plain JSON (no "Entering directory" from make), kept for the comment.
    for revision in ("base", "head"):
        plan = json.loads((runs.artifacts / f"{revision}.json").read_text())
        assert plan["stack"] == "dev"
    assert not (runs.artifacts / "failed").exists()
    assert runs.summary.startswith(MARKER), runs.log
    comment = runs.comment.read_text()
    assert comment.startswith(f"{MARKER}\n### Offline plan diff of stack `dev`")
    assert NEW_IMAGE in comment
    assert "to change" in comment
    assert "[the workflow run](https://github.invalid/o/r/actions/runs/1)" not in comment  # fits
    assert json.loads(runs.posted.read_text()) == {"body": comment}


def test_a_failed_plan_is_posted_as_a_failure_and_fails_the_run(tmp_path):
    runs = run_workflows(tmp_path, "config:\n  homelab:hosts: [not, a, mapping]\n")

    assert runs.plan_failed_at == "Fail when a plan failed", runs.log
    assert (runs.artifacts / "failed").read_text() == "head\n"
    assert runs.comment_failed_at is None, runs.log
    comment = runs.comment.read_text()
    assert comment.startswith(f"{MARKER}\n### Offline plan of `head` failed")
    assert "config key tailnet: is required" in comment
    assert json.loads(runs.posted.read_text()) == {"body": comment}


# --- the setup action of the real previews -----------------------------------------------------


def test_the_setup_action_leaves_the_runners_own_ssh_files_alone(tmp_path):
    action = yaml.safe_load(
        (ROOT / ".github" / "actions" / "pulumi-setup" / "action.yml").read_text()
    )
    (step,) = [s for s in action["runs"]["steps"] if s.get("name") == "SSH for the Docker hosts"]
    home = tmp_path / "home"
    own = {"id_ed25519": "the runner's own key\n", "known_hosts": "own\n", "config": "Host *\n"}
    (home / ".ssh").mkdir(parents=True)
    for name, text in own.items():
        (home / ".ssh" / name).write_text(text)
    temp = tmp_path / "runner temp"  # a space, as a self-hosted runner's path may have
    temp.mkdir()
    env = {
        "PATH": os.pathsep.join(["/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
        "RUNNER_TEMP": str(temp),
        "GITHUB_PATH": str(temp / "path"),
        "SSH_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nkey\n-----END OPENSSH PRIVATE KEY-----",
        "KNOWN_HOSTS": "tequila ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample",
    }
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    assert {p.name: p.read_text() for p in (home / ".ssh").iterdir()} == own
    ssh_dir = temp / "pulumi-ssh"
    assert stat.S_IMODE((ssh_dir / "id").stat().st_mode) == 0o600
    wrappers = Path((temp / "path").read_text().strip())
    resolved = subprocess.run(
        [str(wrappers / "ssh"), "-G", "ops@tequila"],
        env={**env, "PATH": os.pathsep.join([str(wrappers), env["PATH"]])},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert resolved.returncode == 0, resolved.stderr
    options = resolved.stdout.splitlines()
    assert f"identityfile {ssh_dir}/id" in options
    assert f"userknownhostsfile {ssh_dir}/known_hosts" in options
    assert "stricthostkeychecking true" in options
    assert "identitiesonly yes" in options
