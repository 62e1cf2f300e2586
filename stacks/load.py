"""Read the stack's config once and validate it before any resource is registered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pydantic import ValidationError

from stacks.config import HomelabConfig, KeyPathError

#: The structured config keys, in the project's namespace (``homelab:<key>``).
CONFIG_KEYS = ("tailnet", "hosts", "aws")
#: The secret config keys, declared in Pulumi.yaml and set with ``pulumi config set --secret``.
SECRET_KEYS = ("immichDatabasePassword",)
#: The providers' credentials: checked like the stack's own secrets when they are set.
PROVIDER_SECRET_KEYS = ("tailscale:apiKey", "tailscale:oauthClientSecret")


class ConfigError(pulumi.RunError):
    """A config value is wrong. Pulumi prints a RunError's message without a traceback."""

    def __init__(self, message: str) -> None:
        # Always one printable line: a newline or control character inside a quoted key or
        # value is shown escaped, as Python writes it.
        super().__init__(
            "".join(char if char.isprintable() else repr(char)[1:-1] for char in message)
        )


def load_config(config: pulumi.Config | None = None) -> HomelabConfig:
    """Validate the stack's config, or raise one :class:`ConfigError` naming the key."""
    config = config or pulumi.Config()
    project = pulumi.get_project()
    for key in _present_keys(project):
        if key not in CONFIG_KEYS and key not in SECRET_KEYS:
            known = ", ".join((*CONFIG_KEYS, *SECRET_KEYS))
            raise ConfigError(f"config key {key}: is not a known key (homelab reads {known})")

    raw: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        if pulumi.runtime.is_config_secret(f"{project}:{key}"):
            # A secret inside a structured key would flow into resource names and inputs in
            # clear: secrets have keys of their own.
            raise ConfigError(
                f"config key {key}: holds a secret value; only {', '.join(SECRET_KEYS)} may be "
                "secret, each set with pulumi config set --secret"
            )
        try:
            value = config.get_object(key)
        except pulumi.ConfigTypeError:
            raise ConfigError(
                f"config key {key}: expected an object (a mapping of keys to values)"
            ) from None
        if value is not None:
            raw[key] = value

    # Read as plain text here only to validate it; the stack hands it on as a secret Output.
    secrets = {}
    for key in (*SECRET_KEYS, *PROVIDER_SECRET_KEYS):
        full_key = key if ":" in key else f"{project}:{key}"
        value = pulumi.runtime.get_config(full_key)
        if value is None:
            continue
        if not value.strip():
            raise ConfigError(
                f"config key {key}: is empty; set it with pulumi config set --secret {key}"
            )
        if not pulumi.runtime.is_config_secret(full_key):
            raise ConfigError(
                f"config key {key}: must be stored encrypted; set it again with "
                f"pulumi config set --secret {key}"
            )
        if key in SECRET_KEYS:
            secrets[key] = value
    raw["secrets"] = secrets
    return parse_config(raw)


def _present_keys(project: str) -> list[str]:
    """The keys set in the project's namespace, from wherever the language host put them."""
    present = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.get_config_env())
    prefix = f"{project}:"
    return sorted(key.removeprefix(prefix) for key in present if key.startswith(prefix))


def parse_config(raw: Mapping[str, Any]) -> HomelabConfig:
    """Validate already-decoded config values (the keys of :data:`CONFIG_KEYS`)."""
    try:
        return HomelabConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(describe(error)) from None


def describe(error: ValidationError) -> str:
    """One message for the first problem, naming the key path and what was expected."""
    problems = error.errors(include_url=False)
    first = problems[0]
    path = _key_path(first["loc"])
    message = first["msg"]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, KeyPathError):
        path = f"{path}.{cause.path}" if path else cause.path
        message = str(cause)
    elif first["type"] == "missing":
        message = "is required"
    elif first["type"] == "extra_forbidden":
        message = "is not a known key (check its spelling and camelCase)"
    elif first["type"] in ("dict_type", "model_type"):
        message = "expected an object (a mapping of keys to values)"
    elif path.startswith("secrets") or first["type"] == "value_error":
        # Our own checks already quote the value; secrets are never quoted.
        message = message.removeprefix("Value error, ")
    else:
        message = f"{message.removeprefix('Value error, ')} (got {first['input']!r})"
    more = f" ({len(problems) - 1} more problem(s) after this one)" if len(problems) > 1 else ""
    # Secret keys are flat in Pulumi config; the model only groups them.
    path = path.removeprefix("secrets.")
    return f"config key {path}: {message}{more}"


def _key_path(loc: tuple[int | str, ...]) -> str:
    if loc and loc[-1] == "[key]":
        # pydantic's marker for a mapping key that failed validation: the key itself is the path.
        loc = loc[:-1]
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path
