"""``vtr demo``: the main job end to end on the synthetic benchmark (data, training, evaluation, search index)."""

from __future__ import annotations

import argparse

from vtr.cli.common import add_overrides_argument, add_progress_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="make the synthetic benchmark, train two models, evaluate and index it (about 70 minutes on 2 CPU cores)",
        description="Make the synthetic benchmark (DIR/data), train the dual alignment model with L1+L2+L3 twice "
        "(DIR/run, training seed 0; DIR/run-2, seed 1, with the stem normalisation that keeps an object's colour, "
        "model.video.stem_norm=layer), evaluate the two together on the test split (DIR/metrics.json), answer three "
        "example queries, index the test videos with both (DIR/index) for vtr search and vtr serve, and search that "
        "index with every test caption (DIR/search_check.json). --models 1 trains DIR/run alone in half the time. "
        "Finished stages are reused on a second run.",
    )
    parser.add_argument("--out", default="vtr-demo", help="output folder (default: ./vtr-demo)")
    parser.add_argument("--videos", type=int, default=2000, help="synthetic clips to make (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data set")
    parser.add_argument(
        "--models",
        type=int,
        default=2,
        help="models to train and search with together (default 2; training seeds train.seed + 0, 1, ..., every "
        "second one with the other stem normalisation; 1 halves the time but misses more test captions: "
        "benchmarks/RESULTS.md, 'Two stems')",
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
