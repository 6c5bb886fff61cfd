"""The ``skedge`` command line: one front door, one sub-command per job.

Each job module exposes ``register(subparsers)``, which adds its sub-command(s)
with ``set_defaults(func=...)``; ``func(args)`` returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ._version import __version__

# Modules that contribute sub-commands, in the order `skedge --help` lists them.
COMMAND_MODULES = (
    "skedge._job",
    "skedge._demo",
    "skedge.measure",
    "skedge.evaluate",
    "skedge.evaluate_optimizer",
)


def build_parser():
    """The argument parser of the ``skedge`` command."""
    parser = argparse.ArgumentParser(
        prog="skedge",
        description="Scale DNN design optimization to thousands of edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"skedge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None):
    """Run the ``skedge`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"skedge {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
