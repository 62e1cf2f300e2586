"""The topology diagram: every service and worker drawn, the same text for the same stack,
accepted by Mermaid's own parser, and the README's copy never stale."""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from offline.__main__ import main as offline_main
from offline.diagram import (
    README_BEGIN,
    README_END,
    DiagramError,
    Topology,
    embed,
    embedded,
    limits_exceeded,
    node_id,
    render_mermaid,
    text,
    topology_of,
)
from offline.project import read_project
from stacks.load import parse_config
from tests.conftest import (
    ROOT,
    assert_one_line_error,
    dev_config_objects,
    require_tool,
    run_module,
)

MERMAID = ROOT / "tests" / "tools" / "mermaid"
PASSWORD = {"immichDatabasePassword": "a-password-of-16-chars"}


def topology(objects: dict[str, Any], region: str | None = "eu-central-1") -> Topology:
    return Topology(parse_config({**objects, "secrets": PASSWORD}), "dev", region)


@pytest.fixture
def dev_diagram() -> str:
    return render_mermaid(topology_of(read_project(ROOT, "dev")))


def mermaid_parse(tmp_path: Path, *diagrams: str) -> subprocess.CompletedProcess[str]:
    """Parse diagrams with the real Mermaid parser that make setup installs."""
    node = require_tool("node")
    if not (MERMAID / "node_modules" / "mermaid").is_dir():
        pytest.fail(f"Mermaid is not installed in {MERMAID}: run `make setup` (see the README)")
    paths = []
    for index, diagram in enumerate(diagrams):
        path = tmp_path / f"diagram-{index}.mmd"
        path.write_text(diagram)
        paths.append(str(path))
    return subprocess.run(
        [node, str(MERMAID / "check.mjs"), *paths],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_diagram_names_every_service_worker_host_and_the_router(dev_diagram):
    objects = dev_config_objects()
    services = [s for host in objects["hosts"].values() for s in host["services"]]
    workers = list(objects["aws"]["workers"])
    assert len(services) == 5
    assert len(workers) == 2
    for name in services:
        assert f'subgraph {node_id("svc", name)}["{name}"]' in dev_diagram
        assert f"tag:svc-{name} :" in dev_diagram
    for name in workers:
        assert f'{node_id("worker", name)}["{name}<br/>' in dev_diagram
    for fragment in (
        'subgraph tailnet["tailnet tail4e2c1.ts.net"]',
        'subgraph host_tequila["host tequila<br/>',
        'router["router<br/>subnet router, t4g.nano, exit node"]',
        'subgraph vpc["AWS VPC<br/>10.60.0.0/16, eu-central-1, 2 zones"]',
        'recorder["recorder<br/>',
    ):
        assert fragment in dev_diagram


def test_each_service_shows_its_proxy_in_front_of_its_app(dev_diagram):
    assert 'proxy_photos["nginx + sidecar<br/>tag:svc-photos :443"]' in dev_diagram
    assert 'proxy_quiz["sidecar (tailscale serve)<br/>tag:svc-quiz :443"]' in dev_diagram
    assert 'proxy_photos -- ":2283" --> app_photos' in dev_diagram
    assert 'internet -- "Funnel" --> proxy_quiz' in dev_diagram
    assert 'lan_tequila -- "192.168.1.20:1883" --> proxy_mqtt' in dev_diagram
    assert 'app_home -. "reaches" .-> proxy_mqtt' in dev_diagram


def test_the_same_stack_in_any_key_order_draws_the_same_text(dev_diagram):
    objects = dev_config_objects()
    reordered = copy.deepcopy(objects)
    host = reordered["hosts"]["tequila"]
    host["services"] = dict(reversed(list(host["services"].items())))
    reordered["aws"]["workers"] = dict(reversed(list(reordered["aws"]["workers"].items())))
    assert render_mermaid(topology(reordered)) == render_mermaid(topology(objects))
    assert render_mermaid(topology(objects)) == dev_diagram


def test_node_ids_are_unique_and_plain():
    diagram = render_mermaid(topology(dev_config_objects()))
    ids = re.findall(r"^\s*(?:subgraph )?([A-Za-z0-9_]+)\[", diagram, re.MULTILINE)
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(_[a-z0-9_]+)?", node) for node in ids)


def test_label_text_escapes_what_mermaid_would_read():
    assert text('a "b" #1 <c> `d` & e') == "a #34;b#34; #35;1 #60;c#62; #96;d#96; #38; e"


def test_a_stack_without_aws_has_no_vpc_and_nat_mode_draws_egress():
    objects = dev_config_objects()
    without = {k: v for k, v in objects.items() if k != "aws"}
    assert "vpc" not in render_mermaid(topology(without, region=None))
    nat = copy.deepcopy(objects)
    nat["aws"]["natInstance"] = True
    diagram = render_mermaid(topology(nat))
    assert 'worker_ollama -. "egress" .-> router' in diagram
    assert "NAT for the workers" in diagram


def test_the_readme_embeds_the_dev_stack_diagram_as_rendered_now(dev_diagram):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert embedded(readme) == dev_diagram, "the README's diagram is stale: run `make readme`"


def test_embedding_replaces_only_the_block_between_the_markers():
    readme = f"intro\n{README_BEGIN}\nold\n{README_END}\noutro\n"
    updated = embed(readme, "flowchart LR\n  a\n")
    assert updated == (
        f"intro\n{README_BEGIN}\n```mermaid\nflowchart LR\n  a\n```\n{README_END}\noutro\n"
    )
    assert embed(updated, "flowchart LR\n  a\n") == updated
    with pytest.raises(DiagramError):
        embed("no markers\n", "x")


@pytest.mark.tool
def test_mermaid_parses_the_dev_diagram_and_a_stack_with_awkward_names(tmp_path, dev_diagram):
    objects = dev_config_objects()
    host = objects["hosts"].pop("tequila")
    host["services"] = {
        "end": {"app": "web", "image": "registry.local:5000/o-x/end:1.0", "port": 8080},
        "x-1": {"app": "mosquitto", "lanPorts": [1883]},
        "o": {"app": "jellyfin", "reaches": ["x-1"], "gpu": True},
    }
    host.pop("sessionRecorder")
    host["docker"] = "unix:///run/%%{init:{'theme':'dark'}}%%/docker.sock"
    objects["hosts"]["graph"] = host
    objects["aws"]["workers"] = {"subgraph": {"workload": "whisper", "state": "stopped"}}
    objects["aws"]["natInstance"] = True
    awkward = render_mermaid(topology(objects))
    result = mermaid_parse(tmp_path, dev_diagram, awkward)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": flowchart-v2") == 2


