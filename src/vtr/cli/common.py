"""Arguments that several subcommands share, declared once."""

from __future__ import annotations

import argparse


def add_overrides_argument(parser: argparse.ArgumentParser, what: str = "a config value") -> None:
    """``--set KEY=VALUE`` (repeatable), collected into ``args.overrides``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override {what}, e.g. --set train.epochs=2 --set data.root=DIR (repeatable)",
    )


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bars (for logs and scripts)."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
