"""``vtr metrics``: retrieval metrics (R@1/5/10, MdR, MnR, both directions) of a saved similarity matrix."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vtr.cli.common import add_postprocess_arguments, postprocess_options
from vtr.errors import ConfigError, VtrError
from vtr.evaluate.metrics import DEFAULT_CHUNK_SIZE, V2T_MODES, mean_similarity, retrieval_metrics
from vtr.evaluate.postprocess_report import postprocessed_metrics
from vtr.evaluate.report import format_metrics_table
from vtr.fileio import atomic_write_json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``metrics`` subcommand."""
    parser = subparsers.add_parser(
        "metrics",
        help="retrieval metrics of a similarity matrix (.npy)",
        description=(
            "Text-to-video and video-to-text R@1, R@5, R@10 (percent), median and mean rank (1-based) of a "
            "similarity matrix [n_queries, n_videos] saved with numpy.save. A tie counts in favour of the "
            "correct item: rank = 1 + the number of items scoring strictly higher."
        ),
    )
    parser.add_argument(
        "--sim",
        required=True,
        type=Path,
        action="append",
        metavar="SIM.npy",
        help="similarity matrix, rows = queries; given several times, their mean is scored (an ensemble of models "
        "evaluated on the same queries and videos in the same order, e.g. each model's vtr eval --save-sim)",
    )
    parser.add_argument(
        "--query-video",
        type=Path,
        metavar="Q2V.npy",
        help="integer video index (column) of each query; default: query i belongs to video i",
    )
    parser.add_argument(
        "--v2t",
        choices=V2T_MODES,
        default="best",
        help="video-to-text: best rank among a video's captions (default), or CLIP4Clip's max-pooling of them",
    )
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--out", type=Path, metavar="FILE.json", help="also write the metrics as JSON to this file")
    parser.add_argument(
        "--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="rows compared at once (bounds memory)"
    )
    postprocess = add_postprocess_arguments(parser)
    postprocess.add_argument(
        "--bank-sim",
        type=Path,
        action="append",
        metavar="BANK.npy",
        help="QB-Norm's query bank: similarities [n_bank, n_videos] of bank queries (e.g. training captions) to the "
        "same videos, in the same column order (vtr eval --save-sim writes bank_sim.npy); with several --sim, one "
        "per --sim in the same order (their mean is the ensemble's bank)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the arrays, compute the metrics (and any post-processed ones), print them."""
    if "qbnorm" in args.postprocess and args.bank_sim is None:
        raise ConfigError("--postprocess qbnorm needs the query bank's similarities: --bank-sim BANK.npy")
    if args.bank_sim is not None and "qbnorm" not in args.postprocess:
        raise ConfigError("--bank-sim is only used by --postprocess qbnorm")
    if args.bank_sim is not None and len(args.bank_sim) != len(args.sim):
        raise ConfigError(
            f"give one --bank-sim per --sim, in the same order: {len(args.sim)} --sim, {len(args.bank_sim)} --bank-sim"
        )
    # Memory-mapped: a 20,000 x 20,000 matrix is read chunk by chunk, never copied whole (several are averaged into
    # one float32 matrix in memory).
    sim = _mean_of(args.sim, "similarity matrix", args.chunk_size)
    query_video = _load_npy(args.query_video, "query-to-video array", mmap=False) if args.query_video else None
    metrics = retrieval_metrics(sim, query_video, v2t=args.v2t, chunk_size=args.chunk_size)
    if args.postprocess:
        bank_sim, bank_name = None, "queries"
        if args.bank_sim:
            bank_sim = _mean_of(args.bank_sim, "query bank similarity matrix", args.chunk_size)
            bank_name = f"queries from {args.bank_sim[0].name}"
            if len(args.bank_sim) > 1:
                bank_name = f"queries from the mean of {', '.join(str(path) for path in args.bank_sim)}"
        metrics["postprocessed"] = postprocessed_metrics(
            sim,
            query_video,
            args.postprocess,
            v2t=args.v2t,
            bank_sim=bank_sim,
            bank_name=bank_name,
            options=postprocess_options(args),
        )
    if args.out:
        atomic_write_json(args.out, metrics)
    print(json.dumps(metrics, indent=2) if args.json else format_metrics_table(metrics))
    return 0


def _mean_of(paths: list[Path], what: str, chunk_size: int) -> np.ndarray:
    """One matrix as saved, or the mean of several (a score-level ensemble), memory-mapped where read whole."""
    arrays = [_load_npy(path, what, mmap=True) for path in paths]
    return arrays[0] if len(arrays) == 1 else mean_similarity(arrays, chunk_size=chunk_size)


def _load_npy(path: Path, what: str, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise VtrError(f"{what} file not found: {path}")
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise VtrError(f"cannot read {what} {path} as a .npy array (save it with numpy.save): {error}") from error
    if not isinstance(array, np.ndarray):  # an .npz archive loads as a mapping of arrays
        array.close()
        raise VtrError(f"{what} {path} is an .npz archive; save the one array with numpy.save (.npy)")
    return array
