"""Render the nginx configuration of a service's TLS proxy.

Pure functions. nginx runs in the sidecar's network namespace, so it listens on the node's
tailnet address and proxies to the app on 127.0.0.1. It terminates TLS with the certificate that
``tailscale cert`` writes into a volume shared with the sidecar.
"""

from __future__ import annotations

from components.docker.apps import ProxyNeeds

CERT_DIR = "/certs"


def cert_paths(fqdn: str, cert_dir: str = CERT_DIR) -> tuple[str, str]:
    """Where ``tailscale cert`` writes the certificate and key for ``fqdn``."""
    return f"{cert_dir}/{fqdn}.crt", f"{cert_dir}/{fqdn}.key"


def render_nginx_config(
    *,
    fqdn: str,
    upstream_port: int,
    needs: ProxyNeeds,
    cert_dir: str = CERT_DIR,
    pid_file: str = "/var/run/nginx.pid",
) -> str:
    """A complete nginx.conf: one TLS server for ``fqdn`` in front of the app."""
    cert, key = cert_paths(fqdn, cert_dir)
    upgrade = ""
    if needs.websockets:
        upgrade = (
            "            proxy_http_version 1.1;\n"
            "            proxy_set_header Upgrade $http_upgrade;\n"
            "            proxy_set_header Connection $connection_upgrade;\n"
        )
    forwarded = ""
    if needs.forwarded_headers:
        forwarded = (
            "            proxy_set_header X-Real-IP $remote_addr;\n"
            "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
            "            proxy_set_header X-Forwarded-Proto https;\n"
        )
    timeout = needs.read_timeout_seconds
    return f"""\
worker_processes 1;
pid {pid_file};

events {{
    worker_connections 1024;
}}

http {{
    default_type application/octet-stream;
    sendfile on;
    server_tokens off;
    access_log off;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        '' close;
    }}

    server {{
        listen 443 ssl;
        listen [::]:443 ssl;
        http2 on;
        server_name {fqdn};

        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:tls:1m;

        client_max_body_size {needs.max_body_size};

        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_set_header Host $host;
{upgrade}{forwarded}            proxy_read_timeout {timeout}s;
            proxy_send_timeout {timeout}s;
            proxy_buffering off;
        }}
    }}
}}
"""


def render_cert_renewer_script(fqdn: str, cert_dir: str = CERT_DIR) -> str:
    """A loop that keeps the node's certificate fresh in the shared volume.

    ``tailscale cert`` only fetches a new certificate when the current one nears expiry, so a
    daily run is cheap. Until the node is up, it retries every minute.
    """
    cert, key = cert_paths(fqdn, cert_dir)
    return f"""\
set -u
while :; do
    if tailscale cert --cert-file "{cert}" --key-file "{key}" "{fqdn}"; then
        sleep 86400
    else
        sleep 60
    fi
done
"""


def render_nginx_entrypoint(fqdn: str, cert_dir: str = CERT_DIR) -> str:
    """Start nginx once certificate and key exist; reload every six hours to pick up renewals.

    A reload starts new workers with the new certificate and lets the old ones finish their
    requests, so renewals cause no downtime.
    """
    cert, key = cert_paths(fqdn, cert_dir)
    return f"""\
set -u
until [ -s "{cert}" ] && [ -s "{key}" ]; do
    sleep 5
done
(
    while sleep 21600; do
        nginx -s reload
    done
) &
exec nginx -g 'daemon off;'
"""
