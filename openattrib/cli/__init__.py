"""The ``openattrib`` command: parses arguments, calls the public API, writes files.

Every sub-command prints one clear line and exits non-zero on bad input; output files are
written atomically, so a failure never leaves a partial file behind.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..errors import OpenAttribError
from .chain import add_chain_parser
from .demo import add_demo_parser
from .experiment import add_experiment_parser
from .ledger import add_ledger_parser
from .text import add_text_parser
from .value import add_value_parser

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``openattrib`` command."""
    parser = argparse.ArgumentParser(
        prog="openattrib",
        description="Training-data attribution, reward allocation and a verifiable ledger.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_value_parser(commands)
    add_demo_parser(commands)
    add_ledger_parser(commands)
    add_experiment_parser(commands)
    add_chain_parser(commands)
    add_text_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except OpenAttribError as exc:
        print(f"openattrib: error: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"openattrib: error: file not found: {exc.filename}", file=sys.stderr)
        return 1
    except OSError as exc:  # full disk, permissions, ...: the write was atomic, nothing is left
        where = f" {exc.filename}" if exc.filename else ""
        reason = exc.strerror or str(exc) or type(exc).__name__
        print(f"openattrib: error: cannot access{where}: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("openattrib: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
