"""Tests of vtr.video.FrameTransform: shorter-side resize, centre crop and normalisation in plain torch."""

from __future__ import annotations

import pytest
import torch

from vtr.video import FrameTransform

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def bands(height: int, width: int, horizontal: bool) -> torch.Tensor:
    """uint8 ``[3, H, W]``: three bands (red, green, blue) of 1/4, 1/2 and 1/4 of the longer side."""
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    length = width if horizontal else height
    edges = (0, length // 4, 3 * length // 4, length)
    for colour, begin, end in zip((RED, GREEN, BLUE), edges[:-1], edges[1:], strict=True):
        region = (slice(None), slice(begin, end)) if horizontal else (slice(begin, end), slice(None))
        image[(slice(None), *region)] = torch.tensor(colour, dtype=torch.uint8).view(3, 1, 1)
    return image


def test_constant_frame_is_normalised_exactly() -> None:
    frames = torch.empty(4, 3, 30, 50, dtype=torch.uint8)
    frames[:] = torch.tensor([51, 102, 204], dtype=torch.uint8).view(3, 1, 1)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.2)
    out = FrameTransform(20, mean, std)(frames)
    assert out.shape == (4, 3, 20, 20) and out.dtype == torch.float32
    for channel, value in enumerate((51, 102, 204)):
        expected = (value / 255 - mean[channel]) / std[channel]
        assert torch.allclose(out[:, channel], torch.full((4, 20, 20), expected), atol=1e-5)


@pytest.mark.parametrize("horizontal", [True, False])
def test_centre_crop_keeps_the_middle_of_the_longer_side(horizontal: bool) -> None:
    # Landscape 40x80 (or portrait 80x40): the middle half of the longer side is green, and the crop keeps
    # exactly that half, without any resizing when the shorter side already equals the output size.
    image = bands(40, 80, horizontal) if horizontal else bands(80, 40, horizontal)
    out = FrameTransform(40, (0.0,) * 3, (1.0,) * 3)(image[None])
    assert out.shape == (1, 3, 40, 40)
    assert torch.allclose(out[0], torch.tensor(GREEN, dtype=torch.float32).view(3, 1, 1).expand(3, 40, 40) / 255)


def test_resize_then_crop_of_a_landscape_frame() -> None:
    image = bands(40, 80, horizontal=True)  # -> resized to 20x40, cropped to columns 10..30: the green band
    out = FrameTransform(20, (0.0,) * 3, (1.0,) * 3)(image[None])[0]
    assert out.shape == (3, 20, 20)
    assert torch.allclose(out[:, :, 1:-1], torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1).expand(3, 20, 18), atol=1e-6)
    assert out.min() >= 0.0 and out.max() <= 1.0  # bilinear resizing cannot overshoot
    assert out.is_contiguous()


def test_resize_matches_float_resizing_to_within_rounding() -> None:
    frames = torch.randint(0, 256, (3, 3, 36, 64), dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    out = FrameTransform(18, (0.0,) * 3, (1.0,) * 3)(frames) * 255
    reference = torch.nn.functional.interpolate(frames.float(), size=(18, 32), mode="bilinear", antialias=True)
    assert (out - reference[..., 7:25]).abs().max() <= 1.0


def test_output_size_follows_torchvision_rounding() -> None:
    # 3x7 -> shorter side 4: the longer side is int(4 * 7 / 3) = 9, then a centre crop from column round(2.5) = 2.
    image = torch.arange(21, dtype=torch.uint8).view(1, 1, 3, 7).expand(1, 3, 3, 7).contiguous()
    transform = FrameTransform(4, (0.0,) * 3, (1.0,) * 3)
    resized = transform._resize_shorter_side(image)
    assert resized.shape[-2:] == (4, 9) and resized.dtype == torch.uint8
    assert torch.allclose(transform(image)[0], resized[0, :, :, 2:6].float() / 255)


def test_leading_dimensions_are_kept() -> None:
    frames = torch.randint(0, 256, (2, 5, 3, 24, 32), dtype=torch.uint8)  # [B, T, 3, H, W]
    out = FrameTransform(16, (0.5,) * 3, (0.5,) * 3)(frames)
    assert out.shape == (2, 5, 3, 16, 16)
    assert torch.allclose(out[1, 3], FrameTransform(16, (0.5,) * 3, (0.5,) * 3)(frames[1, 3:4])[0])


def test_bad_input_is_rejected() -> None:
    transform = FrameTransform(8, (0.5,) * 3, (0.5,) * 3)
    with pytest.raises(TypeError):
        transform(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError):
        transform(torch.zeros(1, 4, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError):
        FrameTransform(8, (0.5, 0.5), (0.5,) * 3)
    with pytest.raises(ValueError):
        FrameTransform(8, (0.5,) * 3, (0.5, 0.0, 0.5))
