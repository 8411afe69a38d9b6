"""What the data set importers share: finding the source files and the videos, holding out a validation slice,
and writing ``annotations.jsonl`` (with a ``videos`` link when the videos live elsewhere) plus a summary.

An importer reads its data set's own files into :class:`Entry` objects (video id, split, captions, meta) and
hands them to :func:`write_dataset`, which looks up each video's file, skips (and counts) what cannot be used,
and writes the generic format that the rest of vtr reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtr.data.annotations import ANNOTATIONS_FILE, SPLITS, normalise_video_path
from vtr.errors import ConfigError, DataFormatError
from vtr.fileio import atomic_write_text

LINK_NAME = "videos"  # the link made inside the output folder when the videos are not under it
_SEARCH_DEPTH = 2  # source files are looked for in SOURCE, its subfolders and theirs
_SHOWN_IDS = 5  # how many skipped video ids the text summary names before "..."
_SENTENCE_ENDS = (".", "!", "?", "…")
_CLOSERS = "\"')]”’"  # a sentence may end inside quotes or brackets: he shouts "stop!"


@dataclass
class Entry:
    """One video as an importer read it, before its file is looked up.

    Attributes:
        video_id: the data set's own id of the video (the file's name without extension).
        split: ``"train"``, ``"val"`` or ``"test"``.
        captions: the captions, stripped, none empty (an empty list means the video has none).
        meta: what the data set records about the video (ids, source, category), kept in ``meta``.
        expected_path: where the file should be, relative to the videos folder, written for a video whose file
            is missing when it is kept (``keep_missing``); default ``<video_id><first extension>``.
    """

    video_id: str
    split: str
    captions: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    expected_path: str | None = None


@dataclass
class ImportSummary:
    """What an import wrote and what it skipped (``vtr data import`` prints it; ``--json`` gives ``to_dict``).

    Attributes:
        dataset: the data set's name (``"MSR-VTT"``, ``"MSVD"``).
        protocol: the split protocol, in words (which lists made train, val and test).
        out_dir: the data set folder written.
        annotations: its ``annotations.jsonl``.
        videos_dir: the folder where the video files were looked for.
        link: the ``videos`` link inside ``out_dir`` through which the annotations reach the videos, or None
            when the videos are under ``out_dir`` already.
        link_created: whether this import made the link (False when it was there already).
        splits: per split, ``{"videos": n, "captions": m}`` as written.
        val: how the validation split was chosen (``{"method": ..., ...}``).
        sources: the annotation and split files read.
        no_captions: ids of listed videos skipped because they have no caption.
        missing_files: ids of videos skipped because no file was found (empty with ``keep_missing``).
        kept_missing: ids of videos written although no file was found (``keep_missing``).
        dropped_captions: empty captions removed.
    """

    dataset: str
    protocol: str
    out_dir: Path
    annotations: Path
    videos_dir: Path
    link: Path | None = None
    link_created: bool = False
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    val: dict[str, Any] = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)
    no_captions: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    kept_missing: list[str] = field(default_factory=list)
    dropped_captions: int = 0

    @property
    def num_videos(self) -> int:
        """Videos written, over all splits."""
        return sum(counts["videos"] for counts in self.splits.values())

    @property
    def num_captions(self) -> int:
        """Captions written, over all splits."""
        return sum(counts["captions"] for counts in self.splits.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``--json`` prints)."""
        return {
            "ok": True,
            "dataset": self.dataset,
            "protocol": self.protocol,
            "out_dir": str(self.out_dir),
            "annotations": str(self.annotations),
            "videos_dir": str(self.videos_dir),
            "link": str(self.link) if self.link else None,
            "link_created": self.link_created,
            "num_videos": self.num_videos,
            "num_captions": self.num_captions,
            "splits": self.splits,
            "val": self.val,
            "sources": [str(p) for p in self.sources],
            "skipped": {"no_captions": self.no_captions, "missing_files": self.missing_files},
            "kept_missing": self.kept_missing,
            "dropped_captions": self.dropped_captions,
        }

    def format_text(self) -> str:
        """A few lines for a person: what was written where, per split, the val choice, what was skipped."""
        per_split = "; ".join(
            f"{name} {plural(c['videos'], 'video')}, {plural(c['captions'], 'caption')}"
            for name, c in self.splits.items()
        )
        lines = [
            f"Imported {self.dataset} ({self.protocol}) into {self.annotations}:",
            f"  {per_split}.",
            f"  val: {self.val.get('description', 'none')}.",
        ]
        if self.link is not None:
            made = "made" if self.link_created else "kept"
            lines.append(f"  The videos are outside {self.out_dir}: {made} the link {self.link} -> {self.videos_dir}.")
        else:
            lines.append(f"  Videos: {self.videos_dir}.")
        skipped = []
        if self.missing_files:
            skipped.append(f"{plural(len(self.missing_files), 'video')} with no file ({_ids(self.missing_files)})")
        if self.no_captions:
            skipped.append(f"{plural(len(self.no_captions), 'video')} with no caption ({_ids(self.no_captions)})")
        if skipped:
            lines.append(f"  Skipped {' and '.join(skipped)}.")
        if self.kept_missing:
            lines.append(
                f"  Kept {plural(len(self.kept_missing), 'video')} whose file is missing (--keep-missing): "
                f"{_ids(self.kept_missing)}."
            )
        if self.dropped_captions:
            lines.append(f"  Dropped {plural(self.dropped_captions, 'empty caption')}.")
        lines.append(f"Check it with `vtr data check {self.out_dir}`.")
        return "\n".join(lines)

    def warnings(self) -> list[str]:
        """One line per kind of skipped video, for stderr (the summary on stdout may be JSON)."""
        found = []
        if self.missing_files:
            found.append(
                f"{plural(len(self.missing_files), 'video')} skipped: no file under {self.videos_dir} "
                f"({_ids(self.missing_files)}); --keep-missing keeps them, --videos names another folder"
            )
        if self.no_captions:
            found.append(f"{plural(len(self.no_captions), 'video')} skipped: no caption ({_ids(self.no_captions)})")
        return found


