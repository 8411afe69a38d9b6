"""Loading a clip ready for a video encoder: sampled frames, transformed, with their mask."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vtr.video.sampling import sample_frames
from vtr.video.transform import FrameTransform


def load_clip(
    path: str | Path,
    num_frames: int,
    image_size: int,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
    **sample_kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``num_frames`` frames from a video and preprocess them for a video encoder.

    Args:
        path: the video file.
        num_frames: frames to sample (``T``).
        image_size: output side ``S`` (shorter side resized to it, then centre-cropped).
        mean: per-channel normalisation mean (RGB, on [0, 1] values).
        std: per-channel normalisation standard deviation.
        **sample_kwargs: passed to :func:`vtr.video.sample_frames` (``mode``, ``rng``, ``keyframes``,
            ``start``, ``end``, ``pad``).

    Returns:
        ``(frames, mask)``: float ``[T, 3, S, S]`` and bool ``[T]`` (True = a real frame).

    Raises:
        VideoDecodeError: the file cannot be decoded.
    """
    sampled = sample_frames(path, num_frames, **sample_kwargs)
    return FrameTransform(image_size, mean, std)(sampled.frames), sampled.mask
