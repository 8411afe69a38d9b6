"""Benchmark frame sampling: seconds to sample 12 frames from a 30 s 360p and a 10 min 720p video.

Compares three ways to get the frames shown at the middles of 12 equal segments:
- ``seek``: :func:`vtr.video.sample_frames` (seek to the key frame before a target, decode forward to it,
  decode on instead of seeking when no key frame lies in between);
- ``keyframe``: ``sample_frames(..., keyframes=True)`` (the key frame at or before each target, decoded alone);
- ``decode all``: decode every frame in order and keep the ones shown at the targets (the naive loader).

The videos are made with PyAV (H.264, ultrafast preset, a key frame every ``--gop`` seconds, smooth moving
content) and cached in ``--cache-dir``: the 10-minute 720p encode takes minutes. Their content is easier to
decode than camera footage, so every figure here is a lower bound; the ratios are what carries over.

With ``--policies``, also compares the rule that decides between seeking and decoding on (seek only when a
key frame lies between the current position and the target) with always seeking and never seeking, for
12, 32 and 64 frames from the 30 s video with key frames every 2 s and every 5 s (CPU seconds and frames
decoded): the measurement behind the rule.

Run: ``python benchmarks/decode.py [--cache-dir DIR] [--gop 2] [--repeats 3] [--frames 12] [--skip-long]
[--policies]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import av
import numpy as np
import torch

from vtr.fileio import atomic_write
from vtr.video import decoder, probe, sample_frames, segment_times


@dataclass(frozen=True)
class Spec:
    """A benchmark video."""

    name: str
    seconds: int
    width: int
    height: int
    fps: int = 30


SPECS = (Spec("30s-360p", 30, 640, 360), Spec("10min-720p", 600, 1280, 720))


def make_video(path: Path, spec: Spec, gop_seconds: float) -> None:
    """Encode ``spec`` to ``path`` (atomically): a slowly panned texture with a moving bright square."""
    width, height, fps = spec.width, spec.height, spec.fps
    # Built in YUV 4:2:0 directly: no RGB conversion per frame, so that encoding 18,000 frames takes minutes.
    # A textured landscape wider than the frame, panned across it: key frames cost what camera key frames
    # cost, while the frames between them are cheap to encode (pure motion), as for a slow camera pan.
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (height // 8, width // 2), dtype=np.uint8).repeat(8, 0).repeat(8, 1)  # [H, 4W]
    ramp = np.arange(4 * width) * 160 // (4 * width)
    wide_luma = (noise // 3 + ramp[None, :]).clip(16, 235).astype(np.uint8)
    chroma = np.full((height // 2, width), 128, np.uint8)  # U and V planes side by side as rows: [H/2, W]
    square = height // 6

    def write(tmp: Path) -> None:
        with av.open(str(tmp), "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            keyint = max(1, round(gop_seconds * fps))
            stream.options = {"preset": "ultrafast", "x264-params": f"keyint={keyint}:min-keyint={keyint}"}
            for index in range(spec.seconds * fps):
                shift = (index * 2) % (3 * width)
                luma = wide_luma[:, shift : shift + width].copy()
                x = (index * 3) % (width - square)
                y = int((height - square) * (0.5 + 0.4 * np.sin(index / fps)))
                luma[y : y + square, x : x + square] = 235
                planes = np.concatenate([luma, chroma])  # [H * 3 / 2, W]: Y, then U and V
                frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
                frame.pts = index
                out.mux(stream.encode(frame))
            out.mux(stream.encode())

    atomic_write(path, write)


def decode_all(path: Path, num_frames: int) -> tuple[torch.Tensor, int]:
    """The naive loader: decode every frame in order, keep the ones shown at the segment middles."""
    info = probe(path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start, base = stream.start_time or 0, stream.time_base
        targets = [start + int(t / base) for t in segment_times(0.0, info.duration, num_frames)]
        picks, previous, decoded, next_target = [], None, 0, 0
        for frame in container.decode(stream):
            decoded += 1
            while next_target < len(targets) and frame.pts > targets[next_target]:
                picks.append(previous if previous is not None else frame)  # the frame shown at the target
                next_target += 1
            previous = frame
        picks += [previous] * (len(targets) - next_target)
        images = np.stack([frame.to_ndarray(format="rgb24") for frame in picks])
    return torch.from_numpy(images).permute(0, 3, 1, 2), decoded


def timed(call: Callable[[], int], repeats: int) -> tuple[float, float, int]:
    """Median wall and CPU seconds of ``repeats`` calls, and what the last call returned (frames decoded).

    CPU seconds (this process) are reported beside wall seconds because the benchmark machine may be shared:
    decoding runs on one thread here, so CPU time is the cost without the wait for a free core.
    """
    walls, cpus, decoded = [], [], 0
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        decoded = call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), decoded


def bench_video(path: Path, frames: int, repeats: int, slow_baseline: bool) -> list[tuple[str, float, float, int]]:
    """``(mode, wall s, CPU s, frames decoded)`` for seek, keyframe and decode-all sampling of ``path``."""
    rows = [
        ("seek", *timed(lambda: sample_frames(path, frames).recovered_frames, repeats)),
        ("keyframe", *timed(lambda: sample_frames(path, frames, keyframes=True).recovered_frames, repeats)),
        # Decoding everything is the slow baseline: one run is enough on a long video.
        ("decode all", *timed(lambda: decode_all(path, frames)[1], 1 if slow_baseline else repeats)),
    ]
    if not slow_baseline:  # the seek-based frames are the very frames the naive loader keeps
        assert torch.equal(sample_frames(path, frames).frames, decode_all(path, frames)[0])
    return rows


def _always_seek(reader: decoder.FrameReader, target: int) -> bool:
    return not reader._eof and target > reader._position()


def _never_seek(reader: decoder.FrameReader, target: int) -> bool:
    return False


POLICIES = {"rule": decoder.FrameReader._should_seek, "always seek": _always_seek, "never seek": _never_seek}


def policy_table(cache_dir: Path, repeats: int) -> None:
    """CPU seconds / frames decoded of each seek policy (the rule is patched out of the reader for the others)."""
    spec = SPECS[0]
    print(f"\nseek policy, {spec.name}: median CPU seconds / frames decoded")
    print(f"{'key frames':<11} {'frames':>6} " + " ".join(f"{name:>17}" for name in POLICIES))
    for gop in (2.0, 5.0):
        path = cache_dir / f"{spec.name}-gop{gop:g}.mp4"
        if not path.exists():
            make_video(path, spec, gop)
        for frames in (12, 32, 64):
            cells = []
            for policy in POLICIES.values():
                with mock.patch.object(decoder.FrameReader, "_should_seek", policy):
                    _, cpu, decoded = timed(lambda: sample_frames(path, frames).recovered_frames, repeats)  # noqa: B023
                cells.append(f"{cpu:>9.3f} / {decoded:>5d}")
            print(f"{f'every {gop:g} s':<11} {frames:>6} " + " ".join(cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "vtr-bench-videos")
    parser.add_argument("--gop", type=float, default=2.0, help="seconds between key frames in the made videos")
    parser.add_argument("--frames", type=int, default=12, help="frames to sample per video")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per cell (median reported)")
    parser.add_argument("--skip-long", action="store_true", help="only the 30-second video")
    parser.add_argument("--policies", action="store_true", help="also compare seek policies")
    args = parser.parse_args(argv)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, PyAV {av.__version__}")
    print(f"{args.frames} frames per video, median of {args.repeats} runs; key frame every {args.gop:g} s\n")
    header = (
        f"{'video':<12} {'MB':>6} {'mode':<11} {'wall s':>8} {'CPU s':>8} {'frames decoded':>15} {'CPU speed-up':>13}"
    )
    print(header)
    print("-" * len(header))
    for spec in SPECS[:1] if args.skip_long else SPECS:
        path = args.cache_dir / f"{spec.name}-gop{args.gop:g}.mp4"
        if not path.exists():
            begin = time.perf_counter()
            make_video(path, spec, args.gop)
            print(f"(made {path} in {time.perf_counter() - begin:.0f} s)")
        size = path.stat().st_size / 2**20
        rows = bench_video(path, args.frames, args.repeats, slow_baseline=spec.seconds > 60)
        baseline = rows[-1][2]
        for mode, wall, cpu, decoded in rows:
            print(
                f"{spec.name:<12} {size:>6.1f} {mode:<11} {wall:>8.3f} {cpu:>8.3f} {decoded:>15d} {baseline / cpu:>12.1f}x"
            )
    if args.policies:
        policy_table(args.cache_dir, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
