"""Tiny test videos made with PyAV: N frames of solid colour, H.264 in MP4 (shared by the tests of all modules)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

Colour = tuple[int, int, int]


def write_solid_video(
    path: str | Path,
    num_frames: int = 8,
    fps: int = 8,
    size: int | tuple[int, int] = 32,
    colour: Colour | Sequence[Colour] = (255, 0, 0),
    codec: str = "libx264",
) -> Path:
    """Write an MP4 whose frames are solid colours; returns its path.

    Args:
        path: the file to write (parent folders are created).
        num_frames: how many frames.
        fps: frames per second (the video lasts ``num_frames / fps`` seconds).
        size: frame side, or ``(width, height)``; even numbers (yuv420p halves the chroma planes).
        colour: one RGB colour for every frame, or one per frame.
        codec: the encoder (``libx264``, or ``mpeg4``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = (size, size) if isinstance(size, int) else size
    colours = [colour] * num_frames if isinstance(colour[0], int) else list(colour)
    if len(colours) != num_frames:
        raise ValueError(f"{len(colours)} colours for {num_frames} frames")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for rgb in colours:
            image = np.empty((height, width, 3), dtype=np.uint8)  # [H, W, 3]
            image[...] = np.asarray(rgb, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush the encoder
            container.mux(packet)
    return path


def numbered_colours(num_frames: int) -> list[Colour]:
    """Distinct, well-separated grey levels, one per frame, so a decoded frame tells which frame it was."""
    step = 255 // max(num_frames - 1, 1)
    return [(i * step, i * step, i * step) for i in range(num_frames)]
