"""Measure the offline plan: ``python bench/benchmark.py`` (``make bench``).

Three stacks: the dev stack, and generated stacks with 10x and 50x its services and workers (the
dev stack's host copied 10 and 50 times, each copy with its five services renamed, and the two
workers copied as often). Each is measured in a process of its own, so its peak memory is its
own:

- wall time of the first plan in the process (which also imports the provider modules the
  program touches) and the median of the next runs (warm);
- peak memory: the process's maximum resident set, and the Python heap's peak during one warm
  plan (tracemalloc, in a run of its own, since tracing slows the run down);
- provider lookups: the invokes the mock engine answered;
- bare registration: the same resources registered with the SDK alone, under the same mocks,
  as plain ``CustomResource``s and ``ComponentResource``s with the same types, names, parents,
  options (protect, retain on delete, ignored changes, dependencies), inputs and output
  properties, and the same stack outputs, and none of the program's work (config, rendering,
  lookups, applies).

Targets: the dev plan costs at most 1.3x the bare registration; time grows linearly with the
stack; lookups do not grow with the number of workers. The figures are printed as a Markdown
table for the README. This is a script, not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = {"dev": 1, "10x": 10, "50x": 50}
WARM_RUNS = {1: 25, 10: 5, 50: 3}
"""Warm runs per case: enough for a stable median, few enough to finish in a few minutes."""
PROCESSES = {1: 3, 10: 1, 50: 1}
"""Processes per case. Runs in one process vary less than processes do (memory layout, hash
seeds), so the dev stack, whose ratio is the target, is measured in three; the table shows
the process with the median ratio, and the verdict the range."""
TARGET_RATIO = 1.3
LINEAR_SLACK = 1.5
"""Time per resource may grow by this factor from the dev stack to 50x and still count as
linear (a quadratic stack would grow by 50x)."""


def scaled_config(project_config: dict[str, str], factor: int) -> dict[str, str]:
    """The dev stack's config with its host and workers copied ``factor`` times."""
    if factor == 1:
        return dict(project_config)
    hosts = json.loads(project_config["homelab:hosts"])
    aws = json.loads(project_config["homelab:aws"])
    (host_name, host), *_ = hosts.items()
    workers = aws["workers"]
    new_hosts: dict[str, Any] = {}
    new_workers: dict[str, Any] = {}
    for index in range(factor):
        # Suffixes without a hyphen: no service name may extend another with one.
        suffix = f"{index:02d}"
        copy_ = copy.deepcopy(host)
        copy_["sessionRecorder"] = index == 0
        copy_["lanAddress"] = f"192.168.{1 + index // 200}.{20 + index % 200}"
        copy_["services"] = {
            f"{name}{suffix}": {
                **service,
                "reaches": [f"{target}{suffix}" for target in service.get("reaches", [])],
            }
            for name, service in host["services"].items()
        }
        new_hosts[f"{host_name}{suffix}"] = copy_
        new_workers.update({f"{name}{suffix}": worker for name, worker in workers.items()})
    config = dict(project_config)
    config["homelab:hosts"] = json.dumps(new_hosts)
    config["homelab:aws"] = json.dumps({**aws, "workers": new_workers})
    return config


# --- One case, in a process of its own -------------------------------------------------------


