"""The stack's topology as a Mermaid flowchart, rendered from its validated config.

:func:`render_mermaid` takes the config models of ``stacks/config.py`` (what the program builds
from) and draws the tailnet, each Docker host with its services (the proxy in front, the app
behind it), the session recorder, and the AWS VPC with its subnet router and GPU workers. The
output depends on the config alone and is sorted, so the same stack always gives the same text:
the README embeds the dev stack's diagram between two markers and a test keeps it current.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from components.docker.apps import app_spec
from offline.project import ProjectConfig
from stacks.config import HomelabConfig, ServiceConfig
from stacks.load import CONFIG_KEYS, SECRET_KEYS, parse_config

README_BEGIN = "<!-- topology:begin (python -m offline --diagram --readme README.md) -->"
README_END = "<!-- topology:end -->"

# Mermaid reads "#...;" as an entity, quotes end a label and "%%{" starts a directive (even
# inside a label: an endpoint like unix:///x%%{init: ...}%% would restyle the whole diagram):
# write those characters as entities, and the characters HTML or markdown labels would
# interpret, too.
_ESCAPES = {
    "#": "#35;",
    '"': "#34;",
    "<": "#60;",
    ">": "#62;",
    "`": "#96;",
    "&": "#38;",
    "%": "#37;",
}

MAX_TEXT = 50_000
"""Mermaid's default maxTextSize: a longer diagram is not drawn ("Maximum text size in diagram
exceeded")."""
MAX_EDGES = 500
"""Mermaid's default maxEdges: a flowchart with more edges is not drawn."""


class DiagramError(Exception):
    """The README has no place for the diagram, or its markers are broken."""


@dataclass(frozen=True)
class Topology:
    """What the diagram draws: the validated config and the bits of the stack file outside it."""

    config: HomelabConfig
    stack: str
    region: str | None = None


def text(value: object) -> str:
    """``value`` as label text Mermaid shows verbatim."""
    return "".join(_ESCAPES.get(char, char) for char in str(value))


def node_id(kind: str, name: str) -> str:
    """An identifier Mermaid accepts for any config name: names are DNS labels, so replacing
    hyphens with underscores (which labels never contain) keeps them unique."""
    return f"{kind}_{re.sub(r'[^A-Za-z0-9]', '_', name)}"


def _label(*lines: str) -> str:
    return '["' + "<br/>".join(text(line) for line in lines) + '"]'


def _ports(service: ServiceConfig) -> str:
    spec = app_spec(service.app, version=service.version, image=service.image, port=service.port)
    ports = ((443,) if spec.http else ()) + spec.tcp_ports + tuple(spec.tls_tcp_ports)
    return ", ".join(str(port) for port in ports)


def _service(name: str, service: ServiceConfig, indent: str) -> Iterator[str]:
    spec = app_spec(service.app, version=service.version, image=service.image, port=service.port)
    proxy = "nginx + sidecar" if service.proxy == "nginx" else "sidecar (tailscale serve)"
    containers = [spec.front.role, *(other.role for other in spec.others)]
    yield f'{indent}subgraph {node_id("svc", name)}["{text(name)}"]'
    yield f"{indent}  {node_id('proxy', name)}{_label(proxy, f'tag:svc-{name} :{_ports(service)}')}"
    app = str(service.image if service.app == "web" else service.app)
    details = [", ".join(containers)] if len(containers) > 1 else []
    if service.gpu:
        details.append("GPU")
    yield f"{indent}  {node_id('app', name)}{_label(app, *details)}"
    yield f"{indent}end"


