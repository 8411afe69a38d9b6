"""Frame preprocessing in plain torch: resize the shorter side, centre crop, scale to [0, 1] and normalise.

Follows torchvision's ``Resize(S, antialias=True) -> CenterCrop(S) -> ToDtype(float32, scale=True) ->
Normalize(mean, std)`` on uint8 frames (bilinear with antialiasing on uint8, the same rounding of sizes and
crop offsets) without depending on torchvision.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

_UINT8_MAX = 255.0


class FrameTransform:
    """uint8 frames ``[..., 3, H, W]`` -> float ``[..., 3, S, S]``: shorter side to S, centre crop, normalise.

    Args:
        image_size: the output side ``S``.
        mean: per-channel mean of the [0, 1]-scaled input (RGB order).
        std: per-channel standard deviation (RGB order).
    """

    def __init__(self, image_size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be positive, not {image_size}")
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"mean and std need one value per RGB channel, got {list(mean)} and {list(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {list(std)}")
        self.image_size = image_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self._scale = 1.0 / (_UINT8_MAX * self.std)  # [3, 1, 1]
        self._shift = self.mean / self.std  # [3, 1, 1]

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Transform ``frames`` (uint8 ``[..., 3, H, W]``, e.g. ``[T, 3, H, W]``) to float ``[..., 3, S, S]``."""
        if frames.dtype != torch.uint8:
            raise TypeError(f"frames must be uint8, not {frames.dtype}")
        if frames.dim() < 3 or frames.shape[-3] != 3:
            raise ValueError(f"frames must have shape [..., 3, H, W], not {list(frames.shape)}")
        lead = frames.shape[:-3]
        height, width = frames.shape[-2:]
        images = frames.reshape(-1, 3, height, width)  # [N, 3, H, W]
        images = self._resize_shorter_side(images)
        # Contiguous channels-first (model code may .view() the pixels), made while the pixels are still bytes.
        images = self._centre_crop(images).contiguous()
        # (x / 255 - mean) / std, fused into one multiply and one subtract, in place.
        images = images.float().mul_(self._scale).sub_(self._shift)
        return images.reshape(*lead, 3, self.image_size, self.image_size)

    def _resize_shorter_side(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, 3, H, W]`` resized so that the shorter side is S (uint8, rounded, as torchvision does)."""
        height, width = images.shape[-2:]
        size = self.image_size
        if min(height, width) == size:
            return images
        # torchvision's rounding: the shorter side becomes exactly S, the longer one is truncated.
        if height <= width:
            new_height, new_width = size, int(size * width / height)
        else:
            new_height, new_width = int(size * height / width), size
        # Resizing uint8 in channels-last memory takes torch's vectorised path: ~14x faster than float32
        # (5 ms against 67 ms for 12 frames of 360p); frames from sample_frames are channels-last already.
        images = images.contiguous(memory_format=torch.channels_last)
        return F.interpolate(images, size=(new_height, new_width), mode="bilinear", align_corners=False, antialias=True)

    def _centre_crop(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        size = self.image_size
        top = round((height - size) / 2.0)
        left = round((width - size) / 2.0)
        return images[..., top : top + size, left : left + size]

    def __repr__(self) -> str:
        return (
            f"FrameTransform(image_size={self.image_size}, mean={self.mean.flatten().tolist()}, "
            f"std={self.std.flatten().tolist()})"
        )
