"""Where the moments of a video lie: overlapping windows, each embedded so a search can point inside a video.

Windows start every ``stride`` seconds and last ``window`` seconds. Their boundaries are drawn from one grid of
*segments* (length ``stride``; the tail shorter than half a stride is merged into the last segment, so no
window ends with a sliver), and each window is a run of ``window / stride`` consecutive segments. When the
frames per clip divide evenly among those segments, each segment is decoded once and shared by the windows
that cover it: with the default half-overlapping windows that halves the decoding work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Tolerance for float comparisons of times in seconds: well under one frame at any frame rate.
_EPS = 1e-6


@dataclass(frozen=True)
class MomentPlan:
    """The moment windows of one video.

    Attributes:
        segments: boundaries of the segment grid, ``[(start, end), ...]`` in seconds.
        windows: ``[(start, end), ...]`` in seconds, in time order; empty when the video is no longer than
            about one window (the whole-video entry is then its only moment).
        segments_per_window: n, the number of consecutive segments in each window.
    """

    segments: tuple[tuple[float, float], ...]
    windows: tuple[tuple[float, float], ...]
    segments_per_window: int

    def window_segments(self, index: int) -> range:
        """Indices of the segments that make up window ``index``."""
        return range(index, index + self.segments_per_window)


def plan_moments(duration: float, window: float = 4.0, stride: float = 2.0) -> MomentPlan:
    """The moment windows of a video of ``duration`` seconds.

    Args:
        duration: video length in seconds.
        window: window length in seconds; a whole multiple of ``stride`` (4 s and 2 s: half overlapping).
        stride: seconds between window starts.

    Returns:
        The plan; ``windows`` is empty when the video spans no more than ``window / stride`` segments.

    Raises:
        ValueError: non-positive lengths, or ``window`` not a whole multiple of ``stride``.
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"moment window ({window}) and stride ({stride}) must be positive")
    ratio = window / stride
    n = round(ratio)
    if n < 1 or abs(ratio - n) > 1e-6:
        raise ValueError(f"moment window ({window} s) must be a whole multiple of the stride ({stride} s)")
    if not math.isfinite(duration) or duration <= 0:
        return MomentPlan((), (), n)
    # Segment grid: full strides, the tail merged into the last segment when shorter than half a stride.
    count = max(1, math.floor(duration / stride + _EPS))
    if duration - count * stride >= stride / 2:
        count += 1
    bounds = [i * stride for i in range(count)] + [duration]
    segments = tuple((bounds[i], bounds[i + 1]) for i in range(count))
    if count <= n:
        return MomentPlan(segments, (), n)
    windows = tuple((segments[i][0], segments[i + n - 1][1]) for i in range(count - n + 1))
    return MomentPlan(segments, windows, n)
