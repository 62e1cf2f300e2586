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


def test_boolean_and_null_keys_keep_the_names_the_cli_gives_them(tmp_path):
    directory = project_with(tmp_path, "config:\n  homelab:hosts:\n    true: {}\n    null: {}\n")
    assert json.loads(read_project(directory, "dev").config["homelab:hosts"]) == {
        "true": {},
        "null": {},
    }


def test_a_number_with_a_leading_zero_is_refused_not_guessed(tmp_path):
    directory = project_with(tmp_path, "config:\n  homelab:port: 017620\n")
    with pytest.raises(ProjectError, match="017620 has a leading zero"):
        read_project(directory, "dev")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param(
            "config:\n  homelab:aws: {a: 1, a: 2}\n",
            "config key aws.a: is defined twice in ",
            id="duplicate-key",
        ),
        pytest.param(
            "config:\n  aws:region: eu-central-1\n  aws:region: us-east-1\n",
            "config key aws:region: is defined twice in ",
            id="duplicate-provider-key",
        ),
        pytest.param(
            "config: {}\nconfig: {}\n", "Pulumi.dev.yaml: key config is defined twice", id="top"
        ),
        pytest.param(
            "config:\n  homelab:tailnet:\n    rules:\n      - {src: [a], src: [b]}\n",
            "config key tailnet.rules[0].src: is defined twice in ",
            id="duplicate-key-in-a-list",
        ),
        pytest.param("config:\n  tailnet: {}\n", "<namespace>:<name>", id="bare-key"),
        pytest.param(
            "config:\n  homelab:tailnet: !!set {a: null}\n", "not plain data", id="yaml-set"
        ),
        pytest.param(
            "config:\n  homelab:tailnet: !!binary aGVsbG8=\n", "not plain data", id="yaml-binary"
        ),
        pytest.param(b"config:\n  homelab:x: caf\xe9\n", "not UTF-8", id="latin-1"),
        pytest.param("config:\n  ? [a, b]\n  : c\n", "a key must be a plain value", id="list-key"),
        pytest.param("config:\n  homelab:tailnet: &a [*a]\n", "refers to itself", id="alias-loop"),
        pytest.param(
            "config:\n  homelab:aws: {}\n  homelab:config:aws: {}\n",
            "homelab:aws is set twice",
            id="legacy-and-new-form",
        ),
        pytest.param(
            "config:\n  homelab:hosts: {1: {}, '1': {}}\n",
            "defined twice",
            id="number-and-text-key",
        ),
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


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "config:\n  homelab:bomb:\n" + "".join(f"    {level}\n" for level in levels)
    with pytest.raises(ProjectError) as raised:
        read_project(project_with(tmp_path, text), "dev")
    assert "expands to more than" in str(raised.value)


def test_yaml_1_2_numbers_and_merge_keys_read_as_the_cli_reads_them(tmp_path):
    directory = project_with(
        tmp_path,
        "config:\n  homelab:aws:\n    base: &base {size: 1e2, port: 31:23}\n"
        "    worker: {<<: *base, name: w}\n",
    )
    aws = json.loads(read_project(directory, "dev").config["homelab:aws"])
    assert aws["worker"] == {"size": 100.0, "port": "31:23", "name": "w"}


def test_a_secret_written_in_plain_text_stays_plain_so_the_program_refuses_it(tmp_path):
    directory = project_with(tmp_path, "config:\n  homelab:immichDatabasePassword: plain\n")
    project = read_project(directory, "dev")
    assert project.config["homelab:immichDatabasePassword"] == "plain"
    assert "homelab:immichDatabasePassword" not in project.secret_keys
