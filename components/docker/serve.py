"""Render the serve config that the Tailscale container's entrypoint applies.

Pure functions. The document is the JSON that ``TS_SERVE_CONFIG`` points to: ``TCP`` says which
tailnet ports are HTTPS-terminated or forwarded, ``Web`` maps ``host:port`` to handlers, and
``AllowFunnel`` opens a ``host:port`` to the internet. The entrypoint replaces the literal
``${TS_CERT_DOMAIN}`` with the node's MagicDNS name, so the file does not depend on the tailnet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

CERT_DOMAIN = "${TS_CERT_DOMAIN}"
HTTPS_PORT = 443
FUNNEL_PORTS = (443, 8443, 10000)
"""The only ports Funnel serves."""


def render_serve_config(
    *,
    http_port: int | None,
    tcp_ports: Sequence[int] = (),
    tls_tcp_ports: Mapping[int, int] | None = None,
    public: bool = False,
) -> dict[str, Any]:
    """Serve HTTPS on 443 to ``http_port`` on localhost and forward each TCP port as it is.

    ``tls_tcp_ports`` maps a tailnet port to a local one, with TLS terminated by the sidecar
    using the node's certificate (MQTT over TLS on 8883 in front of a plain broker on 1883).
    ``public`` opens the HTTPS port to the internet through Funnel.
    """
    tls_tcp_ports = dict(tls_tcp_ports or {})
    if set(tls_tcp_ports) & set(tcp_ports):
        raise ValueError("a TCP port is both forwarded as it is and with TLS")
    if public and http_port is None:
        raise ValueError("Funnel serves HTTPS: a public service needs an HTTP port")
    if HTTPS_PORT in (*tcp_ports, *tls_tcp_ports) and http_port is not None:
        raise ValueError("TCP port 443 is taken by HTTPS")
    tcp: dict[str, Any] = {}
    config: dict[str, Any] = {"TCP": tcp}
    for port in sorted(tcp_ports):
        tcp[str(port)] = {"TCPForward": f"127.0.0.1:{port}"}
    for port, local in sorted(tls_tcp_ports.items()):
        tcp[str(port)] = {"TCPForward": f"127.0.0.1:{local}", "TerminateTLS": CERT_DOMAIN}
    if http_port is not None:
        host_port = f"{CERT_DOMAIN}:{HTTPS_PORT}"
        tcp[str(HTTPS_PORT)] = {"HTTPS": True}
        config["Web"] = {host_port: {"Handlers": {"/": {"Proxy": f"http://127.0.0.1:{http_port}"}}}}
        if public:
            config["AllowFunnel"] = {host_port: True}
    return config


def dump_serve_config(config: dict[str, Any]) -> str:
    """The serve config as the file the sidecar reads."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"
