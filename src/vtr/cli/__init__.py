"""The ``vtr`` console script: one command with subcommands, each a thin call into the library.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``, which
adds its parser and sets ``func`` (called with the parsed namespace, returning an exit code).
``main(argv)`` is callable from tests.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from vtr import __version__
from vtr.errors import VtrError

# Order is the order of `vtr --help`.
_SUBCOMMAND_MODULES = (
    "demo",
    "data",
    "train",
    "eval",
    "ablate",
    "metrics",
    "index",
    "search",
    "serve",
    "explain",
    "report",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="vtr",
        description="Text-to-video retrieval: train and evaluate retrieval models, and search your own videos by text.",
    )
    parser.add_argument("--version", action="version", version=f"vtr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"vtr.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"vtr.cli.{name}":
                continue  # subcommand not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 success, 1 user error, 2 usage error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except VtrError as error:
        print(f"vtr: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vtr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
