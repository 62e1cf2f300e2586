"""Run the real program under the Pulumi SDK's mock engine and record what it registers.

:class:`OfflineMocks` answers every provider call the program makes with plausible values and
counts them; :class:`RecordingMonitor` keeps each registration request (type, name, parent,
inputs with their secretness, and the resource options the mock arguments leave out).
:func:`run_program` runs ``__main__.py`` the way Pulumi's language host does and returns a
:class:`Recording`; :func:`run_project` does the same with one stack's config as it was read.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import os
import runpy
import sys
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

if TYPE_CHECKING:
    from offline.project import ProjectConfig

SECRET = rpc._special_secret_sig
SIG = rpc._special_sig_key
UNKNOWN = rpc.UNKNOWN


class Secret:
    """A recorded value that the program marked secret."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "[secret]"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.value == self.value

    def __hash__(self) -> int:
        return hash(repr(self.value))


class Unknown:
    """A recorded value that is only known after an update (preview mode)."""

    def __repr__(self) -> str:
        return "[unknown]"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unknown)

    def __hash__(self) -> int:
        return 0


def _plain(value: Any) -> Any:
    """A protobuf value as Python, keeping secretness as :class:`Secret`."""
    if isinstance(value, dict):
        if value.get(SIG) == SECRET:
            return Secret(_plain(value.get("value")))
        if SIG in value:
            return {k: _plain(v) for k, v in value.items() if k != SIG}
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value == UNKNOWN:
        return Unknown()
    if isinstance(value, float) and value.is_integer():
        # protobuf carries every number as a double; the program wrote integers.
        return int(value)
    return value


def _struct(message: Any) -> dict[str, Any]:
    return _plain(json_format.MessageToDict(message, preserving_proto_field_name=True))


@dataclass
class Registration:
    """One resource as the program registered it."""

    urn: str
    id: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    delete_timeout: str = ""
    ignore_changes: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    provider: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recording:
    """Everything one run of the program registered."""

    resources: list[Registration]
    outputs: dict[str, Any]
    calls: Counter[str]
    logs: list[str]
    stack_urn: str

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Registration:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources are named {name!r}")
        return matches[0]


def _canonical(value: Any) -> Any:
    if isinstance(value, Secret):
        return {"secret": _canonical(value.value)}
    if isinstance(value, Unknown):
        return {"unknown": True}
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def fingerprint(recording: Recording) -> dict[str, str]:
    """URN -> what the engine compares with the last update, as canonical JSON: the inputs,
    secrets in clear (their value counts too), and the options."""
    return {
        r.urn: json.dumps(
            {
                "inputs": _canonical(r.inputs),
                "parent": r.parent,
                "provider": r.provider,
                "protect": r.protect,
                "retainOnDelete": r.retain_on_delete,
                "ignoreChanges": r.ignore_changes,
                "dependsOn": sorted(r.depends_on),
            },
            sort_keys=True,
        )
        for r in recording.resources
    } | {recording.stack_urn: json.dumps(_canonical(recording.outputs), sort_keys=True)}


ZONE_COUNTS = {"us-east-1": 6, "us-west-2": 4, "ap-northeast-2": 4}
"""Regions with more than the usual three availability zones (AWS's published counts)."""

OUTPUT_STRING_SWITCH = "PULUMI_ERROR_OUTPUT_STRING"
"""With it set, the SDK raises when an Output is formatted into a string (an f-string, str(),
"%s") instead of warning and putting a paragraph of placeholder text where the value belongs."""

RUN_GC_THRESHOLDS = (100_000, 50, 1000)
"""Garbage collection during a run. Nearly every object a run makes (resources, Outputs, their
futures) lives until the run ends, so each full collection would scan all of them again: with
the default thresholds a plan's time grows faster than its size. With these, young garbage is
still collected, and the one full collection comes when the run ends."""

SECRET_OUTPUTS = {
    "tailscale:index/tailnetKey:TailnetKey": ("key", "tskey-auth"),
    "tailscale:index/oauthClient:OauthClient": ("key", "tskey-client"),
}
"""Resource type -> (output the provider marks secret, the shape of its value)."""


def _fake_id(type_: str, name: str) -> str:
    digest = hashlib.sha256(f"{type_}::{name}".encode()).hexdigest()
    return digest[:17]


