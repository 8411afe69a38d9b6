"""``vtr data check``: find everything wrong with a data set folder before a long job trips over it.

Errors (the data set cannot be used as it is): annotation lines that do not follow the format, missing
video files, empty or undecodable videos, empty captions, videos listed twice. Warnings (usable, but look
wrong): a video without captions, the same caption twice for one video, a very short video, corrupt packets
skipped while decoding, unknown keys, a split with no videos.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vtr.data.annotations import SPLITS, VideoRecord, annotations_path, parse_annotations
from vtr.errors import VideoDecodeError

DEFAULT_MIN_DURATION = 1.0  # seconds; below this, a clip is too short for the frames a model samples


@dataclass(frozen=True)
class Issue:
    """One finding of the check.

    Attributes:
        severity: ``"error"`` or ``"warning"``.
        code: machine-readable kind: ``json``, ``missing_key``, ``bad_type``, ``bad_path``, ``bad_split``,
            ``not_object``, ``encoding``, ``empty_caption``, ``duplicate_video``, ``missing_file``,
            ``empty_file``, ``undecodable`` (errors); ``no_captions``, ``duplicate_caption``, ``short_video``,
            ``corrupt_packets``, ``unknown_key``, ``empty_split`` (warnings).
        message: what is wrong, in words.
        line: the line of ``annotations.jsonl`` (0 when the finding concerns the whole data set).
        video: the video's path as written in the annotations (normalised), when known.
        path: the absolute path of the file at fault (the video, or the annotations file for format problems).
    """

    severity: str
    code: str
    message: str
    line: int = 0
    video: str | None = None
    path: str | None = None


@dataclass
class CheckReport:
    """What ``check_dataset`` found.

    Attributes:
        root: the data set folder.
        annotations: its annotations file.
        num_videos: valid annotation lines (videos), whether or not their files decode.
        num_captions: captions over those videos.
        splits: per split, ``{"videos": n, "captions": m}``.
        decoded: whether video files were decoded (False with ``decode=False``: existence and size only).
        issues: every finding, errors and warnings, in annotation order.
    """

    root: Path
    annotations: Path
    num_videos: int = 0
    num_captions: int = 0
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    decoded: bool = True
    issues: list[Issue] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        """The findings that make the data set unusable as it is."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """The findings that do not stop the data set being used."""
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def bad_files(self) -> list[str]:
        """Absolute paths of the video files with an error, each once, in annotation order."""
        files = [i.path for i in self.errors if i.path and i.path != str(self.annotations)]
        return list(dict.fromkeys(files))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: counts, per split counts, errors and warnings (what ``--json`` prints)."""
        return {
            "root": str(self.root),
            "annotations": str(self.annotations),
            "ok": self.ok,
            "decoded": self.decoded,
            "num_videos": self.num_videos,
            "num_captions": self.num_captions,
            "splits": self.splits,
            "num_errors": len(self.errors),
            "num_warnings": len(self.warnings),
            "bad_files": self.bad_files(),
            "errors": [asdict(i) for i in self.errors],
            "warnings": [asdict(i) for i in self.warnings],
        }

    def format_text(self) -> str:
        """Human-readable report: one line per finding, then a summary line."""
        lines = []
        for issue in self.issues:
            where = f"{self.annotations.name}:{issue.line}" if issue.line else self.annotations.name
            subject = f" {issue.video}:" if issue.video else ""
            lines.append(f"{issue.severity}: {where}:{subject} {issue.message}")
        per_split = ", ".join(f"{name} {counts['videos']}" for name, counts in self.splits.items())
        verdict = "OK" if self.ok else "FAILED"
        checked = "" if self.decoded else " (files not decoded: --no-decode)"
        lines.append(
            f"{verdict}: {self.root}: {_count(self.num_videos, 'video')} ({per_split}), "
            f"{_count(self.num_captions, 'caption')}; {_count(len(self.errors), 'error')}, "
            f"{_count(len(self.warnings), 'warning')}{checked}"
        )
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def check_video_file(path: str | Path, decode: bool = True, min_duration: float = DEFAULT_MIN_DURATION) -> list[Issue]:
    """Findings about one video file: missing, empty, undecodable (probe plus decoding one frame), very short.

    Args:
        path: the video file.
        decode: probe the file and decode one frame; with False, only existence and size are checked.
        min_duration: a video shorter than this many seconds gets a ``short_video`` warning.

    Returns:
        The findings (empty when the file is fine); ``line`` and ``video`` are left for the caller to fill.
    """
    path = Path(path)
    where = str(path)
    if not path.exists():
        return [Issue("error", "missing_file", f"file not found: {path}", path=where)]
    if not path.is_file():
        return [Issue("error", "missing_file", f"not a file: {path}", path=where)]
    if path.stat().st_size == 0:
        return [Issue("error", "empty_file", f"file is empty (0 bytes): {path}", path=where)]
    if not decode:
        return []

    from vtr.video import probe, sample_frames  # PyAV and torch only when videos are actually decoded

    issues = []
    try:
        info = probe(path)
        sampled = sample_frames(path, 1)
    except VideoDecodeError as error:
        return [Issue("error", "undecodable", f"cannot decode: {error.cause}", path=where)]
    except Exception as error:  # noqa: BLE001 - a check reports every failure and goes on to the next file
        return [Issue("error", "undecodable", f"cannot decode: {type(error).__name__}: {error}", path=where)]
    if sampled.recovered_frames == 0:
        return [Issue("error", "undecodable", "no frame could be decoded", path=where)]
    if sampled.corrupt_packets:
        issues.append(
            Issue("warning", "corrupt_packets", f"{sampled.corrupt_packets} corrupt packets skipped", path=where)
        )
    if info.duration is not None and info.duration < min_duration:
        issues.append(
            Issue("warning", "short_video", f"only {info.duration:.2f} s long (< {min_duration:g} s)", path=where)
        )
    return issues


