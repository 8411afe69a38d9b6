"""The generic data set format: a folder with ``annotations.jsonl``, one JSON object per line and per video.

Each line reads ``{"video": "<path relative to the folder>", "captions": ["...", ...], "split": "train",
"meta": {...}}``; ``meta`` is optional. :func:`read_annotations` validates every line and raises
:class:`~vtr.errors.DataFormatError` naming the file and line of the first problems it finds;
:func:`parse_annotations` collects every problem instead (``vtr data check`` reports them all).
"""

from __future__ import annotations

import json
import ntpath
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtr.errors import DataFormatError

ANNOTATIONS_FILE = "annotations.jsonl"
SPLITS = ("train", "val", "test")
REQUIRED_KEYS = ("video", "captions", "split")
OPTIONAL_KEYS = ("meta",)

# How many problems a DataFormatError lists before it says "and N more"; the rest are in `vtr data check`.
_MAX_PROBLEMS_IN_MESSAGE = 5


@dataclass(frozen=True)
class VideoRecord:
    """One video of a data set and its captions.

    Attributes:
        video: the path relative to the data set folder, normalised (``./a/../b.mp4`` becomes ``b.mp4``).
        path: the absolute path of the video file (it may not exist; ``vtr data check`` says so).
        captions: the captions, in file order; may be empty (a video with no captions gives no query).
        split: ``"train"``, ``"val"`` or ``"test"``.
        meta: anything else the data set records about the video (ground truth, source, ids).
        line: the 1-based line of ``annotations.jsonl`` that holds this record.
    """

    video: str
    path: Path
    captions: tuple[str, ...]
    split: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    line: int = 0


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a line of an annotations file.

    Attributes:
        line: 1-based line number (0 when the problem concerns the whole file).
        code: a short machine-readable kind (``"json"``, ``"missing_key"``, ``"bad_path"``, ...).
        message: what is wrong and what to do, in words.
        severity: ``"error"`` (the line cannot be used) or ``"warning"`` (it can, but looks wrong).
        video: the ``video`` field of the line when it could be read, else ``None``.
    """

    line: int
    code: str
    message: str
    severity: str = "error"
    video: str | None = None


def annotations_path(root: str | Path) -> Path:
    """The annotations file of a data set: ``root/annotations.jsonl``, or ``root`` itself when it is a file."""
    root = Path(root)
    if root.is_file():
        return root
    if not root.exists():
        raise DataFormatError(f"data set folder {root} does not exist")
    path = root / ANNOTATIONS_FILE
    if not path.is_file():
        raise DataFormatError(
            f"{root} has no {ANNOTATIONS_FILE}: a data set is a folder with one JSON line per video "
            '({"video": "videos/a.mp4", "captions": ["..."], "split": "train"})'
        )
    return path


def normalise_video_path(video: str) -> str:
    """The relative path ``video`` in normal form, or raise ValueError if it is absolute or leaves the folder.

    The test is lexical (no file system access), so a folder of symlinks to videos elsewhere stays valid.
    """
    if not video or not video.strip():
        raise ValueError("is empty")
    if "\x00" in video:
        raise ValueError("contains a NUL character")
    # String tests, not pathlib: this runs once per line of annotation files with millions of lines.
    windows_like = "\\" in video or ":" in video  # only such paths need the (slower) Windows reading
    if video.startswith("/") or (windows_like and (ntpath.isabs(video) or ntpath.splitdrive(video)[0])):
        raise ValueError("is absolute; give the path relative to the data set folder")
    normal = posixpath.normpath(video)
    if normal == "." or video.endswith("/"):
        raise ValueError("names a folder, not a file")
    # Backslashes are separators on Windows: refuse a path that escapes under either reading.
    windows = ntpath.normpath(video) if windows_like else normal
    if normal == ".." or normal.startswith("../") or windows == ".." or windows.startswith("..\\"):
        raise ValueError("leaves the data set folder (..)")
    return normal


def _check_line(obj: Any, line: int) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Validate one decoded line; returns the cleaned fields (None if unusable) and the problems found."""
    if not isinstance(obj, dict):
        return None, [Problem(line, "not_object", f"expected a JSON object, got {type(obj).__name__}")]
    problems: list[Problem] = []
    video_field = obj.get("video")
    video_name = video_field if isinstance(video_field, str) else None
    missing = [key for key in REQUIRED_KEYS if key not in obj]
    if missing:
        problems.append(
            Problem(line, "missing_key", f"missing key(s) {', '.join(missing)}", video=video_name),
        )
    unknown = sorted(set(obj) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        problems.append(
            Problem(
                line,
                "unknown_key",
                f'unknown key(s) {", ".join(unknown)} ignored (put extra fields under "meta")',
                severity="warning",
                video=video_name,
            )
        )

    video = None
    if "video" in obj:
        if not isinstance(video_field, str):
            problems.append(Problem(line, "bad_type", f'"video" must be a string, got {video_field!r}'))
        else:
            try:
                video = normalise_video_path(video_field)
            except ValueError as error:
                problems.append(Problem(line, "bad_path", f'"video" path {video_field!r} {error}', video=video_name))

    captions = None
    if "captions" in obj:
        raw = obj["captions"]
        if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
            problems.append(
                Problem(line, "bad_type", f'"captions" must be a list of strings, got {raw!r:.80}', video=video_name)
            )
        else:
            captions = tuple(raw)
            for i, caption in enumerate(captions):
                if not caption.strip():
                    problems.append(
                        Problem(line, "empty_caption", f"caption {i} is empty; remove it or write it", video=video_name)
                    )

    split = None
    if "split" in obj:
        split = obj["split"]
        if split not in SPLITS:
            problems.append(
                Problem(
                    line, "bad_split", f'"split" is {split!r}; expected one of {", ".join(SPLITS)}', video=video_name
                )
            )

    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        problems.append(Problem(line, "bad_type", f'"meta" must be an object, got {meta!r:.80}', video=video_name))

    if any(p.severity == "error" for p in problems):
        return None, problems
    return {"video": video, "captions": captions, "split": split, "meta": meta}, problems


def _numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The lines of ``path`` as bytes with their 1-based numbers; a read failure becomes a DataFormatError."""
    try:
        with open(path, "rb") as handle:
            yield from enumerate(handle, start=1)
    except OSError as error:
        raise DataFormatError(f"cannot read {path}: {error.strerror or error}") from None


def parse_annotations(root: str | Path) -> tuple[list[VideoRecord], list[Problem]]:
    """Read every line of a data set's annotations, collecting problems instead of stopping at the first.

    Lines with an error are left out of the records; blank lines are skipped. A video listed twice is an
    error on the second line (a video must belong to one split, and evaluation counts it once); the same
    caption twice for one video is a warning.

    Args:
        root: the data set folder (or its ``annotations.jsonl`` file).

    Returns:
        The valid records in file order, and every problem found (errors and warnings).

    Raises:
        DataFormatError: the folder or its annotations file does not exist or cannot be read.
    """
    path = annotations_path(root)
    folder = path.parent.resolve()
    records: list[VideoRecord] = []
    problems: list[Problem] = []
    first_line_of: dict[str, int] = {}
    for number, raw in _numbered_lines(path):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # tolerate a byte-order mark
        except UnicodeDecodeError as error:
            problems.append(Problem(number, "encoding", f"not UTF-8 ({error.reason} at byte {error.start})"))
            continue
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as error:
            problems.append(Problem(number, "json", f"not valid JSON ({error.msg} at column {error.colno})"))
            continue
        fields, line_problems = _check_line(obj, number)
        problems.extend(line_problems)
        if fields is None:
            continue
        video = fields["video"]
        if video in first_line_of:
            problems.append(
                Problem(
                    number,
                    "duplicate_video",
                    f"video {video} is already listed on line {first_line_of[video]}; list each video once "
                    "with all its captions",
                    video=video,
                )
            )
            continue
        first_line_of[video] = number
        seen: set[str] = set()
        for caption in fields["captions"]:
            if caption in seen:
                problems.append(
                    Problem(number, "duplicate_caption", f"caption {caption!r:.60} appears twice", "warning", video)
                )
            seen.add(caption)
        records.append(
            VideoRecord(
                video=video,
                path=folder / video,
                captions=fields["captions"],
                split=fields["split"],
                meta=fields["meta"],
                line=number,
            )
        )
    return records, problems


def format_problem(path: str | Path, problem: Problem) -> str:
    """One line naming the file and line: ``data/annotations.jsonl:3: videos/a.mp4: missing key(s) split``."""
    where = f"{path}:{problem.line}" if problem.line else str(path)
    subject = f" {problem.video}:" if problem.video else ""
    return f"{where}:{subject} {problem.message}"


def read_annotations(root: str | Path, split: str | None = None) -> list[VideoRecord]:
    """Read and validate a data set's ``annotations.jsonl``.

    Args:
        root: the data set folder (or its ``annotations.jsonl`` file).
        split: keep only this split (``"train"``, ``"val"`` or ``"test"``); ``None`` keeps all.

    Returns:
        The records of the split, in file order. Video files are not opened (``vtr data check`` does that).

    Raises:
        DataFormatError: a line is not valid JSON, lacks a key, has a wrong type, an absolute path or one
            that leaves the folder, an unknown split, an empty caption, or repeats a video; the message names
            the file and the line of each problem (the first few of them).
    """
    if split is not None and split not in SPLITS:
        raise DataFormatError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    path = annotations_path(root)
    records, problems = parse_annotations(path)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        shown = "; ".join(format_problem(path, p) for p in errors[:_MAX_PROBLEMS_IN_MESSAGE])
        more = len(errors) - _MAX_PROBLEMS_IN_MESSAGE
        suffix = f"; and {more} more (run `vtr data check {path.parent}` for all)" if more > 0 else ""
        raise DataFormatError(f"{shown}{suffix}")
    if split is not None:
        records = [r for r in records if r.split == split]
    return records
