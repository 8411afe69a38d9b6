"""Frames for figures: a video's clip sampled exactly as evaluation samples it, and one middle frame as a thumbnail."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vtr.config import DataConfig
from vtr.errors import VideoDecodeError
from vtr.video import FrameTransform, sample_frames
from vtr.viz.figure import square_crop


@dataclass
class Clip:
    """A video as the model sees it in evaluation, and as a figure shows it.

    Attributes:
        pixels: float ``[T, 3, S, S]``, the model's input (resized, centre-cropped, normalised).
        mask: bool ``[T]``, True for a real frame, False for padding (a video with fewer than T frames).
        images: uint8 ``[T, h, h, 3]``, the same frames at the video's own resolution, cut to the centred square
            the model sees (padding entries repeat the last real frame).
        timestamps: seconds into the video of each entry.
    """

    pixels: torch.Tensor
    mask: torch.Tensor
    images: np.ndarray
    timestamps: list[float]


def load_clip_for_model(path: str | Path, data: DataConfig) -> Clip:
    """Sample ``data.num_frames`` frames at the middles of equal segments (as :class:`vtr.data.EvalVideoDataset`).

    Raises:
        VideoDecodeError: the file is missing or cannot be decoded.
    """
    try:
        sampled = sample_frames(path, data.num_frames, mode="middle")
    except OSError as error:
        raise VideoDecodeError(path, error.strerror or str(error)) from error
    if sampled.recovered_frames == 0 or not bool(sampled.mask.any()):
        raise VideoDecodeError(path, "no frame could be decoded")
    pixels = FrameTransform(data.image_size, data.mean, data.std)(sampled.frames)  # [T, 3, S, S]
    images = np.stack([square_crop(frame) for frame in sampled.frames.permute(0, 2, 3, 1).numpy()])  # [T, h, h, 3]
    return Clip(pixels=pixels, mask=sampled.mask.bool(), images=images, timestamps=list(sampled.timestamps))


def middle_frame(path: str | Path) -> np.ndarray:
    """The frame shown at the middle of the video, uint8 ``[h, h, 3]``, cut to the centred square the model sees.

    Raises:
        VideoDecodeError: the file is missing or cannot be decoded.
    """
    try:
        sampled = sample_frames(path, 1, mode="middle")
    except OSError as error:
        raise VideoDecodeError(path, error.strerror or str(error)) from error
    return square_crop(sampled.frames[0].permute(1, 2, 0).numpy())
