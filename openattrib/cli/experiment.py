"""``openattrib experiment CONFIG.toml``: run a config-driven experiment into a results folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ValidationError


def add_experiment_parser(commands: Any) -> None:
    p = commands.add_parser(
        "experiment",
        help="run the evaluations described by a TOML config (see experiments/quick.toml)",
        description=(
            "Value noisy data with every method of the config, evaluate them (noisy-label "
            "detection, point removal, agreement, LDS, convergence) and write CSV tables, "
            "figures and report.html into a results folder."
        ),
    )
    p.add_argument("config", type=Path, help="experiment config (TOML)")
    p.add_argument(
        "--out", type=Path, default=None, help="results folder (default: results/<config name>)"
    )
    p.add_argument("--progress", action="store_true", help="show the estimators' progress bars")
    p.add_argument("--quiet", action="store_true", help="print only the final line")
    p.set_defaults(handler=run_experiment_command)


def run_experiment_command(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # the command draws figures to files only
    from ..experiments import run_experiment

    if not args.config.is_file():
        raise ValidationError(f"experiment config not found: {str(args.config)!r}")
    echo = (lambda text: None) if args.quiet else print
    run = run_experiment(args.config, args.out, progress=args.progress, echo=echo)
    if args.quiet:
        print(f"Results written to {run.out_dir.resolve()} (open report.html)")
    return 0
