"""Secrets out of everything a report shows.

A value the program marked secret is ``[secret]`` in a plan already. Plans can still carry
credentials in clear (a plan written without redaction, a password inside a command line), so
every value and name is redacted again here before it is shown: values under secret-looking keys
(``password``, ``clientSecret``, ``TS_AUTHKEY=...``, ``--password=...``), passwords in URLs
(``user:pass@``), and whole lines holding something that is a credential wherever it appears
(``tskey-...``, private keys, AWS, GitHub, Slack and Pulumi tokens, JSON web tokens, the offline
placeholders). Multi-line text is redacted line by line, so its ordinary lines stay readable.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[secret]"
"""What a report shows in place of a secret."""

# Key names whose values are secrets, compared without case and separators, by their ending:
# DB_PASSWORD, SMTP_PASS, clientSecret, TS_AUTHKEY, apiKey, secretString, connectionString.
# Not "httpTokens", not "keyExpiryDays", not "bypass".
_SECRET_KEY_ENDINGS = (
    "password",
    "passwd",
    "passphrase",
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "authkey",
    "privatekey",
    "secretkey",
    "accesskey",
    "credential",
    "credentials",
    "secretstring",
    "connectionstring",
    "authorization",
    "dsn",
    "encryptionkey",
    "signingkey",
    "masterkey",
    "accountkey",
    "secretkeybase",
)
_NOT_SECRET_ENDINGS = ("bypass", "compass")
# Values that are credentials wherever they appear: a line holding one is shown as [secret].
_SECRET_VALUE = re.compile(
    r"tskey-[A-Za-z0-9-]+"  # Tailscale auth keys, OAuth client secrets and API keys
    r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"  # PEM and PGP private keys
    r"|\bLS0tLS1CRUdJTi"  # a PEM block, base64-encoded again
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids, long-lived and temporary
    r"|\bgh[opsur]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"  # GitHub fine-grained tokens
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|\bpul-[0-9a-f]{40}\b"  # Pulumi access tokens
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."  # JSON web tokens
    r"|\bglpat-[A-Za-z0-9_-]{20,}"  # GitLab tokens
    r"|\b[sr]k_live_[A-Za-z0-9]{16,}"  # Stripe live keys
    r"|\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}"  # OpenAI-style API keys
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|\bnpm_[A-Za-z0-9]{36}"  # npm tokens
    r"|\bhf_[A-Za-z0-9]{30,}"  # Hugging Face tokens
    r"|hooks\.slack\.com/services/"  # Slack webhooks: the URL is the credential
    r"|offline-placeholder-for-"  # what the offline plan stands in for a real secret
)
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
# NAME=value, NAME: value, "NAME": "value", --NAME=value, --NAME value: the name is checked
# with secret_key(), the value found by _value_end().
_ASSIGNMENT = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<flag>--?)?(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?P<quote>\\?[\"']?)"
    r"(?P<sep>[ \t]*[:=][ \t]*|[ \t]+)"
)
# A value that only names a shell variable ("$DB_PASSWORD", ${TOKEN}, file:$key_file) holds no
# secret: the script reads it at run time.
_VARIABLE_REFERENCE = re.compile(
    r"(?:file:)?\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})"
)
# scheme://user:password@host, up to the last @ before the host (a password may hold one)
_URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:)([^\s/]+)(@)")
# <password>value</password>
_XML_ELEMENT = re.compile(r"<(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)>(?P<value>[^<]*)</(?P=name)>")
# curl -u user:password, --user user:password
_USER_OPTION = re.compile(r"(?<!\S)(-u|--user)([ \t]+|=)([^\s:]+):(\S+)")
# A secret key with no value on its line (`password:`, `password: |`): the value is the lines
# indented below it.
_KEY_ABOVE_VALUE = re.compile(
    r"(?P<indent>[ \t]*)(?:-[ \t]+)?[\"']?(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)[\"']?[ \t]*:"
    r"[ \t]*(?:[|>][+-]?[0-9]?)?[ \t]*"
)
# NAME=value and --NAME=value in a name, and NAME: value with a space (a type such as
# aws:secretsmanager/secret:Secret has none).
_NAME_ASSIGNMENT = re.compile(
    r"(?<![A-Za-z0-9_])(?:--?)?(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>=|: )(?P<value>\S+)"
)


def secret_key(name: str) -> bool:
    """Whether a property or variable of this name holds a secret."""
    normalized = re.sub(r"[^a-z0-9]", "", name.lower())
    return normalized.endswith(_SECRET_KEY_ENDINGS) and not normalized.endswith(_NOT_SECRET_ENDINGS)


def _value_end(line: str, start: int, *, whole_line: bool) -> int:
    """Where the value that starts at ``start`` ends: a quoted value at its closing quote, a
    value that may hold spaces (env and YAML style) at the line's end, any other at a space."""
    if start >= len(line):
        return start
    if line[start] in "\"'":
        close = line.find(line[start], start + 1)
        return len(line) if close < 0 else close + 1
    if whole_line:
        return len(line)
    match = re.compile(r"[\s,;&]").search(line, start)
    return match.start() if match else len(line)


