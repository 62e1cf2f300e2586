"""Turn a recorded offline run into a plan: a tree for people, JSON for machines.

Secrets never leave this module in clear: every value the program marked secret is written as
``[secret]``, in the tree and in the JSON alike. What the JSON keeps of secret config is where it
goes: the fingerprint of each secret's ciphertext (see :mod:`offline.project`) and, per
resource, the secret config keys whose placeholder reaches its inputs, so that the plan diff can
tell which resources a rotated secret updates.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from offline.engine import Recording, Secret, Unknown, run_project
from offline.project import ProjectConfig, placeholder

REDACTED = "[secret]"

# The few inputs a reviewer looks at, per resource type.
SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "mapPublicIpOnLaunch"),
    "aws:ec2/securityGroup:SecurityGroup": ("ingress",),
    "aws:ec2/instance:Instance": (
        "instanceType",
        "instanceMarketOptions",
        "sourceDestCheck",
        "metadataOptions",
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": ("instanceType", "metadataOptions"),
    "aws:autoscaling/group:Group": ("name", "minSize", "maxSize", "desiredCapacity"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("serviceName", "vpcEndpointType"),
    "aws:ebs/volume:Volume": ("size", "type", "encrypted", "availabilityZone"),
    "aws:ssm/parameter:Parameter": ("name", "type", "value"),
    "docker:index/remoteImage:RemoteImage": ("name",),
    "docker:index/volume:Volume": ("name",),
    "docker:index/network:Network": ("name", "options"),
    "docker:index/container:Container": ("name", "networkMode", "ports", "gpus", "dns"),
    "pulumi:providers:docker": ("host",),
    "tailscale:index/tailnetKey:TailnetKey": ("tags", "reusable", "preauthorized", "expiry"),
    "tailscale:index/acl:Acl": ("overwriteExistingContent",),
    "tailscale:index/dnsConfiguration:DnsConfiguration": ("magicDns", "splitDns"),
    "tailscale:index/tailnetSettings:TailnetSettings": (
        "httpsEnabled",
        "devicesApprovalOn",
        "devicesKeyDurationDays",
    ),
}


def redact(value: Any) -> Any:
    """The value with secrets replaced by ``[secret]`` and unknowns by ``[unknown]``."""
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, Unknown):
        return "[unknown]"
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _strings(value: Any) -> Iterator[str]:
    """Every string in a recorded value, secret ones included (for tracing placeholders)."""
    if isinstance(value, Secret):
        yield from _strings(value.value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def secret_config_of(inputs: dict[str, Any], placeholders: list[str]) -> list[str]:
    """The secret config keys whose placeholder appears in ``inputs``: the resources a new
    value of that secret would update. A secret the program transforms (hashes, encodes) before
    use is not found."""
    found = []
    strings = list(_strings(inputs))
    for key in placeholders:
        # A nested secure value's placeholder continues with ".<key>" or "[<index>]".
        pattern = re.compile(re.escape(placeholder(key)) + r"(?![A-Za-z0-9_-])")
        if any(pattern.search(text) for text in strings):
            found.append(key)
    return found


def provider_config(project: ProjectConfig) -> dict[str, str]:
    """The stack's config outside the project's namespace that is not secret: what the
    providers are configured with (``aws:region``, ``tailscale:tailnet``)."""
    return {
        key: value
        for key, value in sorted(project.config.items())
        if not key.startswith(f"{project.project}:") and key not in project.secret_keys
    }


def build_plan(project: ProjectConfig, recording: Recording, *, preview: bool) -> dict[str, Any]:
    """The plan as one JSON-ready document."""
    resources = [
        {
            "urn": r.urn,
            "type": r.type,
            "name": r.name,
            "parent": r.parent or recording.stack_urn,
            "custom": r.custom,
            "protect": r.protect,
            "retainOnDelete": r.retain_on_delete,
            "ignoreChanges": r.ignore_changes,
            "inputs": redact(r.inputs),
            "secretConfig": secret_config_of(r.inputs, project.placeholders),
        }
        for r in sorted(recording.resources, key=lambda r: r.urn)
    ]
    counts = Counter(r.type for r in recording.resources if r.custom)
    return {
        "project": project.project,
        "stack": project.stack,
        "stackUrn": recording.stack_urn,
        "mode": "preview" if preview else "up",
        "placeholders": project.placeholders,
        "secretFingerprints": project.secret_fingerprints,
        "providerConfig": provider_config(project),
        "resources": resources,
        "counts": dict(sorted(counts.items())),
        "lookups": dict(sorted(recording.calls.items())),
        "outputs": redact(dict(sorted(recording.outputs.items()))),
        "diagnostics": list(recording.logs),
    }


def plan_project(directory: Path, project: ProjectConfig, *, preview: bool) -> dict[str, Any]:
    """Run the program offline and build its plan."""
    recording = run_project(directory, project, preview=preview)
    return build_plan(project, recording, preview=preview)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 160 else text[:157] + "..."


def _summary(resource: dict[str, Any]) -> str:
    keys = SUMMARY_KEYS.get(resource["type"], ())
    parts = [
        f"{key}={_short(resource['inputs'][key])}" for key in keys if key in resource["inputs"]
    ]
    flags = [flag for flag in ("protect", "retainOnDelete") if resource[flag]]
    if resource["ignoreChanges"]:
        flags.append("ignoreChanges=" + ",".join(resource["ignoreChanges"]))
    if flags:
        parts.append("[" + " ".join(flags) + "]")
    return "  ".join(parts)


def _tree(plan: dict[str, Any]) -> Iterator[str]:
    children: dict[str, list[dict[str, Any]]] = {}
    for resource in plan["resources"]:
        children.setdefault(resource["parent"], []).append(resource)

    def walk(urn: str, prefix: str) -> Iterator[str]:
        kids = sorted(children.get(urn, []), key=lambda r: (r["custom"], r["name"], r["type"]))
        for index, resource in enumerate(kids):
            last = index == len(kids) - 1
            branch = "└─ " if last else "├─ "
            summary = _summary(resource)
            line = f"{prefix}{branch}{resource['name']}  ({resource['type']})"
            yield f"{line}  {summary}" if summary else line
            yield from walk(resource["urn"], prefix + ("   " if last else "│  "))

    yield f"{plan['project']}-{plan['stack']}  (pulumi:pulumi:Stack)"
    yield from walk(plan["stackUrn"], "")


def render_text(plan: dict[str, Any]) -> str:
    """The plan for people: tree, counts per type, outputs."""
    lines = [
        f"Offline plan of stack {plan['stack']} ({plan['mode']} mode, mock engine: "
        "nothing was created and no network was used)",
    ]
    if plan["placeholders"]:
        lines.append(
            "Secrets only the stack's secrets provider can decrypt were replaced by "
            "placeholders: " + ", ".join(plan["placeholders"])
        )
    lines += ["", *_tree(plan), "", "Resources by type:"]
    width = max((len(t) for t in plan["counts"]), default=0)
    for type_, count in plan["counts"].items():
        lines.append(f"  {type_:<{width}}  {count:>3}")
    lines.append(f"  {'total':<{width}}  {sum(plan['counts'].values()):>3}")
    components = sum(1 for r in plan["resources"] if not r["custom"])
    lines.append(f"  (and {components} components, which group the resources above)")
    lines += cost_lines(plan["outputs"].get("costs"))
    if plan["diagnostics"]:
        lines += ["", "Diagnostics (pulumi.log):", *(f"  {line}" for line in plan["diagnostics"])]
    lines += ["", "Outputs:"]
    for key, value in plan["outputs"].items():
        if isinstance(value, str) and "\n" in value:
            lines.append(f"  {key}: ({len(value.splitlines())} lines)")
        else:
            lines.append(f"  {key}: {json.dumps(value, sort_keys=True)}")
    return "\n".join(lines) + "\n"


def cost_lines(costs: Any) -> list[str]:
    """The stack's estimated AWS cost, from its ``costs`` output."""
    if not isinstance(costs, dict):
        return []
    lines = [
        "",
        f"Estimated AWS cost (prices of {costs['priceDate']}, components/aws/prices.json):",
    ]
    nat = costs.get("natGatewayInstead")
    if not nat:
        # The NAT gateway is priced wherever the region is.
        return [*lines, "  no price data for this region"]
    router = costs.get("router")
    workers = costs.get("workers", {})
    if router:
        lines.append(f"  {'router, always on':<28} ${router['monthlyUsd']:.2f}/month")
    else:
        lines.append(f"  {'router, always on':<28} no price data for its instance type")
    for name, worker in sorted(workers.items()):
        label = f"worker {name}"
        if not worker:
            lines.append(f"  {label:<28} no price data for its instance type")
            continue
        if worker.get("state") == "stopped":
            lines.append(
                f"  {label:<28} stopped: no instance runs; "
                f"parked ${worker['parkedMonthlyUsd']:.2f}/month (models in S3)"
            )
            continue
        lines.append(
            f"  {label:<28} ${worker['runningHourlyUsd']:.3f}/hour while running "
            f"(at most ${worker['maxHourlyUsd']:.3f}), "
            f"parked ${worker['parkedMonthlyUsd']:.2f}/month (models in S3)"
        )
    if router and all(workers.values()):
        total = router["monthlyUsd"] + sum(w["parkedMonthlyUsd"] for w in workers.values())
        lines.append(f"  {'every month, workers parked':<28} ${total:.2f}")
    else:
        lines.append(f"  {'every month, workers parked':<28} unknown: some parts have no price")
    lines.append(
        f"  {'a NAT gateway instead':<28} ${nat['monthlyUsd']:.2f}/month "
        f"plus ${nat['perGibUsd']}/GiB"
    )
    return lines


def render_json(plan: dict[str, Any]) -> str:
    """The plan for machines."""
    return json.dumps(plan, indent=2, sort_keys=True) + "\n"
