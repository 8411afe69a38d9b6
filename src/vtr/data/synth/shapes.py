"""Shape masks from coordinate grids, and drawing one shape onto a frame with anti-aliased edges (plain numpy).

A shape is a predicate over object-local coordinates ``(u, v)``: the object's centre at the origin, its
radius as the unit, ``v`` pointing up. Every shape fits inside ``u**2 + v**2 <= SHAPE_EXTENT**2``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# Every shape lies within this many radii of its centre (the triangle's apex is the farthest point).
SHAPE_EXTENT = 1.1

# Sub-pixel samples per axis: a pixel's coverage is the mean of SUPERSAMPLE**2 point tests.
SUPERSAMPLE = 3

_STAR_POINTS = 5
_STAR_INNER = 0.45  # inner vertices' radius, as a fraction of the outer radius
_TRIANGLE_CIRCUMRADIUS = 1.1
_RING_INNER = 0.55


def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v <= 1.0


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.8


def _rectangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (np.abs(u) <= 1.0) & (np.abs(v) <= 0.5)


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Equilateral, apex up, centroid at the origin: inside all three edges, each at the inradius (R / 2)
    # along its outward normal (normals at -90, 30 and 150 degrees).
    inside = np.ones(u.shape, dtype=bool)
    for degrees in (-90.0, 30.0, 150.0):
        theta = math.radians(degrees)
        inside &= u * math.cos(theta) + v * math.sin(theta) <= _TRIANGLE_CIRCUMRADIUS / 2
    return inside


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Fold every point into the wedge between an outer vertex (angle 0, radius 1) and the next inner vertex
    # (angle pi/5, radius _STAR_INNER), with the first outer vertex pointing up; inside means on the origin's
    # side of the edge joining the two vertices.
    sector = 2 * math.pi / _STAR_POINTS
    phi = np.mod(np.arctan2(v, u) - math.pi / 2 + sector / 2, sector) - sector / 2
    phi = np.abs(phi)
    r = np.hypot(u, v)
    px, py = r * np.cos(phi), r * np.sin(phi)
    ox, oy = 1.0, 0.0
    ix, iy = _STAR_INNER * math.cos(sector / 2), _STAR_INNER * math.sin(sector / 2)
    # Cross product of (inner - outer) with (point - outer); the origin gives a positive value.
    cross = (ix - ox) * (py - oy) - (iy - oy) * (px - ox)
    return cross >= 0


def _diamond(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Taller than wide, so that it is not a square turned by 45 degrees.
    return np.abs(u) / 0.72 + np.abs(v) <= 1.0


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.32) & (av <= 0.95)) | ((av <= 0.32) & (au <= 0.95))


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # The classic implicit heart (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, which spans x in [-1.14, 1.14] and
    # y in [-1, 1.24]; scaled and shifted so that it is centred and fits the unit disc.
    x = u * 1.18
    y = v * 1.18 + 0.12
    return (x * x + y * y - 1.0) ** 3 - x * x * y**3 <= 0.0


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r2 = u * u + v * v
    return (r2 <= 1.0) & (r2 >= _RING_INNER**2)


SHAPE_MASKS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "star": _star,
    "diamond": _diamond,
    "cross": _cross,
    "heart": _heart,
    "ring": _ring,
    "rectangle": _rectangle,
}


def draw_shape(
    canvas: np.ndarray,
    shape: str,
    colour: tuple[int, int, int],
    cx: float,
    cy: float,
    radius: float,
    angle: float = 0.0,
) -> None:
    """Draw a filled shape onto ``canvas`` in place, with its edge pixels blended by coverage.

    Args:
        canvas: float32 [H, W, 3] RGB in 0..255.
        shape: a key of :data:`SHAPE_MASKS`.
        colour: RGB in 0..255.
        cx: centre column in pixels (pixel ``i`` covers ``[i, i + 1)``).
        cy: centre row in pixels, growing downwards.
        radius: the shape's radius in pixels.
        angle: counter-clockwise rotation in degrees, as seen on screen.
    """
    if radius <= 0:
        return
    height, width = canvas.shape[:2]
    reach = radius * SHAPE_EXTENT + 1.0
    x0, x1 = max(0, math.floor(cx - reach)), min(width, math.ceil(cx + reach))
    y0, y1 = max(0, math.floor(cy - reach)), min(height, math.ceil(cy + reach))
    if x0 >= x1 or y0 >= y1:
        return
    offsets = (np.arange(SUPERSAMPLE, dtype=np.float32) + 0.5) / SUPERSAMPLE
    xs = (np.arange(x0, x1, dtype=np.float32)[:, None] + offsets).reshape(-1) - cx  # [w * ss]
    ys = cy - (np.arange(y0, y1, dtype=np.float32)[:, None] + offsets).reshape(-1)  # [h * ss], up is positive
    dx, dy = np.meshgrid(xs, ys)  # [h * ss, w * ss]
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    # Rotating the object by +theta is sampling its mask at the point rotated by -theta.
    u = (dx * cos + dy * sin) / radius
    v = (-dx * sin + dy * cos) / radius
    inside = SHAPE_MASKS[shape](u, v).astype(np.float32)
    alpha = inside.reshape(y1 - y0, SUPERSAMPLE, x1 - x0, SUPERSAMPLE).mean(axis=(1, 3))[..., None]  # [h, w, 1]
    region = canvas[y0:y1, x0:x1]
    region *= 1.0 - alpha
    region += alpha * np.asarray(colour, dtype=np.float32)
