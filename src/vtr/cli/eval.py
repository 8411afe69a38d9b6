"""``vtr eval``: evaluate a trained run on a data set split with the field's metrics."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from vtr.cli.common import add_postprocess_arguments, add_progress_argument, postprocess_options

if TYPE_CHECKING:
    from vtr.evaluate.rerank_options import RerankOptions


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a trained run (R@1/5/10, MdR, MnR)",
        description="Encode every video of the split once and every caption (each caption is a query), score by "
        "cosine similarity of the retrieval embeddings, and report text-to-video and video-to-text metrics.",
    )
    parser.add_argument("run", help="a run folder written by vtr train")
    parser.add_argument("--data", help="the data set folder (default: the run's data.root)")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which weights (default: best)")
    parser.add_argument(
        "--v2t",
        default="best",
        choices=["best", "maxpool"],
        help="video-to-text ranking: best rank of any own caption (default), or CLIP4Clip's max-pool",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="videos per forward pass")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--save-sim",
        metavar="DIR",
        help="also write sim.npy and query_video.npy (for vtr metrics), and bank_sim.npy with --postprocess qbnorm",
    )
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    postprocess = add_postprocess_arguments(parser)
    postprocess.add_argument(
        "--bank-split",
        default="train",
        metavar="SPLIT",
        help="QB-Norm's query bank: the captions of this split, encoded with the same model (default: train)",
    )
    _add_rerank_arguments(parser)
    add_progress_argument(parser)
    parser.set_defaults(func=run)


def _add_rerank_arguments(parser: argparse.ArgumentParser) -> None:
    from vtr.evaluate.rerank_options import RERANK_WEIGHT

    group = parser.add_argument_group(
        "re-ranking",
        "each query's best K videos scored again by the run's fine-grained heads (noun, verb, fcanet: cross-modal "
        "encoders), reported as 'rerank' in the 'postprocessed' section; the plain metrics are unchanged. Each query "
        "is answered on its own, as a search would.",
    )
    group.add_argument(
        "--rerank", type=int, default=0, metavar="K", help="re-rank each query's K best videos (default 0: off)"
    )
    group.add_argument(
        "--rerank-weight",
        type=float,
        default=RERANK_WEIGHT,
        metavar="W",
        help=f"weight of each head's score against the global similarity (default {RERANK_WEIGHT})",
    )
    group.add_argument(
        "--rerank-heads",
        metavar="NAMES",
        help="comma-separated heads that score (default: every head of the run that can)",
    )


def _rerank_options(args: argparse.Namespace) -> RerankOptions | None:
    from vtr.evaluate.rerank_options import RerankOptions

    if args.rerank == 0:
        return None
    heads = None if args.rerank_heads is None else tuple(h.strip() for h in args.rerank_heads.split(",") if h.strip())
    return RerankOptions(depth=args.rerank, weight=args.rerank_weight, heads=heads)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from vtr.evaluate.report import format_metrics_table
    from vtr.evaluate.runner import evaluate_run

    metrics, encoded = evaluate_run(
        args.run,
        data_root=args.data,
        split=args.split,
        checkpoint=args.checkpoint,
        v2t=args.v2t,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.no_progress,
        postprocess=args.postprocess,
        bank_split=args.bank_split,
        postprocess_options=postprocess_options(args),
        rerank=_rerank_options(args),
    )
    if args.save_sim:
        out = Path(args.save_sim)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / "sim.npy", encoded.similarity())
        np.save(out / "query_video.npy", encoded.query_video)
        if encoded.bank is not None:
            np.save(out / "bank_sim.npy", encoded.bank_similarity())
    if args.json:
        print(json.dumps(metrics))
    else:
        print(format_metrics_table(metrics))
        for failure in encoded.failures:
            print(f"warning: {failure}")
    return 0
