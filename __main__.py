"""homelab: the whole home lab from one Pulumi stack. Wiring lives in stacks/homelab.py."""

from stacks.homelab import build

build()
