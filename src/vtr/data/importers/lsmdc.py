"""LSMDC (Rohrbach et al., IJCV 2017) into vtr's format, in the retrieval protocol with the 1,000-clip test set.

Files read (looked for in SOURCE and up to two folders below it unless their folder is named):

- ``LSMDC16_annos_training.csv``, ``LSMDC16_annos_val.csv`` and ``LSMDC16_challenge_1000_publictect.csv`` (the
  released name has this typo; ``..._publictest.csv`` is accepted too): tab-separated, no header, one line per
  sentence: ``<clip id>\\t<start aligned>\\t<end aligned>\\t<start>\\t<end>\\t<sentence>``. Some releases have
  fewer columns; then the first is the clip id and the last the sentence. A clip id names the movie and the
  clip's span in it: ``0001_American_Beauty_00.00.51.926-00.00.54.129``.
- the videos, ``<movie>/<clip id>.avi`` (``0001_American_Beauty/0001_American_Beauty_00.00.51.926-...avi``),
  anywhere under one folder.

As in CLIP4Clip (Luo et al., 2021) and the papers after it: train on the training file (about 101k clips),
validate on the val file, test on the 1,000 clips of the challenge file, one sentence each. A clip id that
has several lines (it happens in the training file) keeps every sentence, in file order. Lines are split on
tabs, not read as CSV, as a sentence may hold quotes. ``meta`` keeps the movie, the clip's span in it in
seconds (``source_start``, ``source_end``, from the id), and the time columns of a six-column line as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtr.data.importers.common import (
    Entry,
    ImportSummary,
    annotation_file,
    check_output,
    check_video_id,
    clean_captions,
    find_videos_folder,
    plural,
    read_text,
    write_dataset,
)
from vtr.errors import DataFormatError

SPLIT_FILES = {
    "train": ("LSMDC16_annos_training.csv",),
    "val": ("LSMDC16_annos_val.csv",),
    "test": ("LSMDC16_challenge_1000_publictect.csv", "LSMDC16_challenge_1000_publictest.csv"),  # sic, then fixed
}
VIDEO_FOLDERS = ("avi", "videos", "LSMDC_videos", "lsmdc_videos")
EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm")
COLUMNS = ("clip_id", "start_aligned", "end_aligned", "start", "end", "sentence")
# The span at the end of a clip id: HH.MM.SS.mmm-HH.MM.SS.mmm.
_SPAN = re.compile(r"(\d+)\.(\d+)\.(\d+)\.(\d+)-(\d+)\.(\d+)\.(\d+)\.(\d+)")


@dataclass
class LsmdcClips:
    """The clips of one LSMDC file, in file order.

    Attributes:
        captions: each clip's sentences, stripped, empty ones removed, in file order.
        meta: each clip's ``meta`` (from its id and its first line).
        dropped: how many empty sentences were removed.
    """

    captions: dict[str, list[str]] = field(default_factory=dict)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped: int = 0


def _seconds(hours: str, minutes: str, seconds: str, fraction: str) -> float:
    return round(int(hours) * 3600 + int(minutes) * 60 + float(f"{seconds}.{fraction}"), 3)


def clip_meta(clip_id: str) -> dict[str, Any]:
    """What a clip id tells: ``{"movie": "0001_American_Beauty", "source_start": 51.926, "source_end": 54.129}``.

    The movie is the id up to its last ``_``, which is also the folder of the clip's video; an id without the
    ``_HH.MM.SS.mmm-HH.MM.SS.mmm`` span at its end tells nothing (an empty dict).
    """
    movie, _, span = clip_id.rpartition("_")
    match = _SPAN.fullmatch(span)
    if not movie or match is None:
        return {}
    parts = match.groups()
    return {"movie": movie, "source_start": _seconds(*parts[:4]), "source_end": _seconds(*parts[4:])}


def read_clips(path: str | Path) -> LsmdcClips:
    """Read one LSMDC annotation file (six tab-separated columns a line; fewer are accepted, see the module).

    Raises:
        DataFormatError: the file is unreadable or not UTF-8, a line has no tab (so no sentence can be told
            from the id), or a clip id cannot name a file; the message names the file and line.
    """
    path = Path(path)
    text = read_text(path)
    clips = LsmdcClips()
    raw: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise DataFormatError(
                f"{path}:{number}: no tab in {line.strip()!r:.80}; expected tab-separated columns "
                f"{', '.join(COLUMNS)} (or at least a clip id and a sentence)"
            )
        clip_id = check_video_id(columns[0], f"{path}:{number}")
        # A seventh column would be a tab inside the sentence, or an empty one at the end: both stay sentence.
        sentence = " ".join(columns[len(COLUMNS) - 1 :]) if len(columns) >= len(COLUMNS) else columns[-1]
        if clip_id not in raw:
            raw[clip_id] = []
            meta = {"source": "lsmdc", "video_id": clip_id, **clip_meta(clip_id)}
            if len(columns) >= len(COLUMNS):
                meta |= {"aligned": [c.strip() for c in columns[1:3]], "extracted": [c.strip() for c in columns[3:5]]}
            clips.meta[clip_id] = meta
        raw[clip_id].append(sentence)
    for clip_id, sentences in raw.items():
        clips.captions[clip_id], dropped = clean_captions(sentences)
        clips.dropped += dropped
    return clips


def import_lsmdc(
    source: str | Path,
    out: str | Path | None = None,
    *,
    videos: str | Path | None = None,
    annotations_dir: str | Path | None = None,
    keep_missing: bool = False,
    force: bool = False,
) -> ImportSummary:
    """Write LSMDC as a vtr data set folder (``annotations.jsonl``); the videos stay where they are.

    Args:
        source: the folder holding LSMDC's files (searched two folders deep for those not named).
        out: the data set folder to write (default: ``source``).
        videos: the folder of the video files (default: ``avi``, ``videos`` or ``LSMDC_videos`` under
            ``source``, else ``source``), searched recursively, so ``<movie>/<clip id>.avi`` is found.
        annotations_dir: the folder of the three annotation files.
        keep_missing: keep videos whose file is missing (else they are skipped and reported).
        force: replace an existing ``annotations.jsonl`` in ``out``.

    Returns:
        What was written and what was skipped.

    Raises:
        DataFormatError: a file is missing or malformed (the message names it and the line), a clip is in
            two files, or nothing could be written.
    """
    source = Path(source)
    if not source.is_dir():
        raise DataFormatError(f"LSMDC folder {source} does not exist or is not a folder")
    out = Path(out) if out is not None else source
    annotations = check_output(out, force)
    paths = {split: annotation_file(source, annotations_dir, *names) for split, names in SPLIT_FILES.items()}
    summary = ImportSummary(
        dataset="LSMDC",
        protocol=f"train {paths['train'].name}, val {paths['val'].name}, test the clips of {paths['test'].name}",
        out_dir=out,
        annotations=annotations,
        videos_dir=find_videos_folder(source, videos, VIDEO_FOLDERS),
        sources=list(paths.values()),
    )
    entries: list[Entry] = []
    listed_in: dict[str, Path] = {}
    for split, path in paths.items():
        clips = read_clips(path)
        summary.dropped_captions += clips.dropped
        for clip_id, captions in clips.captions.items():
            if clip_id in listed_in:
                raise DataFormatError(
                    f"{path}: clip {clip_id} is also in {listed_in[clip_id]}; a clip belongs to one split"
                )
            listed_in[clip_id] = path
            meta = clips.meta[clip_id]
            folder = f"{meta['movie']}/" if "movie" in meta else ""
            entries.append(Entry(clip_id, split, captions, meta, expected_path=f"{folder}{clip_id}{EXTENSIONS[0]}"))
    num_val = sum(entry.split == "val" for entry in entries)
    summary.val = {
        "method": "official",
        "from": paths["val"].name,
        "description": f"{paths['val'].name} ({plural(num_val, 'clip')})",
    }
    return write_dataset(entries, summary, extensions=EXTENSIONS, keep_missing=keep_missing, force=force)