def render_mermaid(topology: Topology) -> str:
    """The Mermaid flowchart of the stack, as one ``flowchart LR`` document."""
    config = topology.config
    lines = [
        "flowchart LR",
        f"  %% Rendered from Pulumi.{re.sub(r'[^A-Za-z0-9_.-]', '_', topology.stack)}.yaml by "
        "`python -m offline --diagram`.",
        f'  subgraph tailnet["tailnet {text(config.tailnet.domain)}"]',
    ]
    people = ", ".join(
        f"{len(logins)} {word}{'' if len(logins) == 1 else 's'}"
        for word, logins in (("admin", config.tailnet.admins), ("member", config.tailnet.members))
    )
    lines.append(f"    people{_label('phones and laptops', people)}")
    edges: list[str] = []
    for host_name in sorted(config.hosts):
        host = config.hosts[host_name]
        facts = [host.kind, host.docker]
        if host.gpu:
            facts.append("GPU")
        lines.append(
            f"    subgraph {node_id('host', host_name)}"
            f"{_label(f'host {host_name}', ', '.join(facts))}"
        )
        if host.session_recorder:
            lines.append(f"      recorder{_label('recorder', 'SSH session recorder')}")
        for name in sorted(host.services):
            service = host.services[name]
            lines += _service(name, service, "      ")
            proxy, app = node_id("proxy", name), node_id("app", name)
            edges.append(f'  {proxy} -- "{text(f":{_front_port(service)}")}" --> {app}')
            if service.public:
                edges.append(f'  internet -- "Funnel" --> {proxy}')
            if service.lan_ports:
                ports = ", ".join(f"{host.lan_address}:{port}" for port in service.lan_ports)
                edges.append(f'  {node_id("lan", host_name)} -- "{text(ports)}" --> {proxy}')
            for target in sorted(service.reaches):
                edges.append(f'  {app} -. "reaches" .-> {node_id("proxy", target)}')
        lines.append("    end")
    aws = config.aws
    if aws is not None:
        where = [aws.vpc_cidr]
        if topology.region:
            where.append(topology.region)
        where.append(f"{aws.availability_zones} zones")
        lines.append(f"    subgraph vpc{_label('AWS VPC', ', '.join(where))}")
        router = [f"subnet router, {aws.router.instance_type}"]
        if aws.router.exit_node:
            router.append("exit node")
        if aws.nat_instance:
            router.append("NAT for the workers")
        lines.append(f"      router{_label('router', ', '.join(router))}")
        for name in sorted(aws.workers):
            worker = aws.workers[name]
            lines.append(
                f"      {node_id('worker', name)}"
                + _label(
                    name,
                    f"{worker.workload} on {worker.instance_type} spot, group of 0-1",
                    f"{worker.models_gib} GiB models in S3, {worker.state}",
                )
            )
            if aws.nat_instance:
                edges.append(f'  {node_id("worker", name)} -. "egress" .-> router')
        lines.append("    end")
        edges.append(f'  router -- "{text(f"routes {aws.vpc_cidr}, split DNS")}" --> people')
    lines.append("  end")
    if any(s.public for _, _, s in config.each_service()):
        lines.append(f"  internet{_label('internet')}")
    for host_name in sorted(config.hosts):
        if any(s.lan_ports for s in config.hosts[host_name].services.values()):
            lines.append(f"  {node_id('lan', host_name)}{_label(f'LAN of {host_name}')}")
    return "\n".join([*lines, *edges]) + "\n"


def limits_exceeded(diagram: str) -> list[str]:
    """What in the diagram passes Mermaid's default limits (GitHub draws nothing then)."""
    problems = []
    if len(diagram) > MAX_TEXT:
        problems.append(
            f"the diagram has {len(diagram):,} characters, more than Mermaid draws by default "
            f"({MAX_TEXT:,})"
        )
    edges = sum(1 for line in diagram.splitlines() if "-->" in line or ".->" in line)
    if edges > MAX_EDGES:
        problems.append(
            f"the diagram has {edges} edges, more than Mermaid draws by default ({MAX_EDGES})"
        )
    return problems


def _front_port(service: ServiceConfig) -> int:
    return app_spec(service.app, image=service.image, port=service.port).port


def topology_of(project: ProjectConfig) -> Topology:
    """The validated config of a stack as the offline plan reads it, without running the
    program; a config mistake raises :class:`stacks.load.ConfigError`."""
    raw: dict[str, object] = {}
    for key in CONFIG_KEYS:
        value = project.config.get(f"{project.project}:{key}")
        if value is not None:
            raw[key] = json.loads(value)
    raw["secrets"] = {
        key: project.config[f"{project.project}:{key}"]
        for key in SECRET_KEYS
        if f"{project.project}:{key}" in project.config
    }
    return Topology(
        config=parse_config(raw),
        stack=project.stack,
        region=project.config.get("aws:region"),
    )


def embed(readme: str, diagram: str) -> str:
    """The README with the diagram between its topology markers (a mermaid code block)."""
    begin, end = readme.find(README_BEGIN), readme.find(README_END)
    if begin < 0 or end < 0 or end < begin or readme.count(README_BEGIN) != 1:
        raise DiagramError(
            f"the README needs exactly one {README_BEGIN!r} line followed by {README_END!r}"
        )
    block = f"{README_BEGIN}\n```mermaid\n{diagram}```\n"
    return readme[:begin] + block + readme[end:]


def embedded(readme: str) -> str | None:
    """The diagram the README embeds, or None."""
    match = re.search(
        re.escape(README_BEGIN) + r"\n```mermaid\n(.*?)```\n" + re.escape(README_END),
        readme,
        re.DOTALL,
    )
    return match[1] if match else None
