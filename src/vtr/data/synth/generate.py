"""``generate_dataset``: plan the synthetic benchmark, render and encode its clips in a worker pool, and write
``annotations.jsonl`` and ``synth.json`` (atomically, at the end).

An interrupted run loses nothing finished: every MP4 appears under its name only once complete, and running
the same command again keeps those files and makes the rest.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vtr.data.synth.encode import write_mp4
from vtr.data.synth.plan import GROUP_SIZE, plan_dataset
from vtr.data.synth.render import render_clip
from vtr.data.synth.vocab import ACTIONS, COLOURS, RELATIONS, SCENES, SHAPES, SIZES
from vtr.errors import ConfigError, DataFormatError
from vtr.fileio import atomic_write_json, atomic_write_text

ANNOTATIONS_NAME = "annotations.jsonl"
SUMMARY_NAME = "synth.json"
FORMAT_VERSION = 1
MIN_SIZE = 16  # smaller frames leave the objects a few pixels wide


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate_dataset` wrote.

    Attributes:
        out_dir: the data set folder.
        annotations: its ``annotations.jsonl``.
        num_videos: clips in the data set.
        num_captions: captions over all clips.
        splits: clips per split (``train``, ``val``, ``test``).
        holdout_pairs: the (shape, action) pairs kept out of train (empty without ``holdout_compositions``).
        seed: the seed.
        num_frames: frames per clip.
        fps: frames per second.
        size: frame side in pixels.
        reused_videos: clips found complete from an earlier, interrupted run and kept.
        elapsed_s: wall-clock seconds this call took.
    """

    out_dir: Path
    annotations: Path
    num_videos: int
    num_captions: int
    splits: dict[str, int]
    holdout_pairs: tuple[tuple[str, str], ...]
    seed: int
    num_frames: int
    fps: int
    size: int
    reused_videos: int
    elapsed_s: float


def _check_arguments(num_videos: int, seed: int, num_frames: int, fps: int, size: int) -> None:
    if num_videos < 1:
        raise ConfigError(f"the number of videos must be at least 1, got {num_videos}")
    if seed < 0:
        raise ConfigError(f"the seed must be a non-negative integer, got {seed}")
    if num_frames < 2:
        raise ConfigError(f"clips need at least 2 frames to show an action, got {num_frames}")
    if fps < 1:
        raise ConfigError(f"fps must be at least 1, got {fps}")
    if size < MIN_SIZE or size % 2:
        raise ConfigError(f"the frame size must be an even number of pixels, at least {MIN_SIZE}; got {size}")


def _prepare_out_dir(out_dir: Path, params: dict[str, Any]) -> None:
    """Refuse to mix with another data set; record ``params`` so that an interrupted run can be resumed."""
    summary_path = out_dir / SUMMARY_NAME
    if summary_path.is_file():
        try:
            previous = json.loads(summary_path.read_text(encoding="utf-8")).get("params")
        except (OSError, ValueError, AttributeError) as error:
            raise DataFormatError(
                f"{summary_path} is unreadable ({error}); delete it or choose another folder"
            ) from None
        if previous != params:
            raise DataFormatError(
                f"{out_dir} already holds a synthetic data set made with other arguments ({previous}); "
                "choose another output folder or delete it"
            )
    elif (out_dir / ANNOTATIONS_NAME).exists() or any((out_dir / "videos").glob("*.mp4")):
        raise DataFormatError(f"{out_dir} already holds a data set not made by `vtr data synth`; choose another folder")
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    for leftover in (out_dir / "videos").glob(".*.tmp"):  # from a run killed mid-write
        leftover.unlink(missing_ok=True)
    if not summary_path.is_file():
        atomic_write_json(summary_path, {"version": FORMAT_VERSION, "complete": False, "params": params})


