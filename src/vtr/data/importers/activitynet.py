"""ActivityNet Captions (Krishna et al., ICCV 2017) into vtr's format, as paragraph-to-video retrieval.

Files read (looked for in SOURCE and up to two folders below it unless their folder is named):

- ``train.json``, ``val_1.json`` and ``val_2.json`` (10,009 / 4,917 / 4,885 videos), the official captions:
  a JSON object ``{"v_<YouTube id>": {"duration": 82.73, "timestamps": [[0.83, 19.86], ...], "sentences":
  ["...", ...]}, ...}``, one sentence per timestamped event. val_1 and val_2 annotate the same videos twice.
- the videos, ``v_<YouTube id>.mp4`` or ``<YouTube id>.mp4`` (downloads and re-encoded releases differ; both
  are accepted), anywhere under one folder.

The protocol of CLIP4Clip (Luo et al., 2021) and the papers after it: train on ``train.json``, test on
``val_1.json`` (the field's test split; ``test_file="val_2.json"`` takes the other annotation), each video with
one caption, its sentences joined in timestamp order (:func:`~vtr.data.importers.common.join_paragraph`:
CLIP4Clip joins them with a space; here a sentence without final punctuation also gets a full stop). There is
no val split unless ``val_size`` training videos are held out of train, chosen as for MSR-VTT's 9k
(:func:`~vtr.data.importers.common.holdout`). The record's ``meta`` keeps the annotation's id (with ``v_``),
the duration, and the timestamps and sentences in timestamp order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vtr.data.importers.common import (
    Entry,
    ImportSummary,
    annotation_file,
    check_output,
    check_video_id,
    find_videos_folder,
    holdout,
    index_videos,
    join_paragraph,
    read_json,
    write_dataset,
)
from vtr.errors import ConfigError, DataFormatError

TRAIN_FILE = "train.json"
TEST_FILES = ("val_1.json", "val_2.json")
VIDEO_FOLDERS = ("videos", "ActivityNet_videos", "activitynet_videos", "Activity_Videos")
EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
PREFIX = "v_"  # the annotations' ids are "v_" + the YouTube id


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _video(path: Path, key: Any, value: Any) -> tuple[str, dict[str, Any]]:
    """A video's id and meta (timestamps and sentences in timestamp order), checked."""
    video_id = check_video_id(key, str(path))
    where = f"{path}: {video_id}"
    if not isinstance(value, dict) or "sentences" not in value or "timestamps" not in value:
        raise DataFormatError(f'{where}: expected {{"duration": ..., "timestamps": [...], "sentences": [...]}}')
    sentences, timestamps = value["sentences"], value["timestamps"]
    if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
        raise DataFormatError(f"{where}: 'sentences' must be a list of strings, got {sentences!r:.60}")
    if not isinstance(timestamps, list) or not all(
        isinstance(t, list) and len(t) == 2 and all(map(_is_number, t)) for t in timestamps
    ):
        raise DataFormatError(f"{where}: 'timestamps' must be a list of [start, end] seconds, got {timestamps!r:.60}")
    if len(sentences) != len(timestamps):
        raise DataFormatError(f"{where}: {len(sentences)} sentences but {len(timestamps)} timestamps")
    if "duration" in value and not _is_number(value["duration"]):
        raise DataFormatError(f"{where}: 'duration' must be a number of seconds, got {value['duration']!r:.60}")
    order = sorted(range(len(timestamps)), key=lambda i: timestamps[i])  # stable: a tie keeps file order
    meta: dict[str, Any] = {"source": "activitynet", "video_id": video_id}
    meta["youtube_id"] = video_id.removeprefix(PREFIX)
    if "duration" in value:
        meta["duration"] = value["duration"]
    meta["timestamps"] = [timestamps[i] for i in order]
    meta["sentences"] = [" ".join(sentences[i].split()) for i in order]
    return video_id, meta


def read_captions(path: str | Path) -> dict[str, dict[str, Any]]:
    """The videos of one ActivityNet Captions file, in file order: ``{id: meta}`` (see :func:`import_activitynet`).

    Raises:
        DataFormatError: the file is unreadable, not a JSON object of id to ``{"timestamps", "sentences"}``,
            or a video's sentences and timestamps do not pair up; the message names the file and the video.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(
            f"{path}: expected the ActivityNet Captions format, a JSON object of "
            '"v_<id>": {"duration": ..., "timestamps": [...], "sentences": [...]}, got a JSON ' + type(data).__name__
        )
    return dict(_video(path, key, value) for key, value in data.items())


def _other_name(video_id: str) -> str:
    """The other name a video's file may have: without the ``v_`` prefix, or with it."""
    return video_id.removeprefix(PREFIX) if video_id.startswith(PREFIX) else PREFIX + video_id


