"""Scene backgrounds: a textured RGB image per scene, drawn in numpy from a seed.

Textures are defined on coordinates normalised to the frame side, so a scene looks alike at 32 and 256 pixels.
All clips of a group share one background (same scene, same seed), so that they differ only in what the
group varies.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_TAU = 2.0 * np.pi


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1]: x grows rightwards, y downwards; each [size, size]."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = np.meshgrid(coords, coords)
    return x, y


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid, bilinearly upsampled to [size, size]."""
    coarse = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1)).astype(np.float32)
    pos = (np.arange(size, dtype=np.float32) + 0.5) / size * cells
    i = np.minimum(pos.astype(int), cells - 1)
    f = pos - i
    rows = coarse[i] * (1 - f)[:, None] + coarse[i + 1] * f[:, None]  # [size, cells + 1]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _tint(base: tuple[float, float, float], shade: np.ndarray, gain: tuple[float, float, float]) -> np.ndarray:
    """``base + shade * gain`` per channel: [H, W] shade -> [H, W, 3] image."""
    return np.asarray(base, dtype=np.float32) + shade[..., None] * np.asarray(gain, dtype=np.float32)


def _grassy_field(rng: np.random.Generator, size: int) -> np.ndarray:
    # Blades: per-pixel noise averaged over a few rows, so that streaks run vertically.
    blades = rng.normal(size=(size + 3, size)).astype(np.float32)
    blades = (blades[:-3] + blades[1:-2] + blades[2:-1] + blades[3:]) / 4
    shade = 14 * blades + 12 * _smooth_noise(rng, size, 3)
    return _tint((70, 140, 45), shade, (0.6, 1.0, 0.4))


def _desert(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _grid(size)
    phase = rng.uniform(0, _TAU)
    dunes = np.sin(_TAU * (2.5 * y + 0.25 * np.sin(_TAU * 1.3 * x + phase)))
    grain = rng.normal(size=(size, size)).astype(np.float32)
    shade = 16 * dunes + 5 * grain
    return _tint((210, 180, 120), shade, (1.0, 0.9, 0.7))


def _ocean(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _grid(size)
    phase = rng.uniform(0, _TAU)
    waves = np.sin(_TAU * (6.0 * y + 0.35 * np.sin(_TAU * 2.0 * x + phase)))
    shade = 18 * np.clip(waves, 0.3, 1.0) - 20 * y + 6 * rng.normal(size=(size, size)).astype(np.float32)
    return _tint((25, 80, 150), shade, (0.6, 0.9, 1.0))


def _night_sky(rng: np.random.Generator, size: int) -> np.ndarray:
    _, y = _grid(size)
    image = _tint((12, 16, 50), 18 * y, (0.5, 0.6, 1.0))
    n_stars = max(3, size * size // 70)
    rows, cols = rng.integers(0, size, n_stars), rng.integers(0, size, n_stars)
    brightness = rng.uniform(150, 255, n_stars).astype(np.float32)
    image[rows, cols] = brightness[:, None] * np.array([1.0, 1.0, 0.9], dtype=np.float32)
    return image


def _snow(rng: np.random.Generator, size: int) -> np.ndarray:
    speckle = rng.normal(size=(size, size)).astype(np.float32)
    shade = 6 * speckle + 10 * _smooth_noise(rng, size, 4)
    return _tint((225, 230, 240), shade, (0.9, 0.95, 1.0))


def _brick_wall(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _grid(size)
    rows_per_frame, bricks_per_row = 7, 4
    row = np.floor(y * rows_per_frame).astype(int)
    shifted = x * bricks_per_row + 0.5 * (row % 2)
    col = np.floor(shifted).astype(int)
    brick_shade = rng.uniform(-20, 20, size=(rows_per_frame + 1, bricks_per_row + 2)).astype(np.float32)
    image = _tint(
        (155, 60, 40), brick_shade[row, col] + 4 * rng.normal(size=(size, size)).astype(np.float32), (1.0, 0.6, 0.5)
    )
    # Mortar: bands at each row's top and each brick's left edge, a tenth of a brick but at least one pixel
    # (one pixel spans rows_per_frame / size of a brick row, bricks_per_row / size of a brick).
    row_band = max(0.12, rows_per_frame / size)
    col_band = max(0.06, bricks_per_row / size)
    mortar = ((y * rows_per_frame) % 1.0 < row_band) | ((shifted % 1.0) < col_band)
    image[mortar] = (195, 190, 180)
    return image


def _road(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _grid(size)
    grain = rng.normal(size=(size, size)).astype(np.float32)
    image = _tint((82, 82, 88), 10 * grain + 6 * _smooth_noise(rng, size, 3), (1.0, 1.0, 1.0))
    # A dashed lane marking across the middle, in a light grey no object colour matches.
    lane = (np.abs(y - rng.uniform(0.45, 0.55)) < 0.02) & ((x * 4 + rng.uniform(0, 1)) % 1.0 < 0.5)
    image[lane] = (185, 185, 170)
    return image


def _wooden_floor(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _grid(size)
    planks = 6
    plank = np.floor(y * planks).astype(int)
    plank_shade = rng.uniform(-18, 18, size=planks + 1).astype(np.float32)
    phases = rng.uniform(0, _TAU, size=planks + 1).astype(np.float32)
    grain = np.sin(_TAU * (3.0 * x + 0.15 * np.sin(_TAU * 5.0 * x)) * 2 + phases[plank])
    image = _tint((150, 100, 55), plank_shade[plank] + 8 * grain, (1.0, 0.8, 0.6))
    image[(y * planks) % 1.0 < max(0.07, planks / size)] = (70, 45, 25)  # gaps between planks, at least 1 pixel
    return image


SCENE_PAINTERS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "grassy field": _grassy_field,
    "desert": _desert,
    "ocean": _ocean,
    "night sky": _night_sky,
    "snow": _snow,
    "brick wall": _brick_wall,
    "road": _road,
    "wooden floor": _wooden_floor,
}


def render_scene(scene: str, size: int, seed: int) -> np.ndarray:
    """The background of ``scene`` as float32 [size, size, 3] RGB in 0..255, the same for the same seed."""
    rng = np.random.default_rng(seed)
    image = SCENE_PAINTERS[scene](rng, size)
    return np.clip(image, 0, 255).astype(np.float32)
