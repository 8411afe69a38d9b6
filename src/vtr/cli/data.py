"""``vtr data``: check a data set folder (``check``), import MSR-VTT, MSVD, DiDeMo, ActivityNet Captions or LSMDC
from their official files (``import``), or generate the synthetic benchmark (``synth``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from vtr.data.importers import ImportSummary
    from vtr.data.synth import SynthSummary

_MSRVTT_HELP = """\
Write MSR-VTT as a vtr data set (annotations.jsonl) from its official files; the videos stay where they are.

Reads MSRVTT_data.json (or the original train_val_videodatainfo.json and test_videodatainfo.json) and, for
9k and 7k, MSRVTT_train.9k.csv or MSRVTT_train.7k.csv and MSRVTT_JSFUSION_test.csv, found in SOURCE or two
folders below it unless named. Protocols (--split):
  9k    train: the 9k CSV; test: the 1,000 "1k-A" videos of the JSFusion CSV, one sentence each (the default)
  7k    the same with the 7k CSV
  full  the official split, 6513 / 497 / 2990 videos, 20 captions each

9k and 7k have no val split, and choosing the epoch on the test set tunes on it. So val is a fixed slice of
the training CSV (--val-size videos, default 500) held out of train: those whose sha256 of "SEED:video_id" is
smallest (--val-seed, default 0). It never holds a test video, and the same files, size and seed always give
the same slice; --val-size 0 writes no val split.

When the videos folder is not inside --out, a link --out/videos to it is made so that every path stays
inside the data set folder. Videos without a file are skipped and reported (--keep-missing keeps them)."""

_MSVD_HELP = """\
Write MSVD as a vtr data set (annotations.jsonl) from the files retrieval papers use; the videos stay where
they are.

Reads train_list.txt, val_list.txt and test_list.txt (1200 / 100 / 670 video ids) and the captions from
raw-captions.pkl (a pickle of token lists, read without running any code in it) or the original
AllVideoDescriptions.txt, found in SOURCE or two folders below it unless named. Videos are <id>.avi files,
usually in YouTubeClips/. When the videos folder is not inside --out, a link --out/videos to it is made.
Videos without a file are skipped and reported (--keep-missing keeps them)."""

_DIDEMO_HELP = """\
Write DiDeMo as a vtr data set (annotations.jsonl) for paragraph-to-video retrieval; the videos stay where
they are.

Reads train_data.json, val_data.json and test_data.json (8395 / 1065 / 1004 videos), found in SOURCE or two
folders below it unless --annotations-dir names their folder. As in CLIP4Clip, the descriptions of a video
are joined in file order into one caption; a description without final punctuation gets a full stop. Each
description's segment times (5-second units, and in seconds) are kept in meta. The video id is the "video"
field without its extension; a file with that stem and any usual video extension (.mp4 preferred) counts.
When the videos folder is not inside --out, a link --out/videos to it is made. Videos without a file are
skipped and reported (--keep-missing keeps them)."""

_ACTIVITYNET_HELP = """\
Write ActivityNet Captions as a vtr data set (annotations.jsonl) for paragraph-to-video retrieval; the videos
stay where they are.

