"""Re-run stability: running the program again gives byte-identical inputs for every resource, so
no perpetual diff comes from ordering, timestamps or randomness.

Two runs in one process share Python's string hashing, so set and dict orders that depend on it
would agree by accident; the runs in separate processes use different hash seeds, time zones and
start times, as two ``pulumi up`` on two machines would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from conftest import ROOT

from offline.engine import fingerprint


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_two_runs_in_one_process_are_byte_identical(run_stack, preview):
    first, second = run_stack(preview=preview), run_stack(preview=preview)

    assert fingerprint(first) == fingerprint(second)


SCRIPT = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from offline.project import read_project
from offline.engine import fingerprint, run_project
root = Path(sys.argv[1])
recording = run_project(root, read_project(root, "dev"), preview=False)
sys.stdout.write(json.dumps({"resources": fingerprint(recording)}))
"""


def _python(*args: str, seed: str, zone: str) -> str:
    """What Python run with ``args`` in the project's folder writes, under a hash seed and a
    time zone of the test's choosing."""
    env = {**os.environ, "PYTHONHASHSEED": seed, "TZ": zone, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _run_in_a_process(seed: str, zone: str) -> dict[str, Any]:
    return json.loads(_python("-c", SCRIPT, str(ROOT), seed=seed, zone=zone))


def test_runs_in_processes_with_other_hash_seeds_and_time_zones_are_byte_identical():
    first = _run_in_a_process("1", "UTC")
    second = _run_in_a_process("4242", "Pacific/Auckland")

    assert first["resources"].keys() == second["resources"].keys()
    for urn, inputs in first["resources"].items():
        assert second["resources"][urn] == inputs, urn
    # The order resources reach the engine in varies with its worker threads; the engine
    # matches resources by URN, and the plan lists them in URN order.


def test_the_json_plan_is_byte_identical_across_processes():
    def plan(seed: str, zone: str) -> str:
        return _python("-m", "offline", "--json", seed=seed, zone=zone)

    assert plan("7", "UTC") == plan("99", "America/Sao_Paulo")
