"""Training-time crop jitter: one window per clip, inside the frame, of the asked area; wired into training clips
only, drawn from the item's seed; a bad config is refused before any work."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

from vtr.config import load_config
from vtr.data import EvalVideoDataset, TrainClipDataset, read_annotations
from vtr.errors import ConfigError
from vtr.train.loop import _augmentation
from vtr.video.augment import CropJitter


def coordinate_frames(num_frames: int, height: int, width: int) -> torch.Tensor:
    """int64 ``[T, 3, H, W]`` whose value says where it is: ``t * 1e6 + channel * 1e5 + row * 1e3 + column``."""
    t = torch.arange(num_frames).view(-1, 1, 1, 1) * 1_000_000
    c = torch.arange(3).view(1, -1, 1, 1) * 100_000
    r = torch.arange(height).view(1, 1, -1, 1) * 1_000
    x = torch.arange(width).view(1, 1, 1, -1)
    return t + c + r + x


def window_of(crop: torch.Tensor) -> tuple[int, int, int]:
    """(top, left, side) of a crop of :func:`coordinate_frames`."""
    corner = int(crop[0, 0, 0, 0])
    return corner // 1_000, corner % 1_000, crop.shape[-1]


def test_one_square_window_for_every_frame_of_a_clip() -> None:
    frames = coordinate_frames(5, 40, 60)
    crop = CropJitter(0.3, 0.9)(frames, random.Random(1))
    top, left, side = window_of(crop)
    assert crop.shape == (5, 3, side, side)
    assert torch.equal(crop, frames[..., top : top + side, left : left + side])  # every frame, every channel
    assert 0 <= top <= 40 - side and 0 <= left <= 60 - side


def test_window_area_and_place_cover_the_asked_range() -> None:
    frames = coordinate_frames(1, 64, 64)
    jitter = CropJitter(0.5, 1.0)
    windows = [window_of(jitter(frames, random.Random(seed))) for seed in range(400)]
    sides = {side for _, _, side in windows}
    assert min(sides) == round(64 * math.sqrt(0.5)) and max(sides) == 64  # both ends drawn
    assert all(round(64 * math.sqrt(0.5)) <= side <= 64 for side in sides)
    assert any(top == 0 for top, _, _ in windows) and any(top + side == 64 for top, _, side in windows)
    assert any(left == 0 for _, left, _ in windows) and any(left + side == 64 for _, left, side in windows)


def test_same_random_source_same_window_and_full_area_is_the_whole_square() -> None:
    frames = coordinate_frames(2, 32, 48)
    jitter = CropJitter(0.2, 0.8)
    assert torch.equal(jitter(frames, random.Random(7)), jitter(frames, random.Random(7)))
    assert len({window_of(jitter(frames, random.Random(s))) for s in range(20)}) > 10
    whole = CropJitter(1.0, 1.0)(frames, random.Random(0))  # the shorter side, at a random place along the longer
    assert whole.shape[-2:] == (32, 32)


@pytest.mark.parametrize("area", [(0.0, 1.0), (0.8, 0.5), (0.5, 1.2), (-0.1, 0.5)])
def test_bad_areas_are_refused(area: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="0 < min <= max <= 1"):
        CropJitter(*area)


def test_config_turns_it_on_and_checks_it() -> None:
    assert _augmentation(load_config().data) is None  # default [1, 1]: no augmentation, no random draw
    on = load_config(overrides=["data.augment.crop_area=[0.6,1.0]"]).data
    assert _augmentation(on) == CropJitter(0.6, 1.0)
    with pytest.raises(ConfigError, match="data.augment.crop_area"):
        _augmentation(load_config(overrides=["data.augment.crop_area=[0.0,1.0]"]).data)
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(overrides=["data.augment.flip=true"])


@pytest.fixture(scope="module")
def striped_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 4-frame 32 px videos whose every frame is a left-to-right grey ramp (a crop shows where it was cut)."""
    import av
    import numpy as np

    root = tmp_path_factory.mktemp("augment")
    ramp = np.repeat(np.repeat(np.linspace(0, 248, 32, dtype=np.uint8)[None, :, None], 32, 0), 3, 2)
    entries = []
    for i in range(2):
        path = root / "videos" / f"v{i}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=4)
            stream.width = stream.height = 32
            stream.pix_fmt = "yuv444p"
            stream.options = {"qp": "0"}
            for _ in range(4):
                for packet in stream.encode(av.VideoFrame.from_ndarray(ramp, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        entries.append({"video": f"videos/v{i}.mp4", "captions": [f"clip {i}"], "split": "train"})
    (root / "annotations.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    return root


def test_training_clips_are_cropped_reproducibly_and_evaluation_clips_never(striped_folder: Path) -> None:
    records = read_annotations(striped_folder)
    jitter = CropJitter(0.25, 0.5)
    plain = TrainClipDataset(records, 4, 16, seed=3)[0]["frames"]  # [T, 3, 16, 16]
    augmented = TrainClipDataset(records, 4, 16, seed=3, augment=jitter)
    first = augmented[0]
    assert first["frames"].shape == plain.shape
    assert torch.equal(first["frames"], augmented[0]["frames"])  # drawn from (seed, epoch, item): reproducible
    # A window of at most half the width shows part of the ramp: a smaller range of grey than the whole frame's.
    slope = lambda clip: float((clip[..., -1] - clip[..., 0]).mean())
    assert slope(first["frames"]) < 0.75 * slope(plain)
    # Every frame of the clip through the same window.
    assert torch.allclose(first["frames"], first["frames"][:1].expand_as(first["frames"]), atol=0.02)
    # Other epochs draw other windows.
    windows = set()
    for epoch in range(6):
        augmented.set_epoch(epoch)
        windows.add(round(float(augmented[0]["frames"][0, 0, 0, 0]), 2))
    assert len(windows) > 1
    # Evaluation shows the whole frame, as before.
    evaluated = EvalVideoDataset(records, 4, 16)[0]["frames"]
    assert torch.allclose(evaluated, plain, atol=0.02)  # plain training clips are whole frames, as evaluation's
