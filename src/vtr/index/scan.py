"""Find the video files under a folder and fingerprint them (size, modification time, content hash).

The fingerprint decides what an incremental indexing run must encode: size and mtime are compared first
because they cost nothing; the content hash is read only when they differ, so touching a file or copying it
back unchanged does not trigger a re-encode.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vtr.errors import VtrError

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp"}
)

# Read in 1 MiB blocks: large enough that hashing runs at disk speed, small enough to keep memory flat.
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class FileStat:
    """One video file found by :func:`scan_videos`.

    Attributes:
        path: absolute, resolved path of the file.
        size: size in bytes.
        mtime_ns: modification time in nanoseconds (``os.stat().st_mtime_ns``).
    """

    path: Path
    size: int
    mtime_ns: int


def is_video_file(path: str | Path) -> bool:
    """Whether ``path`` has one of the video extensions in :data:`VIDEO_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def scan_videos(root: str | Path, extensions: Iterable[str] = VIDEO_EXTENSIONS) -> list[FileStat]:
    """Every video file under ``root``, recursively, sorted by path so that runs are deterministic.

    Hidden files and folders (name starting with ``.``) are skipped: they hold editors' temporaries and, when
    the index folder lives inside the video folder, the index itself. Symbolic links to files are followed;
    links to folders are not (a link cycle would never end).

    Args:
        root: the folder to scan (a single video file is accepted too).
        extensions: file suffixes to accept, with the dot, lower case.

    Returns:
        One :class:`FileStat` per file, sorted by path.

    Raises:
        VtrError: ``root`` does not exist.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise VtrError(f"video folder {root} does not exist")
    accepted = {e.lower() for e in extensions}
    if root.is_file():
        candidates = [root] if root.suffix.lower() in accepted else []
    else:
        candidates = []
        for folder, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in accepted:
                    candidates.append(Path(folder) / name)
    found: dict[Path, FileStat] = {}  # keyed by resolved path: two links to one file are one video
    for path in candidates:
        try:
            resolved = path.resolve()
            stat = resolved.stat()
        except OSError:
            continue  # vanished between listing and stat, or a dangling link: not a video we can index
        if resolved.is_file():
            found[resolved] = FileStat(resolved, stat.st_size, stat.st_mtime_ns)
    return sorted(found.values(), key=lambda f: str(f.path))


def content_hash(path: str | Path) -> str:
    """BLAKE2b (128-bit digest) of the whole file, as hex.

    The whole file is hashed, not a sample of it: an edit in the middle of a video must change the hash.
    """
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
