"""Uniform frame sampling by timestamp: N frames from a video (or a window of it) as a uint8 ``[T, 3, H, W]`` tensor.

The window is cut into ``num_frames`` equal segments; evaluation takes the frame shown at the middle of each
segment, training a frame at a random offset inside each segment (TSN-style sampling). Only the frames
needed are decoded (see :mod:`vtr.video.decoder`). A window holding fewer frames than requested is decoded
whole and every frame is returned once, followed by padding that the mask marks as not real; so are the
entries past the end of a file whose data stops early (truncated).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch

from vtr.errors import VideoDecodeError
from vtr.video.container import AV_ERRORS, decode_error, open_video
from vtr.video.decoder import FrameReader
from vtr.video.probe import StreamClock, VideoInfo, read_stream_info

SampleMode = Literal["middle", "random"]
PadMode = Literal["repeat", "zero"]


class ShownFrame(Protocol):
    """A decoded frame as sampling sees it (:class:`vtr.video.decoder.Frame`, or one kept by a cache)."""

    @property
    def pts(self) -> int: ...

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        ...

    def pixels(self, width: int, height: int) -> np.ndarray:
        """RGB uint8 [height, width, 3], scaled to that size."""
        ...


@dataclass(frozen=True)
class SampledFrames:
    """Frames sampled from a video.

    Attributes:
        frames: uint8 RGB frames, ``[T, 3, H, W]`` with ``T == num_frames`` (padded where the video is short),
            channels-last in memory (``torch.channels_last``): ``.contiguous()`` makes a channels-first copy.
        mask: bool ``[T]``, True where the entry is a real frame, False for padding.
        timestamps: seconds from the start of the video at which each entry's frame is shown (padding
            repeats the timestamp of the last real frame before it).
        recovered_frames: frames the decoder produced while sampling (decoding forward from key frames
            counts every frame passed on the way).
        corrupt_packets: packets that could not be read or decoded (or decoded to a frame the decoder
            flagged as damaged) and were skipped.
    """

    frames: torch.Tensor
    mask: torch.Tensor
    timestamps: list[float]
    recovered_frames: int
    corrupt_packets: int


def segment_times(
    start: float, end: float, num: int, mode: SampleMode = "middle", rng: random.Random | None = None
) -> list[float]:
    """``num`` times in ``[start, end)``, one per equal segment: segment middles, or a uniform draw in each.

    Args:
        start: window start, seconds.
        end: window end, seconds (``end > start``).
        num: number of segments.
        mode: ``"middle"`` (evaluation) or ``"random"`` (training).
        rng: the random source for ``"random"`` (a fresh unseeded one when None).
    """
    length = (end - start) / num
    if mode == "middle":
        return [start + (i + 0.5) * length for i in range(num)]
    if mode == "random":
        rng = rng if rng is not None else random.Random()
        return [start + (i + rng.random()) * length for i in range(num)]
    raise ValueError(f"mode must be 'middle' or 'random', not {mode!r}")


def sample_frames(
    path: str | Path,
    num_frames: int,
    *,
    mode: SampleMode = "middle",
    rng: random.Random | None = None,
    keyframes: bool = False,
    start: float | None = None,
    end: float | None = None,
    pad: PadMode = "repeat",
) -> SampledFrames:
    """Sample ``num_frames`` frames uniformly in time from a video, decoding only what is needed.

    Args:
        path: the video file.
        num_frames: how many frames to return (``T``).
        mode: ``"middle"``: the frame shown at the middle of each of ``T`` equal segments (evaluation);
            ``"random"``: the frame shown at a uniform random time inside each segment (training).
        rng: random source for ``mode="random"``; the same seed gives the same frames.
        keyframes: return the key frame at or before each sampling time instead of the exact frame: much
            faster on long videos (no decoding forward from the key frame), coarser in time. Ignored when the
            window holds no more than ``T`` frames, since every frame is decoded then anyway.
        start: window start in seconds (default: the start of the video).
        end: window end in seconds (default: the end of the video; clamped to it).
        pad: what fills the entries after the last real frame when the window holds fewer than ``T`` frames
            (or the file's data ends early): ``"repeat"`` the last real frame, or ``"zero"`` (black).

    Returns:
        The :class:`SampledFrames`.

    Raises:
        VideoDecodeError: the file cannot be read, or no frame of it can be decoded.
        ValueError: bad arguments (``num_frames < 1``, an unknown mode, an empty or negative window).
    """
    check_sampling(num_frames, mode, pad)
    with open_video(path) as (container, stream):
        try:
            info, clock = read_stream_info(container, stream, path)
        except AV_ERRORS as error:
            raise decode_error(path, error) from error
        window = _plan_window(info, clock, num_frames, start, end, mode, rng)
        try:
            reader = FrameReader(container, stream, clock, info.fps)
            if window.short:
                # A short window: decoding all of it costs no more than seeking to each target.
                frames = reader.frames_between(clock.to_pts(window.begin), clock.to_pts(window.finish))
                # Fewer frames than requested: each once, then padding. Frames lost to corrupt packets do
                # not count as missing: their targets get the frame shown before them, as in a long video.
                few = round(window.expected) < num_frames and len(frames) <= num_frames
                end_test = reader.past_end if reader.exhausted else None
                picks = frames if few or not frames else shown_at(frames, window.targets, end_test)
            elif keyframes:
                picks = [reader.keyframe_at(target) for target in window.targets]
            else:
                picks = [reader.frame_at(target) for target in window.targets]
            return _sampled(path, picks, num_frames, pad, clock, reader)
        except AV_ERRORS as error:
            raise decode_error(path, error) from error


def sample_windows(
    path: str | Path,
    requests: Sequence[tuple[int, float | None, float | None]],
    *,
    pad: PadMode = "repeat",
    skip_empty: bool = False,
) -> list[SampledFrames | None]:
    """Sample several windows of one video (``"middle"`` sampling) in one pass: what
    ``[sample_frames(path, n, start=s, end=e, pad=pad) for n, s, e in requests]`` returns, frame for frame.

    The file is opened once and the targets of every window are reached in time order by one reader, so a
    frame needed by several windows, or frames that one group of pictures holds for several windows, are
    decoded once. Separate calls would each seek back to the key frame before their window and decode from
    there: for the whole clip and the thirty 2 s moment segments of a 60 s video of 1,500 frames with a key
    frame every 10 s (benchmarks/index_throughput.py), 5,296 frames decoded against 1,470 in one pass. A
    window short enough to be decoded whole (no more frames than requested, plus one) is sampled on its own,
    as :func:`sample_frames` does. Every frame picked is held until the call returns.

    Args:
        path: the video file.
        requests: ``(num_frames, start, end)`` per window, in seconds (``None``: the start or end of the
            video); in any order, overlapping or not.
        pad: as for :func:`sample_frames`.
        skip_empty: a window with no decodable frame (one past where a truncated file's data ends, or on a
            damaged stretch) gives None instead of raising, so the other windows are kept.

    Returns:
        One :class:`SampledFrames` per request, in the order of ``requests`` (None for an empty window with
        ``skip_empty``; never None without it). Their ``recovered_frames`` and ``corrupt_packets`` count the
        whole pass (the same numbers on each).

    Raises:
        VideoDecodeError: the file cannot be read, or no frame of one of the windows can be decoded (without
            ``skip_empty``).
        ValueError: bad arguments, as for :func:`sample_frames`.
    """
    for num_frames, _start, _end in requests:
        check_sampling(num_frames, "middle", pad)
    with open_video(path) as (container, stream):
        try:
            info, clock = read_stream_info(container, stream, path)
        except AV_ERRORS as error:
            raise decode_error(path, error) from error
        windows = [_plan_window(info, clock, n, start, end, "middle", None) for n, start, end in requests]
        try:
            reader = FrameReader(container, stream, clock, info.fps)
            wanted = sorted({target for window in windows if not window.short for target in window.targets})
            shown = {target: reader.frame_at(target) for target in wanted}  # non-decreasing, as frame_at needs
            results: list[SampledFrames | None] = []
            for (n, start, end), window in zip(requests, windows, strict=True):
                if window.short:
                    results.append(_sample_short(path, n, start, end, pad, skip_empty))
                    continue
                picks = [shown[t] for t in window.targets]
                empty = all(pick is None for pick in picks)
                results.append(None if empty and skip_empty else _sampled(path, picks, n, pad, clock, reader))
            return results
        except AV_ERRORS as error:
            raise decode_error(path, error) from error


def _sample_short(
    path: str | Path, num_frames: int, start: float | None, end: float | None, pad: PadMode, skip_empty: bool
) -> SampledFrames | None:
    """A short window, decoded whole on its own; None when none of its frames decodes and ``skip_empty``."""
    try:
        return sample_frames(path, num_frames, start=start, end=end, pad=pad)
    except VideoDecodeError:
        if skip_empty:
            return None
        raise


@dataclass(frozen=True)
class _Window:
    """Where one sampling window lies: its bounds in seconds, the pts of its targets, and whether it is short
    (no more frames than requested, plus one: decoded whole)."""

    begin: float
    finish: float
    targets: list[int]
    expected: float  # frames in the window, by the clock
    short: bool


def _plan_window(
    info: VideoInfo,
    clock: StreamClock,
    num_frames: int,
    start: float | None,
    end: float | None,
    mode: SampleMode,
    rng: random.Random | None,
) -> _Window:
    begin, finish = window_seconds(start, end, info.duration)
    times = segment_times(begin, finish, num_frames, mode, rng)
    expected = (finish - begin) * info.fps
    return _Window(begin, finish, [clock.to_pts(t) for t in times], expected, expected <= num_frames + 1)


def _sampled(
    path: str | Path,
    picks: list[ShownFrame | None],
    num_frames: int,
    pad: PadMode,
    clock: StreamClock,
    reader: FrameReader,
) -> SampledFrames:
    """The picked frames, padded to ``num_frames`` and stacked; VideoDecodeError when none decoded."""
    if all(frame is None for frame in picks):
        raise VideoDecodeError(
            path, f"no frame could be decoded ({reader.corrupt_packets} corrupt or unreadable packets)"
        )
    picks = picks + [None] * (num_frames - len(picks))
    frames, mask, stamps = stack_picks(picks, pad)
    timestamps = [clock.to_seconds(pts) for pts in stamps]
    return SampledFrames(frames, mask, timestamps, reader.decoded_frames, reader.corrupt_packets)


def check_sampling(num_frames: int, mode: str, pad: str) -> None:
    """ValueError for a bad frame count, sampling mode or pad mode."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, not {num_frames}")
    if mode not in ("middle", "random"):
        raise ValueError(f"mode must be 'middle' or 'random', not {mode!r}")
    if pad not in ("repeat", "zero"):
        raise ValueError(f"pad must be 'repeat' or 'zero', not {pad!r}")