class OfflineMocks(pulumi_mocks.Mocks):
    """Provider answers for an offline run: deterministic ids, plausible lookups, no network."""

    def __init__(self, region: str = "eu-central-1", *, preview: bool = False) -> None:
        self.region = region
        self.preview = preview
        self.calls: Counter[str] = Counter()

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict]:
        resource_id = _fake_id(args.typ, args.name)
        state = dict(args.inputs)
        if args.typ.startswith("aws:"):
            prefix = args.typ.split(":")[-1].lower()
            state.setdefault(
                "arn",
                f"arn:aws:{args.typ.split(':')[1].split('/')[0]}:{self.region}:"
                f"123456789012:{prefix}/{args.name}",
            )
            if args.typ == "aws:iam/role:Role":
                state.setdefault("name", f"{args.name}-{resource_id[:7]}")
            if args.typ == "aws:iam/instanceProfile:InstanceProfile":
                state.setdefault("name", f"{args.name}-{resource_id[:7]}")
            if args.typ == "aws:ssm/parameter:Parameter" and "name" in args.inputs:
                # The shape AWS gives a parameter's ARN: its path after "parameter".
                name = args.inputs["name"]
                state["arn"] = (
                    f"arn:aws:ssm:{self.region}:123456789012:parameter/{name.lstrip('/')}"
                )
            if args.typ == "aws:s3/bucket:Bucket":
                # As the provider does: a bucket with no name gets the resource's name and a
                # random suffix (here a deterministic one).
                state.setdefault("bucket", f"{args.name}-{resource_id[:7]}")
            if args.typ == "aws:ec2/instance:Instance":
                state.setdefault("primaryNetworkInterfaceId", f"eni-{resource_id}")
                if "instanceMarketOptions" in args.inputs:
                    state.setdefault("spotInstanceRequestId", f"sir-{resource_id[:8]}")
            resource_id = f"{prefix[:4]}-{resource_id}"
        if args.typ == "docker:index/remoteImage:RemoteImage":
            state["imageId"] = "sha256:" + hashlib.sha256(args.inputs["name"].encode()).hexdigest()
        secret = SECRET_OUTPUTS.get(args.typ)
        if secret is not None:
            # The engine marks these outputs secret (additionalSecretOutputs); the mock must.
            key, prefix = secret
            state[key] = rpc.wrap_rpc_secret(f"{prefix}-offline-{resource_id[:10]}")
        if self.preview:
            # As in `pulumi preview`, a resource to be created has no id yet: what depends on
            # one (a container's network namespace, an attachment's volume) shows as unknown.
            resource_id = ""
        return resource_id, state

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict:
        self.calls[args.token] += 1
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            count = ZONE_COUNTS.get(self.region, 3)
            names = [f"{self.region}{suffix}" for suffix in "abcdef"[:count]]
            return {
                "names": names,
                "zoneIds": [f"{self.region}-az{i}" for i in range(1, count + 1)],
                "id": self.region,
            }
        if args.token == "aws:ssm/getParameter:getParameter":
            name = args.args["name"]
            image = "ami-" + hashlib.sha256(name.encode()).hexdigest()[:17]
            return {
                "name": name,
                "value": image,
                "insecureValue": image,
                "type": "String",
                "arn": f"arn:aws:ssm:{self.region}::parameter{name}",
                "id": name,
                "version": 1,
                "withDecryption": True,
            }
        raise NotImplementedError(f"the offline engine has no answer for {args.token}")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also keeps the registration requests and registered outputs."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: dict[str, Registration] = {}
        self.order: list[str] = []
        self.registered_outputs: dict[str, dict[str, Any]] = {}
        self.thread_loops: set[asyncio.AbstractEventLoop] = set()

    def _keep_thread_loop(self) -> None:
        # The SDK calls the monitor from worker threads and gives each thread an event loop of
        # its own; they are closed after the run rather than by the collector at exit, where
        # closing them fails noisily.
        if threading.current_thread() is not threading.main_thread():
            self.thread_loops.add(_ensure_event_loop())

    def close_thread_loops(self) -> None:
        """Close the worker threads' event loops (never a running one)."""
        for loop in list(self.thread_loops):
            if not loop.is_running() and not loop.is_closed():
                loop.close()
        self.thread_loops.clear()

    def Invoke(self, request: Any) -> Any:  # noqa: N802 (the gRPC method's name)
        self._keep_thread_loop()
        return super().Invoke(request)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802
        self._keep_thread_loop()
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.order.append(response.urn)
            self.registrations[response.urn] = Registration(
                urn=response.urn,
                id=response.id,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=request.custom,
                inputs=_struct(request.object),
                protect=request.protect,
                retain_on_delete=request.retainOnDelete,
                delete_before_replace=request.deleteBeforeReplace,
                delete_timeout=request.customTimeouts.delete,
                ignore_changes=list(request.ignoreChanges),
                depends_on=list(request.dependencies),
                provider=request.provider,
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
        self._keep_thread_loop()
        outputs = _struct(request.outputs)
        # set_mocks makes a stack of its own, which registers empty outputs under the same URN
        # as the program's stack, from another thread: those must never replace real ones.
        if outputs or request.urn not in self.registered_outputs:
            self.registered_outputs[request.urn] = outputs
        return super().RegisterResourceOutputs(request)


class _LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname.lower()}: {record.getMessage()}")


