"""The offline engine's recording monitor."""

from __future__ import annotations

import os

import pulumi
import pulumi_docker as docker
import pytest
from conftest import assert_no_output_placeholders
from google.protobuf import struct_pb2
from pulumi.runtime.proto import resource_pb2

from offline.engine import OUTPUT_STRING_SWITCH, OfflineMocks, RecordingMonitor, record
from offline.plan import build_plan, render_text
from offline.project import ProjectConfig

STACK = "urn:pulumi:dev::homelab::pulumi:pulumi:Stack::homelab-dev"


def _outputs(**values: str) -> resource_pb2.RegisterResourceOutputsRequest:
    outputs = struct_pb2.Struct()
    outputs.update(values)
    return resource_pb2.RegisterResourceOutputsRequest(urn=STACK, outputs=outputs)


def test_a_second_empty_registration_never_hides_the_stacks_outputs():
    # set_mocks registers an empty stack of its own, under the same URN, from another thread.
    monitor = RecordingMonitor(OfflineMocks())
    monitor.RegisterResourceOutputs(_outputs(tailnetDomain="tail0000.ts.net"))
    monitor.RegisterResourceOutputs(_outputs())
    assert monitor.registered_outputs[STACK] == {"tailnetDomain": "tail0000.ts.net"}


def test_the_first_registration_is_kept_even_when_empty():
    monitor = RecordingMonitor(OfflineMocks())
    monitor.RegisterResourceOutputs(_outputs())
    assert monitor.registered_outputs[STACK] == {}


def _volume_named_after(make_name):
    def program():
        network = docker.Network("net", name="net")
        docker.Volume("data", name=make_name(network))

    return program


@pytest.mark.parametrize(
    "make_name",
    [
        pytest.param(lambda network: f"data-{network.name}", id="f-string"),
        pytest.param(lambda network: "data-" + str(network.id), id="str"),
        pytest.param(
            lambda network: network.name.apply(lambda name: f"{name}-{network.id}"),
            id="inside-an-apply",
        ),
    ],
)
def test_an_output_formatted_into_a_string_fails_the_run(monkeypatch, make_name):
    # Even where nothing asked for it: the engine itself turns the SDK's warning into an error.
    monkeypatch.delenv(OUTPUT_STRING_SWITCH)
    with pytest.raises(Exception, match=r"Calling __str__ on an Output\[T\] is not supported"):
        record(_volume_named_after(make_name))
    assert OUTPUT_STRING_SWITCH not in os.environ


def test_the_output_format_helpers_are_fine():
    recording = record(
        _volume_named_after(lambda network: pulumi.Output.concat("data-", network.name))
    )
    assert recording.named("data").inputs["name"] == "data-net"
    assert_no_output_placeholders(recording)


def test_placeholder_text_in_a_recording_is_found():
    text = "Calling __str__ on an Output[T] is not supported."
    recording = record(_volume_named_after(lambda network: text))
    with pytest.raises(AssertionError, match="an Output was formatted into"):
        assert_no_output_placeholders(recording)


def test_log_lines_of_the_program_reach_the_plan():
    def program():
        pulumi.log.warn("the router has no exit node")

    recording = record(program)
    project = ProjectConfig(project="homelab", stack="test", config={}, secret_keys=[])
    plan = build_plan(project, recording, preview=False)

    assert plan["diagnostics"] == ["warning: the router has no exit node"]
    assert "  warning: the router has no exit node" in render_text(plan)
