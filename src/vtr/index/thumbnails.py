"""JPEG thumbnails of videos and moments, kept in the index folder under ``thumbs/<video id>/``.

Thumbnails are written before the video's row is committed and named by the video id, which a rolled-back
transaction hands out again: a run killed between the two simply rewrites them. They are written to a
temporary name and renamed (a reader never sees half a JPEG) but not fsynced: unlike the SQLite store they
can be regenerated, and an fsync per moment would dominate the cost of indexing short clips.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import torch
from PIL import Image

THUMBS_DIR = "thumbs"
# Longest side of a thumbnail in pixels: sharp in a result list, about 10-20 KB as JPEG.
THUMBNAIL_SIZE = 320
_JPEG_QUALITY = 85


def thumbnail_name(video_id: int, moment: int | None = None) -> str:
    """Path of a thumbnail relative to the index folder: the video's (``moment=None``) or one moment's."""
    leaf = "video.jpg" if moment is None else f"m{moment:05d}.jpg"
    return f"{THUMBS_DIR}/{video_id}/{leaf}"


def jpeg_thumbnail(frame: torch.Tensor, max_side: int = THUMBNAIL_SIZE) -> bytes:
    """One frame, uint8 ``[3, H, W]``, as JPEG bytes whose longest side is at most ``max_side`` pixels."""
    image = Image.fromarray(frame.permute(1, 2, 0).contiguous().numpy())  # [H, W, 3]
    image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=_JPEG_QUALITY)
    return buffer.getvalue()


def write_thumbnail(index_dir: str | Path, name: str, jpeg: bytes) -> Path:
    """Write JPEG bytes to ``name`` (from :func:`thumbnail_name`) in the index folder: temporary name, then rename."""
    path = Path(index_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(jpeg)
    os.replace(tmp, path)
    return path


def remove_thumbnails(index_dir: str | Path, video_id: int) -> None:
    """Delete the thumbnail folder of one video, if it exists."""
    shutil.rmtree(Path(index_dir) / THUMBS_DIR / str(video_id), ignore_errors=True)


def remove_orphan_thumbnails(index_dir: str | Path, live_ids: set[int]) -> int:
    """Delete thumbnail folders of videos that are not in the index (left by a killed run); returns how many."""
    root = Path(index_dir) / THUMBS_DIR
    if not root.is_dir():
        return 0
    removed = 0
    for child in root.iterdir():
        if child.is_dir() and (not child.name.isdigit() or int(child.name) not in live_ids):
            shutil.rmtree(child, ignore_errors=True)
            removed += 1
    return removed
