"""The command: ``python -m offline.diff BASE.json HEAD.json`` prints the report.

``--failed ERROR_FILE`` prints the report of a failed plan instead. A plan that cannot be read,
plans of two different stacks (unless ``--allow-different-stacks``) and a report that cannot be
written are one error line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from offline.diff.markdown import COMMENT_LIMIT, render_failure, render_markdown
from offline.diff.plan_diff import diff_plans
from offline.diff.read import PlanError, read_plan
from offline.diff.text import safe

MIN_LIMIT = 4_000
"""The smallest ``--limit``: the header, the boxes and the summary need room."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m offline.diff",
        description="Compare two offline plans (python -m offline --json) and write the "
        "difference as markdown for a pull-request comment.",
    )
    parser.add_argument("base", type=Path, nargs="?", help="the base revision's plan (JSON)")
    parser.add_argument("head", type=Path, nargs="?", help="the head revision's plan (JSON)")
    parser.add_argument("--base-label", default="base", help="name of the base revision")
    parser.add_argument("--head-label", default="head", help="name of the head revision")
    parser.add_argument(
        "--limit",
        type=int,
        default=COMMENT_LIMIT,
        help=f"longest report in UTF-8 bytes (default {COMMENT_LIMIT}, GitHub's comment limit)",
    )
    parser.add_argument("--details-url", help="where the whole diff can be read when trimmed")
    parser.add_argument(
        "--allow-different-stacks",
        action="store_true",
        help="compare plans of two different stacks (refused by default)",
    )
    parser.add_argument(
        "--failed",
        metavar="ERROR_FILE",
        type=Path,
        help="write the report of a failed plan (its stderr in ERROR_FILE) instead",
    )
    parser.add_argument("-o", "--output", type=Path, help="write the report here, not stdout")
    args = parser.parse_args(argv)
    if args.limit < MIN_LIMIT:
        parser.error(f"--limit must be at least {MIN_LIMIT}")

    try:
        if args.failed is not None:
            error = args.failed.read_text(encoding="utf-8", errors="replace")
            report = render_failure(args.head_label, error, limit=args.limit)
        else:
            if args.base is None or args.head is None:
                parser.error("BASE and HEAD plan files are required")
            base, head = read_plan(args.base), read_plan(args.head)
            if base.get("stack") != head.get("stack") and not args.allow_different_stacks:
                raise PlanError(
                    f"the plans are of different stacks ({safe(base.get('stack'))!r} and "
                    f"{safe(head.get('stack'))!r}); pass --allow-different-stacks to compare "
                    "them anyway"
                )
            report = render_markdown(
                diff_plans(base, head),
                base_label=args.base_label,
                head_label=args.head_label,
                limit=args.limit,
                details_url=args.details_url,
            )
        if args.output is not None:
            args.output.write_text(report, encoding="utf-8")
        else:
            sys.stdout.write(report)
    except PlanError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    except OSError as error:
        sys.stderr.write(f"error: {error.filename}: {error.strerror}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
