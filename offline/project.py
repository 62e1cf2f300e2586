"""Read a Pulumi project's config the way the Pulumi CLI hands it to a program.

The CLI merges the defaults declared in Pulumi.yaml with the stack's Pulumi.<stack>.yaml, names
every key ``namespace:key`` (bare keys belong to the project), and passes structured values as
JSON text. Secure values need the stack's secrets provider, which an offline run does not have:
they, and declared secrets the stack file leaves unset, get a placeholder marked secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ProjectError(Exception):
    """The project or stack file cannot be read."""


@dataclass(frozen=True)
class ProjectConfig:
    """What the program sees: project name, stack name and config (as the CLI passes it)."""

    project: str
    stack: str
    config: dict[str, str]
    secret_keys: list[str]
    placeholders: list[str] = field(default_factory=list)
    """Secret keys whose real value only the stack's secrets provider has."""


def placeholder(key: str) -> str:
    """The stand-in value of a secret the offline run cannot decrypt."""
    return f"offline-placeholder-for-{key.replace(':', '-')}"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _full_key(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _contains_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_contains_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secure(v) for v in value)
    return False


def _replace_secure(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return placeholder(key)
        return {k: _replace_secure(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_secure(f"{key}[{i}]", v) for i, v in enumerate(value)]
    return value


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ProjectError(f"{path} does not exist") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "unreadable"
        raise ProjectError(f"{path} is not valid YAML{where}: {problem}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ProjectError(f"{path} must hold a mapping")
    return document


def _config_section(document: dict[str, Any], path: Path) -> dict[str, Any]:
    section = document.get("config") or {}
    if not isinstance(section, dict):
        raise ProjectError(f"{path}: config must be a mapping of keys to values")
    return section


def read_project(directory: Path, stack: str) -> ProjectConfig:
    """Merge Pulumi.yaml's declared defaults with Pulumi.<stack>.yaml."""
    project_file = _load_yaml(directory / "Pulumi.yaml")
    project = project_file.get("name")
    if not isinstance(project, str):
        raise ProjectError(f"{directory / 'Pulumi.yaml'} has no project name")

    config: dict[str, str] = {}
    secret_keys: list[str] = []
    placeholders: list[str] = []
    declared_secrets: list[str] = []
    for key, declaration in _config_section(project_file, directory / "Pulumi.yaml").items():
        full = _full_key(project, key)
        if isinstance(declaration, dict):
            if declaration.get("secret"):
                declared_secrets.append(full)
            if "default" in declaration:
                config[full] = _text(declaration["default"])
        else:
            config[full] = _text(declaration)
    # Secrets a new stack is prompted for (`pulumi new`) are declared in template.config.
    template = project_file.get("template") or {}
    if isinstance(template, dict):
        for key, declaration in _config_section(template, directory / "Pulumi.yaml").items():
            if isinstance(declaration, dict) and declaration.get("secret"):
                declared_secrets.append(_full_key(project, key))

    stack_file = _load_yaml(directory / f"Pulumi.{stack}.yaml")
    for key, value in _config_section(stack_file, directory / f"Pulumi.{stack}.yaml").items():
        full = _full_key(project, key)
        if _contains_secure(value):
            secret_keys.append(full)
            placeholders.append(full)
            value = _replace_secure(full, value)
        config[full] = _text(value)

    for full in declared_secrets:
        if full not in secret_keys:
            secret_keys.append(full)
            if not config.get(full):
                config[full] = placeholder(full)
                placeholders.append(full)

    return ProjectConfig(
        project=project,
        stack=stack,
        config=config,
        secret_keys=sorted(secret_keys),
        placeholders=sorted(placeholders),
    )