Reads train.json and the test file (--test-file: val_1.json, the field's test split, or val_2.json), found in
SOURCE or two folders below it unless --annotations-dir names their folder. Each video gets one caption, its
sentences joined in timestamp order. There is no val split unless --val-size N holds out N training videos
(those whose sha256 of "SEED:video_id" is smallest, --val-seed). Video files may be named v_<id>.mp4 or
<id>.mp4; the id written in meta keeps the v_. When the videos folder is not inside --out, a link
--out/videos to it is made. Videos without a file are skipped and reported (--keep-missing keeps them)."""

_LSMDC_HELP = """\
Write LSMDC as a vtr data set (annotations.jsonl) with the 1,000-clip test set; the videos stay where they
are.

Reads the tab-separated LSMDC16_annos_training.csv, LSMDC16_annos_val.csv and
LSMDC16_challenge_1000_publictect.csv (sic; ..._publictest.csv is accepted too), found in SOURCE or two folders
below it unless --annotations-dir names their folder. One caption a clip (a clip on several lines keeps
each of its sentences). Videos are <movie>/<clip id>.avi, found anywhere under the videos folder:
  0001_American_Beauty/0001_American_Beauty_00.00.51.926-00.00.54.129.avi
When the videos folder is not inside --out, a link --out/videos to it is made. Videos without a file are
skipped and reported (--keep-missing keeps them)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vtr data`` and its subcommands ``check``, ``import`` and ``synth``."""
    parser = subparsers.add_parser(
        "data",
        help="check a data set folder, import a public data set, or generate the synthetic benchmark",
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

    _register_import(commands)

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


def _register_import(commands: argparse._SubParsersAction) -> None:
    """``vtr data import msrvtt|msvd|didemo|activitynet|lsmdc SOURCE``."""
    parser = commands.add_parser(
        "import",
        help="write MSR-VTT, MSVD, DiDeMo, ActivityNet Captions or LSMDC as a data set folder from their "
        "official annotation files",
        description="Convert a data set's official annotation files into annotations.jsonl; videos are not copied.",
    )
    parser.set_defaults(func=lambda args: _print_help(parser))
    datasets = parser.add_subparsers(dest="dataset", metavar="DATASET")
    raw = argparse.RawDescriptionHelpFormatter  # keeps the line breaks of the descriptions

    msrvtt = datasets.add_parser(
        "msrvtt",
        help="MSR-VTT: 9k / 7k with the 1k-A test, or the full split",
        description=_MSRVTT_HELP,
        formatter_class=raw,
    )
    _add_common_import_arguments(msrvtt, "MSR-VTT")
    msrvtt.add_argument("--split", choices=("9k", "7k", "full"), default="9k", help="the protocol (default 9k)")
    msrvtt.add_argument(
        "--annotations",
        action="append",
        metavar="FILE",
        help="the official JSON file (MSRVTT_data.json); repeat for the original release's two files",
    )
    msrvtt.add_argument("--train-csv", metavar="FILE", help="the training CSV (default MSRVTT_train.9k.csv or .7k.csv)")
    msrvtt.add_argument("--test-csv", metavar="FILE", help="the 1k-A test CSV (default MSRVTT_JSFUSION_test.csv)")
    msrvtt.add_argument(
        "--val-size", type=int, metavar="N", help="9k / 7k: training videos held out as val (default 500; 0: none)"
    )
    msrvtt.add_argument(
        "--val-seed", type=int, default=0, metavar="S", help="9k / 7k: seed of the val slice (default 0)"
    )
    msrvtt.set_defaults(
        func=_run_import, options=("split", "annotations", "train_csv", "test_csv", "val_size", "val_seed")
    )

    msvd = datasets.add_parser(
        "msvd", help="MSVD: the 1200 / 100 / 670 split", description=_MSVD_HELP, formatter_class=raw
    )
    _add_common_import_arguments(msvd, "MSVD")
    msvd.add_argument("--captions", metavar="FILE", help="raw-captions.pkl or AllVideoDescriptions.txt")
    msvd.add_argument("--lists", metavar="DIR", help="the folder of train_list.txt, val_list.txt, test_list.txt")
    msvd.set_defaults(func=_run_import, options=("captions", "lists"))

    didemo = datasets.add_parser(
        "didemo",
        help="DiDeMo: paragraphs, the official train / val / test",
        description=_DIDEMO_HELP,
        formatter_class=raw,
    )
    _add_common_import_arguments(didemo, "DiDeMo")
    _add_annotations_dir_argument(didemo, "train_data.json, val_data.json, test_data.json")
    didemo.set_defaults(func=_run_import, options=("annotations_dir",))

    activitynet = datasets.add_parser(
        "activitynet",
        help="ActivityNet Captions: paragraphs, train.json and the val_1 test",
        description=_ACTIVITYNET_HELP,
        formatter_class=raw,
    )
    _add_common_import_arguments(activitynet, "ActivityNet")
    _add_annotations_dir_argument(activitynet, "train.json, val_1.json, val_2.json")
    activitynet.add_argument(
        "--test-file",
        choices=("val_1.json", "val_2.json"),
        default="val_1.json",
        help="the test split (default val_1.json)",
    )
    activitynet.add_argument(
        "--val-size", type=int, default=0, metavar="N", help="training videos held out as val (default 0: none)"
    )
    activitynet.add_argument("--val-seed", type=int, default=0, metavar="S", help="seed of the val slice (default 0)")
    activitynet.set_defaults(func=_run_import, options=("annotations_dir", "test_file", "val_size", "val_seed"))

    lsmdc = datasets.add_parser(
        "lsmdc", help="LSMDC: train / val and the 1,000-clip test", description=_LSMDC_HELP, formatter_class=raw
    )
    _add_common_import_arguments(lsmdc, "LSMDC")
    _add_annotations_dir_argument(lsmdc, "the three LSMDC16_*.csv files")
    lsmdc.set_defaults(func=_run_import, options=("annotations_dir",))


def _add_common_import_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("source", metavar="SOURCE", help=f"the folder holding {name}'s files")
    parser.add_argument("--out", metavar="DIR", help="the data set folder to write (default: SOURCE)")
    parser.add_argument(
        "--videos", metavar="DIR", help="the folder of the video files, searched recursively (default: the usual ones)"
    )
    parser.add_argument("--keep-missing", action="store_true", help="keep videos whose file is missing")
    parser.add_argument("--force", action="store_true", help="replace an existing annotations.jsonl")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")


def _add_annotations_dir_argument(parser: argparse.ArgumentParser, files: str) -> None:
    parser.add_argument("--annotations-dir", metavar="DIR", help=f"the folder of {files} (default: found under SOURCE)")


def _run_import(args: argparse.Namespace) -> int:
    """Run ``vtr.data.importers.import_<args.dataset>`` with the common flags and the data set's own
    (``args.options``, named as the function's arguments); the summary on stdout (text or JSON), what was skipped
    on stderr."""
    from vtr.data import importers
    from vtr.errors import VtrError

    run = getattr(importers, f"import_{args.dataset}")
    options = {name: getattr(args, name) for name in args.options}
    try:
        summary: ImportSummary = run(
            args.source, args.out, videos=args.videos, keep_missing=args.keep_missing, force=args.force, **options
        )
    except VtrError as error:
        if args.json:  # a machine reading stdout still gets JSON; the error line goes to stderr as usual
            print(json.dumps({"ok": False, "error": str(error)}))
        raise
    for line in summary.warnings():
        print(f"vtr: warning: {line}", file=sys.stderr)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.format_text())
    return 0


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
