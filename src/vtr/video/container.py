"""Opening a video file with PyAV, and turning every way that can fail into one :class:`VideoDecodeError`.

PyAV raises many exception types (``av.error.*``, ``OSError``, ``ValueError``, ``EOFError``, an ``IndexError``
for ``streams.video[0]`` on an audio-only file): callers catch :data:`AV_ERRORS` wherever a user's file is
read and hand the exception to :func:`decode_error`, which names the file and a cause on one line.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import av
import av.container
import av.video.stream

from vtr.errors import VideoDecodeError

# Everything PyAV and the file system raise while a user's file is opened, demuxed or decoded.
AV_ERRORS: tuple[type[BaseException], ...] = (
    av.error.FFmpegError,
    OSError,
    ValueError,
    EOFError,
    IndexError,
    RuntimeError,
)

# Top-level ISO-BMFF (MP4/MOV) boxes are read to explain why FFmpeg refused a file; a few are enough.
_MAX_BOXES = 64


@contextmanager
def open_video(path: str | Path) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """Open ``path`` for reading and yield ``(container, first video stream)``; the container is closed after.

    Raises:
        VideoDecodeError: the path is missing, empty, a folder, not a video, audio only, or has no decoder.
    """
    path = Path(path)
    _check_file(path)
    try:
        # A tag in a legacy encoding must not make a playable video unreadable.
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except AV_ERRORS as error:
        raise decode_error(path, error) from error
    with container:
        if not container.streams.video:
            kinds = sorted({stream.type for stream in container.streams})
            found = f" (found only {', '.join(kinds)})" if kinds else ""
            raise VideoDecodeError(path, f"no video stream{found}")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise VideoDecodeError(path, "no decoder for its video codec")
        yield container, stream


def decode_error(path: str | Path, error: BaseException) -> VideoDecodeError:
    """The :class:`VideoDecodeError` for an exception PyAV raised while reading ``path``: one line, with a cause."""
    path = Path(path)
    if isinstance(error, VideoDecodeError):
        return error
    if isinstance(error, av.error.InvalidDataError) and path.is_file():
        hint = _diagnose(path)
        if hint:
            return VideoDecodeError(path, hint)
    message = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return VideoDecodeError(path, one_line(f"{message} ({type(error).__name__})"))


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(text.split())


def _check_file(path: Path) -> None:
    # FFmpeg's messages for these cases are vague ("Invalid data found"); say what is wrong instead.
    if not path.exists():
        raise VideoDecodeError(path, "file not found")
    if path.is_dir():
        raise VideoDecodeError(path, "is a directory, not a video file")
    try:
        size = path.stat().st_size
    except OSError as error:
        raise decode_error(path, error) from error
    if size == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")


def _diagnose(path: Path) -> str | None:
    """A specific cause for a file FFmpeg could not parse: truncated MP4, missing index, text file; else None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
            size = path.stat().st_size
            if head[4:8] == b"ftyp":
                return _diagnose_mp4(handle, size)
    except OSError:
        return None
    if _looks_like_text(head):
        return "not a video: the file holds text"
    return "not a video, or a damaged file of an unknown format (FFmpeg found invalid data)"


def _diagnose_mp4(handle: BinaryIO, size: int) -> str:
    # An MP4 is a sequence of boxes (32-bit size, 4-byte type, optional 64-bit size). A box reaching past the
    # end of the file means the file was cut short; no 'moov' box means its index was never written.
    offset, seen = 0, []
    while offset < size and len(seen) < _MAX_BOXES:
        handle.seek(offset)
        header = handle.read(16)
        if len(header) < 8:
            break
        box_size, box_type = struct.unpack(">I4s", header[:8])
        name = box_type.decode("latin-1")
        if box_size == 1 and len(header) >= 16:
            box_size = struct.unpack(">Q", header[8:16])[0]
        elif box_size == 0:  # the box runs to the end of the file
            box_size = size - offset
        if box_size < 8:
            return f"damaged MP4: box '{name}' at byte {offset} has an invalid size"
        seen.append(name)
        if offset + box_size > size:
            return (
                f"truncated MP4: the file is {size} bytes but its '{name}' box needs {offset + box_size} "
                "(the copy or download was cut short)"
            )
        offset += box_size
    if "moov" not in seen:
        return "damaged MP4: no 'moov' index box (the recording was not finished, or the file is truncated)"
    return "damaged MP4: FFmpeg found invalid data in its boxes"


def _looks_like_text(data: bytes) -> bool:
    if not data:
        return False
    # "replace" turns bytes that are not UTF-8 into U+FFFD, which is not counted as text.
    text = data.decode("utf-8", errors="replace")
    printable = sum((ch.isprintable() and ch != "\ufffd") or ch in "\r\n\t" for ch in text)
    return printable / len(text) > 0.95
