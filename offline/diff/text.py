"""Names from a plan as a report writes them, and how much of a long list it shows.

Plans are data from a pull request's code. Every name (resource, type, stack, label, key) goes
through :func:`safe` before it reaches the report: one line, redacted, cut to width. In running
text it then goes through :func:`code`, inline markdown code that no backtick in the name can
end early, or in a table through :func:`cell`, which no pipe can end either.
"""

from __future__ import annotations

import re
from typing import Any

from offline.diff.redact import redact_name

NAME_WIDTH = 100
"""Characters of a name (resource, stack, label, key) shown in the report."""
TABLE_ROWS = 100
"""Rows of the summary table; more types are summed up in one row."""
LIST_ITEMS = 20
"""Names listed in one sentence (renames, secrets, output keys) before "and N more"."""


def cut(text: str, width: int = NAME_WIDTH) -> str:
    """``text`` at most ``width`` characters long, ending in "..." where it was cut."""
    return text if len(text) <= width else text[: width - 3] + "..."


def safe(text: Any, width: int = NAME_WIDTH) -> str:
    """Any name from a plan as the report may show it: one line, redacted, cut."""
    return cut(redact_name(str(text).replace("\r", " ").replace("\n", " ")), width)


def code(text: str) -> str:
    """Inline markdown code that holds any text (backticks included)."""
    text = text.replace("\n", " ")
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def cell(text: str) -> str:
    """Inline code in a table cell: a pipe would end the cell."""
    return code(text).replace("|", "\\|")
