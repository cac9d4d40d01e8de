"""``openattrib demo``: the main job on the committed demo data (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_demo_parser(commands: Any) -> None:
    p = commands.add_parser(
        "demo",
        help="run the main job on the bundled demo data",
        description="Value the demo contributors and print a readable table (see README).",
    )
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: out/)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(handler=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    summary = run_demo(args.out, progress=not args.no_progress, echo=print)
    return 0 if summary.ok else 1
