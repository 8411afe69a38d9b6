"""DiDeMo (Hendricks et al., ICCV 2017) into vtr's format, as paragraph-to-video retrieval: one caption a video.

Files read (looked for in SOURCE and up to two folders below it unless their folder is named):

- ``train_data.json``, ``val_data.json`` and ``test_data.json`` (8,395 / 1,065 / 1,004 videos), the official
  moment annotations: a JSON list of ``{"video": "12090392@N02_13482799053_87ef417396.mov", "description":
  "...", "times": [[start_segment, end_segment], ...], "annotation_id": ..., "num_segments": 6, ...}``, one
  item per described moment, several a video. ``times`` holds one pair per annotator; a pair indexes 5-second
  segments, both ends included, so ``[2, 3]`` is seconds 10 to 20 (videos were cut to 30 s for annotation).
- the videos, named like the ``video`` field, anywhere under one folder. The id is the field without its
  extension, and any extension of :data:`EXTENSIONS` is accepted: the Flickr originals come in many formats,
  and re-encoded copies are often ``.mp4``.

The paragraph: as in CLIP4Clip (Luo et al., 2021) and the papers after it, the descriptions of a video are
joined, in file order, into one caption (:func:`join_paragraph`). CLIP4Clip joins them with a plain space;
here each description that does not end in ``.``, ``!``, ``?`` or ``…`` also gets a full stop first, so that
the sentences stay apart for the text encoder. Each description and its times are kept in ``meta["moments"]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vtr.data.importers.common import (
    Entry,
    ImportSummary,
    annotation_file,
    check_output,
    check_video_id,
    find_videos_folder,
    join_paragraph,
    plural,
    read_json,
    write_dataset,
)
from vtr.errors import DataFormatError

SPLIT_FILES = {"train": "train_data.json", "val": "val_data.json", "test": "test_data.json"}
VIDEO_FOLDERS = ("videos", "DiDeMo_videos", "didemo_videos")
# Preferred first: a re-encoded .mp4 beside its original is the one to decode.
EXTENSIONS = (".mp4", ".mov", ".avi", ".m4v", ".mkv", ".webm", ".3gp", ".wmv", ".mpg", ".flv")
SEGMENT_SECONDS = 5  # DiDeMo's time unit (Hendricks et al. 2017, Sec. 3)


def video_id_of(name: str) -> str:
    """The id of a ``video`` field: the file name without its extension when that is a video extension."""
    stem, ext = os.path.splitext(name)
    return stem if stem and ext.lower() in EXTENSIONS else name


def _times(value: Any, where: str) -> list[list[int]]:
    """The annotators' ``[start, end]`` segment pairs, checked."""
    pairs = value if isinstance(value, list) else None
    ok = pairs is not None and all(
        isinstance(pair, list)
        and len(pair) == 2
        and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in pair)
        and pair[0] <= pair[1]
        for pair in pairs
    )
    if not ok:
        raise DataFormatError(f"{where}: 'times' must be a list of [start, end] segment indices, got {value!r:.60}")
    return [list(pair) for pair in pairs]


