"""The policy pack the Pulumi CLI runs: ``pulumi preview --policy-pack policy``.

Constructing the pack starts the analyzer server the CLI talks to and never returns, so it
happens here and nowhere else; the policies live in ``invariants.py``, where the test suite calls
them directly on the offline plan.
"""

from invariants import PACK_NAME, POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