def window_seconds(start: float | None, end: float | None, duration: float) -> tuple[float, float]:
    """The sampling window in seconds: defaults to the whole video, ``end`` clamped to its duration."""
    begin = 0.0 if start is None else float(start)
    finish = duration if end is None else min(float(end), duration)
    if begin < 0 or finish <= begin:
        raise ValueError(f"empty sampling window [{start}, {end}] for a video of {duration:.3f} s")
    return begin, finish


def shown_at(
    frames: Sequence[ShownFrame], targets: list[int], past_end: Callable[[ShownFrame, int], bool] | None
) -> list[ShownFrame | None]:
    """For each target pts, the last of ``frames`` (sorted by pts) at or before it (the first if none is), or
    None past the end of the data (``past_end(last frame, target)``, asked only once every frame was read), as
    :meth:`FrameReader.frame_at` would give."""
    stamps = [frame.pts for frame in frames]
    picks: list[ShownFrame | None] = []
    for target in targets:
        pick = frames[max(0, bisect.bisect_right(stamps, target) - 1)]
        beyond = pick is frames[-1] and past_end is not None and past_end(pick, target)
        picks.append(None if beyond else pick)
    return picks


def stack_picks(picks: Sequence[ShownFrame | None], pad: PadMode) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Stack the picked frames as uint8 ``[T, 3, H, W]``, with the bool mask ``[T]`` and each entry's pts.

    ``None`` entries (no frame: the window or the file's data ended) become padding: a copy of the last real
    frame before them (the first one after, if none is before) or black.
    """
    real = [frame for frame in picks if frame is not None]
    # A stream may change resolution midway: scale every frame to the first one's size.
    width, height = real[0].size
    converted: dict[int, np.ndarray] = {}
    arrays, stamps, source = [], [], real[0]
    for frame in picks:
        if frame is not None:
            source = frame
        key = id(source)  # one frame may fill several entries: convert it once
        if key not in converted:
            converted[key] = source.pixels(width, height)  # [H, W, 3]
        image = converted[key]
        arrays.append(image if frame is not None or pad == "repeat" else np.zeros_like(image))
        stamps.append(source.pts)
    mask = torch.tensor([frame is not None for frame in picks], dtype=torch.bool)
    # [T, H, W, 3] -> [T, 3, H, W] as a view: channels-last in memory (torch.channels_last), since a copy to
    # channels-first costs more than decoding the frames (70 ms for 12 frames of 360p).
    frames = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return frames, mask, stamps
