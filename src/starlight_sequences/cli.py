"""The ``starlight`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from starlight_sequences.errors import StarlightError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``starlight`` command; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="starlight", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a demonstration campaign on the embedded defaults")
    demo.add_argument("--out", type=Path, default=None, help="folder for the demo's files")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from starlight_sequences.demo import run_demo

        try:
            run_demo(args.out)
        except StarlightError as exc:
            print(f"starlight demo: {exc}", file=sys.stderr)
            return 1
        return 0
    return 2
