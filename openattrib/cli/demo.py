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
    p.add_argument(
        "--chain",
        action="store_true",
        help="also pay the claims and anchor the checkpoint on an in-process EVM "
        "(needs openattrib[chain]); prints gas per claim and the anchored root",
    )
    p.set_defaults(handler=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from .._io import check_output_path
    from ..demo import run_demo
    from ..errors import ValidationError

    if args.out.exists() and not args.out.is_dir():
        raise ValidationError(f"--out {str(args.out)!r} is a file; the demo writes into a folder")
    check_output_path(args.out / "demo", what="--out")  # a bad folder fails before any work
    if args.chain:
        from .chain import chain_module

        chain_module(in_process=True)  # a clear error before the long run, not after it
    summary = run_demo(args.out, progress=not args.no_progress, chain=args.chain, echo=print)
    return 0 if summary.ok else 1
