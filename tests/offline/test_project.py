"""Reading Pulumi.yaml and a stack file the way the Pulumi CLI hands config to the program."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline.project import ProjectError, placeholder, read_project

PROJECT = """\
name: homelab
runtime: python
template:
  config:
    homelab:immichDatabasePassword:
      secret: true
"""


def project_with(tmp_path: Path, stack_text: str | bytes) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(PROJECT)
    stack = tmp_path / "Pulumi.dev.yaml"
    if isinstance(stack_text, bytes):
        stack.write_bytes(stack_text)
    else:
        stack.write_text(stack_text)
    return tmp_path


def test_yes_on_and_dates_stay_strings_as_in_yaml_1_2(tmp_path):
    directory = project_with(
        tmp_path,
        "config:\n  homelab:hosts:\n    on: {kind: yes, built: 2025-10-04, gpu: true}\n",
    )
    hosts = json.loads(read_project(directory, "dev").config["homelab:hosts"])
    assert hosts == {"on": {"kind": "yes", "built": "2025-10-04", "gpu": True}}


def test_number_keys_become_strings_as_the_cli_passes_them(tmp_path):
    directory = project_with(tmp_path, "config:\n  homelab:hosts:\n    123: {}\n    abc: {}\n")
    assert json.loads(read_project(directory, "dev").config["homelab:hosts"]) == {
        "123": {},
        "abc": {},
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param(
            "config:\n  homelab:aws: {a: 1, a: 2}\n", "'a' is defined twice", id="duplicate-key"
        ),
        pytest.param("config:\n  tailnet: {}\n", "<namespace>:<name>", id="bare-key"),
        pytest.param(
            "config:\n  homelab:tailnet: !!set {a: null}\n", "not plain data", id="yaml-set"
        ),
        pytest.param(
            "config:\n  homelab:tailnet: !!binary aGVsbG8=\n", "not plain data", id="yaml-binary"
        ),
        pytest.param(b"config:\n  homelab:x: caf\xe9\n", "not UTF-8", id="latin-1"),
    ],
)
def test_unreadable_stack_files_end_in_one_message(tmp_path, text, fragment):
    directory = project_with(tmp_path, text)
    with pytest.raises(ProjectError) as raised:
        read_project(directory, "dev")
    message = str(raised.value)
    assert fragment in message
    assert "\n" not in message


def test_legacy_config_infix_means_the_same_key(tmp_path):
    directory = project_with(tmp_path, "config:\n  homelab:config:aws: {vpcCidr: 10.1.0.0/16}\n")
    assert json.loads(read_project(directory, "dev").config["homelab:aws"]) == {
        "vpcCidr": "10.1.0.0/16"
    }


def test_declared_secrets_left_unset_get_a_secret_placeholder(tmp_path):
    project = read_project(project_with(tmp_path, "config: {}\n"), "dev")
    key = "homelab:immichDatabasePassword"
    assert project.config[key] == placeholder(key)
    assert key in project.secret_keys
    assert project.placeholders == [key]


def test_secure_values_are_replaced_and_their_key_marked_secret(tmp_path):
    directory = project_with(
        tmp_path, "config:\n  homelab:hosts:\n    a: {token: {secure: v1:AAAA}}\n"
    )
    project = read_project(directory, "dev")
    assert "homelab:hosts" in project.secret_keys
    assert "v1:AAAA" not in project.config["homelab:hosts"]
