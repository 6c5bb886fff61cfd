"""The ``skedge`` command line: one front door, one sub-command per job.

Each job module exposes ``register(subparsers)``, which adds its sub-command(s)
with ``set_defaults(func=...)``; ``func(args)`` returns the exit status.

Exit status: 0 on success; 2 for a usage error (a bad option value, an input
file that is missing or malformed), reported before long work starts; 1 for a
failure while working (a damaged model file, an unwritable output). Either way
one line ``skedge COMMAND: error: ...`` on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import re
import sys
import warnings

from ._checks import CommandFailed
from ._version import __version__

# Modules that contribute sub-commands, in the order `skedge --help` lists them.
COMMAND_MODULES = (
    "skedge._cli.run",
    "skedge._cli.apply",
    "skedge._cli.demo",
    "skedge._cli.measure",
    "skedge._cli.evaluate",
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
    for command in sub.choices.values():
        command.description = _plain(command.description)
        for action in command._actions:
            action.help = _plain(action.help)
    return parser


_RST_ROLE = re.compile(r":[a-z]+:`~?(?:[\w.]*\.)?([^`<]+?)(?:\s*<[^>]*>)?`")


def _plain(text):
    """Help text without reStructuredText markup (roles, double back-quotes).

    Examples
    --------
    >>> from skedge.cli import _plain
    >>> _plain("Evaluate (``skedge evaluate-optimizer``) with :class:`~skedge.optimize.Objective`.")
    'Evaluate (`skedge evaluate-optimizer`) with `Objective`.'
    """
    if not text:
        return text
    return _RST_ROLE.sub(r"`\1`", text).replace("``", "`")


def main(argv=None):
    """Run the ``skedge`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            # One line per warning, as the errors are; not the source line behind it.
            warnings.showwarning = functools.partial(_show_warning, args.command, set())
            return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"skedge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except CommandFailed as exc:
        print(f"skedge {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # unwritable output, read-only file system, full disk, ...
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"skedge {args.command}: error: {exc.strerror or exc}{where}.", file=sys.stderr)
        return 1


def _show_warning(command, seen, message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` of the CLI: each distinct message once, on one line."""
    text = f"skedge {command}: warning: {message}"
    if text not in seen:
        seen.add(text)
        print(text, file=file or sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
