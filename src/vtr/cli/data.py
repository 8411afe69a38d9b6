"""``vtr data``: check a data set folder (``vtr data check``) or generate the synthetic benchmark (``synth``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from vtr.data.synth import SynthSummary


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vtr data`` and its subcommands ``check`` and ``synth``."""
    parser = subparsers.add_parser(
        "data",
        help="check a data set folder, or generate the synthetic benchmark",
        description="Data sets: a folder with annotations.jsonl, one JSON line per video "
        '({"video": "videos/a.mp4", "captions": ["..."], "split": "train|val|test", "meta": {}}).',
    )
    parser.set_defaults(func=lambda args: _print_help(parser))
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    check = commands.add_parser(
        "check",
        help="report missing or undecodable videos, bad annotation lines, empty or duplicate captions",
        description="Check a data set folder. Exits 1 when there is any error (each bad file is named); "
        "warnings (a video without captions, a very short video, a caption twice) do not fail.",
    )
    check.add_argument("dir", metavar="DIR", help="the data set folder (holding annotations.jsonl)")
    check.add_argument("--json", action="store_true", help="print a machine-readable report on stdout")
    check.add_argument("--no-decode", action="store_true", help="only check that files exist and are not empty")
    check.add_argument("--workers", type=int, default=None, help="threads decoding in parallel (default: up to 4)")
    check.add_argument(
        "--min-duration", type=float, default=None, metavar="SECONDS", help="warn about videos shorter (default 1)"
    )
    check.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    check.set_defaults(func=_run_check)

    synth = commands.add_parser(
        "synth",
        help="generate the synthetic captioned-video benchmark (MP4 files + annotations.jsonl)",
        description="Generate the synthetic benchmark: shapes with colours, sizes and actions on scenes, several "
        "captions per clip, hard negatives by construction; deterministic from --seed.",
    )
    synth.add_argument("--out", required=True, metavar="DIR", help="output folder (videos/ and annotations.jsonl)")
    synth.add_argument("--videos", type=int, default=1000, metavar="N", help="number of clips (default 1000)")
    synth.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    synth.add_argument("--frames", type=int, default=16, metavar="F", help="frames per clip (default 16)")
    synth.add_argument("--fps", type=int, default=8, metavar="R", help="frames per second (default 8)")
    synth.add_argument("--size", type=int, default=64, metavar="P", help="frame side in pixels (default 64)")
    synth.add_argument(
        "--holdout-compositions",
        action="store_true",
        help="keep some (shape, action) pairs out of train; they appear in val/test only",
    )
    synth.add_argument("--workers", type=int, default=None, metavar="W", help="worker processes (default: all CPUs)")
    synth.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    synth.set_defaults(func=_run_synth)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _run_check(args: argparse.Namespace) -> int:
    from vtr.data.check import DEFAULT_MIN_DURATION, check_dataset
    from vtr.errors import VtrError

    try:
        report = check_dataset(
            args.dir,
            decode=not args.no_decode,
            min_duration=DEFAULT_MIN_DURATION if args.min_duration is None else args.min_duration,
            workers=args.workers,
            progress=not args.no_progress,
        )
    except VtrError as error:
        if args.json:  # a machine reading stdout still gets JSON; the error line goes to stderr as usual
            print(json.dumps({"ok": False, "error": str(error)}))
        raise
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_text())
    return 0 if report.ok else 1


def _run_synth(args: argparse.Namespace) -> int:
    from vtr.errors import ConfigError

    for name in ("videos", "frames", "fps", "size"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be a positive number, got {getattr(args, name)}")
    from vtr.data.synth import generate_dataset

    summary = generate_dataset(
        args.out,
        num_videos=args.videos,
        seed=args.seed,
        num_frames=args.frames,
        fps=args.fps,
        size=args.size,
        holdout_compositions=args.holdout_compositions,
        workers=args.workers,
        progress=not args.no_progress,
    )
    print(_describe_summary(summary))
    return 0


def _describe_summary(summary: SynthSummary) -> str:
    """One paragraph: what was written where, split sizes, held-out pairs, time, and what to do next."""
    splits = ", ".join(f"{name} {count}" for name, count in summary.splits.items())
    text = (
        f"Wrote {summary.num_videos} clips ({summary.num_frames} frames at {summary.size}x{summary.size} pixels, "
        f"{summary.fps} fps, seed {summary.seed}) with {summary.num_captions} captions to {summary.out_dir} "
        f"in {summary.elapsed_s:.1f} s; splits: {splits}."
    )
    if summary.reused_videos:
        text += f" {summary.reused_videos} clips complete from an earlier run were kept."
    if summary.holdout_pairs:
        pairs = ", ".join(f"{shape} + {action}" for shape, action in summary.holdout_pairs)
        text += f" Held out of train (val/test only): {pairs}."
    return text + f" Annotations: {summary.annotations}; check them with `vtr data check {summary.out_dir}`."


if __name__ == "__main__":  # pragma: no cover
    from vtr.cli import main

    sys.exit(main(["data", *sys.argv[1:]]))
