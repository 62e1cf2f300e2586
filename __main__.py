"""homelab: the whole home lab from one Pulumi stack. Wiring lives in stacks/homelab.py."""

import os

# An Output pasted into a string is a bug in the program, never a value: with this, the SDK
# fails the run instead of writing a paragraph of placeholder text into a resource.
os.environ.setdefault("PULUMI_ERROR_OUTPUT_STRING", "true")

from stacks.homelab import build

build()
