"""Render the cloud-init user data of the subnet router and the GPU workers.

Pure functions: the same arguments give the same bytes (no timestamps, no randomness), so an
unchanged stack never plans a user-data change. No secret is ever rendered: instances read their
tailnet join key at boot from an SSM SecureString through their instance role, into a file that
is removed once the node has joined, so the key is never in user data, a process list or a log.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml

JOIN_SCRIPT = "/usr/local/sbin/homelab-join-tailnet"
NODE_STATE_SCRIPT = "/usr/local/sbin/homelab-keep-node-state"
SYSCTL_FILE = "/etc/sysctl.d/99-homelab-forwarding.conf"
MODELS_DIR = "/models"


@dataclass(frozen=True)
class TailnetJoin:
    """How a node joins the tailnet."""

    region: str
    key_parameter: str
    """Name of the SSM SecureString holding the join key."""
    hostname: str
    tags: Sequence[str]
    routes: Sequence[str] = ()
    exit_node: bool = False


@dataclass(frozen=True)
class Workload:
    """A GPU container that a worker runs and serves over Tailscale HTTPS."""

    name: str
    image: str
    port: int
    models_path: str
    """Where the container keeps its models; a directory of the worker's models cache."""
    env: dict[str, str] = field(default_factory=dict)


def render_join_script(join: TailnetJoin) -> str:
    """A POSIX shell script that fetches the join key and brings the node up."""
    up = [
        "tailscale",
        "up",
        '--auth-key="file:$key_file"',
        f"--hostname={shlex.quote(join.hostname)}",
        f"--advertise-tags={shlex.quote(','.join(join.tags))}",
        "--ssh",
    ]
    if join.routes:
        up.append(f"--advertise-routes={shlex.quote(','.join(join.routes))}")
    if join.exit_node:
        up.append("--advertise-exit-node")
    return f"""\
#!/bin/sh
# Joins the tailnet with the key kept in SSM; the key only ever lives in a 0600 temporary file.
set -eu
umask 077
key_file=$(mktemp)
trap 'rm -f "$key_file"' EXIT
aws ssm get-parameter --region {shlex.quote(join.region)} \\
    --name {shlex.quote(join.key_parameter)} --with-decryption \\
    --query Parameter.Value --output text >"$key_file"
{" ".join(up)}
"""


MASQUERADE_SCRIPT = "/usr/local/sbin/homelab-masquerade"


def render_masquerade_script(private_cidr: str) -> str:
    """Masquerade the private subnets' traffic to the internet behind the router's address."""
    return f"""\
#!/bin/sh
# NAT instance: private subnets leave through this router, under its address.
set -eu
iface=$(ip -o route show default | awk '{{print $5; exit}}')
nft delete table ip homelab-nat 2>/dev/null || true
nft add table ip homelab-nat
nft 'add chain ip homelab-nat postrouting {{ type nat hook postrouting priority 100 ; }}'
nft add rule ip homelab-nat postrouting ip saddr {private_cidr} oifname "$iface" masquerade
"""


MASQUERADE_SERVICE = f"""\
[Unit]
Description=Masquerade the private subnets behind this router
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart={MASQUERADE_SCRIPT}
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""


def render_router_user_data(
    join: TailnetJoin, state_parameter_arn: str, *, masquerade: str | None = None
) -> str:
    """cloud-config for the subnet router (Amazon Linux 2023, arm64).

    tailscaled keeps its state in the SSM parameter ``state_parameter_arn``, so a replaced
    router is the same node with the same approved routes. With ``masquerade`` (a CIDR), the
    router is also the NAT instance of the private subnets in that range.
    """
    forwarding = "net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n"
    offload = """\