def plural(n: int, noun: str) -> str:
    """``"1 video"``, ``"2 videos"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_SHOWN_IDS])
    return shown + (f", ... {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")


def clean_captions(raw: Iterable[str]) -> tuple[list[str], int]:
    """The captions stripped, empty ones removed; and how many were removed."""
    captions = [caption.strip() for caption in raw]
    kept = [caption for caption in captions if caption]
    return kept, len(captions) - len(kept)


def check_video_id(value: Any, where: str) -> str:
    """``value`` stripped if it can name a video file, else a DataFormatError naming ``where``.

    An id becomes part of a path, so it must not be empty, hold a separator, or be ``.`` or ``..``.
    """
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(f"{where}: video id {value!r} is not a non-empty string")
    video_id = value.strip()
    if any(c in video_id for c in "/\\\x00") or video_id in (".", ".."):
        raise DataFormatError(f"{where}: video id {video_id!r} cannot be a file name (a separator, . or ..)")
    return video_id


def find_source_file(source: Path, name: str) -> Path | None:
    """The file called ``name`` in ``source`` or up to two folders below it; None if there is none.

    Raises:
        DataFormatError: there are several, so which one to read is the user's choice.
    """
    found: list[Path] = []
    for depth in range(_SEARCH_DEPTH + 1):
        found += sorted(p for p in source.glob("/".join(["*"] * depth + [name])) if p.is_file())
    if len(found) > 1:
        listed = ", ".join(str(p) for p in found[:4])
        raise DataFormatError(f"found {len(found)} files called {name} under {source} ({listed}); name one of them")
    return found[0] if found else None


def annotation_file(source: Path, folder: str | Path | None, *names: str) -> Path:
    """The first of ``names`` that exists: in ``folder`` when given (``--annotations-dir``), else under ``source``.

    Raises:
        DataFormatError: none of them is there (or several files of that name are under ``source``).
    """
    for name in names:
        path = Path(folder) / name if folder is not None else find_source_file(source, name)
        if path is not None and path.is_file():
            return path
    where = folder if folder is not None else f"{source} or two folders below it"
    raise DataFormatError(f"no {' or '.join(names)} in {where}; name its folder with --annotations-dir")


def find_videos_folder(source: Path, videos: str | Path | None, candidates: Sequence[str]) -> Path:
    """The folder that holds the videos (absolute): ``videos`` when given, else the first usual place under ``source``.

    When none of ``candidates`` exists, ``source`` itself is searched (recursively).

    Raises:
        DataFormatError: ``videos`` was given and is not a folder.
    """
    if videos is not None:
        folder = Path(videos)
        if not folder.is_dir():
            raise DataFormatError(f"--videos {folder} is not a folder")
    else:
        folder = next((source / c for c in candidates if (source / c).is_dir()), source)
    return Path(os.path.abspath(folder))  # absolute, not resolved: a link in the path stays a link


def index_videos(folder: Path, wanted: set[str], extensions: Sequence[str]) -> dict[str, Path]:
    """The file of each wanted video id under ``folder`` (searched recursively), by id.

    A file counts when its name is ``<id><ext>`` with ``ext`` in ``extensions`` (any case). Hidden folders
    (``.vtr_cache``) are skipped and linked folders are not followed (a ``videos`` link made by an earlier
    import must not make the search go round). When one id has several files, the one with the earlier
    extension in ``extensions`` wins, then the one nearer ``folder``, then the first by name.
    """
    rank = {ext.lower(): i for i, ext in enumerate(extensions)}
    best: dict[str, tuple[tuple[int, int, str], Path]] = {}
    for directory, subdirs, files in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        depth = len(Path(directory).relative_to(folder).parts)
        for name in files:
            stem, ext = os.path.splitext(name)
            if stem not in wanted or ext.lower() not in rank:
                continue
            key = (rank[ext.lower()], depth, name)
            if stem not in best or key < best[stem][0]:
                best[stem] = (key, Path(directory) / name)
    return {video_id: path for video_id, (_, path) in best.items()}


def holdout(video_ids: Sequence[str], size: int, seed: int) -> set[str]:
    """A fixed slice of ``size`` videos: those whose ``sha256(f"{seed}:{id}")`` is smallest.

    The slice depends only on the ids, the seed and the size: not on the order of the list, on which files
    are on disk, or on Python's random number generator, so anyone can recompute it. Slices of one seed are
    nested (the 300-video slice is inside the 500-video slice).
    """
    if size < 0:
        raise ConfigError(f"the val slice size (--val-size) must be 0 or more, got {size}")
    unique = sorted(set(video_ids))
    if size > len(unique):
        raise ConfigError(
            f"cannot hold out {size} videos for val from {len(unique)} training videos; choose a smaller --val-size"
        )
    ranked = sorted(unique, key=lambda video_id: hashlib.sha256(f"{seed}:{video_id}".encode()).hexdigest())
    return set(ranked[:size])


def check_output(out: Path, force: bool) -> Path:
    """The annotations file to write in ``out``; refuses to replace one without ``force``."""
    annotations = out / ANNOTATIONS_FILE
    if annotations.exists() and not force:
        raise DataFormatError(f"{annotations} exists already; pass --force to replace it, or choose another --out")
    if out.exists() and not out.is_dir():
        raise DataFormatError(f"--out {out} is not a folder")
    return annotations


def _is_under(path: Path, folder: Path) -> bool:
    # Lexical, like normalise_video_path: a folder reached through a link inside `folder` is inside it.
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))


def _link_videos(out: Path, videos_dir: Path) -> tuple[Path, bool]:
    """Make (or reuse) ``out/videos`` pointing at ``videos_dir``; returns the link and whether it is new."""
    link = out / LINK_NAME
    target = Path(os.path.abspath(videos_dir))
    if link.is_symlink() or link.exists():
        if link.is_symlink() and link.resolve() == target.resolve():
            return link, False
        raise DataFormatError(
            f"{link} exists and is not a link to the videos in {target}; move it away or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    try:
        link.symlink_to(target, target_is_directory=True)
    except OSError as error:
        raise DataFormatError(
            f"cannot make the link {link} -> {target} ({error.strerror or error}); "
            "choose an --out folder that holds the videos"
        ) from None
    return link, True


def write_dataset(
    entries: Sequence[Entry],
    summary: ImportSummary,
    *,
    extensions: Sequence[str],
    keep_missing: bool = False,
    force: bool = False,
) -> ImportSummary:
    """Look up each entry's video under ``summary.videos_dir`` and write ``summary.annotations`` atomically.

    Entries without captions are skipped; entries without a file are skipped too unless ``keep_missing``
    (then their path is the entry's ``expected_path``, by default ``<id><extensions[0]>``). When the videos folder is not
    inside the output folder, a link ``videos`` to it is made there so that every path stays inside.

    Args:
        entries: the videos in the order to write them.
        summary: the summary so far (data set, protocol, folders, val, sources); it is completed and returned.
        extensions: the video file extensions to accept, preferred first.
        keep_missing: write entries whose file is missing.
        force: replace an existing ``annotations.jsonl``.

    Raises:
        DataFormatError: an annotations file exists (without ``force``), no video has a file (without
            ``keep_missing``), or the ``videos`` link cannot be made.
    """
    out = summary.out_dir
    check_output(out, force)
    usable = [entry for entry in entries if entry.captions]
    summary.no_captions += [entry.video_id for entry in entries if not entry.captions]
    files = index_videos(summary.videos_dir, {e.video_id for e in usable}, extensions)
    written = []
    for entry in usable:
        if entry.video_id in files:
            written.append(entry)
        elif keep_missing:
            written.append(entry)
            summary.kept_missing.append(entry.video_id)
        else:
            summary.missing_files.append(entry.video_id)
    if not usable:
        raise DataFormatError(f"none of the {plural(len(entries), 'listed video')} has a caption; nothing to write")
    if not written:
        raise DataFormatError(
            f"none of the {len(usable)} videos with captions has a file under {summary.videos_dir}; "
            "name the videos folder with --videos (or pass --keep-missing to write the annotations anyway)"
        )

    if _is_under(summary.videos_dir, out):
        prefix = Path(os.path.relpath(os.path.abspath(summary.videos_dir), os.path.abspath(out))).as_posix()
    else:
        summary.link, summary.link_created = _link_videos(out, summary.videos_dir)
        prefix = LINK_NAME

    lines = []
    summary.splits = {name: {"videos": 0, "captions": 0} for name in SPLITS}
    for entry in written:
        found = files.get(entry.video_id)
        if found:
            relative = found.relative_to(summary.videos_dir).as_posix()
        else:
            relative = entry.expected_path or entry.video_id + extensions[0]
        try:
            video = normalise_video_path(posixpath.join(prefix, relative))
        except ValueError as error:
            raise DataFormatError(f"cannot write the path of {found or entry.video_id}: it {error}") from None
        record = {"video": video, "captions": entry.captions, "split": entry.split, "meta": entry.meta}
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        summary.splits[entry.split]["videos"] += 1
        summary.splits[entry.split]["captions"] += len(entry.captions)
    atomic_write_text(summary.annotations, "".join(lines))
    return summary


def join_paragraph(sentences: Iterable[str]) -> tuple[str, int]:
    """One paragraph caption from a video's sentences, in the order given; and how many empty ones were dropped.

    Each sentence has its whitespace collapsed and, unless it already ends in ``.``, ``!``, ``?`` or ``…``
    (inside closing quotes or brackets too), gets a full stop; the sentences are joined with one space.
    Nothing else of the text changes (no capitals added): ``["a man walks", "he sits."]`` gives
    ``"a man walks. he sits."``.
    """
    kept, dropped = [], 0
    for sentence in sentences:
        text = " ".join(sentence.split())
        if not text:
            dropped += 1
            continue
        kept.append(text if text.rstrip(_CLOSERS).endswith(_SENTENCE_ENDS) else text + ".")
    return " ".join(kept), dropped


def read_text(path: str | Path) -> str:
    """The text of a UTF-8 file (a byte-order mark dropped); a DataFormatError naming the file if it cannot be read."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise DataFormatError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 ({error.reason} at byte {error.start})") from None


def read_json(path: str | Path) -> Any:
    """The content of a JSON file; a DataFormatError naming the file if it cannot be read or parsed."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
