"""The offline engine's recording monitor."""

from __future__ import annotations

from google.protobuf import struct_pb2
from pulumi.runtime.proto import resource_pb2

from offline.engine import OfflineMocks, RecordingMonitor

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