def _make_clip(task: tuple[str, dict[str, Any]]) -> str:
    """Worker: render one clip from its meta and write its MP4."""
    path, meta = task
    write_mp4(path, render_clip(meta), int(meta["fps"]))
    return path


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork starts workers in milliseconds with the modules already imported; spawn where fork does not exist.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _make_clips(tasks: list[tuple[str, dict[str, Any]]], total: int, workers: int, progress: bool) -> None:
    with tqdm(total=total, initial=total - len(tasks), desc="synth clips", unit="clip", disable=not progress) as bar:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                _make_clip(task)
                bar.update(1)
            return
        workers = min(workers, len(tasks))
        chunk = max(1, min(8, len(tasks) // (workers * 4)))
        with _pool_context().Pool(processes=workers) as pool:
            for _ in pool.imap_unordered(_make_clip, tasks, chunksize=chunk):
                bar.update(1)


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def generate_dataset(
    out_dir: str | Path,
    num_videos: int = 1000,
    seed: int = 0,
    num_frames: int = 16,
    fps: int = 8,
    size: int = 64,
    holdout_compositions: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> SynthSummary:
    """Generate the synthetic captioned-video benchmark into ``out_dir``.

    Writes ``videos/NNNNNN.mp4`` (H.264, yuv420p), ``annotations.jsonl`` (one line per clip: ``video``,
    ``captions``, ``split``, ``meta`` with the ground truth) and ``synth.json`` (arguments, split sizes,
    held-out pairs, vocabularies). The same arguments give a byte-identical ``annotations.jsonl`` and
    identical frames, whatever ``workers`` is.

    Args:
        out_dir: the folder to write; created if missing. A folder holding another data set is refused.
        num_videos: number of clips.
        seed: non-negative integer seed.
        num_frames: frames per clip (at least 2).
        fps: frames per second.
        size: frame side in pixels (even, at least 16).
        holdout_compositions: keep one (shape, action) pair per shape out of train; they appear in val/test.
        workers: worker processes (default: the CPUs this process may use).
        progress: show a progress bar on stderr.

    Returns:
        A :class:`SynthSummary`.

    Raises:
        ConfigError: an argument is out of range.
        DataFormatError: ``out_dir`` holds another data set.
    """
    start = time.perf_counter()
    _check_arguments(num_videos, seed, num_frames, fps, size)
    out_dir = Path(out_dir)
    params = {
        "num_videos": num_videos,
        "seed": seed,
        "num_frames": num_frames,
        "fps": fps,
        "size": size,
        "holdout_compositions": holdout_compositions,
    }
    _prepare_out_dir(out_dir, params)
    plan = plan_dataset(num_videos, seed, num_frames, fps, size, holdout_compositions)
    tasks = [
        (str(out_dir / record["video"]), record["meta"])
        for record in plan.records
        if not (out_dir / record["video"]).is_file()
    ]
    reused = len(plan.records) - len(tasks)
    _make_clips(tasks, len(plan.records), workers or _default_workers(), progress)

    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in plan.records)
    annotations = atomic_write_text(out_dir / ANNOTATIONS_NAME, lines)
    splits = Counter(record["split"] for record in plan.records)
    split_counts = {name: splits.get(name, 0) for name in ("train", "val", "test")}
    held_out = {tuple(pair) for pair in plan.held_out_pairs}
    showing_held_out = Counter(
        record["split"]
        for record in plan.records
        if any((o["shape"], o["action"]) in held_out for o in record["meta"]["objects"])
    )
    num_captions = sum(len(record["captions"]) for record in plan.records)
    atomic_write_json(
        out_dir / SUMMARY_NAME,
        {
            "version": FORMAT_VERSION,
            "complete": True,
            "params": params,
            "num_videos": num_videos,
            "num_captions": num_captions,
            "splits": split_counts,
            "groups": len(plan.group_sizes),
            "group_size": GROUP_SIZE,
            "incomplete_groups": sum(1 for n in plan.group_sizes if n % 2 or n < 4),
            "held_out_pairs": [list(pair) for pair in plan.held_out_pairs],
            "clips_showing_held_out_pairs": {name: showing_held_out.get(name, 0) for name in ("train", "val", "test")},
            "vocabulary": {
                "shapes": list(SHAPES),
                "colours": list(COLOURS),
                "sizes": list(SIZES),
                "scenes": list(SCENES),
                "actions": list(ACTIONS),
                "relations": list(RELATIONS),
            },
        },
    )
    return SynthSummary(
        out_dir=out_dir,
        annotations=annotations,
        num_videos=num_videos,
        num_captions=num_captions,
        splits=split_counts,
        holdout_pairs=tuple(plan.held_out_pairs),
        seed=seed,
        num_frames=num_frames,
        fps=fps,
        size=size,
        reused_videos=reused,
        elapsed_s=time.perf_counter() - start,
    )