@pytest.mark.tool
def test_the_mermaid_check_rejects_a_broken_diagram(tmp_path):
    result = mermaid_parse(tmp_path, "flowchart LR\n  subgraph a\n  b --> \n")
    assert result.returncode == 1
    assert "Parse error" in result.stdout


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_module("offline", *args, cwd=cwd)


def test_the_plan_command_prints_the_diagram(dev_diagram):
    result = run_cli("--diagram", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == dev_diagram


def test_the_plan_command_writes_the_diagram_into_a_readme(tmp_path, dev_diagram):
    readme = tmp_path / "README.md"
    readme.write_text(f"# lab\n\n{README_BEGIN}\n{README_END}\n")
    result = run_cli("--dir", str(ROOT), "--diagram", "--readme", str(readme), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert embedded(readme.read_text()) == dev_diagram


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--readme", "missing.md"), "cannot be read", id="missing-readme"),
        pytest.param(("--readme", "plain.md"), "needs exactly one", id="no-markers"),
        pytest.param(("--stack", "nope"), "Pulumi.nope.yaml does not exist", id="no-stack"),
    ],
)
def test_a_diagram_error_is_one_line(tmp_path, args, message):
    (tmp_path / "plain.md").write_text("# no markers\n")
    result = run_cli("--dir", str(ROOT), "--diagram", *args, cwd=tmp_path)
    assert_one_line_error(result, message)


def test_a_percent_sign_cannot_start_a_mermaid_directive():
    objects = dev_config_objects()
    objects["hosts"]["tequila"]["docker"] = "unix:///run/%%{init:{'theme':'dark'}}%%/docker.sock"
    diagram = render_mermaid(topology(objects))
    assert "%%{" not in diagram
    assert "#37;#37;{init" in diagram


def test_the_stack_name_in_the_diagram_comment_is_plain():
    diagram = render_mermaid(Topology(topology(dev_config_objects()).config, "a\n%%{x}%%", None))
    assert diagram.splitlines()[1] == (
        "  %% Rendered from Pulumi.a____x___.yaml by `python -m offline --diagram`."
    )


def test_mermaids_limits_are_reported():
    assert limits_exceeded("flowchart LR\n  a --> b\n") == []
    (too_long,) = limits_exceeded("flowchart LR\n" + "  %% x\n" * 10_000)
    assert "more than Mermaid draws by default (50,000)" in too_long
    (too_many,) = limits_exceeded("flowchart LR\n" + "  a --> b\n" * 501)
    assert "501 edges" in too_many


def test_a_diagram_past_mermaids_limits_warns_and_still_prints(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    services = {f"s{i:03d}": {"app": "mosquitto"} for i in range(510)}
    stack = {
        "config": {
            "homelab:tailnet": {"domain": "tail0000.ts.net", "admins": ["a@example.com"]},
            "homelab:hosts": {
                "big": {"docker": "unix:///var/run/docker.sock", "services": services}
            },
        }
    }
    (tmp_path / "Pulumi.big.yaml").write_text(json.dumps(stack))
    result = run_cli("--dir", str(tmp_path), "--stack", "big", "--diagram", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("flowchart LR\n")
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2
    assert re.match(r"warning: the diagram has [0-9,]+ characters, more than Mermaid", warnings[0])
    assert warnings[1].startswith("warning: the diagram has 510 edges, more than Mermaid draws")


def test_a_readme_that_is_not_utf8_is_one_error_line(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_bytes(b"# lab\n\xff\xfe\n")
    result = run_cli("--dir", str(ROOT), "--diagram", "--readme", str(readme), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"error: {readme} is not UTF-8 text\n"


def test_a_readme_that_cannot_be_written_is_one_error_line(tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# lab\n\n{README_BEGIN}\n{README_END}\n")

    def refuse(*args: Any, **kwargs: Any) -> int:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(Path, "write_text", refuse)
    code = offline_main(["--dir", str(ROOT), "--diagram", "--readme", str(readme)])
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: {readme} cannot be written: {os.strerror(errno.EROFS)}\n"
    )
