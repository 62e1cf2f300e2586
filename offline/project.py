"""Read a Pulumi project's config the way the Pulumi CLI hands it to a program.

The CLI merges the defaults declared in Pulumi.yaml with the stack's Pulumi.<stack>.yaml, names
every key ``namespace:key`` (bare keys belong to the project), and passes structured values as
JSON text. Secure values need the stack's secrets provider, which an offline run does not have:
they, and declared secrets the stack file leaves unset, get a placeholder marked secret.

A placeholder is the same whatever the secret is, so a plan alone cannot show that a secret
changed. Each secret written in the stack file therefore gets a fingerprint: a short hash of its
ciphertext, the ``secure:`` text that is committed with the stack file anyway. It changes
whenever the secret is set again and says nothing about the value.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
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
    secret_fingerprints: dict[str, str | None] = field(default_factory=dict)
    """Each placeholder's :func:`fingerprint`, or None for a declared secret the stack file
    does not hold (its changes cannot be seen offline)."""


def placeholder(key: str) -> str:
    """The stand-in value of a secret the offline run cannot decrypt."""
    return f"offline-placeholder-for-{key.replace(':', '-')}"


class _ConfigLoader(yaml.SafeLoader):
    """YAML as the Pulumi CLI reads it (YAML 1.2 scalars): ``on``, ``yes`` and dates stay
    strings, and a key defined twice is an error rather than silently replaced."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)  # merge keys (<<) first, as YAML 1.2 tools do
        seen: set[str] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (list, dict, set)):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value", key_node.start_mark
                )
            # The CLI sees every key as text: 1 and '1' are the same key.
            if str(key) in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is defined twice", key_node.start_mark
                )
            seen.add(str(key))
        return super().construct_mapping(node, deep=deep)


# YAML 1.2's core schema: only true/false are booleans, no dates, no base-60 numbers, and
# 1e3 is a number.
_YAML_1_1_ONLY = ("bool", "timestamp", "int", "float")
_ConfigLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp) for tag, regexp in resolvers if tag.rsplit(":", 1)[-1] not in _YAML_1_1_ONLY
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    # The CLI's YAML reads 017620 as octal (8080); YAML 1.2 as decimal. Neither guess is safe.
    if re.fullmatch(r"[-+]?0[0-9]+", node.value):
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"{node.value} has a leading zero, which YAML readers take for decimal or octal: "
            "write it without",
            node.start_mark,
        )
    return loader.construct_yaml_int(node)


_ConfigLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)

MAX_ITEMS = 100_000
"""More values than any home lab has: a stack file past it is an alias bomb or a mistake."""
MAX_DEPTH = 64


def _check_size(value: Any, path: Path) -> None:
    """Refuse values that expand through aliases into more than a config can mean."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_ITEMS or depth > MAX_DEPTH:
            raise ProjectError(
                f"{path} expands to more than {MAX_ITEMS} values or {MAX_DEPTH} levels "
                "(a YAML alias that refers to itself, or nests too deep)"
            )
        if isinstance(item, dict):
            stack += [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list):
            stack += [(child, depth + 1) for child in item]


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


def _key_text(key: Any) -> str:
    """A key as the CLI writes it: ``true`` stays ``true``, not Python's ``True``."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def _string_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_key_text(k): _string_keys(v) for k, v in value.items()}
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


def _ciphertexts(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            yield path, str(value["secure"])
            return
        for key in sorted(value, key=str):
            yield from _ciphertexts(value[key], f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _ciphertexts(item, f"{path}[{index}]")


FINGERPRINT_HEX = 16
"""Hex digits of a fingerprint: enough to tell two ciphertexts apart, short to read."""


def fingerprint(value: Any) -> str:
    """A short SHA-256 of the ``secure:`` ciphertexts in a stack file's value, never of a
    decrypted or plain value. Pulumi's secrets providers encrypt with a fresh nonce, so setting
    a secret again changes its fingerprint even when the value is the same."""
    ciphertexts = json.dumps(dict(_ciphertexts(value)), sort_keys=True)
    return "sha256:" + hashlib.sha256(ciphertexts.encode("utf-8")).hexdigest()[:FINGERPRINT_HEX]


def _replace_secure(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return placeholder(key)
        return {k: _replace_secure(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_secure(f"{key}[{i}]", v) for i, v in enumerate(value)]
    return value


def _load_yaml(path: Path, project: str = "") -> dict[str, Any]:
    try:
        loader = _ConfigLoader(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise ProjectError(f"{path} is not UTF-8 text") from None
    except OSError as error:
        raise ProjectError(f"{path} cannot be read: {error.strerror}") from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_unique_keys(node, path, project)
        document = loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise ProjectError(f"{path} nests deeper than a config can mean") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "unreadable"
        raise ProjectError(f"{path} is not valid YAML{where}: {problem}") from None
    finally:
        loader.dispose()
    _check_size(document, path)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ProjectError(f"{path} must hold a mapping")
    return document


def _check_unique_keys(root: yaml.Node, path: Path, project: str) -> None:
    """Refuse a key written twice in one mapping, naming the config key path it is at."""
    seen_nodes: set[int] = set()
    pending: list[tuple[yaml.Node, tuple[str, ...]]] = [(root, ())]
    while pending:
        node, at = pending.pop()
        if id(node) in seen_nodes:  # an alias to a node already checked
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            pending += [(item, (*at, f"[{index}]")) for index, item in enumerate(node.value)]
        if not isinstance(node, yaml.MappingNode):
            continue
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue  # a complex key is refused later; merge keys are merged later
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in lines:
                raise ProjectError(_twice(path, project, (*at, key), lines[key], line))
            lines[key] = line
            pending.append((value_node, (*at, key)))


def _twice(path: Path, project: str, keys: tuple[str, ...], first: int, second: int) -> str:
    """The message for a key written twice: a config key path when the key is config."""
    lines = f"lines {first} and {second}"
    if len(keys) < 2 or keys[0] != "config":
        return f"{path}: key {'.'.join(keys)} is defined twice ({lines})"
    namespace, _, name = keys[1].replace(":config:", ":").rpartition(":")
    top = name if namespace == project else keys[1]
    dotted = "".join(part if part.startswith("[") else f".{part}" for part in keys[2:])
    return f"config key {top}{dotted}: is defined twice in {path} ({lines})"


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
    fingerprints: dict[str, str | None] = {}
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
    stack_file = _load_yaml(stack_path, project)
    stack_keys: set[str] = set()
    for key, value in _config_section(stack_file, stack_path).items():
        full = _full_key(project, key, stack_path, bare_is_project=False)
        if full in stack_keys:
            raise ProjectError(f"{stack_path}: config key {full} is set twice")
        stack_keys.add(full)
        if _contains_secure(value):
            secret_keys.append(full)
            placeholders.append(full)
            fingerprints[full] = fingerprint(value)
            value = _replace_secure(full, value)
        config[full] = _text(full, value, stack_path)

    # A declared secret the stack file leaves unset would be decrypted by the CLI from the
    # secrets provider; offline, a placeholder stands in. A value written in plain text stays
    # plain, as the CLI would pass it, so the program can refuse it.
    for full in declared_secrets:
        if full not in stack_keys:
            secret_keys.append(full)
            config[full] = placeholder(full)
            placeholders.append(full)
            fingerprints[full] = None

    return ProjectConfig(
        project=project,
        stack=stack,
        config=config,
        secret_keys=sorted(secret_keys),
        placeholders=sorted(placeholders),
        secret_fingerprints=dict(sorted(fingerprints.items())),
    )
