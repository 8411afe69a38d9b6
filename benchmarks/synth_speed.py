"""Benchmark the synthetic benchmark generator: seconds to make N clips, and where one clip's time goes.

Times :func:`vtr.data.synth.generate_dataset` end to end (planning, rendering, H.264 encoding in a worker pool,
annotations) into a fresh temporary folder, then splits one worker's time per clip into planning, rendering
(numpy) and encoding (PyAV, libx264) over a sample of clips in this process.

Run: ``python benchmarks/synth_speed.py [--videos 1000] [--frames 16] [--size 64] [--workers W] [--repeats 1]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from vtr.data.synth import generate_dataset, render_clip
from vtr.data.synth.encode import write_mp4
from vtr.data.synth.plan import plan_dataset


def _per_clip(videos: int, frames: int, size: int, sample: int) -> dict[str, float]:
    """Milliseconds per clip for planning (whole data set / videos), rendering and encoding (over ``sample``)."""
    start = time.perf_counter()
    plan = plan_dataset(videos, seed=0, num_frames=frames, fps=8, size=size, holdout_compositions=False)
    plan_ms = (time.perf_counter() - start) * 1000 / videos
    metas = [record["meta"] for record in plan.records[:sample]]
    start = time.perf_counter()
    clips = [render_clip(meta) for meta in metas]
    render_ms = (time.perf_counter() - start) * 1000 / len(metas)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        for i, clip in enumerate(clips):
            write_mp4(Path(folder) / f"{i}.mp4", clip, 8)
        encode_ms = (time.perf_counter() - start) * 1000 / len(clips)
    return {"plan": plan_ms, "render": render_ms, "encode": encode_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all CPUs)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--sample", type=int, default=100, help="clips timed one by one for the breakdown")
    args = parser.parse_args()

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {platform.processor() or platform.machine()}, {cpus} CPUs; python {platform.python_version()}")
    print(f"data set: {args.videos} clips x {args.frames} frames at {args.size}x{args.size}, workers={args.workers}")
    seconds = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            summary = generate_dataset(
                Path(folder) / "synth",
                num_videos=args.videos,
                num_frames=args.frames,
                size=args.size,
                workers=args.workers,
                progress=False,
            )
            size_mb = sum(p.stat().st_size for p in (Path(folder) / "synth").rglob("*") if p.is_file()) / 2**20
        seconds.append(summary.elapsed_s)
    best = min(seconds)
    print(
        f"generate_dataset: {best:.1f} s (best of {len(seconds)}; median {statistics.median(seconds):.1f} s), "
        f"{args.videos / best:.0f} clips/s, {size_mb:.1f} MiB on disk"
    )
    parts = _per_clip(args.videos, args.frames, args.size, min(args.sample, args.videos))
    print("one process, ms per clip: " + ", ".join(f"{name} {ms:.1f}" for name, ms in parts.items()))


if __name__ == "__main__":
    main()
