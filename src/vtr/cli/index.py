"""``vtr index DIR --model MODEL --db INDEX``: build or update a search index over a folder of videos."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the index pulls in torch and FAISS: import it when the command runs, not for `vtr --help`
    from vtr.index.builder import IndexReport

# Failed files listed one per line in the summary; the rest are counted (all are in the JSON report).
_MAX_LISTED = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``index`` subcommand."""
    parser = subparsers.add_parser(
        "index",
        help="index a folder of videos for text search",
        description=(
            "Scan DIR recursively for video files, embed each whole video and its moment windows with MODEL, and "
            "store them in the index folder INDEX (SQLite + FAISS + thumbnails). A second run encodes only new "
            "or changed files; a run that is interrupted can simply be started again. Files that cannot be "
            "decoded are recorded and listed, and never stop the run."
        ),
    )
    parser.add_argument("dir", type=Path, metavar="DIR", help="folder of videos (searched recursively)")
    parser.add_argument(
        "--model",
        action="append",
        help="a trained vtr run folder, or a Hugging Face CLIP / X-CLIP hub id or folder (default: the model the "
        "index was built with); given twice or more, the index holds the models' joined embeddings and ranks by "
        "their mean similarity",
    )
    parser.add_argument("--db", required=True, type=Path, metavar="INDEX", help="index folder (created if missing)")
    parser.add_argument("--prune", action="store_true", help="remove entries of files that no longer exist")
    parser.add_argument(
        "--rebuild", action="store_true", help="start the index afresh (to change the model or the moment windows)"
    )
    parser.add_argument("--retry-failed", action="store_true", help="retry files that failed before, even unchanged")
    parser.add_argument("--window", type=float, help="moment window in seconds (new index: 4)")
    parser.add_argument("--stride", type=float, help="seconds between moment starts (new index: 2, half overlap)")
    parser.add_argument("--no-moments", action="store_true", help="one embedding per video, no moment windows")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per model call (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="decoding threads (default 2)")
    parser.add_argument("--num-frames", type=int, help="frames per clip for Hugging Face models (default 8)")
    parser.add_argument(
        "--ann-threshold",
        type=int,
        help="stored embeddings above which search uses HNSW instead of exact (default 250,000: see "
        "benchmarks/RESULTS.md)",
    )
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, auto (default cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the run's report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build or update the index, then print what was done."""
    from vtr.index.builder import IndexOptions, build_index
    from vtr.index.vectors import ANN_THRESHOLD

    options = IndexOptions(
        window=args.window,
        stride=args.stride,
        moments=not args.no_moments,
        batch_size=args.batch_size,
        workers=args.workers,
        num_frames=args.num_frames,
        ann_threshold=ANN_THRESHOLD if args.ann_threshold is None else args.ann_threshold,
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)  # stop as for Ctrl-C: roll back, close, exit 130
    try:
        report = build_index(
            args.dir,
            args.db,
            model_argument(args.model),
            options=options,
            prune=args.prune,
            rebuild=args.rebuild,
            retry_failed=args.retry_failed,
            device=args.device,
            progress=not args.no_progress,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(json.dumps(report_dict(report), indent=2) if args.json else format_report(report))
    return 0


def model_argument(models: list[str] | None) -> str | list[str] | None:
    """What a repeatable ``--model`` option gives: None, one model, or the list of an ensemble."""
    if not models:
        return None
    return models[0] if len(models) == 1 else models


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def report_dict(report: IndexReport) -> dict:
    """The report as a JSON-ready dict."""
    return {
        "index": str(report.index_dir),
        "scanned": report.scanned,
        "indexed": report.indexed,
        "unchanged": report.unchanged,
        "updated": report.updated,
        "renamed": [{"from": old, "to": new} for old, new in report.renamed],
        "failed": [{"path": path, "error": error} for path, error in report.failed],
        "skipped_failed": [{"path": path, "error": error} for path, error in report.skipped_failed],
        "pruned": report.pruned,
        "missing": report.missing,
        "videos": report.videos,
        "vectors": report.vectors,
        "timings": {key: round(value, 4) for key, value in report.timings.items()},
    }


def format_report(report: IndexReport) -> str:
    """A short human summary: counts, then the failed files."""
    seconds = report.timings.get("total", 0.0)
    lines = [
        (
            f"indexed {len(report.indexed)} of {report.scanned} video files in {seconds:.1f} s: "
            f"{report.unchanged} unchanged, {report.updated} updated, {len(report.renamed)} renamed, "
            f"{len(report.failed)} failed, {len(report.skipped_failed)} skipped (failed before)"
        ),
        f"index {report.index_dir}: {report.videos} videos, {report.vectors} embeddings",
    ]
    if report.pruned:
        lines.append(f"pruned {len(report.pruned)} entries whose files are gone")
    if report.missing:
        lines.append(f"{len(report.missing)} indexed files are gone (run with --prune to remove them)")
    failures = report.failed + report.skipped_failed
    if failures:
        lines.append(f"{len(failures)} files could not be indexed:")
        lines += [f"  {path}: {error}" for path, error in failures[:_MAX_LISTED]]
        if len(failures) > _MAX_LISTED:
            lines.append(f"  ... and {len(failures) - _MAX_LISTED} more (see --json)")
    return "\n".join(lines)
