"""``vtr train``: train a retrieval model from a config into a run folder."""

from __future__ import annotations

import argparse

from vtr.cli.common import add_overrides_argument, add_progress_argument
from vtr.config import load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a retrieval model",
        description="Train a retrieval model. The resolved config, the last and best weights (by validation "
        "R-sum), the resumable state and a JSONL log are written into the run folder.",
    )
    parser.add_argument(
        "--config",
        required=False,
        help="a YAML config file or a packaged config name "
        "(synthetic-dual-align, msrvtt-dual-align, msvd-dual-align); not needed with --resume",
    )
    parser.add_argument("--out", required=True, help="the run folder to write")
    add_overrides_argument(parser, "a config value")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    add_progress_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vtr.errors import ConfigError
    from vtr.train import fit

    if not args.resume and not args.config:
        raise ConfigError("--config is required unless --resume is given")
    config = load_config(args.config, args.overrides) if args.config else None
    out = fit(config, args.out, resume=args.resume, progress=not args.no_progress)
    print(f"run written to {out}")
    return 0
