"""Read a Pulumi project's config the way the Pulumi CLI hands it to a program.

The CLI merges the defaults declared in Pulumi.yaml with the stack's Pulumi.<stack>.yaml, names
every key ``namespace:key`` (bare keys belong to the project), and passes structured values as
JSON text. Secure values need the stack's secrets provider, which an offline run does not have:
they, and declared secrets the stack file leaves unset, get a placeholder marked secret.
"""

from __future__ import annotations

import json
import re
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


class _ConfigLoader(yaml.SafeLoader):
    """YAML as the Pulumi CLI reads it (YAML 1.2 scalars): ``on``, ``yes`` and dates stay
    strings, and a key defined twice is an error rather than silently replaced."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is defined twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_ConfigLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _text(key: str, value: Any, path: Path) -> str:
    """The value as the CLI passes it to the program: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(_string_keys(value), sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        raise ProjectError(
            f"{path}: the value of {key} is not plain data (strings, numbers, booleans, lists "
            "and mappings)"
        ) from None


def _string_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


def _full_key(project: str, key: Any, path: Path, *, bare_is_project: bool) -> str:
    """``namespace:key``; the legacy ``namespace:config:key`` form means the same."""
    key = str(key)
    parts = key.split(":")
    if len(parts) == 3 and parts[1] == "config":
        return f"{parts[0]}:{parts[2]}"
    if len(parts) == 2 and all(parts):
        return key
    if len(parts) == 1 and bare_is_project and key:
        return f"{project}:{key}"
    raise ProjectError(f"{path}: config key {key!r} is not of the form <namespace>:<name>")


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
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_ConfigLoader)
    except FileNotFoundError:
        raise ProjectError(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise ProjectError(f"{path} is not UTF-8 text") from None
    except OSError as error:
        raise ProjectError(f"{path} cannot be read: {error.strerror}") from None
    except RecursionError:
        raise ProjectError(f"{path} refers to itself through a YAML alias") from None
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
    project_path = directory / "Pulumi.yaml"
    for key, declaration in _config_section(project_file, project_path).items():
        full = _full_key(project, key, project_path, bare_is_project=True)
        if isinstance(declaration, dict):
            if declaration.get("secret"):
                declared_secrets.append(full)
            if "default" in declaration:
                config[full] = _text(full, declaration["default"], project_path)
        else:
            config[full] = _text(full, declaration, project_path)
    # Secrets a new stack is prompted for (`pulumi new`) are declared in template.config.
    template = project_file.get("template") or {}
    if isinstance(template, dict):
        for key, declaration in _config_section(template, project_path).items():
            if isinstance(declaration, dict) and declaration.get("secret"):
                declared_secrets.append(_full_key(project, key, project_path, bare_is_project=True))

    stack_path = directory / f"Pulumi.{stack}.yaml"
    stack_file = _load_yaml(stack_path)
    for key, value in _config_section(stack_file, stack_path).items():
        full = _full_key(project, key, stack_path, bare_is_project=False)
        if _contains_secure(value):
            secret_keys.append(full)
            placeholders.append(full)
            value = _replace_secure(full, value)
        config[full] = _text(full, value, stack_path)

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
