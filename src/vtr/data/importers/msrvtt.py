"""MSR-VTT (Xu et al., CVPR 2016) into vtr's format, from the files researchers have, in three split protocols.

Files read (looked for in SOURCE and up to two folders below it unless named):

- ``MSRVTT_data.json`` (the official annotations, as CLIP4Clip distributes them), or the original release's
  ``train_val_videodatainfo.json`` and ``test_videodatainfo.json``: ``{"videos": [{"video_id": "video0",
  "split": "train" | "validate" | "test", "category": 9, "url": ..., "start time": ..., "end time": ...}, ...],
  "sentences": [{"video_id": "video0", "caption": "...", "sen_id": 0}, ...]}``. 10,000 videos, 20 captions each.
- for ``9k`` and ``7k``: ``MSRVTT_train.9k.csv`` or ``MSRVTT_train.7k.csv`` (a ``video_id`` column), and
  ``MSRVTT_JSFUSION_test.csv`` (``key,vid_key,video_id,sentence``): the 1,000 test videos of Yu et al. (ECCV
  2018), "1k-A", each with the one sentence that protocol evaluates.
- the videos, ``video0.mp4`` ... ``video9999.mp4``, anywhere under one folder.

Protocols:

- ``9k`` (the default; most papers since CLIP4Clip): train is the 9k CSV, test the 1k-A videos with their
  one sentence each.
- ``7k`` (Miech et al., ICCV 2019): the same with the 7k CSV (the official train and validate videos).
- ``full``: the official split, 6,513 / 497 / 2,990 videos, with all 20 captions of every video.

Validation for 9k and 7k. Neither protocol has a val split, and the common practice of picking the epoch on
the 1k-A test set tunes on the test set. Here val is a fixed slice of the training CSV's videos, held out of
train: the ``val_size`` videos (default 500, about the size of the official validate split) whose sha256 of
``"<seed>:<video_id>"`` is smallest (:func:`~vtr.data.importers.common.holdout`). It depends only on the CSV,
the seed and the size; it is never a test video (an import whose train and test CSVs share a video fails);
each val video records it in ``meta["val_slice"]``. ``val_size=0`` writes no val split.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtr.data.importers.common import (
    Entry,
    ImportSummary,
    check_output,
    check_video_id,
    clean_captions,
    find_source_file,
    find_videos_folder,
    holdout,
    plural,
    read_json,
    read_text,
    write_dataset,
)
from vtr.errors import ConfigError, DataFormatError

PROTOCOLS = ("9k", "7k", "full")
OFFICIAL_SPLITS = {"train": "train", "validate": "val", "test": "test"}  # the official name -> vtr's
MERGED_JSON = "MSRVTT_data.json"
ORIGINAL_JSONS = ("train_val_videodatainfo.json", "test_videodatainfo.json")
TRAIN_CSVS = {"9k": "MSRVTT_train.9k.csv", "7k": "MSRVTT_train.7k.csv"}
TEST_CSV = "MSRVTT_JSFUSION_test.csv"
DEFAULT_VAL_SIZE = 500
# Where the videos usually are under SOURCE; otherwise SOURCE itself is searched (the original release keeps
# them in TrainValVideo/ and TestVideo/).
VIDEO_FOLDERS = ("videos/all", "MSRVTT_Videos", "videos", "MSRVTT/videos/all")
EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi")  # CLIP4Clip falls back from .mp4 to .webm

_DESCRIPTIONS = {
    "9k": f"9k: train {TRAIN_CSVS['9k']}, test the 1k-A videos of {TEST_CSV} with one sentence each",
    "7k": f"7k: train {TRAIN_CSVS['7k']}, test the 1k-A videos of {TEST_CSV} with one sentence each",
    "full": "full: the official train / validate / test split with every caption",
}


@dataclass
class MsrvttAnnotations:
    """The official annotation file(s), indexed by video id.

    Attributes:
        videos: each video's official entry (``split``, ``category``, ``url``, ``start time``, ...), file order.
        captions: each video's captions, stripped, empty ones removed, in file order.
        dropped: how many empty captions were removed.
    """

    videos: dict[str, dict[str, Any]]
    captions: dict[str, list[str]]
    dropped: int = 0


def _load_json(path: Path) -> dict[str, Any]:
    data = read_json(path)
    missing = [key for key in ("videos", "sentences") if not isinstance(data, dict) or key not in data]
    if missing:
        raise DataFormatError(
            f"{path}: no {' or '.join(repr(k) for k in missing)} list; expected the MSR-VTT annotation format "
            '{"videos": [{"video_id": ..., "split": ...}], "sentences": [{"video_id": ..., "caption": ...}]}'
        )
    for key in ("videos", "sentences"):
        if not isinstance(data[key], list):
            raise DataFormatError(f"{path}: {key!r} must be a list, got {type(data[key]).__name__}")
    return data


def _item(path: Path, key: str, index: int, item: Any, required: Sequence[str]) -> str:
    """Where ``data[key][index]`` is, for messages; raises if it is not an object with the ``required`` keys."""
    where = f"{path}: {key}[{index}]"
    if not isinstance(item, dict):
        raise DataFormatError(f"{where} is not an object")
    missing = [name for name in required if name not in item]
    if missing:
        raise DataFormatError(f"{where} has no {', '.join(repr(m) for m in missing)}")
    return where


def read_annotations_json(paths: Sequence[str | Path]) -> MsrvttAnnotations:
    """Read MSR-VTT's official annotation file(s) (several are merged, as the original release's two are).

    Raises:
        DataFormatError: a file is unreadable or not JSON, lacks ``videos`` or ``sentences``, an entry lacks a
            key, a caption is not a string, or a split is not ``train``, ``validate`` or ``test``; the message
            names the file and the entry.
    """
    videos: dict[str, dict[str, Any]] = {}
    raw: dict[str, list[str]] = defaultdict(list)
    for path in map(Path, paths):
        data = _load_json(path)
        for index, item in enumerate(data["videos"]):
            where = _item(path, "videos", index, item, ("video_id", "split"))
            video_id = check_video_id(item["video_id"], where)
            if item["split"] not in OFFICIAL_SPLITS:
                raise DataFormatError(
                    f"{where} ({video_id}) has split {item['split']!r}; expected one of {', '.join(OFFICIAL_SPLITS)}"
                )
            videos.setdefault(video_id, item)
        for index, item in enumerate(data["sentences"]):
            where = _item(path, "sentences", index, item, ("video_id", "caption"))
            if not isinstance(item["caption"], str):
                raise DataFormatError(f"{where}: the caption must be a string, got {item['caption']!r:.60}")
            raw[check_video_id(item["video_id"], where)].append(item["caption"])
    annotations = MsrvttAnnotations(videos=videos, captions={})
    for video_id, captions in raw.items():
        annotations.captions[video_id], dropped = clean_captions(captions)
        annotations.dropped += dropped
    return annotations


def _read_csv(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, Any]]]:
    """The rows of a CSV file with a header, with their line numbers; the header must hold ``required``."""
    text = read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in required if name not in header]
    if missing:
        raise DataFormatError(
            f"{path}: the header {','.join(header) or '(empty file)'!r} has no column "
            f"{', '.join(missing)}; expected a CSV file with the columns {','.join(required)}"
        )
    reader.fieldnames = header
    try:
        return [(reader.line_num, row) for row in reader]
    except csv.Error as error:
        raise DataFormatError(f"{path}:{reader.line_num}: not valid CSV ({error})") from None


def read_train_csv(path: str | Path) -> list[str]:
    """The video ids of a training CSV (``MSRVTT_train.9k.csv``), each once, in file order."""
    path = Path(path)
    ids = [check_video_id(row["video_id"], f"{path}:{line}") for line, row in _read_csv(path, ("video_id",))]
    return list(dict.fromkeys(ids))


def read_test_csv(path: str | Path) -> dict[str, list[tuple[str, str | None]]]:
    """The sentences of ``MSRVTT_JSFUSION_test.csv`` by video id: ``[(sentence, key), ...]``, in file order."""
    path = Path(path)
    sentences: dict[str, list[tuple[str, str | None]]] = {}
    for line, row in _read_csv(path, ("video_id", "sentence")):
        video_id = check_video_id(row["video_id"], f"{path}:{line}")
        sentences.setdefault(video_id, []).append((row["sentence"] or "", row.get("key")))
    return sentences


def _meta(video_id: str, info: dict[str, Any] | None) -> dict[str, Any]:
    """What a record keeps of the official entry; ``source_start``/``source_end`` are seconds in ``url``."""
    meta: dict[str, Any] = {"source": "msrvtt", "video_id": video_id}
    if info is not None:
        meta["official_split"] = info["split"]
        for key, name in (("category", "category"), ("url", "url"), ("start time", "source_start")):
            if key in info:
                meta[name] = info[key]
        if "end time" in info:
            meta["source_end"] = info["end time"]
    return meta


def _find_annotation_files(source: Path) -> list[Path]:
    merged = find_source_file(source, MERGED_JSON)
    if merged is not None:
        return [merged]
    original = [path for path in (find_source_file(source, name) for name in ORIGINAL_JSONS) if path is not None]
    if not original:
        raise DataFormatError(
            f"no {MERGED_JSON} (nor {' and '.join(ORIGINAL_JSONS)}) in {source} or two folders below it; "
            "name the annotation file(s) with --annotations"
        )
    return original


def _require(source: Path, given: str | Path | None, name: str, flag: str) -> Path:
    if given is not None:
        return Path(given)
    found = find_source_file(source, name)
    if found is None:
        raise DataFormatError(f"no {name} in {source} or two folders below it; name the file with {flag}")
    return found


def _official_entries(annotations: MsrvttAnnotations, summary: ImportSummary) -> list[Entry]:
    """The official split, train first; every caption."""
    order = list(OFFICIAL_SPLITS.values())
    entries = [
        Entry(video_id, OFFICIAL_SPLITS[info["split"]], annotations.captions.get(video_id, []), _meta(video_id, info))
        for video_id, info in annotations.videos.items()
    ]
    entries.sort(key=lambda entry: order.index(entry.split))
    num_val = sum(entry.split == "val" for entry in entries)
    summary.val = {"method": "official", "description": f"the official validate split ({plural(num_val, 'video')})"}
    return entries


def _protocol_entries(
    annotations: MsrvttAnnotations,
    train_path: Path,
    test_path: Path,
    val_size: int,
    val_seed: int,
    summary: ImportSummary,
) -> list[Entry]:
    """Train and a held-out val slice from the training CSV; test from the JSFusion CSV, its one sentence."""
    train_ids = read_train_csv(train_path)
    tests = read_test_csv(test_path)
    shared = [video_id for video_id in train_ids if video_id in tests]
    if shared:
        raise DataFormatError(
            f"{train_path} and {test_path} share {len(shared)} videos ({', '.join(shared[:5])}); "
            "a test video must not be trained on: check that the files belong together"
        )
    val = holdout(train_ids, val_size, val_seed)
    val_slice = {"from": train_path.name, "seed": val_seed, "size": val_size}
    entries = []
    for split in ("train", "val"):
        for video_id in train_ids:
            if (video_id in val) != (split == "val"):
                continue
            meta = _meta(video_id, annotations.videos.get(video_id))
            if split == "val":
                meta["val_slice"] = val_slice
            entries.append(Entry(video_id, split, annotations.captions.get(video_id, []), meta))
    for video_id, sentences in tests.items():
        captions, dropped = clean_captions(sentence for sentence, _ in sentences)
        summary.dropped_captions += dropped
        meta = _meta(video_id, annotations.videos.get(video_id)) | {"protocol": "1k-A"}
        keys = [key for _, key in sentences if key]
        if keys:
            meta["jsfusion_key"] = keys[0] if len(keys) == 1 else keys
        entries.append(Entry(video_id, "test", captions, meta))
    summary.val = {"method": "holdout", **val_slice}
    summary.val["description"] = (
        f"{val_size} videos of {train_path.name} held out of train (those with the smallest "
        f'sha256 of "{val_seed}:<video_id>"); none is a test video'
        if val_size
        else "none (--val-size 0)"
    )
    return entries


def import_msrvtt(
    source: str | Path,
    out: str | Path | None = None,
    *,
    split: str = "9k",
    videos: str | Path | None = None,
    annotations: Sequence[str | Path] | None = None,
    train_csv: str | Path | None = None,
    test_csv: str | Path | None = None,
    val_size: int | None = None,
    val_seed: int = 0,
    keep_missing: bool = False,
    force: bool = False,
) -> ImportSummary:
    """Write MSR-VTT as a vtr data set folder (``annotations.jsonl``); the videos stay where they are.

    Args:
        source: the folder holding MSR-VTT's files (searched two folders deep for those not named).
        out: the data set folder to write (default: ``source``).
        split: ``"9k"``, ``"7k"`` or ``"full"`` (see the module docstring).
        videos: the folder of the video files (default: ``videos/all``, ``MSRVTT_Videos`` or ``videos`` under
            ``source``, else ``source``), searched recursively.
        annotations: the official JSON file(s) (default: ``MSRVTT_data.json``, or the original release's two).
        train_csv: the training CSV for 9k / 7k (default: ``MSRVTT_train.9k.csv`` / ``.7k.csv``).
        test_csv: the 1k-A test CSV (default: ``MSRVTT_JSFUSION_test.csv``).
        val_size: training videos held out as val for 9k / 7k (default 500; 0 for no val split).
        val_seed: the seed that picks them.
        keep_missing: keep videos whose file is missing (else they are skipped and reported).
        force: replace an existing ``annotations.jsonl`` in ``out``.

    Returns:
        What was written and what was skipped.

    Raises:
        DataFormatError: a file is missing or malformed (the message names it), or nothing could be written.
        ConfigError: an unknown protocol, or a val size that does not fit.
    """
    source = Path(source)
    if split not in PROTOCOLS:
        raise ConfigError(f"unknown MSR-VTT split protocol {split!r}; expected one of {', '.join(PROTOCOLS)}")
    if split == "full" and val_size is not None:
        raise ConfigError("--val-size applies to the 9k and 7k protocols; full uses the official validate split")
    if not source.is_dir():
        raise DataFormatError(f"MSR-VTT folder {source} does not exist or is not a folder")
    out = Path(out) if out is not None else source
    summary = ImportSummary(
        dataset="MSR-VTT",
        protocol=_DESCRIPTIONS[split],
        out_dir=out,
        annotations=check_output(out, force),
        videos_dir=find_videos_folder(source, videos, VIDEO_FOLDERS),
    )
    json_paths = [Path(p) for p in annotations] if annotations else _find_annotation_files(source)
    official = read_annotations_json(json_paths)
    summary.sources += json_paths
    summary.dropped_captions = official.dropped
    if split == "full":
        entries = _official_entries(official, summary)
    else:
        train_path = _require(source, train_csv, TRAIN_CSVS[split], "--train-csv")
        test_path = _require(source, test_csv, TEST_CSV, "--test-csv")
        summary.sources += [train_path, test_path]
        size = DEFAULT_VAL_SIZE if val_size is None else val_size
        entries = _protocol_entries(official, train_path, test_path, size, val_seed, summary)
    return write_dataset(entries, summary, extensions=EXTENSIONS, keep_missing=keep_missing, force=force)
