"""Tiny test videos made with PyAV: N frames of solid colour, H.264 in MP4 (shared by the tests of all modules)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

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


# Frame i is painted with colour (L[i % 7], L[i // 7 % 7], L[i // 49 % 7]): 343 codes, 42 levels apart, far
# more than the colour error of a lossy encode of a flat frame.
LEVELS = np.array([0, 42, 85, 127, 170, 212, 255])
BASE = len(LEVELS)


def colour(index: int) -> tuple[int, int, int]:
    return tuple(int(LEVELS[index // BASE**channel % BASE]) for channel in range(3))


def frame_code(image: np.ndarray | torch.Tensor) -> int:
    """The index painted on an RGB frame, ``[3, H, W]`` (tensor) or ``[H, W, 3]`` (array)."""
    if isinstance(image, torch.Tensor):
        image = image.permute(1, 2, 0).numpy()
    mean = image.reshape(-1, 3).astype(np.float64).mean(axis=0)
    digits = np.abs(mean[:, None] - LEVELS[None, :]).argmin(axis=1)
    return int(sum(int(d) * BASE**channel for channel, d in enumerate(digits)))


def make_video(
    path: Path,
    num_frames: int,
    *,
    fps: int = 25,
    size: tuple[int, int] = (48, 32),
    codec: str = "libx264",
    gop: int = 10,
    pts_ms: list[int] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Write a video whose frame i shows :func:`colour` (i); ``pts_ms`` gives variable frame times."""
    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.gop_size = gop
        if codec == "libx264":
            # Fixed groups of pictures (no scene-cut key frames), with B-frames so that decode order != display order.
            stream.options = {"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=2"}
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for index in range(num_frames):
            image = np.empty((size[1], size[0], 3), np.uint8)
            image[:] = colour(index)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[index], Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def mdat_range(data: bytes) -> tuple[int, int]:
    """Byte range of the payload of the top-level 'mdat' box of an MP4 (the coded frames)."""
    offset = 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"mdat":
            return offset + 8, offset + size
        offset += size
    raise AssertionError("no mdat box")