def _redact_assignments(line: str) -> str:
    spans: list[tuple[int, int, str]] = []
    position = 0
    while True:
        match = _ASSIGNMENT.search(line, position)
        if match is None:
            break
        position = match.end()
        sep = match["sep"]
        spaced = not sep.strip()
        if not secret_key(match["name"]) or (spaced and match["flag"] != "--"):
            position = match.start("sep")
            if position <= match.start():
                position = match.start() + 1
            continue
        start = match.end()
        # NAME=value at the start of a line is an environment entry, NAME: value a YAML or
        # log field: both may hold spaces.
        at_start = not match["flag"] and not line[: match.start()].strip(" \t-\"'{")
        end = _value_end(line, start, whole_line=":" in sep or at_start)
        value = line[start:end]
        if end > start and not _VARIABLE_REFERENCE.fullmatch(value.replace("\\", "").strip("\"'")):
            quote = value[0] if value[0] in "\"'" and value[-1:] == value[0] else ""
            spans.append((start, end, f"{quote}{REDACTED}{quote}"))
        position = max(end, position)
    for start, end, text in reversed(spans):
        line = line[:start] + text + line[end:]
    return line


def _redact_line(line: str) -> str:
    if line == REDACTED:
        return line
    if _SECRET_VALUE.search(line):
        indent = line[: len(line) - len(line.lstrip())]
        return indent + REDACTED
    line = _URL_CREDENTIALS.sub(rf"\g<1>{REDACTED}\g<3>", line)
    line = _USER_OPTION.sub(rf"\g<1>\g<2>\g<3>:{REDACTED}", line)
    line = _XML_ELEMENT.sub(
        lambda m: m[0] if not secret_key(m["name"]) else f"<{m['name']}>{REDACTED}</{m['name']}>",
        line,
    )
    return _redact_assignments(line)


def redact_text(text: str) -> str:
    """A string as a report may show it: a line holding a credential becomes ``[secret]``,
    the value of a secret assignment (``DB_PASSWORD=x``, ``--password x``, ``token: x``) and
    the password of a URL become ``[secret]``; text holding a private key is all ``[secret]``.
    Multi-line text is redacted line by line."""
    if "\n" not in text:
        return _redact_line(text)
    if _PRIVATE_KEY.search(text):
        return REDACTED
    shown: list[str] = []
    hidden_below: int | None = None  # the indent of a secret key whose value is below it
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip(" \t"))
        if hidden_below is not None and (not line.strip() or indent > hidden_below):
            shown.append(line[:indent] + REDACTED if line.strip() else line)
            continue
        hidden_below = None
        key = _KEY_ABOVE_VALUE.fullmatch(line)
        if key is not None and secret_key(key["name"]):
            hidden_below = len(key["indent"])
        shown.append(_redact_line(line))
    return "\n".join(shown)


def redact_name(name: str) -> str:
    """A key, name, type or URN as a report may show it: names can hold credentials too, but
    they are not assignments (``aws:secretsmanager/secret:Secret`` is a type, not a secret)."""
    if _SECRET_VALUE.search(name):
        return REDACTED
    name = _URL_CREDENTIALS.sub(rf"\g<1>{REDACTED}\g<3>", name)
    return _NAME_ASSIGNMENT.sub(
        lambda m: (
            m[0]
            if not secret_key(m["name"])
            else f"{m[0][: m.start('value') - m.start()]}{REDACTED}"
        ),
        name,
    )


def secret_child(parent: dict[str, Any], key: str) -> bool:
    """Whether ``parent[key]`` is secret by its name, or as an SSM SecureString's value."""
    if secret_key(key):
        return True
    return key in ("value", "insecureValue") and parent.get("type") == "SecureString"


def redact(value: Any, *, under_secret_key: bool = False) -> Any:
    """``value`` with everything secret replaced by ``[secret]``, at any depth, keys too."""
    if under_secret_key:
        return REDACTED
    if isinstance(value, dict):
        redacted: dict[str, Any] = {}
        for key, item in value.items():
            shown = redact_name(key)
            if shown in redacted:
                shown = f"{shown}#{len(redacted)}"
            secret = secret_child(value, key) or shown != key
            redacted[shown] = redact(item, under_secret_key=secret)
        return redacted
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