def _match_file_names(entries: list[Entry], videos_dir: Path) -> None:
    """Point each entry whose file is ``<id>.mp4`` rather than ``v_<id>.mp4`` at that name (``meta`` keeps the id)."""
    other = {entry.video_id: _other_name(entry.video_id) for entry in entries}
    found = index_videos(videos_dir, set(other) | set(other.values()), EXTENSIONS)
    for entry in entries:
        if entry.video_id not in found and other[entry.video_id] in found:
            entry.video_id = other[entry.video_id]


def import_activitynet(
    source: str | Path,
    out: str | Path | None = None,
    *,
    videos: str | Path | None = None,
    annotations_dir: str | Path | None = None,
    test_file: str = "val_1.json",
    val_size: int = 0,
    val_seed: int = 0,
    keep_missing: bool = False,
    force: bool = False,
) -> ImportSummary:
    """Write ActivityNet Captions as a vtr data set folder, one paragraph a video; the videos stay where they are.

    Args:
        source: the folder holding the caption files (searched two folders deep unless ``annotations_dir``).
        out: the data set folder to write (default: ``source``).
        videos: the folder of the video files (default: ``videos`` or ``ActivityNet_videos`` under ``source``,
            else ``source``), searched recursively.
        annotations_dir: the folder of ``train.json`` and the test file.
        test_file: ``"val_1.json"`` (the field's test split) or ``"val_2.json"``.
        val_size: training videos held out as val (default 0: no val split).
        val_seed: the seed that picks them.
        keep_missing: keep videos whose file is missing (else they are skipped and reported).
        force: replace an existing ``annotations.jsonl`` in ``out``.

    Returns:
        What was written and what was skipped.

    Raises:
        DataFormatError: a file is missing or malformed (the message names it), train and test share a
            video, or nothing could be written.
        ConfigError: an unknown test file, or a val size that does not fit.
    """
    source = Path(source)
    if test_file not in TEST_FILES:
        raise ConfigError(f"unknown ActivityNet Captions test file {test_file!r}; expected one of {TEST_FILES}")
    if not source.is_dir():
        raise DataFormatError(f"ActivityNet Captions folder {source} does not exist or is not a folder")
    out = Path(out) if out is not None else source
    annotations = check_output(out, force)
    train_path = annotation_file(source, annotations_dir, TRAIN_FILE)
    test_path = annotation_file(source, annotations_dir, test_file)
    summary = ImportSummary(
        dataset="ActivityNet Captions",
        protocol=f"paragraphs; train {TRAIN_FILE}, test {test_file}",
        out_dir=out,
        annotations=annotations,
        videos_dir=find_videos_folder(source, videos, VIDEO_FOLDERS),
        sources=[train_path, test_path],
    )
    train, test = read_captions(train_path), read_captions(test_path)
    shared = [video_id for video_id in train if video_id in test]
    if shared:
        raise DataFormatError(
            f"{train_path} and {test_path} share {len(shared)} videos ({', '.join(shared[:5])}); "
            "a test video must not be trained on: check that the files belong together"
        )
    val = holdout(list(train), val_size, val_seed)
    val_slice = {"from": TRAIN_FILE, "seed": val_seed, "size": val_size}
    entries = []
    for split, videos_in in (("train", train), ("val", train), ("test", test)):
        for video_id, meta in videos_in.items():
            if split != "test" and (video_id in val) != (split == "val"):
                continue
            paragraph, dropped = join_paragraph(meta["sentences"])
            summary.dropped_captions += dropped
            if split == "val":
                meta = {**meta, "val_slice": val_slice}
            entries.append(Entry(video_id, split, [paragraph] if paragraph else [], meta))
    _match_file_names(entries, summary.videos_dir)
    summary.val = {"method": "holdout", **val_slice}
    summary.val["description"] = (
        f"{val_size} videos of {TRAIN_FILE} held out of train (those with the smallest "
        f'sha256 of "{val_seed}:<video_id>")'
        if val_size
        else "none (--val-size N holds out N training videos)"
    )
    return write_dataset(entries, summary, extensions=EXTENSIONS, keep_missing=keep_missing, force=force)
