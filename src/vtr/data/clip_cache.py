"""Decoded short clips kept on disk, so that a data set is decoded once rather than once an epoch.

Switched on by ``data.decoded_cache: true``. Each short video (at most :data:`MAX_FRAMES` frames and
:data:`MAX_BYTES` of RGB pixels) is decoded whole the first time any process reads it and written to
``<data root>/.vtr_cache/decoded/`` (or to the run folder when the data folder is read-only) as an uncompressed
``.npz`` (write, fsync, rename: a killed job never leaves half a file, and DataLoader workers that race on one
video write the same bytes). Later reads sample from the kept frames with :func:`vtr.video.decoded.sample_decoded`,
which gives the same frames as decoding the file. Longer videos, and videos with corrupt packets, are sampled from
the file as before (a small marker remembers them, so they are not decoded whole again).

An entry is named by the video's absolute path, size and modification time: a changed file gets a new entry, and
the old one is never read again (delete the folder to reclaim the space).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import zipfile
from pathlib import Path

from vtr.fileio import atomic_write, atomic_write_bytes
from vtr.video import SampledFrames, sample_frames
from vtr.video.decoded import DecodedVideo, decode_video, sample_decoded
from vtr.video.sampling import SampleMode

logger = logging.getLogger(__name__)

MAX_FRAMES = 256  # longer videos are sampled from the file: seeking beats reading many kept frames
MAX_BYTES = 32 << 20  # RGB bytes of one video
_FORMAT = 1  # bump when the entry layout changes: old entries are then ignored


def cache_folder(data_root: str | Path, fallback: str | Path, name: str) -> Path:
    """``<data root>/.vtr_cache/<name>`` when it can be written, else ``<fallback>/<name>`` (made on demand).

    The data root itself must exist; ``name`` may be empty (the cache folder itself).
    """
    cache = Path(data_root) / ".vtr_cache"
    folder = cache / name if name else cache
    try:
        cache.mkdir(exist_ok=True)
        folder.mkdir(exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    folder = Path(fallback) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class DecodedClipCache:
    """Samples frames of a video like :func:`vtr.video.sample_frames`, from frames decoded once and kept on disk.

    Args:
        folder: where entries are kept (see :func:`cache_folder`).
        max_frames: videos with more frames are not kept.
        max_bytes: videos with more RGB bytes are not kept.
    """

    def __init__(self, folder: str | Path, max_frames: int = MAX_FRAMES, max_bytes: int = MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_frames = max_frames
        self.max_bytes = max_bytes

    def sample(
        self,
        path: str | Path,
        num_frames: int,
        *,
        mode: SampleMode = "middle",
        rng: random.Random | None = None,
        keyframes: bool = False,
    ) -> SampledFrames:
        """The frames :func:`vtr.video.sample_frames` gives for the same arguments.

        Raises:
            VideoDecodeError: the file cannot be decoded (nothing is kept for it).
            OSError: the file cannot be read.
        """
        if keyframes:  # key-frame sampling of a long video is what seeking is for
            return sample_frames(path, num_frames, mode=mode, rng=rng, keyframes=True)
        entry = self._entry(path)
        skipped = entry.with_suffix(".skip")
        if skipped.exists():
            return sample_frames(path, num_frames, mode=mode, rng=rng)
        video = self._read(entry)
        if video is None:
            video = decode_video(path, self.max_frames, self.max_bytes)
            if video is None:
                atomic_write_bytes(skipped, b"")
                return sample_frames(path, num_frames, mode=mode, rng=rng)
            atomic_write(entry, video.save)
        return sample_decoded(video, num_frames, mode=mode, rng=rng)

    def _entry(self, path: str | Path) -> Path:
        resolved = Path(path).resolve()
        stat = resolved.stat()  # OSError for a missing file, as decoding it would raise
        key = f"{_FORMAT}\0{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}"
        return self.folder / f"{hashlib.sha1(key.encode('utf-8')).hexdigest()}.npz"

    @staticmethod
    def _read(entry: Path) -> DecodedVideo | None:
        try:
            return DecodedVideo.load(entry)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:  # damaged: decode again, replace it
            logger.warning("ignoring a damaged decoded-clip entry %s (%s)", entry, error)
            return None
