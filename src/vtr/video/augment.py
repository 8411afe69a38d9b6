"""Training-time augmentation of a clip that keeps its captions true.

A contrastive model trained on a few thousand clips can tell them apart by what never changes from epoch to
epoch: where each object sits in the frame, each background's exact pixels. :class:`CropJitter` shows each
clip, each time it is drawn, through a different square window (a random fraction of the frame's area, at a
random place), which :class:`vtr.video.FrameTransform` then resizes to the model's input size: the object moves
a few pixels and changes scale a little, while its shape, colour, motion and scene stay what the caption says.

The same window is used on every frame of a clip, so motion is kept (a window that moved between frames would
add motion of its own). Nothing here flips, recolours or reverses a clip: left and right, up and down, colour
names, growing and shrinking are what captions say.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CropJitter:
    """A random square window of each clip, the same on every frame.

    Attributes:
        min_area: the smallest window, as a fraction of the largest square that fits in the frame (0 < min_area).
        max_area: the largest window, the same way (min_area <= max_area <= 1).
    """

    min_area: float
    max_area: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_area <= self.max_area <= 1.0:
            raise ValueError(
                f"a crop's area fraction must satisfy 0 < min <= max <= 1, got [{self.min_area}, {self.max_area}]"
            )

    def __call__(self, frames: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """A window of ``frames`` (``[T, 3, H, W]``, any dtype) -> ``[T, 3, s, s]``, a view; draws from ``rng``.

        The window's side is ``sqrt(area)`` times the frame's shorter side (area drawn uniformly in
        ``[min_area, max_area]``), its place uniform among the windows of that side inside the frame.
        """
        if frames.dim() != 4:
            raise ValueError(f"frames must have shape [T, 3, H, W], not {list(frames.shape)}")
        height, width = frames.shape[-2:]
        area = rng.uniform(self.min_area, self.max_area)
        side = max(1, min(height, width, round(min(height, width) * math.sqrt(area))))
        top = rng.randint(0, height - side)
        left = rng.randint(0, width - side)
        return frames[..., top : top + side, left : left + side]
