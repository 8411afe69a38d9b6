"""Decode the clips of one video for indexing: its whole-video clip and its moment windows, with thumbnails.

A :class:`DecodeJob` names a few clips of one file (at most a batch of them, so memory stays bounded however
long the video is); :class:`ClipDecoder` samples them with seeking in one pass over the file
(:func:`vtr.video.sampling.sample_windows`) and returns them normalised for the model, with one JPEG thumbnail
per clip. It runs on decoding threads (PyAV releases the GIL) and never raises for a bad file: the error comes
back in :attr:`DecodedClips.error`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from vtr.errors import VideoDecodeError
from vtr.index.moments import MomentPlan
from vtr.index.store import KIND_MOMENT, KIND_VIDEO
from vtr.index.thumbnails import THUMBNAIL_SIZE, jpeg_thumbnail

if TYPE_CHECKING:
    from vtr.video import SampledFrames

logger = logging.getLogger(__name__)


@dataclass
class DecodeJob:
    """A few clips of one video to decode.

    Attributes:
        path: the video file.
        duration: its length in seconds (the span of the whole-video clip).
        whole: include the whole-video clip.
        windows: indices into ``plan.windows`` of the moment windows to decode.
        plan: the video's moment windows.
        owner: the caller's record of the video, handed back with the clips (the decoder never reads it).
    """

    path: Path
    duration: float
    whole: bool
    windows: list[int]
    plan: MomentPlan
    owner: Any = None


@dataclass
class DecodedClips:
    """The clips of one job, ready for the model; ``error`` says why there are none for a bad file.

    ``kinds``, ``spans`` (seconds), ``moments`` (window index, -1 for the whole video) and ``thumbs`` (JPEG bytes)
    have one entry per clip, in the order of the rows of ``frames`` and ``mask``.
    """

    job: DecodeJob
    frames: torch.Tensor | None = None  # float [C, T, 3, S, S]
    mask: torch.Tensor | None = None  # bool [C, T]
    kinds: list[int] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)
    moments: list[int] = field(default_factory=list)
    thumbs: list[bytes | None] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


class ClipDecoder:
    """Decodes the clips of one job with seek-based sampling, in one pass over the file.

    Moment windows are assembled from segments (see :mod:`vtr.index.moments`): when the frames per clip divide
    evenly among a window's segments, each segment is sampled once per job and shared by the windows on it.

    Args:
        num_frames: frames per clip T.
        image_size: frame side S for the model.
        mean: pixel mean for normalisation.
        std: pixel standard deviation for normalisation.
        thumbnail_size: longest side of thumbnails.
    """

    def __init__(
        self,
        num_frames: int,
        image_size: int,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        thumbnail_size: int = THUMBNAIL_SIZE,
    ) -> None:
        from vtr.video import FrameTransform

        self.num_frames = num_frames
        self.transform = FrameTransform(image_size, mean, std)
        self.thumbnail_size = thumbnail_size

    def __call__(self, job: DecodeJob) -> DecodedClips:
        started = time.perf_counter()
        out = DecodedClips(job)
        try:
            self._decode(job, out)
        except VideoDecodeError as error:
            out.error = error.cause
        except Exception as error:  # one bad file must never stop the job
            logger.warning("unexpected error decoding %s", job.path, exc_info=True)
            out.error = f"{type(error).__name__}: {error}"
        out.seconds = time.perf_counter() - started
        return out

    def _decode(self, job: DecodeJob, out: DecodedClips) -> None:
        from vtr.video import sample_windows

        plan = job.plan
        n = plan.segments_per_window
        shared = self.num_frames % n == 0
        # What to sample, in one pass over the file: the whole video, then each segment (shared by the windows
        # on it) or each window.
        requests: list[tuple[int, float | None, float | None]] = [(self.num_frames, None, None)] if job.whole else []
        segments: list[int] = []
        if shared:
            segments = sorted({s for w in job.windows for s in plan.window_segments(w)})
            requests += [(self.num_frames // n, *plan.segments[s]) for s in segments]
        else:
            requests += [(self.num_frames, *plan.windows[w]) for w in job.windows]
        # A window with nothing decodable (past where a truncated file's data ends) comes back as None.
        sampled = sample_windows(job.path, requests, skip_empty=True)
        clips: list[torch.Tensor] = []  # each uint8 [T, 3, H, W]
        masks: list[torch.Tensor] = []  # each bool [T]
        if job.whole:
            whole = sampled.pop(0)
            if whole is None or not bool(whole.mask.any()):
                raise VideoDecodeError(job.path, "no frame could be decoded")
            clips.append(whole.frames)
            masks.append(whole.mask)
            out.kinds.append(KIND_VIDEO)
            out.spans.append((0.0, job.duration))
            out.moments.append(-1)
        by_segment = dict(zip(segments, sampled, strict=True)) if shared else {}
        for i, w in enumerate(job.windows):
            window = join_segments([by_segment[s] for s in plan.window_segments(w)] if shared else [sampled[i]])
            if window is None or not bool(window[1].any()):
                continue  # nothing decodable in this window (a damaged stretch): no moment here
            frames, mask = window
            clips.append(frames)
            masks.append(mask)
            out.kinds.append(KIND_MOMENT)
            out.spans.append(plan.windows[w])
            out.moments.append(w)
        out.thumbs = [self._thumbnail(frames, mask) for frames, mask in zip(clips, masks, strict=True)]
        if clips:
            out.frames = torch.stack([self.transform(c) for c in clips])  # [C, T, 3, S, S]
            out.mask = torch.stack(masks)  # [C, T]

    def _thumbnail(self, frames: torch.Tensor, mask: torch.Tensor) -> bytes:
        # The real frame nearest the middle of the clip, encoded here, on a decoding thread.
        real = torch.nonzero(mask).flatten().tolist()
        middle = min(real, key=lambda i: abs(i - (len(mask) - 1) / 2))
        return jpeg_thumbnail(frames[middle], self.thumbnail_size)


def join_segments(parts: list[SampledFrames | None]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A moment window's frames and mask from its segments, in order; a segment with nothing decodable gives
    masked-out frames. None when no segment has a decodable frame."""
    real = [p for p in parts if p is not None]
    if not real:
        return None
    blank_frames, blank_mask = torch.zeros_like(real[0].frames), torch.zeros_like(real[0].mask)
    frames = torch.cat([blank_frames if p is None else p.frames for p in parts])  # [T, 3, H, W]
    mask = torch.cat([blank_mask if p is None else p.mask for p in parts])  # [T]
    return frames, mask
