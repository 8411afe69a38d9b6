"""Trajectories: where each object is, how big, how turned and whether visible, frame by frame.

A track is float [T, 5] with columns (x, y, scale, angle, visible): the centre in pixels (y grows downwards),
the radius multiplier, the counter-clockwise angle in degrees, and 1.0 / 0.0. Each pair in
:data:`~vtr.data.synth.vocab.REVERSAL_PAIRS` is one trajectory played forwards and backwards, so the two clips
of such a pair have the same set of frames and the same mean frame: only temporal order tells them apart.
"""

from __future__ import annotations

import numpy as np

from vtr.data.synth.shapes import SHAPE_EXTENT
from vtr.data.synth.vocab import REVERSAL_PAIRS

TRACK_COLUMNS = ("x", "y", "scale", "angle", "visible")

GROW_SCALES = (0.6, 1.4)  # radius multiplier at the start and end of "grow"
_BOUNCES = 2  # ground contacts after the start, for "bounce"
_BLINK_FRAMES_PER_STATE = 8  # a clip of T frames blinks with T / 8 frames on, then off, ...
_MIN_TRAVEL = 0.5  # straight moves cover at least this fraction of the free space
_GAP = 1.15  # two objects' centres stay this many (summed, extent-scaled) radii apart

# The second action of each reversal pair is drawn as the first one reversed in time.
_REVERSED_OF: dict[str, str] = {second: first for first, second in REVERSAL_PAIRS}


def geometry_key(action: str) -> str:
    """The action whose trajectory ``action`` is drawn from: itself, or its reversal partner played backwards.

    Clips of a group draw geometry from a random stream keyed by this, so ``"move left"`` and ``"move right"``
    of one group share their endpoints.
    """
    return _REVERSED_OF.get(action, action)


def _free_range(size: int, radius: float, max_scale: float = 1.0) -> tuple[float, float]:
    """The interval of centre coordinates that keeps the object wholly inside the frame."""
    margin = radius * max_scale * SHAPE_EXTENT + 0.5
    lo, hi = margin, size - margin
    if hi < lo:  # the object is as large as the frame: keep it centred
        lo = hi = size / 2
    return lo, hi


_Column = float | np.ndarray  # one value for every frame, or one per frame


def _track(
    t_count: int, x: _Column, y: _Column, scale: _Column = 1.0, angle: _Column = 0.0, visible: _Column = 1.0
) -> np.ndarray:
    """Stack per-frame columns into a float [T, 5] track."""
    columns = [np.broadcast_to(np.asarray(c, dtype=np.float64), (t_count,)) for c in (x, y, scale, angle, visible)]
    return np.stack(columns, axis=1)


def _line(rng: np.random.Generator, lo: float, hi: float) -> tuple[float, float]:
    """A random segment [a, b] inside [lo, hi] covering at least _MIN_TRAVEL of it."""
    length = rng.uniform(_MIN_TRAVEL, 1.0) * (hi - lo)
    start = rng.uniform(lo, hi - length) if hi - lo > length else lo
    return start, start + length