def _measure(case: str) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    import pulumi
    import pulumi.resource as sdk_resource
    from pulumi import _types

    from offline.engine import Secret, Unknown, record, run_project
    from offline.project import read_project

    imported = time.perf_counter() - started
    factor = CASES[case]
    project = read_project(ROOT, "dev")
    project = dataclasses.replace(project, config=scaled_config(project.config, factor))

    # Which class registers each type, to give the bare resources the same output properties.
    classes: dict[str, type] = {}
    register = sdk_resource.register_resource

    def spy(res: Any, ty: str, *args: Any, **kwargs: Any) -> Any:
        classes.setdefault(ty, type(res))
        return register(res, ty, *args, **kwargs)

    def plan() -> Any:
        return run_project(ROOT, project, preview=False)

    sdk_resource.register_resource = spy
    started = time.perf_counter()
    recording = plan()
    cold = time.perf_counter() - started
    sdk_resource.register_resource = register

    outputs = {
        ty: list(_types.resource_py_to_pulumi_names(cls).values())
        for ty, cls in classes.items()
        if issubclass(cls, pulumi.CustomResource) and cls is not pulumi.CustomResource
    }

    def value(item: Any) -> Any:
        if isinstance(item, Secret):
            return pulumi.Output.secret(value(item.value))
        if isinstance(item, Unknown):
            return None
        if isinstance(item, dict):
            return {key: value(child) for key, child in item.items()}
        if isinstance(item, list):
            return [value(child) for child in item]
        return item

    # A constructor of their own, as every provider's resource class has: the SDK records where
    # each resource was declared from the first frame above the third __init__.
    class Bare(pulumi.CustomResource):
        def __init__(self, type_: str, name: str, props: dict, opts: pulumi.ResourceOptions):
            super().__init__(type_, name, props, opts)

    class BareComponent(pulumi.ComponentResource):
        def __init__(self, type_: str, name: str, opts: pulumi.ResourceOptions):
            super().__init__(type_, name, None, opts)

    def bare() -> None:
        made: dict[str, pulumi.Resource] = {}
        components = []
        for r in recording.resources:
            # The same options as the program's registrations, which the engine carries too.
            opts = pulumi.ResourceOptions(
                parent=made.get(r.parent),
                protect=r.protect,
                retain_on_delete=r.retain_on_delete,
                ignore_changes=list(r.ignore_changes) or None,
                depends_on=[made[urn] for urn in r.depends_on if urn in made],
            )
            if r.custom:
                props = dict.fromkeys(outputs.get(r.type, ()))
                props.update(value(r.inputs))
                made[r.urn] = Bare(r.type, r.name, props, opts)
            else:
                component = BareComponent(r.type, r.name, opts)
                made[r.urn] = component
                components.append(component)
        for component in components:
            component.register_outputs({})
        for key, output in recording.outputs.items():
            pulumi.export(key, value(output))

    record(bare)  # its own cold run
    # Plan and bare runs take turns, so a passing load on the machine slows both alike.
    warm, bare_runs = [], []
    for _ in range(WARM_RUNS[factor]):
        started = time.perf_counter()
        plan()
        warm.append(time.perf_counter() - started)
        started = time.perf_counter()
        replayed = record(bare)
        bare_runs.append(time.perf_counter() - started)
    assert len(replayed.resources) == len(recording.resources)

    tracemalloc.start()
    plan()
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    return {
        "case": case,
        "services": sum(
            1 for r in recording.resources if r.type == "homelab:docker:SidecarService"
        ),
        "workers": sum(1 for r in recording.resources if r.type == "homelab:aws:GpuWorker"),
        "resources": len(recording.resources),
        "imports_s": imported,
        "cold_s": cold,
        "warm_s": statistics.median(warm),
        "bare_s": statistics.median(bare_runs),
        "lookups": sum(recording.calls.values()),
        "lookups_by_token": dict(sorted(recording.calls.items())),
        "heap_peak_mib": heap_peak / 2**20,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# --- The table -------------------------------------------------------------------------------


def _run_case(case: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "PULUMI_CONFIG"):
        env.pop(variable, None)
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--case", case],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"case {case} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _table(results: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| stack | services | workers | resources | first plan | plan (warm) | per resource "
        "| bare SDK | plan / bare | lookups | peak RSS | peak heap |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        rows.append(
            f"| {r['case']} | {r['services']} | {r['workers']} | {r['resources']} "
            f"| {r['cold_s']:.2f} s | {r['warm_s']:.3f} s "
            f"| {1000 * r['warm_s'] / r['resources']:.2f} ms "
            f"| {r['bare_s']:.3f} s | {r['warm_s'] / r['bare_s']:.2f}x | {r['lookups']} "
            f"| {r['max_rss_mib']:.0f} MiB | {r['heap_peak_mib']:.1f} MiB |"
        )
    return rows


def _verdicts(results: list[dict[str, Any]], ratios: dict[str, list[float]]) -> list[str]:
    dev, big = results[0], results[-1]
    ratio = dev["warm_s"] / dev["bare_s"]
    spread = ratios[dev["case"]]
    growth = (big["warm_s"] / big["resources"]) / (dev["warm_s"] / dev["resources"])
    lookups = {r["lookups"] for r in results}

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    lines = [
        f"- {dev['case']} plan / bare registration: {ratio:.2f}x, from {min(spread):.2f}x to "
        f"{max(spread):.2f}x in {len(spread)} processes (target at most {TARGET_RATIO}x): "
        f"{verdict(ratio <= TARGET_RATIO)}",
    ]
    if len(results) < 2:
        # Growth and constancy need two stacks of different sizes.
        return lines
    return [
        *lines,
        f"- time per resource, {big['case']} over {dev['case']}: {growth:.2f}x "
        f"(linear: at most {LINEAR_SLACK}x): "
        f"{verdict(growth <= LINEAR_SLACK)}",
        f"- lookups per stack: {', '.join(str(r['lookups']) for r in results)} for "
        f"{', '.join(str(r['workers']) for r in results)} workers (constant): "
        f"{verdict(len(lookups) == 1)}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES, help="measure one case (used internally)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--only", nargs="+", choices=CASES, default=list(CASES), help="measure these stacks"
    )
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_measure(args.case)))
        return 0

    results, ratios = [], {}
    for case in args.only:
        runs = [_run_case(case) for _ in range(PROCESSES[CASES[case]])]
        runs.sort(key=lambda r: r["warm_s"] / r["bare_s"])
        results.append(runs[len(runs) // 2])
        ratios[case] = [r["warm_s"] / r["bare_s"] for r in runs]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    machine = (
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores"
    )
    print(f"Offline plan, {machine}; times are wall clock, medians of the warm runs.\n")
    print("\n".join(_table(results)))
    print()
    print("\n".join(_verdicts(results, ratios)))
    print(
        f"\nImporting the program's modules takes {results[0]['imports_s']:.2f} s before the "
        "first plan; the first plan also imports the provider modules it touches."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