#!/bin/sh
# Tailscale's recommended UDP offload settings for subnet routers and exit nodes.
set -eu
iface=$(ip -o route show default | awk '{print $5; exit}')
ethtool -K "$iface" rx-udp-gro-forwarding on rx-gro-list off
"""
    document = {
        "yum_repos": {
            "tailscale-stable": {
                "name": "Tailscale stable",
                "baseurl": "https://pkgs.tailscale.com/stable/amazon-linux/2023/$basearch",
                "enabled": True,
                "gpgcheck": False,
                "repo_gpgcheck": True,
                "gpgkey": "https://pkgs.tailscale.com/stable/amazon-linux/2023/repo.gpg",
            }
        },
        "packages": ["tailscale", "ethtool"],
        "write_files": [
            {"path": SYSCTL_FILE, "permissions": "0644", "content": forwarding},
            {
                "path": "/usr/local/sbin/homelab-udp-offload",
                "permissions": "0755",
                "content": offload,
            },
            {
                "path": NODE_STATE_SCRIPT,
                "permissions": "0755",
                "content": render_node_state_script(state_parameter_arn),
            },
            {"path": JOIN_SCRIPT, "permissions": "0700", "content": render_join_script(join)},
        ],
        "runcmd": [
            ["sysctl", "-p", SYSCTL_FILE],
            ["/usr/local/sbin/homelab-udp-offload"],
            [NODE_STATE_SCRIPT],
            [JOIN_SCRIPT],
        ],
    }
    if masquerade is not None:
        document["packages"].append("nftables")
        document["write_files"] += [
            {
                "path": MASQUERADE_SCRIPT,
                "permissions": "0755",
                "content": render_masquerade_script(masquerade),
            },
            {
                "path": "/etc/systemd/system/homelab-masquerade.service",
                "permissions": "0644",
                "content": MASQUERADE_SERVICE,
            },
        ]
        # Started by systemd on every boot, so the NAT survives a reboot.
        document["runcmd"][2:2] = [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "homelab-masquerade.service"],
        ]
    return _cloud_config(document)


SYNC_SCRIPT = "/usr/local/sbin/homelab-sync-models"
MODELS_SCRIPT = "/usr/local/sbin/homelab-models-disk"


def render_sync_script(region: str, bucket: str, models_dir: str = MODELS_DIR) -> str:
    """Copy the models between the worker's local disk and its S3 bucket.

    ``pull`` at boot, ``push`` before the worker parks or when AWS announces a spot
    interruption. Pushing only adds and updates objects: a model deleted on one instance is
    never deleted from the bucket by accident.
    """
    sync = f"aws s3 sync --region {shlex.quote(region)} --only-show-errors --exclude 'lost+found/*'"
    remote = shlex.quote(f"s3://{bucket}/")
    return f"""\
#!/bin/sh
# Copies this worker's models between {models_dir} and S3: pull at boot, push before parking.
set -eu
case "${{1:-}}" in
pull) {sync} {remote} {models_dir}/ ;;
push) {sync} {models_dir}/ {remote} ;;
*)
    echo "usage: $0 pull|push" >&2
    exit 2
    ;;
esac
"""


def render_models_disk_script(models_dir: str = MODELS_DIR) -> str:
    """Put the models on the instance's local NVMe disk, then pull them from S3.

    g4dn, g5 and g6 instances come with a local NVMe disk: fast, free, and gone with the
    instance, which suits a cache of what S3 keeps. Types without one use the root volume.
    """
    return f"""\
#!/bin/sh
# Mounts the local NVMe disk (when the instance has one) at {models_dir}, then pulls the models.
set -eu
mkdir -p {models_dir}
if ! mountpoint -q {models_dir}; then
    for disk in /dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_*; do
        [ -e "$disk" ] || continue
        mkfs.ext4 -q -F -m 0 -L models "$disk"
        mount -o noatime "$disk" {models_dir}
        break
    done
fi
{SYNC_SCRIPT} pull
"""


def render_node_state_script(state: str) -> str:
    """Start tailscaled with its state in the SSM parameter ``state`` (an ARN).

    The state outlives every instance: a replaced instance comes back as the same node, with
    the same name, address and certificate, its routes still approved, and no new device in
    the admin console.
    """
    return f"""\
#!/bin/sh
# Points tailscaled at state that outlives this instance, then (re)starts it.
set -eu
printf '%s\\n' 'PORT="41641"' 'FLAGS="--state={state}"' >/etc/default/tailscaled
systemctl enable tailscaled
systemctl restart tailscaled
"""


def render_workload_script(workload: Workload, mount_point: str = MODELS_DIR) -> str:
    """Run the workload container on the GPU and serve it over Tailscale HTTPS."""
    env = "".join(f" \\\n    -e {shlex.quote(f'{k}={v}')}" for k, v in sorted(workload.env.items()))
    host_dir = f"{mount_point}/{workload.name}"
    return f"""\
#!/bin/sh
# Runs {workload.name} on the GPU, reachable only on the node itself and through tailscale serve.
set -eu
mkdir -p {shlex.quote(host_dir)}
docker rm -f {workload.name} >/dev/null 2>&1 || true
docker run -d --name {workload.name} --restart unless-stopped --gpus all \\
    -v {shlex.quote(f"{host_dir}:{workload.models_path}")} \\
    -p 127.0.0.1:{workload.port}:{workload.port}{env} \\
    {shlex.quote(workload.image)}
tailscale serve --bg --https=443 http://127.0.0.1:{workload.port}
"""


IDLE_SCRIPT = "/usr/local/sbin/homelab-idle-stop"
IDLE_MARK = "/run/homelab-idle-since"
IMDS = "http://169.254.169.254/latest"


@dataclass(frozen=True)
class Parking:
    """How a worker parks itself: its Auto Scaling group goes to zero instances."""

    region: str
    group: str
    """The name of the worker's Auto Scaling group."""
    idle_minutes: int = 15


