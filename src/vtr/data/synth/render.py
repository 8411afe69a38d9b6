"""Render a synthetic clip's frames from its ``meta`` alone (scene, objects, tracks, background seed).

The meta written to ``annotations.jsonl`` is enough to redraw a clip exactly, which is what the worker
processes do before encoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vtr.data.synth.scenes import render_scene
from vtr.data.synth.shapes import draw_shape
from vtr.data.synth.vocab import COLOURS, SIZES


def object_radius(size_name: str, frame_size: int) -> float:
    """An object's radius in pixels at scale 1."""
    return SIZES[size_name] * frame_size


def render_clip(meta: Mapping[str, Any]) -> np.ndarray:
    """Draw every frame of a clip.

    Args:
        meta: a clip's ``meta`` (keys ``size``, ``num_frames``, ``scene``, ``background_seed``, ``objects`` and
            ``tracks``; one track per object, one ``[x, y, scale, angle, visible]`` row per frame).

    Returns:
        uint8 [T, H, W, 3] RGB frames.
    """
    size, num_frames = int(meta["size"]), int(meta["num_frames"])
    background = render_scene(meta["scene"], size, int(meta["background_seed"]))  # [H, W, 3] float32
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)  # [T, H, W, 3]
    for t in range(num_frames):
        canvas = background.copy()
        for obj, track in zip(meta["objects"], meta["tracks"], strict=True):
            x, y, scale, angle, visible = track[t]
            if visible:
                radius = object_radius(obj["size"], size) * scale
                draw_shape(canvas, obj["shape"], COLOURS[obj["colour"]], x, y, radius, angle)
        frames[t] = np.clip(np.rint(canvas), 0, 255)
    return frames
