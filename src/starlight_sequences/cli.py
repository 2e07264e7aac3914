"""The ``starlight`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``starlight`` command; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="starlight", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run a demonstration on the embedded defaults")
    args = parser.parse_args(argv)
    if args.command == "demo":
        print("starlight demo: not built yet", file=sys.stderr)
        return 1
    return 2
