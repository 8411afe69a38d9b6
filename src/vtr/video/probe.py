"""Probing a video: duration, frame rate, frame count and size, from metadata where it exists.

Metadata is trusted when present (MP4 carries all of it). WebM and other streamed formats often lack a
stream duration or a frame count: the duration then comes from the stream's ``DURATION`` tag, the container
(when the video is its only stream), or the timestamps of the last packets (read after a seek to the end,
without decoding), and the frame count is estimated as duration x frame rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.video.stream

from vtr.errors import VideoDecodeError
from vtr.video.container import AV_ERRORS, decode_error, open_video

# FFmpeg's container-level durations are in microseconds (AV_TIME_BASE).
_AV_TIME_BASE = 1_000_000
# A pts past the end of any real video, small enough that FFmpeg's rescaling to microseconds cannot overflow.
FAR_PTS = 2**40
# Relative tolerance of a float time converted to ticks: far above rounding error, far below one tick.
_TICK_SLACK = 1e-9


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` knows about a video file.

    Attributes:
        path: the file.
        duration: seconds from the first frame to the end of the last one.
        fps: average frames per second.
        num_frames: number of frames (from metadata; estimated as ``duration * fps`` when the file lacks it).
        width: frame width in pixels.
        height: frame height in pixels.
        codec: the decoder's name (``h264``, ``vp9``...).
    """

    path: Path
    duration: float
    fps: float
    num_frames: int
    width: int
    height: int
    codec: str


@dataclass(frozen=True)
class StreamClock:
    """Converts between seconds from the start of a stream and its presentation timestamps (pts)."""

    time_base: Fraction
    start_pts: int

    def to_pts(self, seconds: float) -> int:
        """The largest pts at or before ``seconds`` after the stream's start."""
        ticks = seconds / self.time_base
        # A time computed to fall exactly on a frame's start may come out a hair early in floating point.
        return self.start_pts + math.floor(ticks + max(_TICK_SLACK, abs(ticks) * _TICK_SLACK))

    def to_seconds(self, pts: int) -> float:
        """Seconds after the stream's start of presentation timestamp ``pts`` (never negative)."""
        return max(0.0, float((pts - self.start_pts) * self.time_base))


def probe(path: str | Path) -> VideoInfo:
    """Read a video's duration, frame rate, frame count, size and codec without decoding it.

    Args:
        path: a video file.

    Returns:
        The file's :class:`VideoInfo`.

    Raises:
        VideoDecodeError: the file is missing, empty, not a video, audio only, truncated or unreadable.
    """
    with open_video(path) as (container, stream):
        try:
            info, _ = read_stream_info(container, stream, path)
        except AV_ERRORS as error:
            raise decode_error(path, error) from error
    return info


def read_stream_info(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: str | Path
) -> tuple[VideoInfo, StreamClock]:
    """The :class:`VideoInfo` and the clock of an open stream, without moving its demuxer.

    Raises:
        VideoDecodeError: the duration or frame rate cannot be found.
    """
    if stream.time_base is None:
        raise VideoDecodeError(path, "the video stream has no time base")
    clock = StreamClock(Fraction(stream.time_base), stream.start_time or 0)
    rate = next((r for r in (stream.average_rate, stream.guessed_rate, stream.base_rate) if r), None)
    frames = stream.frames or 0
    duration = _metadata_duration(container, stream)
    if duration is None and frames and rate:
        duration = frames / float(rate)
    if duration is None:
        duration = _scanned_duration(path, stream.index, clock, rate)
    if not duration or duration <= 0:
        raise VideoDecodeError(path, "cannot find the video's duration (no metadata and no timestamps)")
    fps = float(rate) if rate else (frames / duration if frames else 0.0)
    if fps <= 0:
        raise VideoDecodeError(path, "cannot find the video's frame rate")
    context = stream.codec_context
    info = VideoInfo(
        path=Path(path),
        duration=duration,
        fps=fps,
        num_frames=frames if frames > 0 else max(1, round(duration * fps)),
        width=context.width or stream.width,
        height=context.height or stream.height,
        codec=context.name,
    )
    return info, clock


def _metadata_duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tagged = _parse_clock(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
    if tagged:
        return tagged
    # The container's duration spans all streams: trust it only when the video is the only stream.
    if container.duration and len(container.streams) == 1:
        return container.duration / _AV_TIME_BASE
    return None


def _parse_clock(text: str | None) -> float | None:
    """Seconds in a Matroska duration tag such as ``00:01:02.500000000``; None when absent or malformed."""
    if not text:
        return None
    try:
        hours, minutes, seconds = text.strip().split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def _scanned_duration(path: str | Path, stream_index: int, clock: StreamClock, rate: Fraction | None) -> float | None:
    """The end of the last packet, read after a seek to the end (no decoding), in a second handle on the file.

    If the container cannot seek, every packet is read from the start. Raw streams whose packets carry no
    timestamps get ``packets / rate``.
    """
    for from_end in (True, False):
        end_pts, count = None, 0
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams[stream_index]
            try:
                if from_end:
                    container.seek(FAR_PTS, stream=stream, backward=True)
                for packet in container.demux(stream):
                    if packet.size == 0:
                        continue
                    count += 1
                    if packet.pts is not None:
                        end = packet.pts + (packet.duration or 0)
                        end_pts = end if end_pts is None else max(end_pts, end)
            except AV_ERRORS:
                if from_end:
                    continue  # cannot seek: read everything from the start
        if end_pts is not None:
            return clock.to_seconds(end_pts)
        if not from_end and count and rate:
            return count / float(rate)
    return None
