"""Secrets never leak: a whole-stack run with sentinel secret values, searched everywhere.

Every secret the stack handles gets a value no other text could contain: the Immich database
password and the Tailscale provider's credentials as config (set as secrets, as
``pulumi config set --secret`` sets them), and the join credentials the Tailscale provider returns
(the mock returns them as the engine would, marked secret). The test then searches every place a
secret could surface in clear: resource names and URNs, every input and output not marked secret,
the stack outputs, the plan as text and JSON, the command's own output, every log line of the
engine and of Python's logging, and anything written to stdout or stderr. Base64 text is decoded
first, so an encoded copy counts too.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ROOT, dev_stack_file, strings_in

from offline import engine
from offline.engine import Recording, Secret, run_project
from offline.plan import build_plan, render_json, render_text
from offline.project import read_project

SENTINELS = {
    "homelab:immichDatabasePassword": "sentinel-immich-6c0f1e",
    "tailscale:apiKey": "sentinel-api-key-93d2a7",
    "tailscale:oauthClientSecret": "sentinel-oauth-secret-4b81ce",
}
"""Config secrets and the sentinel each is set to."""
KEY_SENTINELS = {
    "tailscale:index/tailnetKey:TailnetKey": ("key", "sentinel-auth-key"),
    "tailscale:index/oauthClient:OauthClient": ("key", "sentinel-client-secret"),
}
"""Secret outputs of the Tailscale provider, as the mock returns them."""
ALL = (*SENTINELS.values(), *(prefix for _, prefix in KEY_SENTINELS.values()))
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def _decodings(text: str) -> Iterator[str]:
    """The text, and what any base64 run inside it decodes to."""
    yield text
    for run in _BASE64.findall(text):
        try:
            yield base64.b64decode(run + "=" * (-len(run) % 4)).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            continue


def _leaks(texts: Any) -> list[str]:
    found = []
    for text in texts:
        for decoded in _decodings(text):
            found += [sentinel for sentinel in ALL if sentinel in decoded]
    return found


def _clear_strings(value: Any) -> Iterator[str]:
    """Every string of a recorded value that is not inside a secret, keys included."""
    if isinstance(value, Secret):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _clear_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _clear_strings(item)


@pytest.fixture
def sentinel_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for type_, secret in KEY_SENTINELS.items():
        monkeypatch.setitem(engine.SECRET_OUTPUTS, type_, secret)


@pytest.fixture(params=[False, True], ids=["up", "preview"])
def run(request, sentinel_keys, caplog, capfd) -> tuple[Recording, str, str]:
    """The dev stack with sentinel secrets; its recording, Python's log records and what the
    run wrote to stdout and stderr."""
    dev = read_project(ROOT, "dev")
    project = dataclasses.replace(
        dev,
        config={**dev.config, **SENTINELS},
        secret_keys=sorted({*dev.secret_keys, *SENTINELS}),
    )
    caplog.set_level(logging.DEBUG)
    recording = run_project(ROOT, project, preview=request.param)
    written = capfd.readouterr()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    return recording, logged, written.out + written.err


def test_the_sentinels_do_reach_the_stack_as_secrets(run):
    """The control: without it, a search that finds nothing proves nothing."""
    recording, _, _ = run
    secret_texts = [
        text
        for resource in recording.resources
        for value in _secret_values(resource.inputs)
        for text in strings_in(value)
    ]
    assert any(SENTINELS["homelab:immichDatabasePassword"] in text for text in secret_texts)
    for _, prefix in KEY_SENTINELS.values():
        assert any(prefix in text for text in secret_texts), prefix


def _secret_values(value: Any) -> Iterator[Any]:
    if isinstance(value, Secret):
        yield value.value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secret_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_values(item)


def test_no_sentinel_in_any_name_urn_or_input_in_clear(run):
    recording, _, _ = run
    for resource in recording.resources:
        texts = [resource.urn, resource.name, resource.parent, *resource.depends_on]
        texts += _clear_strings(resource.inputs)
        assert not _leaks(texts), resource.urn


def test_no_sentinel_in_any_output_in_clear(run):
    recording, _, _ = run
    for resource in recording.resources:
        assert not _leaks(_clear_strings(resource.outputs)), resource.urn
    assert not _leaks(_clear_strings(recording.outputs)), "stack outputs"


def test_no_sentinel_in_the_plan(run):
    recording, _, _ = run
    plan = build_plan(read_project(ROOT, "dev"), recording, preview=False)
    assert not _leaks([render_text(plan), render_json(plan)])


def test_no_sentinel_in_any_log_line_or_on_the_terminal(run):
    recording, logged, written = run
    assert not _leaks(recording.logs)
    assert not _leaks([logged, written])


@pytest.mark.parametrize("flags", [[], ["--json"], ["--preview"], ["--preview", "--json"]], ids=str)
def test_no_sentinel_in_what_the_plan_command_prints(plan_command, sentinel_keys, flags):
    result = plan_command(dev_stack_file()["config"], *flags, secrets=SENTINELS)

    assert result.code == 0, result.stderr
    assert "[secret]" in result.stdout
    assert not _leaks([result.stdout, result.stderr])


def test_no_placeholder_or_mock_credential_in_the_plan_of_the_stack_file(plan_command):
    """Offline, secrets the stack file keeps encrypted become placeholders: secret all the same."""
    for flags in ([], ["--json"]):
        result = plan_command(dev_stack_file()["config"], *flags)

        assert result.code == 0, result.stderr
        assert "offline-placeholder-for-" not in result.stdout + result.stderr
        assert "tskey-" not in result.stdout + result.stderr
