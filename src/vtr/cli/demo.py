"""``vtr demo``: the main job end to end on the synthetic benchmark (data, training, evaluation, search index)."""

from __future__ import annotations

import argparse

from vtr.cli.common import add_overrides_argument, add_progress_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="make the synthetic benchmark, train, evaluate and index it (about 42 minutes on 2 CPU cores)",
        description="Make the synthetic benchmark (DIR/data), train the dual alignment model with L1+L2+L3 "
        "(DIR/run), evaluate it on the test split (DIR/metrics.json), answer three example queries, index the "
        "test videos (DIR/index) for vtr search and vtr serve, and search that index with every test caption "
        "(DIR/search_check.json). With --models 2 it trains a second run with the next training seed (DIR/run-2) "
        "and evaluates and indexes the two together. Finished stages are reused on a second run.",
    )
    parser.add_argument("--out", default="vtr-demo", help="output folder (default: ./vtr-demo)")
    parser.add_argument("--videos", type=int, default=2000, help="synthetic clips to make (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data set")
    parser.add_argument(
        "--models",
        type=int,
        default=1,
        help="models to train (training seeds train.seed + 0, 1, ...) and search with together (default 1; 2 "
        "doubles the training time for a better R@1: benchmarks/RESULTS.md, 'Two models')",
    )
    add_overrides_argument(parser, "a value of the demo config")
    add_progress_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vtr.demo import run_demo

    run_demo(
        args.out,
        videos=args.videos,
        seed=args.seed,
        overrides=tuple(args.overrides),
        progress=not args.no_progress,
        models=args.models,
    )
    return 0