def read_moments(path: str | Path) -> tuple[dict[str, dict[str, Any]], int]:
    """A split file's moments grouped by video id, videos and moments in file order; and how many were empty.

    Returns:
        ``{video_id: {"file": the video field, "moments": [{"description", "times", "seconds", ...}]}}``
        (empty descriptions are left out) and the count of empty descriptions.

    Raises:
        DataFormatError: the file is unreadable, not a JSON list, or an item lacks ``video`` or
            ``description`` or has malformed ``times``; the message names the file and the item.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise DataFormatError(
            f"{path}: expected the DiDeMo format, a JSON list of "
            '{"video": ..., "description": ..., "times": [[start, end], ...]}, got a JSON ' + type(data).__name__
        )
    videos: dict[str, dict[str, Any]] = {}
    dropped = 0
    for index, item in enumerate(data):
        where = f"{path}: [{index}]"
        if not isinstance(item, dict):
            raise DataFormatError(f"{where} is not an object")
        missing = [key for key in ("video", "description") if key not in item]
        if missing:
            raise DataFormatError(f"{where} has no {', '.join(repr(m) for m in missing)}")
        name = check_video_id(item["video"], where)
        if not isinstance(item["description"], str):
            raise DataFormatError(f"{where}: the description must be a string, got {item['description']!r:.60}")
        times = _times(item["times"], where) if "times" in item else None
        video = videos.setdefault(video_id_of(name), {"file": name, "moments": []})
        if "num_segments" in item:
            video.setdefault("num_segments", item["num_segments"])
        description = item["description"].strip()
        if not description:
            dropped += 1
            continue
        moment: dict[str, Any] = {"description": description}
        if "annotation_id" in item:
            moment["annotation_id"] = item["annotation_id"]
        if times is not None:
            moment["times"] = times
            moment["seconds"] = [[s * SEGMENT_SECONDS, (e + 1) * SEGMENT_SECONDS] for s, e in times]
        video["moments"].append(moment)
    return videos, dropped


def import_didemo(
    source: str | Path,
    out: str | Path | None = None,
    *,
    videos: str | Path | None = None,
    annotations_dir: str | Path | None = None,
    keep_missing: bool = False,
    force: bool = False,
) -> ImportSummary:
    """Write DiDeMo as a vtr data set folder, one paragraph caption a video; the videos stay where they are.

    Args:
        source: the folder holding DiDeMo's files (searched two folders deep for those not named).
        out: the data set folder to write (default: ``source``).
        videos: the folder of the video files (default: ``videos``, ``DiDeMo_videos`` or ``didemo_videos``
            under ``source``, else ``source``), searched recursively.
        annotations_dir: the folder of ``train_data.json``, ``val_data.json`` and ``test_data.json``.
        keep_missing: keep videos whose file is missing (else they are skipped and reported).
        force: replace an existing ``annotations.jsonl`` in ``out``.

    Returns:
        What was written and what was skipped.

    Raises:
        DataFormatError: a file is missing or malformed (the message names it), a video is in two split
            files, or nothing could be written.
    """
    source = Path(source)
    if not source.is_dir():
        raise DataFormatError(f"DiDeMo folder {source} does not exist or is not a folder")
    out = Path(out) if out is not None else source
    annotations = check_output(out, force)
    paths = {split: annotation_file(source, annotations_dir, name) for split, name in SPLIT_FILES.items()}
    summary = ImportSummary(
        dataset="DiDeMo",
        protocol=f"paragraphs; train / val / test from {', '.join(SPLIT_FILES.values())}",
        out_dir=out,
        annotations=annotations,
        videos_dir=find_videos_folder(source, videos, VIDEO_FOLDERS),
        sources=list(paths.values()),
    )
    entries: list[Entry] = []
    listed_in: dict[str, Path] = {}
    for split, path in paths.items():
        moments, dropped = read_moments(path)
        summary.dropped_captions += dropped
        for video_id, video in moments.items():
            if video_id in listed_in:
                raise DataFormatError(
                    f"{path}: video {video_id} is also in {listed_in[video_id]}; a video belongs to one split"
                )
            listed_in[video_id] = path
            paragraph, _ = join_paragraph(moment["description"] for moment in video["moments"])
            meta = {"source": "didemo", "video_id": video_id, **video}
            entries.append(Entry(video_id, split, [paragraph] if paragraph else [], meta))
    num_val = sum(entry.split == "val" for entry in entries)
    summary.val = {
        "method": "official",
        "from": paths["val"].name,
        "description": f"{SPLIT_FILES['val']} ({plural(num_val, 'video')})",
    }
    return write_dataset(entries, summary, extensions=EXTENSIONS, keep_missing=keep_missing, force=force)