def single_object_track(action: str, size: int, radius: float, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """The track of one object performing ``action`` (a name in ``ACTIONS``).

    Args:
        action: the action.
        size: frame side in pixels.
        radius: the object's radius in pixels at scale 1.
        num_frames: T.
        rng: geometry source; the same state gives the same track (see :func:`geometry_key`).

    Returns:
        float [T, 5] track.
    """
    key = geometry_key(action)
    s = np.linspace(0.0, 1.0, num_frames)  # [T] normalised time
    lo, hi = _free_range(size, radius)
    if key == "move right":
        a, b = _line(rng, lo, hi)
        track = _track(num_frames, a + (b - a) * s, rng.uniform(lo, hi))
    elif key == "move down":
        a, b = _line(rng, lo, hi)
        track = _track(num_frames, rng.uniform(lo, hi), a + (b - a) * s)
    elif key == "grow":
        glo, ghi = _free_range(size, radius, GROW_SCALES[1])
        scale = GROW_SCALES[0] + (GROW_SCALES[1] - GROW_SCALES[0]) * s
        track = _track(num_frames, rng.uniform(glo, ghi), rng.uniform(glo, ghi), scale)
    elif key == "rotate":
        turn = 180.0 * rng.choice([-1.0, 1.0])
        track = _track(num_frames, rng.uniform(lo, hi), rng.uniform(lo, hi), 1.0, turn * s)
    elif key == "bounce":
        height = rng.uniform(0.4, 0.8) * (hi - lo)
        y = hi - height * np.abs(np.sin(np.pi * _BOUNCES * s))
        track = _track(num_frames, rng.uniform(lo, hi), y)
    elif key == "blink":
        per_state = max(1, round(num_frames / _BLINK_FRAMES_PER_STATE))
        phase = int(rng.integers(0, 2))
        visible = ((np.arange(num_frames) // per_state + phase) % 2 == 0).astype(np.float64)
        track = _track(num_frames, rng.uniform(lo, hi), rng.uniform(lo, hi), visible=visible)
    elif key == "stay still":
        track = _track(num_frames, rng.uniform(lo, hi), rng.uniform(lo, hi))
    elif key == "fall":
        top = rng.uniform(lo, lo + 0.3 * (hi - lo))
        track = _track(num_frames, rng.uniform(lo, hi), top + (hi - top) * s**2)  # constant acceleration
    else:
        raise ValueError(f"unknown action {action!r}")
    return track[::-1].copy() if key != action else track


_DIRECTION_AXIS = {"move left": (0, -1.0), "move right": (0, 1.0), "move up": (1, -1.0), "move down": (1, 1.0)}


def relation_tracks(
    relation: str,
    size: int,
    subject_radius: float,
    target_radius: float,
    num_frames: int,
    rng: np.random.Generator,
    direction: str = "move right",
) -> tuple[np.ndarray, np.ndarray]:
    """Tracks of a subject and a target object related by ``relation`` (a name in ``RELATIONS``).

    ``chase``: both move along ``direction`` (a straight-move action), the subject a fixed gap behind.
    ``approach``: the target stays still; the subject moves straight towards it and stops short of it.
    ``move away from``: ``approach`` played backwards.

    Returns:
        (subject track, target track), each float [T, 5].
    """
    key = geometry_key(relation)
    s = np.linspace(0.0, 1.0, num_frames)  # [T]
    lo = max(_free_range(size, subject_radius)[0], _free_range(size, target_radius)[0])
    hi = min(_free_range(size, subject_radius)[1], _free_range(size, target_radius)[1])
    gap = _GAP * SHAPE_EXTENT * (subject_radius + target_radius)
    free = max(0.0, (hi - lo) - gap)  # room along the axis once the gap is taken
    if key == "chase":
        axis, sign = _DIRECTION_AXIS[direction]
    elif key == "approach":
        axis, sign = int(rng.integers(0, 2)), float(rng.choice([-1.0, 1.0]))
    else:
        raise ValueError(f"unknown relation {relation!r}")
    cross = rng.uniform(lo, hi)  # the coordinate both objects share on the other axis
    travel = rng.uniform(_MIN_TRAVEL, 1.0) * free
    offset = rng.uniform(0.0, free - travel)
    start = lo + offset if sign > 0 else hi - offset  # the subject's first position along the axis
    if key == "chase":
        subject_along = start + sign * travel * s
        target_along = subject_along + sign * gap
    else:
        subject_along = start + sign * travel * s
        target_along = np.full(num_frames, start + sign * (travel + gap))
    if axis == 0:
        subject, target = _track(num_frames, subject_along, cross), _track(num_frames, target_along, cross)
    else:
        subject, target = _track(num_frames, cross, subject_along), _track(num_frames, cross, target_along)
    if key != relation:
        subject, target = subject[::-1].copy(), target[::-1].copy()
    return subject, target