def render_idle_stop_script(port: int, parking: Parking) -> str:
    """Park the worker after ``idle_minutes`` with no request in flight and an idle GPU.

    Requests arrive through ``tailscale serve`` as connections to the workload's local port; a
    running job shows as GPU utilisation. Parking pushes the models to S3 and sets the worker's
    Auto Scaling group to zero, which ends the instance: a parked worker costs its S3 storage
    and nothing else. A spot interruption notice also pushes the models, so the replacement
    starts with them. The mark lives in /run, so every instance begins afresh.
    """
    minutes = parking.idle_minutes
    return f"""\
#!/bin/sh
# Parks this worker once it has been idle for {minutes} minutes (run every minute).
set -eu
token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' {IMDS}/api/token)
if curl -fsS -o /dev/null -H "X-aws-ec2-metadata-token: $token" \\
    {IMDS}/meta-data/spot/instance-action; then
    logger -t homelab-idle-stop "spot interruption notice: pushing models to S3"
    {SYNC_SCRIPT} push
    exit 0
fi
connections=$(ss -Htn state established '( sport = :{port} )' | wc -l)
gpu=$(nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits | sort -n | tail -n 1)
now=$(date +%s)
if [ "$connections" -gt 0 ] || [ "${{gpu:-0}}" -gt 0 ]; then
    echo "$now" >{IDLE_MARK}
    exit 0
fi
[ -s {IDLE_MARK} ] || echo "$now" >{IDLE_MARK}
since=$(cat {IDLE_MARK})
if [ $((now - since)) -ge {minutes * 60} ]; then
    logger -t homelab-idle-stop "idle for {minutes} minutes: pushing models and parking"
    {SYNC_SCRIPT} push
    aws autoscaling set-desired-capacity --region {shlex.quote(parking.region)} \\
        --auto-scaling-group-name {shlex.quote(parking.group)} --desired-capacity 0
fi
"""


IDLE_SERVICE = """\
[Unit]
Description=Park this GPU worker when it has been idle

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/homelab-idle-stop
"""

IDLE_TIMER = """\
[Unit]
Description=Check every minute whether this GPU worker is idle

[Timer]
OnBootSec=5min
OnUnitActiveSec=1min

[Install]
WantedBy=timers.target
"""


def render_worker_user_data(
    join: TailnetJoin,
    workload: Workload,
    *,
    bucket: str,
    state_parameter_arn: str,
    parking: Parking,
) -> str:
    """cloud-config for a GPU worker (an Ubuntu GPU image with Docker and NVIDIA's toolkit).

    Every instance of a worker starts from scratch: its node state comes from the SSM
    parameter ``state_parameter_arn`` and its models from the S3 bucket ``bucket``.
    """
    install = """\
#!/bin/sh
# Installs Tailscale from its package repository.
set -eu
. /etc/os-release
base="https://pkgs.tailscale.com/stable/ubuntu/$VERSION_CODENAME"
curl -fsSL "$base.noarmor.gpg" -o /usr/share/keyrings/tailscale-archive-keyring.gpg
curl -fsSL "$base.tailscale-keyring.list" -o /etc/apt/sources.list.d/tailscale.list
apt-get update
apt-get install -y tailscale
"""
    document = {
        "write_files": [
            {
                "path": "/usr/local/sbin/homelab-install-tailscale",
                "permissions": "0755",
                "content": install,
            },
            {
                "path": SYNC_SCRIPT,
                "permissions": "0755",
                "content": render_sync_script(join.region, bucket),
            },
            {
                "path": MODELS_SCRIPT,
                "permissions": "0755",
                "content": render_models_disk_script(),
            },
            {
                "path": NODE_STATE_SCRIPT,
                "permissions": "0755",
                "content": render_node_state_script(state_parameter_arn),
            },
            {"path": JOIN_SCRIPT, "permissions": "0700", "content": render_join_script(join)},
            {
                "path": "/usr/local/sbin/homelab-run-workload",
                "permissions": "0755",
                "content": render_workload_script(workload),
            },
            {
                "path": IDLE_SCRIPT,
                "permissions": "0755",
                "content": render_idle_stop_script(workload.port, parking),
            },
            {
                "path": "/etc/systemd/system/homelab-idle-stop.service",
                "permissions": "0644",
                "content": IDLE_SERVICE,
            },
            {
                "path": "/etc/systemd/system/homelab-idle-stop.timer",
                "permissions": "0644",
                "content": IDLE_TIMER,
            },
        ],
        "runcmd": [
            ["/usr/local/sbin/homelab-install-tailscale"],
            [NODE_STATE_SCRIPT],
            [JOIN_SCRIPT],
            [MODELS_SCRIPT],
            ["/usr/local/sbin/homelab-run-workload"],
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "homelab-idle-stop.timer"],
        ],
    }
    return _cloud_config(document)


def _cloud_config(document: dict) -> str:
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=1000)
    return "#cloud-config\n" + body


def scripts_of(user_data: str) -> dict[str, str]:
    """The shell scripts a rendered cloud-config writes, by path (for shellcheck)."""
    document = yaml.safe_load(user_data)
    return {
        item["path"]: item["content"]
        for item in document.get("write_files", [])
        if item["content"].startswith("#!")
    }
