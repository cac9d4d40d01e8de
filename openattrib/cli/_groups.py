"""A command whose work is split into actions (``openattrib ledger|chain|text ACTION``)."""

from __future__ import annotations

from typing import Any

__all__ = ["command_group"]


def command_group(commands: Any, name: str, *, summary: str, description: str) -> Any:
    """Add command ``name`` to the argparse sub-parsers ``commands``; returns the
    sub-parsers object its actions are added to (``args.{name}_command`` names the one
    chosen; one is required)."""
    top = commands.add_parser(name, help=summary, description=description)
    return top.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)
