"""Which files the app may send: a video only at the path the index recorded, a thumbnail only from the index folder.

No path sent by a client is ever joined to a folder: clients name videos by integer id, and the paths come
from the index. These checks guard against what the index or the disk may hold since the index was built
(a file deleted or replaced by a folder, a symlink now pointing elsewhere, a thumbnail path leading out).
"""

from __future__ import annotations

import mimetypes
import os
import stat
from pathlib import Path

# Containers a browser may play; others are still served, with a type the browser can decide on.
_VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
    ".ogv": "video/ogg",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".ts": "video/mp2t",  # mimetypes may call .ts a TypeScript or Qt translation file
    ".3gp": "video/3gpp",
    ".wmv": "video/x-ms-wmv",
    ".flv": "video/x-flv",
}


class FileRefused(Exception):
    """The file cannot be served (missing, not a regular file, or outside where it may come from)."""


def regular_file(path: str | Path) -> tuple[Path, os.stat_result]:
    """Resolve ``path`` (following symlinks) and return it with its stat, if it is an existing regular file.

    Raises:
        FileRefused: if it does not exist, cannot be resolved, or is not a regular file.
    """
    try:
        resolved = Path(path).resolve(strict=True)
        info = resolved.stat()
    except (OSError, RuntimeError, ValueError) as error:  # RuntimeError: symlink loop; ValueError: NUL byte
        raise FileRefused(f"{path}: {error}") from error
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused(f"{path}: not a regular file")
    return resolved, info


def video_file(recorded: str | Path, collection_root: str | Path | None = None) -> tuple[Path, os.stat_result]:
    """The file to stream for a video: the path the index recorded, still a regular file.

    ``vtr index`` records canonical paths (symlinks resolved). Without ``collection_root``, the path must still
    be canonical: a symlink put in its place (or in place of a folder on its way) since indexing could lead
    anywhere, so it is refused. With ``collection_root``, symlinks are followed but must end inside that folder.

    Args:
        recorded: the video's path as stored in the index (absolute).
        collection_root: the folder the videos must lie in, when known.
    """
    recorded = Path(recorded)
    if not recorded.is_absolute():
        raise FileRefused(f"{recorded}: the index holds a relative path")
    resolved, info = regular_file(recorded)
    if collection_root is None:
        if resolved != recorded:
            raise FileRefused(f"{recorded}: now leads to {resolved} through a symlink; run `vtr index` again")
    elif not _inside(resolved, collection_root):
        raise FileRefused(f"{recorded}: resolves outside the indexed folder {collection_root}")
    return resolved, info


def thumbnail_file(recorded: str | Path | None, index_dir: str | Path | None) -> tuple[Path, os.stat_result]:
    """The file to send for a thumbnail: inside the index folder (after resolving symlinks), a regular file.

    Args:
        recorded: the thumbnail path the index holds, absolute or relative to ``index_dir``.
        index_dir: the index folder; without it no thumbnail is served.
    """
    if recorded is None or str(recorded) == "" or index_dir is None:
        raise FileRefused("no thumbnail")
    root = Path(index_dir)
    candidate = Path(recorded)
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved, info = regular_file(candidate)
    if not _inside(resolved, root):
        raise FileRefused(f"{recorded}: outside the index folder {root}")
    return resolved, info


def media_type(path: Path) -> str:
    """The Content-Type to send for ``path``."""
    suffix = path.suffix.lower()
    if suffix in _VIDEO_TYPES:
        return _VIDEO_TYPES[suffix]
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _inside(resolved: Path, root: str | Path) -> bool:
    try:
        root_resolved = Path(root).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return False
    return resolved == root_resolved or resolved.is_relative_to(root_resolved)
