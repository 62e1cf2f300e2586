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
    parser.add_argument(
        "--diagram",
        action="store_true",
        help="print the stack's topology as a Mermaid diagram instead of the plan",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        metavar="FILE",
        help="with --diagram: write the diagram into FILE between its topology markers",
    )
    args = parser.parse_args(argv)
    if args.readme is not None and not args.diagram:
        parser.error("--readme goes with --diagram")

    # The plan depends on the stack files alone: the AWS provider would otherwise take its
    # region from the environment, and the SDK its config from PULUMI_CONFIG.
    for variable in OUTSIDE_CONFIG:
        os.environ.pop(variable, None)

    directory = args.dir.resolve()
    if args.diagram:
        return _diagram(directory, args.stack, args.readme)
    try:
        project = read_project(directory, args.stack)
        plan = plan_project(directory, project, preview=args.preview)
    except (ProjectError, pulumi.RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render_json(plan) if args.json else render_text(plan))
    return 0


def _diagram(directory: Path, stack: str, readme: Path | None) -> int:
    """Print the topology diagram, or write it into the README."""
    # Imported here: the plan itself must not load the program's packages before the run.
    from offline.diagram import DiagramError, embed, limits_exceeded, render_mermaid, topology_of

    try:
        diagram = render_mermaid(topology_of(read_project(directory, stack)))
        # Too big for Mermaid is worth knowing, not worth failing: the text is still right.
        for problem in limits_exceeded(diagram):
            print(
                f"warning: {problem}; GitHub will show the code, not the drawing", file=sys.stderr
            )
        if readme is None:
            sys.stdout.write(diagram)
            return 0
        try:
            text = readme.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ProjectError(f"{readme} is not UTF-8 text") from None
        except OSError as error:
            raise ProjectError(f"{readme} cannot be read: {error.strerror}") from None
        updated = embed(text, diagram)
        if updated != text:
            try:
                readme.write_text(updated, encoding="utf-8")
            except OSError as error:
                raise ProjectError(f"{readme} cannot be written: {error.strerror}") from None
    except (ProjectError, DiagramError, pulumi.RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
