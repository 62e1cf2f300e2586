"""The serve config the Tailscale sidecar applies, checked against ipn.ServeConfig's fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.docker.serve import (
    CERT_DOMAIN,
    FUNNEL_PORTS,
    dump_serve_config,
    render_serve_config,
)

HOST_443 = f"{CERT_DOMAIN}:443"

# The JSON fields of Tailscale's ipn.ServeConfig (ipn/serve.go) that a sidecar's file may use.
SERVE_CONFIG_FIELDS = {"TCP", "Web", "AllowFunnel"}
TCP_PORT_HANDLER_FIELDS = {"HTTPS", "HTTP", "TCPForward", "TerminateTLS"}
WEB_SERVER_CONFIG_FIELDS = {"Handlers"}
HTTP_HANDLER_FIELDS = {"Proxy", "Path", "Text"}


def assert_is_a_serve_config(config: dict[str, Any]) -> None:
    """Every key is one ipn.ServeConfig knows, with the value type it decodes."""
    assert set(config) <= SERVE_CONFIG_FIELDS, set(config) - SERVE_CONFIG_FIELDS
    for port, handler in config.get("TCP", {}).items():
        assert 0 < int(port) < 65536
        assert str(int(port)) == port, "TCP keys are decimal uint16 port numbers"
        assert set(handler) <= TCP_PORT_HANDLER_FIELDS, handler
        modes = [mode for mode in ("HTTPS", "HTTP", "TCPForward") if handler.get(mode)]
        assert len(modes) == 1, f"port {port} must have exactly one of HTTPS, HTTP, TCPForward"
    for host_port, server in config.get("Web", {}).items():
        host, _, port = host_port.rpartition(":")
        assert host, host_port
        assert config["TCP"][port].get("HTTPS") or config["TCP"][port].get("HTTP")
        assert set(server) <= WEB_SERVER_CONFIG_FIELDS, server
        for mount, handler in server["Handlers"].items():
            assert mount.startswith("/")
            assert set(handler) <= HTTP_HANDLER_FIELDS, handler
            assert len(handler) == 1, "exactly one of Proxy, Path, Text"
    for host_port, allowed in config.get("AllowFunnel", {}).items():
        assert isinstance(allowed, bool)
        assert host_port in config["Web"], "Funnel opens a host:port that is served"


CASES = {
    "https-app": {"http_port": 2283},
    "mosquitto": {"http_port": None, "tcp_ports": (1883,)},
    "mosquitto-tls": {"http_port": None, "tcp_ports": (8883, 1883)},
    "https-and-tcp": {"http_port": 8123, "tcp_ports": (1883,)},
    "public-app": {"http_port": 8080, "public": True},
}


@pytest.mark.parametrize("kwargs", list(CASES.values()), ids=list(CASES))
def test_every_rendered_document_uses_only_serve_config_fields(kwargs: dict[str, Any]):
    config = render_serve_config(**kwargs)
    assert_is_a_serve_config(config)
    assert_is_a_serve_config(json.loads(dump_serve_config(config)))


def test_an_http_app_is_served_over_https_on_443_to_its_local_port():
    config = render_serve_config(http_port=2283)
    assert config == {
        "TCP": {"443": {"HTTPS": True}},
        "Web": {HOST_443: {"Handlers": {"/": {"Proxy": "http://127.0.0.1:2283"}}}},
    }


@pytest.mark.parametrize("ports", [(1883,), (1883, 8883)], ids=["mqtt", "mqtt-and-mqtts"])
def test_mosquitto_ports_are_forwarded_as_plain_tcp(ports: tuple[int, ...]):
    config = render_serve_config(http_port=None, tcp_ports=ports)
    assert config == {"TCP": {str(port): {"TCPForward": f"127.0.0.1:{port}"} for port in ports}}
    assert "Web" not in config
    assert "AllowFunnel" not in config


def test_tcp_forwards_do_not_terminate_tls():
    config = render_serve_config(http_port=None, tcp_ports=(8883,))
    assert "TerminateTLS" not in config["TCP"]["8883"]


@pytest.mark.parametrize("public", [False, True], ids=["private", "public"])
def test_funnel_is_allowed_only_for_public_services(public: bool):
    config = render_serve_config(http_port=8080, public=public)
    if public:
        assert config["AllowFunnel"] == {HOST_443: True}
        assert int(HOST_443.rsplit(":", 1)[1]) in FUNNEL_PORTS
    else:
        assert "AllowFunnel" not in config


def test_a_public_service_without_an_http_port_is_refused():
    with pytest.raises(ValueError, match="needs an HTTP port"):
        render_serve_config(http_port=None, tcp_ports=(1883,), public=True)


def test_a_tcp_forward_on_443_is_refused_when_https_takes_it():
    with pytest.raises(ValueError, match="443 is taken"):
        render_serve_config(http_port=8080, tcp_ports=(443,))


def test_dumping_is_deterministic_and_ignores_tcp_port_order():
    first = dump_serve_config(render_serve_config(http_port=8123, tcp_ports=(8883, 1883)))
    second = dump_serve_config(render_serve_config(http_port=8123, tcp_ports=(1883, 8883)))
    assert first == second
    assert first.encode() == dump_serve_config(json.loads(first)).encode()
    assert first.endswith("}\n")


def test_the_host_is_left_for_the_sidecar_to_fill_in():
    text = dump_serve_config(render_serve_config(http_port=8080, public=True))
    assert text.count("${TS_CERT_DOMAIN}:443") == 2
    assert ".ts.net" not in text


def test_mqtt_over_tls_is_terminated_by_the_sidecar_with_the_nodes_certificate():
    config = render_serve_config(http_port=None, tcp_ports=(1883,), tls_tcp_ports={8883: 1883})
    assert config["TCP"]["8883"] == {
        "TCPForward": "127.0.0.1:1883",
        "TerminateTLS": "${TS_CERT_DOMAIN}",
    }
    assert config["TCP"]["1883"] == {"TCPForward": "127.0.0.1:1883"}


def test_a_port_forwarded_both_plain_and_with_tls_is_refused():
    with pytest.raises(ValueError, match="both forwarded"):
        render_serve_config(http_port=None, tcp_ports=(8883,), tls_tcp_ports={8883: 1883})
