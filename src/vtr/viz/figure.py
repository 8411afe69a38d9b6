"""What every figure shares: a pyplot-free ``Figure``, an atomic PNG write, and frames cut as the model sees them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vtr.fileio import atomic_write

DPI = 100  # pixels per inch of every PNG written here: a figure of W x H inches is W*DPI x H*DPI pixels


def new_figure(width: float, height: float) -> Any:
    """A ``matplotlib.figure.Figure`` of ``width`` x ``height`` inches with the constrained layout.

    Made without pyplot: no display is opened and the process's matplotlib backend is left alone.
    """
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save_png(figure: Any, path: str | Path) -> Path:
    """Write ``figure`` as a PNG of exactly its size (``figsize * DPI`` pixels) to ``path``, atomically."""
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI))


def square_crop(image: np.ndarray) -> np.ndarray:
    """The centred square of an ``[H, W, 3]`` image: the part of a frame the model sees (shorter side resized,
    then centre-cropped, :class:`vtr.video.FrameTransform`), at the frame's own resolution."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = round((height - side) / 2), round((width - side) / 2)
    return image[top : top + side, left : left + side]


def hide_ticks(axes: Any) -> None:
    """No ticks or tick labels (image panels)."""
    axes.set_xticks([])
    axes.set_yticks([])


def plain(text: str, limit: int | None = None) -> str:
    """``text`` as matplotlib should print it: cut to ``limit`` characters with an ellipsis, and with ``$`` escaped
    (two of them would otherwise start mathtext, and a caption such as "$5 to $10" would be typeset or fail)."""
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text.replace("$", r"\$")
