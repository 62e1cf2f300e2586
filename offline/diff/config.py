"""Stack config between two plans: secrets set anew and provider config.

Secret config is the same placeholder in both plans, so a secret set anew changes no input. The
plans carry a fingerprint of each secret's ciphertext in the stack file and which resources its
placeholder reaches: :func:`compare_secrets` reports a secret whose ciphertext differs with the
resources it updates, never its value. :func:`compare_provider_config` reports provider config
that changes, and the AWS region when it moves a stack's AWS resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offline.diff.compare import MISSING, REGION_KEY, Change, moves_with_region
from offline.diff.redact import redact_text
from offline.diff.text import cut, safe


@dataclass(frozen=True)
class SecretChange:
    """Secret config whose ciphertext in the stack file differs between the plans."""

    key: str
    kind: str
    """``changed``, ``added`` or ``removed``."""
    resources: tuple[str, ...] = ()
    """Names of the resources its placeholder reaches in the head plan (base, if removed)."""


def _secret_users(plan: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(
        sorted({safe(r["name"]) for r in plan["resources"] if key in (r.get("secretConfig") or [])})
    )


def compare_secrets(
    base: dict[str, Any], head: dict[str, Any]
) -> tuple[tuple[SecretChange, ...], tuple[str, ...]]:
    """Secret config set anew between the plans (by the fingerprints of their ciphertexts),
    and the secrets whose changes neither plan can show (not held in the stack file)."""
    old, new = base.get("secretFingerprints"), head.get("secretFingerprints")
    if not isinstance(old, dict) or not isinstance(new, dict):
        return (), ()  # a plan of an earlier version, without fingerprints
    changes = []
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key, MISSING), new.get(key, MISSING)
        if was == now or (was is None and now is MISSING) or (was is MISSING and now is None):
            continue
        if was is MISSING or was is None:
            changes.append(SecretChange(safe(key), "added", _secret_users(head, key)))
        elif now is MISSING or now is None:
            changes.append(SecretChange(safe(key), "removed", _secret_users(base, key)))
        else:
            changes.append(SecretChange(safe(key), "changed", _secret_users(head, key)))
    unseen = tuple(sorted(safe(key) for key, value in new.items() if value is None))
    return tuple(changes), unseen


def has_aws(plan: dict[str, Any]) -> bool:
    """Whether the plan has AWS resources, which a new region would replace."""
    return any(moves_with_region(r) for r in plan["resources"])


def compare_provider_config(
    base: dict[str, Any], head: dict[str, Any]
) -> tuple[tuple[Change, ...], tuple[str, str] | None]:
    """Provider config that changes, and ``(old, new)`` when the AWS region does in a stack
    that has AWS resources in both plans."""
    old, new = base.get("providerConfig"), head.get("providerConfig")
    if not isinstance(old, dict) or not isinstance(new, dict):
        return (), None
    changes = []
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key, MISSING), new.get(key, MISSING)
        if was != now:
            changes.append(
                Change(
                    safe(key),
                    MISSING if was is MISSING else cut(redact_text(str(was))),
                    MISSING if now is MISSING else cut(redact_text(str(now))),
                )
            )
    region = None
    was, now = old.get(REGION_KEY), new.get(REGION_KEY)
    if was and now and was != now and has_aws(base) and has_aws(head):
        region = (safe(was), safe(now))
    return tuple(changes), region