def _quiet_about_failed_futures(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if "exception was never retrieved" not in context.get("message", ""):
        loop.default_exception_handler(context)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what a failed run left waiting on the loop."""
    leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
    # The SDK keeps the outputs it waits for in a process-wide set.
    settings.SETTINGS.outputs.clear()


def record(
    program: Callable[[], object],
    *,
    project: str = "homelab",
    stack: str = "test",
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    preview: bool = False,
    region: str = "eu-central-1",
) -> Recording:
    """Run ``program`` inside a fresh stack under the mock engine and record what it did."""
    # Each run gets worker threads of its own, and its leftovers are cancelled at the end: as
    # each `pulumi up` has a process of its own, nothing a failed run left can reach the next.
    loop = _ensure_event_loop()
    workers = ThreadPoolExecutor(thread_name_prefix="offline-engine")
    loop.set_default_executor(workers)
    mocks = OfflineMocks(region, preview=preview)
    monitor = RecordingMonitor(mocks)
    collector = _LogCollector()
    logger = logging.getLogger(f"homelab.offline.{id(monitor)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(collector)

    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=preview, logger=logger, monitor=monitor
    )
    pulumi.runtime.set_all_config(config or {}, secret_keys or [])
    # The language host creates the stack resource itself and runs the program inside it.
    settings.set_root_resource(None)
    # An Output pasted into a string is a bug in the program, never a value: it fails the run.
    string_switch = os.environ.get(OUTPUT_STRING_SWITCH)
    os.environ[OUTPUT_STRING_SWITCH] = "true"
    # What exists before the run (modules, earlier runs' leftovers) is not the run's to scan.
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*RUN_GC_THRESHOLDS)
    try:
        _sync_await(run_in_stack(program))
    except BaseException:
        # The run's error is reported; the futures it failed are not news when they are
        # collected, which can be long after (its traceback keeps them).
        loop.set_exception_handler(_quiet_about_failed_futures)
        raise
    finally:
        if string_switch is None:
            os.environ.pop(OUTPUT_STRING_SWITCH, None)
        else:
            os.environ[OUTPUT_STRING_SWITCH] = string_switch
        logger.removeHandler(collector)
        _cancel_leftovers(loop)
        workers.shutdown(wait=True)
        monitor.close_thread_loops()
        gc.set_threshold(*thresholds)
        # The run's garbage goes now, so the next run starts from the same state; what was
        # frozen is not scanned again.
        gc.collect()
        gc.unfreeze()

    stack_urn = f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"
    for urn, outputs in monitor.registered_outputs.items():
        if urn in monitor.registrations:
            monitor.registrations[urn].outputs = outputs
    return Recording(
        resources=[monitor.registrations[urn] for urn in monitor.order],
        outputs=monitor.registered_outputs.get(stack_urn, {}),
        calls=mocks.calls,
        logs=collector.lines,
        stack_urn=stack_urn,
    )


def run_program(
    directory: Path,
    *,
    project: str,
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    preview: bool,
    region: str = "eu-central-1",
) -> Recording:
    """Run ``directory/__main__.py`` the way Pulumi's language host does, and record it."""
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    program = str(directory / "__main__.py")
    return record(
        lambda: runpy.run_path(program, run_name="__main__"),
        project=project,
        stack=stack,
        config=config,
        secret_keys=secret_keys,
        preview=preview,
        region=region,
    )


def run_project(directory: Path, project: ProjectConfig, *, preview: bool) -> Recording:
    """Run ``directory/__main__.py`` with one stack's config, in the region that config names."""
    return run_program(
        directory,
        project=project.project,
        stack=project.stack,
        config=project.config,
        secret_keys=project.secret_keys,
        preview=preview,
        region=project.config.get("aws:region", "eu-central-1"),
    )
