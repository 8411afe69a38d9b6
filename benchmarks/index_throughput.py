"""Indexing throughput: videos per second, where the time goes (decode, encode, write), against a baseline that
decodes every frame.

Two collections are made in a temporary folder:

* ``short``: clips of the synthetic benchmark (``vtr.data.synth``; 2 s, 64x64 px, 8 fps): many small files;
* ``long``: a few 60 s videos at 640x360, 25 fps, H.264 with a keyframe every 10 s (a moving pattern written
  with PyAV): few files, each with many moment windows.

Each is indexed by :func:`vtr.index.build_index` (seek-based sampling of the whole-video clip and every 4 s
moment window, decoding threads, batched encoding, one SQLite commit per batch). The baseline decodes every
frame of every file with PyAV (what an indexer that reads videos front to back pays before it can encode
anything); its encode and write costs are the same as ours, so it is reported as
``decode-all time + our encode + our write``.

    python benchmarks/index_throughput.py                 # the demo model (random weights: same cost)
    python benchmarks/index_throughput.py --model RUN_DIR --short 200 --long 3
    python benchmarks/index_throughput.py --model RUN_DIR --model RUN_DIR2   # two models together
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from vtr.config import load_config
from vtr.index.builder import IndexOptions, build_index
from vtr.index.encoders import load_encoder


def write_long_video(path: Path, seconds: int = 60, fps: int = 25, size: tuple[int, int] = (640, 360)) -> Path:
    """A moving colour pattern, H.264, keyframe every 10 s (a common encoder setting for long videos)."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(10 * fps)}
        for i in range(seconds * fps):
            phase = i / fps
            image = np.stack(
                [
                    (127 + 127 * np.sin(xx / 40 + phase)),
                    (127 + 127 * np.sin(yy / 30 - 0.7 * phase)),
                    (127 + 127 * np.sin((xx + yy) / 50 + 0.3 * phase * (1 + (i // (fps * 7)) % 3))),
                ],
                axis=-1,
            ).astype(np.uint8)  # [H, W, 3]
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_every_frame(paths: list[Path]) -> tuple[float, int]:
    """The baseline's decoding: every frame of every file to RGB; returns (seconds, frames)."""
    started = time.perf_counter()
    frames = 0
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                frame.to_ndarray(format="rgb24")
                frames += 1
    return time.perf_counter() - started, frames


def video_seconds(paths: list[Path]) -> float:
    """Total duration of the files, seconds."""
    from vtr.video import probe

    return sum(probe(p).duration for p in paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        help="vtr run folder or CLIP hub id / folder (default: the demo model, random); twice or more: the models "
        "together (vtr.index.ensemble)",
    )
    parser.add_argument("--short", type=int, default=100, help="number of short synthetic clips")
    parser.add_argument("--long", type=int, default=3, help="number of 60 s videos")
    parser.add_argument("--workers", type=int, default=2, help="decoding threads")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workdir", type=Path, help="keep the collections here (default: a temp folder)")
    args = parser.parse_args()

    print(
        f"# {platform.node()} {platform.machine()}, torch threads {torch.get_num_threads()}, "
        f"decode threads {args.workers}, batch {args.batch_size}, {time.strftime('%Y-%m-%d')}"
    )
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="vtr-index-bench-"))
    model = args.model[0] if args.model and len(args.model) == 1 else args.model
    if model is None:
        from vtr.models import build_model, save_model

        model = workdir / "model"
        if not (model / "best.safetensors").is_file():
            save_model(build_model(load_config("synthetic-dual-align")), model, "best")
    encoder = load_encoder(model)
    print(f"# model {encoder.model_id}: {encoder.num_frames} frames of {encoder.image_size} px per clip")

    collections: dict[str, Path] = {}
    if args.short:
        from vtr.data.synth import generate_dataset

        short = workdir / "short"
        if not (short / "annotations.jsonl").is_file():
            generate_dataset(short, num_videos=args.short, seed=0, progress=False)
        collections["short"] = short / "videos"
    if args.long:
        long = workdir / "long"
        long.mkdir(parents=True, exist_ok=True)
        for i in range(args.long):
            if not (long / f"long{i}.mp4").is_file():
                write_long_video(long / f"long{i}.mp4")
        collections["long"] = long

    print(
        f"{'set':>5} {'files':>5} {'video s':>8} {'videos/s':>8} {'video s/s':>9} {'decode':>7} {'encode':>7} "
        f"{'write':>6} {'wait':>6} {'total':>6} | {'decode-all':>10} {'baseline videos/s':>17} {'speed-up':>8}"
    )
    for name, folder in collections.items():
        paths = sorted(p for p in folder.iterdir() if p.suffix == ".mp4")
        seconds_of_video = video_seconds(paths)
        index_dir = workdir / f"index-{name}"
        shutil.rmtree(index_dir, ignore_errors=True)
        options = IndexOptions(batch_size=args.batch_size, workers=args.workers)
        report = build_index(folder, index_dir, encoder, options=options, progress=False)
        t = report.timings
        decode_all, _frames = decode_every_frame(paths)
        baseline = decode_all + t["encode"] + t["write"]
        print(
            f"{name:>5} {len(paths):>5} {seconds_of_video:>8.0f} {len(paths) / t['total']:>8.2f} "
            f"{seconds_of_video / t['total']:>9.1f} {t['decode']:>7.2f} {t['encode']:>7.2f} {t['write']:>6.2f} "
            f"{t['wait']:>6.2f} {t['total']:>6.2f} | {decode_all:>10.2f} {len(paths) / baseline:>17.2f} "
            f"{baseline / t['total']:>7.1f}x",
            flush=True,
        )
    print("# decode: seconds summed over decoding threads; wait: the encoder idle, waiting for decoded clips;")
    print("# total: wall time of the run. Baseline: every frame decoded (one pass per file) + the same encode/write.")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