def _ordered_map(function: Callable[[VideoRecord], list[Issue]], records: list[VideoRecord], workers: int) -> Iterator:
    # Decoding is I/O and C code that releases the GIL, so threads overlap it; results keep annotation order.
    if workers <= 1:
        yield from map(function, records)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(function, records)


def check_dataset(
    root: str | Path,
    *,
    decode: bool = True,
    min_duration: float = DEFAULT_MIN_DURATION,
    workers: int | None = None,
    progress: bool = True,
) -> CheckReport:
    """Check a data set folder: its annotations, and every video file they name.

    Args:
        root: the data set folder (or its ``annotations.jsonl``).
        decode: probe each video and decode one frame (else check existence and size only, much faster).
        min_duration: seconds below which a video gets a ``short_video`` warning.
        workers: threads decoding in parallel (default: up to 4, at most the CPU count).
        progress: show a progress bar over videos on stderr.

    Returns:
        The report; ``report.ok`` is False when there is any error.

    Raises:
        DataFormatError: the folder or its annotations file does not exist.
    """
    path = annotations_path(root)
    records, problems = parse_annotations(path)
    report = CheckReport(root=path.parent, annotations=path, decoded=decode)
    issues: list[Issue] = [
        Issue(p.severity, p.code, p.message, p.line, p.video, str(path) if p.severity == "error" else None)
        for p in problems
    ]

    def check_record(record: VideoRecord) -> list[Issue]:
        found = [
            Issue(i.severity, i.code, i.message, record.line, record.video, i.path)
            for i in check_video_file(record.path, decode=decode, min_duration=min_duration)
        ]
        if not record.captions:
            found.append(
                Issue(
                    "warning",
                    "no_captions",
                    f"no captions: gives no query in {record.split} and is skipped in training",
                    record.line,
                    record.video,
                )
            )
        return found

    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    results = _ordered_map(check_record, records, workers)
    # disable=None lets tqdm hide the bar when stderr is not a terminal (logs, CI).
    bar = tqdm(results, total=len(records), desc="checking videos", unit="video", disable=None if progress else True)
    for found in bar:
        issues.extend(found)

    # Keep the report in annotation order whatever order the findings were made in.
    issues.sort(key=lambda i: (i.line, i.severity != "error"))
    report.splits = {name: {"videos": 0, "captions": 0} for name in SPLITS}
    for record in records:
        report.splits[record.split]["videos"] += 1
        report.splits[record.split]["captions"] += len(record.captions)
    for name, counts in report.splits.items():
        if records and counts["videos"] == 0:
            issues.append(Issue("warning", "empty_split", f"split {name!r} has no videos"))
    report.num_videos = len(records)
    report.num_captions = sum(len(r.captions) for r in records)
    report.issues = issues
    return report
