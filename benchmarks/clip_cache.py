"""Benchmark the decoded-clip cache (``data.decoded_cache``): milliseconds to sample a training clip, and the
seconds of a training epoch, with and without it.

1. Sampling: ``--clips`` training clips of a data set folder, ``--frames`` frames each at random offsets, through
   :func:`vtr.video.sample_frames` (the file is opened, seeked and decoded every time) and through
   :class:`vtr.data.clip_cache.DecodedClipCache` (the first pass decodes whole clips and writes the entries; the
   second reads them), in this process. The cache folder is a fresh temporary one.
2. With ``--epochs N``: ``vtr train`` of ``--config`` on the folder for N epochs, once decoding each epoch and
   once through the cache (its entries made by the first epoch), and each epoch's seconds from ``log.jsonl``
   (training steps only: validation is left out with ``data.val_split`` empty). On a small CPU the loader
   worker that decodes competes with the training step for the cores; this measures what that costs.

Run: ``python benchmarks/clip_cache.py --data DIR [--clips 256] [--frames 8] [--epochs 2]
[--config synthetic-dual-align] [--set KEY=VALUE ...]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vtr.data import read_annotations
from vtr.data.clip_cache import DecodedClipCache
from vtr.video import sample_frames


def sampling(data: Path, clips: int, frames: int) -> dict[str, float]:
    """ms per clip: from the file, through a cold cache (decode whole + write), through a warm cache."""
    records = read_annotations(data, split="train")[:clips]
    paths = [record.path for record in records]
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        cache = DecodedClipCache(folder)
        for name, sample in (
            ("file", sample_frames),
            ("cache, first read", cache.sample),
            ("cache, later reads", cache.sample),
        ):
            started = time.perf_counter()
            for index, path in enumerate(paths):
                sample(path, frames, mode="random", rng=random.Random(index))
            results[name] = (time.perf_counter() - started) / len(paths) * 1000
        results["entry KiB"] = sum(p.stat().st_size for p in Path(folder).glob("*.npz")) / len(paths) / 1024
    return results


def epoch_seconds(data: Path, config: str, epochs: int, overrides: list[str], cached: bool) -> list[float]:
    """Seconds of each training epoch of ``vtr train`` (no validation)."""
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        settings = [f"data.root={data}", "data.val_split=", f"train.epochs={epochs}", *overrides]
        if cached:
            # A copy of the annotations beside links to the videos: the cache goes in the copy's .vtr_cache.
            copy = Path(folder) / "data"
            copy.mkdir()
            shutil.copy(data / "annotations.jsonl", copy / "annotations.jsonl")
            (copy / "videos").symlink_to((data / "videos").resolve())
            settings = [f"data.root={copy}", "data.decoded_cache=true", *settings[1:]]
        command = [sys.executable, "-m", "vtr", "train", "--config", config, "--out", str(run), "--no-progress"]
        for setting in settings:
            command += ["--set", setting]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        return [record["seconds"] for record in log if record.get("event") == "epoch"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a data set folder (e.g. vtr-demo/data)")
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=0, help="also time this many training epochs each way")
    parser.add_argument("--config", default="synthetic-dual-align")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    print(f"# {platform.node()}: {os.cpu_count()} CPUs, torch {torch.__version__}, {args.data}")
    for name, value in sampling(args.data, args.clips, args.frames).items():
        unit = "" if "KiB" in name else " ms a clip"
        print(f"sample {args.frames} frames, {name}: {value:.2f}{unit}")
    if args.epochs:
        for cached in (False, True):
            seconds = epoch_seconds(args.data, args.config, args.epochs, args.overrides, cached)
            label = "decoded cache" if cached else "decode each epoch"
            print(f"train epochs, {label}: " + ", ".join(f"{s:.1f} s" for s in seconds))


if __name__ == "__main__":
    main()
