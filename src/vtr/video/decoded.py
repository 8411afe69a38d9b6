"""Every frame of a short video, decoded once, and sampled later exactly as :func:`sample_frames` samples the file.

Training reads each clip of a data set once an epoch at new random offsets; for short clips the decoder's work
(opening the file, seeking, converting to RGB) costs more than the model's step on a small CPU. A
:class:`DecodedVideo` keeps the decoded RGB frames with their timestamps, and :func:`sample_decoded` picks from
them by the same rules as :func:`vtr.video.sample_frames` (same segment times, same frame shown at each time, same
padding), so a clip sampled from it equals the clip sampled from the file with the same random source.

Only videos that decode cleanly (no corrupt packet, one frame size) are kept: for those, decoding every frame and
seeking to each target give the same frames.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vtr.errors import VideoDecodeError
from vtr.video.container import AV_ERRORS, decode_error, open_video
from vtr.video.decoder import END_TOLERANCE_FRAMES, FrameReader
from vtr.video.probe import FAR_PTS, StreamClock, read_stream_info
from vtr.video.sampling import (
    PadMode,
    SampledFrames,
    SampleMode,
    check_sampling,
    segment_times,
    shown_at,
    stack_picks,
    window_seconds,
)


class StoredFrame(NamedTuple):
    """One kept frame: its pts, its RGB pixels [H, W, 3] and its duration in pts (0 when unknown)."""

    pts: int
    image: np.ndarray
    duration: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.image.shape[1], self.image.shape[0]

    def pixels(self, width: int, height: int) -> np.ndarray:
        """The RGB pixels; every kept frame of a video has one size, so no scaling is ever asked for."""
        if (width, height) != self.size:
            raise ValueError(f"a kept frame is {self.size[0]}x{self.size[1]}, not {width}x{height}")
        return self.image


@dataclass(frozen=True)
class DecodedVideo:
    """Every frame of a video with what sampling needs to know of its stream.

    Attributes:
        frames: uint8 RGB ``[N, H, W, 3]``, in presentation order.
        pts: int64 ``[N]``, each frame's presentation timestamp.
        durations: int64 ``[N]``, each frame's duration in pts (0 when the stream does not say).
        time_base: seconds per pts tick.
        start_pts: the stream's first pts.
        duration: seconds, as :func:`vtr.video.probe` reads it.
        fps: average frames per second.
        step: pts per frame on average (what the decoder assumes where a frame has no duration).
    """

    frames: np.ndarray
    pts: np.ndarray
    durations: np.ndarray
    time_base: Fraction
    start_pts: int
    duration: float
    fps: float
    step: int

    @property
    def nbytes(self) -> int:
        """Bytes taken by the pixels."""
        return int(self.frames.nbytes)

    def save(self, path: str | Path) -> None:
        """Write to ``path`` (an uncompressed ``.npz``; the caller makes the write atomic)."""
        with open(path, "wb") as handle:
            np.savez(
                handle,
                frames=self.frames,
                pts=self.pts,
                durations=self.durations,
                clock=np.array(
                    [self.time_base.numerator, self.time_base.denominator, self.start_pts, self.step], np.int64
                ),
                rates=np.array([self.duration, self.fps], np.float64),
            )

    @classmethod
    def load(cls, path: str | Path) -> DecodedVideo:
        """Read what :meth:`save` wrote; ValueError, KeyError, OSError or zipfile.BadZipFile if the file is not one."""
        with np.load(path, allow_pickle=False) as data:
            frames, pts, durations = data["frames"], data["pts"], data["durations"]
            numerator, denominator, start_pts, step = (int(v) for v in data["clock"])
            duration, fps = (float(v) for v in data["rates"])
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
            raise ValueError(f"{path}: not decoded frames (shape {frames.shape}, {frames.dtype})")
        if pts.shape != (len(frames),) or durations.shape != (len(frames),):
            raise ValueError(f"{path}: {len(frames)} frames but {pts.shape} timestamps")
        return cls(frames, pts, durations, Fraction(numerator, denominator), start_pts, duration, fps, step)


def decode_video(path: str | Path, max_frames: int, max_bytes: int) -> DecodedVideo | None:
    """Decode every frame of a short video, or None when it is not worth or not safe keeping.

    None when the stream's metadata says it has more than ``max_frames`` frames or more than ``max_bytes`` of RGB
    pixels (found before decoding), or when decoding meets a corrupt packet, a change of frame size, or more than
    ``max_frames`` frames (the metadata can be wrong).

    Raises:
        VideoDecodeError: the file cannot be read, or no frame of it decodes.
    """
    with open_video(path) as (container, stream):
        try:
            info, clock = read_stream_info(container, stream, path)
        except AV_ERRORS as error:
            raise decode_error(path, error) from error
        if info.num_frames > max_frames or info.num_frames * info.width * info.height * 3 > max_bytes:
            return None
        try:
            reader = FrameReader(container, stream, clock, info.fps)
            frames = reader.frames_between(clock.to_pts(0.0), FAR_PTS)
            images = [frame.pixels(*frame.size) for frame in frames]
        except AV_ERRORS as error:
            raise decode_error(path, error) from error
        if not frames:
            raise VideoDecodeError(
                path, f"no frame could be decoded ({reader.corrupt_packets} corrupt or unreadable packets)"
            )
        sizes = {image.shape for image in images}
        if reader.corrupt_packets or len(sizes) > 1 or len(frames) > max_frames:
            return None
        return DecodedVideo(
            frames=np.stack(images),
            pts=np.array([frame.pts for frame in frames], np.int64),
            durations=np.array([frame.frame.duration or 0 for frame in frames], np.int64),
            time_base=clock.time_base,
            start_pts=clock.start_pts,
            duration=info.duration,
            fps=info.fps,
            step=max(1, round(1 / (info.fps * clock.time_base))),
        )


def sample_decoded(
    video: DecodedVideo,
    num_frames: int,
    *,
    mode: SampleMode = "middle",
    rng: random.Random | None = None,
    start: float | None = None,
    end: float | None = None,
    pad: PadMode = "repeat",
) -> SampledFrames:
    """:func:`vtr.video.sample_frames` on a decoded video: the same arguments (but ``keyframes``) and result.

    ``recovered_frames`` counts the frames kept (nothing is decoded here); ``corrupt_packets`` is 0, since only
    clean videos are kept.
    """
    check_sampling(num_frames, mode, pad)
    clock = StreamClock(video.time_base, video.start_pts)
    begin, finish = window_seconds(start, end, video.duration)
    times = segment_times(begin, finish, num_frames, mode, rng)
    targets = [clock.to_pts(t) for t in times]
    frames = [StoredFrame(int(p), image, int(d)) for p, image, d in zip(video.pts, video.frames, video.durations)]
    begin_pts, end_pts = clock.to_pts(begin), clock.to_pts(finish)
    expected = (finish - begin) * video.fps  # frames in the window, by the clock
    if expected <= num_frames + 1:
        # As the decoder's short-window path: the frames shown in [begin, end), each once when they are few.
        window = _frames_between(frames, begin_pts, end_pts)
        few = round(expected) < num_frames and len(window) <= num_frames
        ended = not any(frame.pts >= end_pts for frame in frames)  # the decoder would have reached the end
        picks = window if few or not window else shown_at(window, targets, _past_end(video) if ended else None)
    else:
        # As seeking to each target: the frame shown at it, every frame having been decoded.
        picks = shown_at(frames, targets, _past_end(video))
    picks = picks + [None] * (num_frames - len(picks))
    stacked, mask, stamps = stack_picks(picks, pad)
    timestamps = [clock.to_seconds(pts) for pts in stamps]
    return SampledFrames(stacked, mask, timestamps, len(frames), 0)


def _frames_between(frames: list[StoredFrame], begin: int, end: int) -> list[StoredFrame]:
    """As :meth:`FrameReader.frames_between`: the frame shown at ``begin`` (if any is at or before it), then
    every frame after ``begin`` and before ``end``."""
    shown = [frame for frame in frames if frame.pts <= begin][-1:]
    return shown + [frame for frame in frames if begin < frame.pts < end]


def _past_end(video: DecodedVideo) -> Callable[[StoredFrame, int], bool]:
    """As :meth:`FrameReader.past_end`: whether a target lies past the end of the data after ``last``."""

    def past_end(last: StoredFrame, target: int) -> bool:
        return target > last.pts + END_TOLERANCE_FRAMES * (last.duration or video.step)

    return past_end
