"""Print the offline plan of a stack: ``python -m offline [--stack dev] [--json] [--preview]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pulumi

from offline.plan import plan_project, render_json, render_text
from offline.project import ProjectError, read_project

OUTSIDE_CONFIG = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "PULUMI_CONFIG",
    "PULUMI_CONFIG_SECRET_KEYS",
)
"""Environment variables that would feed config to the program from outside the stack files."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m offline",
        description="Run the Pulumi program under the SDK's mock engine and print what it "
        "would create. No credentials, no network.",
    )
    parser.add_argument("--stack", default="dev", help="stack name (reads Pulumi.<stack>.yaml)")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="the project directory")
    parser.add_argument("--json", action="store_true", help="write the plan as JSON")
    parser.add_argument(
        "--preview", action="store_true", help="run as `pulumi preview` does (dry run)"
    )
    args = parser.parse_args(argv)

    # The plan depends on the stack files alone: the AWS provider would otherwise take its
    # region from the environment, and the SDK its config from PULUMI_CONFIG.
    for variable in OUTSIDE_CONFIG:
        os.environ.pop(variable, None)

    directory = args.dir.resolve()
    try:
        project = read_project(directory, args.stack)
        plan = plan_project(directory, project, preview=args.preview)
    except (ProjectError, pulumi.RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render_json(plan) if args.json else render_text(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
