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
READY_MARK = "/run/homelab-workload-ready"
"""Written once the workload serves: idle time counts from then on."""
TAILSCALE_DIR = "/var/lib/tailscale"
"""tailscaled's directory: with its state in SSM, it still keeps HTTPS certificates here."""
CERTS_DIR = f"{TAILSCALE_DIR}/certs"


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
    uid: int = 0
    """The user the container runs as, who must own its models directory."""


def render_join_script(join: TailnetJoin) -> str:
    """A POSIX shell script that fetches the join key and brings the node up."""
    up = [
        "tailscale",
        "up",
        '--auth-key="file:$key_file"',
        f"--hostname={shlex.quote(join.hostname)}",
        f"--advertise-tags={shlex.quote(','.join(join.tags))}",
        "--ssh",
        # Fail, rather than wait forever, when the coordination server cannot be reached.
        "--timeout=5m",
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


def boot_unit(description: str, command: str, *, after: str = "", before: str = "") -> str:
    """A systemd unit that runs ``command`` once on every boot, once the network is up."""
    ordering = f"After=network-online.target{' ' + after if after else ''}\n"
    if before:
        ordering += f"Before={before}\n"
    return f"""\
[Unit]
Description={description}
{ordering}Wants=network-online.target

[Service]
Type=oneshot
ExecStart={command}
RemainAfterExit=yes
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
"""


MASQUERADE_SERVICE = boot_unit(
    "Masquerade the private subnets behind this router", MASQUERADE_SCRIPT
)
OFFLOAD_SCRIPT = "/usr/local/sbin/homelab-udp-offload"
OFFLOAD_SERVICE = boot_unit("Tailscale's UDP offload settings for forwarding", OFFLOAD_SCRIPT)


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
            {"path": OFFLOAD_SCRIPT, "permissions": "0755", "content": offload},
            {
                "path": "/etc/systemd/system/homelab-udp-offload.service",
                "permissions": "0644",
                "content": OFFLOAD_SERVICE,
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
            # Started by systemd on every boot, so the tuning survives a reboot.
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "homelab-udp-offload.service"],
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
        document["runcmd"].insert(3, ["systemctl", "enable", "--now", "homelab-masquerade.service"])
    return _cloud_config(document)


SYNC_SCRIPT = "/usr/local/sbin/homelab-sync"
MODELS_SCRIPT = "/usr/local/sbin/homelab-models-disk"
DLAMI_NVME = "/opt/dlami/nvme"
"""Where AWS's GPU images mount the instance's local NVMe disk themselves."""


def render_sync_script(region: str, bucket: str, models_dir: str = MODELS_DIR) -> str:
    """Copy the models and the node's HTTPS certificates between the worker and its bucket.

    ``pull`` at boot, ``push`` before the instance ends. Certificates travel too: tailscaled
    keeps them on disk, not with its node state, and a worker that asked Let's Encrypt for a
    new one at every wake would reach its limit of five a week for one name. Pushing only adds
    and updates objects, so nothing in the bucket is ever deleted by accident.
    """
    remote = f"s3://{bucket}"
    return f"""\
#!/bin/sh
# Copies this worker's models and HTTPS certificates to and from S3: pull at boot, push before
# the instance ends. Files arrive readable by root only.
set -eu
umask 077
copy() {{
    aws s3 sync --region {shlex.quote(region)} --only-show-errors --exclude 'lost+found/*' \\
        "$1" "$2"
}}
case "${{1:-}}" in
pull)
    status=0
    copy {shlex.quote(f"{remote}/tailscale-certs/")} {CERTS_DIR}/ || status=$?
    copy {shlex.quote(f"{remote}/models/")} {models_dir}/ || status=$?
    exit "$status"
    ;;
push)
    status=0
    if [ -d {CERTS_DIR} ]; then
        copy {CERTS_DIR}/ {shlex.quote(f"{remote}/tailscale-certs/")} || status=$?
    fi
    copy {models_dir}/ {shlex.quote(f"{remote}/models/")} || status=$?
    exit "$status"
    ;;
*)
    echo "usage: $0 pull|push" >&2
    exit 2
    ;;
esac
"""


def render_models_disk_script(models_dir: str = MODELS_DIR) -> str:
    """Put the models on the instance's local NVMe disk, then pull them from S3.

    g4dn, g5 and g6 instances come with a local NVMe disk: fast, free, and gone with the
    instance, which suits a cache of what S3 keeps. AWS's GPU images mount it at
    ``/opt/dlami/nvme``; on other images the script formats and mounts it. Types without one,
    or a disk that cannot be used, leave the models on the root volume: the pull happens anyway.
    """
    return f"""\
#!/bin/sh
# Puts {models_dir} on the local NVMe disk when there is one, then pulls from S3.
set -eu
mkdir -p {models_dir}
if ! mountpoint -q {models_dir}; then
    if mountpoint -q {DLAMI_NVME}; then
        mkdir -p {DLAMI_NVME}/models
        mount --bind {DLAMI_NVME}/models {models_dir} ||
            logger -t homelab-models "cannot use {DLAMI_NVME}: models stay on the root volume"
    else
        for disk in /dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_*; do
            [ -e "$disk" ] || continue
            if mkfs.ext4 -q -F -m 0 -L models "$disk" && mount -o noatime "$disk" {models_dir}; then
                break
            fi
            logger -t homelab-models "cannot use $disk for the models"
        done
    fi
fi
exec {SYNC_SCRIPT} pull
"""


MODELS_SERVICE = boot_unit(
    "Put the models on the local disk and pull them and the certificates from S3",
    MODELS_SCRIPT,
    after="dlami-nvme.service",
    before="docker.service tailscaled.service",
)


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
printf '%s\\n' 'PORT="41641"' 'FLAGS="--state={state} --statedir={TAILSCALE_DIR}"' \\
    >/etc/default/tailscaled
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
chown -R {workload.uid}:{workload.uid} {shlex.quote(host_dir)}
docker rm -f {workload.name} >/dev/null 2>&1 || true
docker run -d --name {workload.name} --restart unless-stopped --gpus all \\
    -v {shlex.quote(f"{host_dir}:{workload.models_path}")} \\
    -p 127.0.0.1:{workload.port}:{workload.port}{env} \\
    {shlex.quote(workload.image)}
tailscale serve --bg --https=443 http://127.0.0.1:{workload.port}
touch {READY_MARK}
"""


IDLE_SCRIPT = "/usr/local/sbin/homelab-idle-stop"
IDLE_MARK = "/run/homelab-idle-since"
IMDS = "http://169.254.169.254/latest"
SAVE_HOOK = "homelab-save-before-terminate"
"""The lifecycle hook that holds an ending instance until it has pushed to S3."""


@dataclass(frozen=True)
class Parking:
    """How a worker parks itself: its Auto Scaling group goes to zero instances."""

    region: str
    group: str
    """The name of the worker's Auto Scaling group."""
    idle_minutes: int = 15


def render_idle_stop_script(port: int, parking: Parking) -> str:
    """Save the worker before its instance ends, and park it once it has been idle.

    Three cases, checked every 20 seconds. The group is ending the instance (parking,
    ``state: stopped``, a scale-in, a deletion): its lifecycle hook holds the instance while
    it pushes to S3, then lets it go. AWS announced a spot interruption: push while there is
    time. Otherwise, no request in flight (a connection to the workload's local port, which
    ``tailscale serve`` makes for each request) and an idle GPU for ``idle_minutes``: set the
    group's desired capacity to zero, which ends the instance through the first case. The
    mark lives in /run, so every instance begins afresh.
    """
    minutes = parking.idle_minutes
    region = shlex.quote(parking.region)
    group = shlex.quote(parking.group)
    return f"""\
#!/bin/sh
# Saves this worker to S3 before its instance ends, and parks it after {minutes} idle minutes.
set -eu
log() {{
    logger -t homelab-idle-stop "$1"
}}
token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' {IMDS}/api/token)
metadata() {{
    curl -fsS -H "X-aws-ec2-metadata-token: $token" "{IMDS}/meta-data/$1"
}}
if [ "$(metadata autoscaling/target-lifecycle-state 2>/dev/null || true)" = Terminated ]; then
    # Read before the push: the metadata token lives a minute, a push may take longer.
    instance=$(metadata instance-id)
    log "the instance is ending: pushing to S3"
    {SYNC_SCRIPT} push || log "the push failed; letting the instance end anyway"
    aws autoscaling complete-lifecycle-action --region {region} \\
        --auto-scaling-group-name {group} --lifecycle-hook-name {SAVE_HOOK} \\
        --lifecycle-action-result CONTINUE --instance-id "$instance"
    exit 0
fi
if metadata spot/instance-action >/dev/null 2>&1; then
    log "spot interruption notice: pushing to S3"
    {SYNC_SCRIPT} push || log "the push failed"
    exit 0
fi
# Idle time counts once the workload serves, not while the instance boots and pulls.
[ -e {READY_MARK} ] || exit 0
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
    log "idle for {minutes} minutes: parking"
    aws autoscaling set-desired-capacity --region {region} \\
        --auto-scaling-group-name {group} --desired-capacity 0
fi
"""


IDLE_SERVICE = f"""\
[Unit]
Description=Save this GPU worker before it ends, and park it when it has been idle

[Service]
Type=oneshot
ExecStart={IDLE_SCRIPT}
"""

IDLE_TIMER = """\
[Unit]
Description=Check every 20 seconds whether this GPU worker is ending or idle

[Timer]
OnBootSec=1min
OnUnitActiveSec=20s
AccuracySec=1s

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
    parameter ``state_parameter_arn``, its models and certificates from the S3 bucket
    ``bucket``.
    """
    install = """\
#!/bin/sh
# Installs Tailscale from its package repository.
set -eu
. /etc/os-release
base="https://pkgs.tailscale.com/stable/ubuntu/$VERSION_CODENAME"
curl -fsSL --retry 5 "$base.noarmor.gpg" -o /usr/share/keyrings/tailscale-archive-keyring.gpg
curl -fsSL --retry 5 "$base.tailscale-keyring.list" -o /etc/apt/sources.list.d/tailscale.list
# Unattended upgrades may hold the package lists' lock or dpkg's for a while after boot.
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    apt-get update && break
    echo "apt-get update failed (attempt $attempt), retrying" >&2
    sleep 30
done
apt-get -o DPkg::Lock::Timeout=600 install -y tailscale
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
                "path": "/etc/systemd/system/homelab-models.service",
                "permissions": "0644",
                "content": MODELS_SERVICE,
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
            ["systemctl", "daemon-reload"],
            # Saving an ending instance works from the first minute; idle stop waits for the
            # workload to serve.
            ["systemctl", "enable", "--now", "homelab-idle-stop.timer"],
            ["/usr/local/sbin/homelab-install-tailscale"],
            # Certificates before tailscaled starts; the unit does it again on every boot.
            ["systemctl", "enable", "--now", "homelab-models.service"],
            [NODE_STATE_SCRIPT],
            [JOIN_SCRIPT],
            ["/usr/local/sbin/homelab-run-workload"],
        ],
    }
    return _cloud_config(document)


class _CloudConfigDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """YAML as people read it in a console: scripts and units as literal blocks.

    libyaml's emitter where PyYAML has it (the wheels do), else PyYAML's own; both write the
    same bytes for the same document.
    """


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_CloudConfigDumper.add_representer(str, _represent_str)


def _cloud_config(document: dict) -> str:
    body = yaml.dump(
        document,
        Dumper=_CloudConfigDumper,
        sort_keys=False,
        default_flow_style=False,
        width=1000,
    )
    return "#cloud-config\n" + body


def scripts_of(user_data: str) -> dict[str, str]:
    """The shell scripts a rendered cloud-config writes, by path (for shellcheck)."""
    document = yaml.safe_load(user_data)
    return {
        item["path"]: item["content"]
        for item in document.get("write_files", [])
        if item["content"].startswith("#!")
    }
