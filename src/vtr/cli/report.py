"""``vtr report RUN --out DIR``: an HTML page with a run's config, metrics, training curves, retrieval cases and
cross-attention maps."""

from __future__ import annotations

import argparse

from vtr.cli.common import add_progress_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="an HTML report of a run: metrics, curves, retrieval cases, attention maps",
        description="Evaluate the run on a split (the numbers of vtr eval) and write DIR/index.html with the run's "
        "config, the metrics, its training curves, a grid of retrieval successes and failures, and the "
        "cross-attention maps of a query or two. The page loads nothing from the network: open it from disk.",
    )
    parser.add_argument("run", help="a run folder written by vtr train")
    parser.add_argument("--out", required=True, metavar="DIR", help="the report folder (index.html and PNGs)")
    parser.add_argument("--data", help="the data set folder (default: the run's data.root)")
    parser.add_argument("--split", default="test", help="split to evaluate and draw cases from (default: test)")
    parser.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which weights (default: best)")
    parser.add_argument("--top-k", type=int, default=5, metavar="K", help="videos shown per query (default 5)")
    parser.add_argument(
        "--cases", type=int, default=3, metavar="N", help="successes and failures shown (default 3 each)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    add_progress_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vtr.errors import VtrError
    from vtr.viz.report import write_report

    if args.top_k < 1 or args.cases < 0:
        raise VtrError("--top-k must be at least 1 and --cases at least 0")
    path = write_report(
        args.run,
        args.out,
        data_root=args.data,
        split=args.split,
        checkpoint=args.checkpoint,
        device=args.device,
        top_k=args.top_k,
        cases=args.cases,
        progress=not args.no_progress,
    )
    print(f"wrote {path}")
    return 0
