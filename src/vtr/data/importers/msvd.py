"""MSVD (Chen and Dolan, ACL 2011) into vtr's format, in the split retrieval papers use: 1,200 / 100 / 670 videos.

Files read (looked for in SOURCE and up to two folders below it unless named):

- the split lists ``train_list.txt``, ``val_list.txt`` and ``test_list.txt``, one video id per line, as
  CLIP4Clip distributes them. An id is the clip's file name without extension: the YouTube id, then the
  clip's first and last second in that video (``-4wsuPCjDBc_5_15``).
- the captions, either ``raw-captions.pkl`` (CLIP4Clip's: a pickled dict of video id to captions, each a
  list of tokens, joined here with spaces), read by an unpickler that refuses anything but plain data; or the
  English descriptions of the original release, ``AllVideoDescriptions.txt`` (one ``<video id> <caption>``
  a line; lines starting with ``#`` are comments). ``raw-captions.pkl`` is preferred when both are there.
- the videos, ``YouTubeClips/<video id>.avi``, anywhere under one folder.

Every caption of a video is kept (about 40 a video), as the protocol evaluates them all; a caption written
twice for one video stays twice (``vtr data check`` warns about it).
"""

from __future__ import annotations

from collections import defaultdict
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
    plural,
    read_text,
    write_dataset,
)
from vtr.data.importers.safe_pickle import load_plain_pickle
from vtr.errors import DataFormatError

LIST_FILES = {"train": "train_list.txt", "val": "val_list.txt", "test": "test_list.txt"}
CAPTION_FILES = ("raw-captions.pkl", "AllVideoDescriptions.txt")  # preferred first
VIDEO_FOLDERS = ("YouTubeClips", "MSVD_Videos", "videos", "MSVD/YouTubeClips")
EXTENSIONS = (".avi", ".mp4", ".webm", ".mkv")


def read_raw_captions(path: str | Path) -> tuple[dict[str, list[str]], int]:
    """Captions by video id from CLIP4Clip's ``raw-captions.pkl``; and how many empty ones were dropped.

    Raises:
        DataFormatError: the file is not a pickle of plain data (nothing in it is run), or not a dict of
            video id to a list of captions (each a list of token strings, or a string).
    """
    path = Path(path)
    data = load_plain_pickle(path)
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a dict of video id -> captions, got {type(data).__name__}")
    captions: dict[str, list[str]] = {}
    dropped = 0
    for key, value in data.items():
        video_id = check_video_id(key, str(path))
        if not isinstance(value, list | tuple):
            raise DataFormatError(f"{path}: {video_id}: expected a list of captions, got {type(value).__name__}")
        texts = []
        for caption in value:
            if isinstance(caption, list | tuple) and all(isinstance(token, str) for token in caption):
                texts.append(" ".join(caption))
            elif isinstance(caption, str):
                texts.append(caption)
            else:
                raise DataFormatError(
                    f"{path}: {video_id}: a caption must be a list of tokens or a string, got {caption!r:.60}"
                )
        captions[video_id], removed = clean_captions(texts)
        dropped += removed
    return captions, dropped


def read_descriptions(path: str | Path) -> tuple[dict[str, list[str]], int]:
    """Captions by video id from ``AllVideoDescriptions.txt``; and how many empty ones were dropped."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataFormatError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # an older file in a single-byte encoding; every byte decodes
    raw: dict[str, list[str]] = defaultdict(list)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        video_id, _, caption = line.strip().partition(" ")
        raw[check_video_id(video_id, f"{path}:{number}")].append(caption)
    captions, dropped = {}, 0
    for video_id, texts in raw.items():
        captions[video_id], removed = clean_captions(texts)
        dropped += removed
    return captions, dropped


def read_id_list(path: str | Path) -> list[str]:
    """The video ids of a split list, one a line, each once, in file order."""
    path = Path(path)
    lines = read_text(path).splitlines()
    ids = [check_video_id(line, f"{path}:{n}") for n, line in enumerate(lines, start=1) if line.strip()]
    return list(dict.fromkeys(ids))


def _meta(video_id: str) -> dict[str, Any]:
    """The ids a record keeps; the YouTube id and the clip's seconds in it when the id has that form."""
    meta: dict[str, Any] = {"source": "msvd", "video_id": video_id}
    parts = video_id.rsplit("_", 2)  # a YouTube id may itself hold "_"; the last two fields are the seconds
    if len(parts) == 3 and parts[0] and parts[1].isdigit() and parts[2].isdigit():
        meta.update(youtube_id=parts[0], source_start=int(parts[1]), source_end=int(parts[2]))
    return meta


def _find_captions(source: Path, captions: str | Path | None) -> Path:
    if captions is not None:
        return Path(captions)
    for name in CAPTION_FILES:
        found = find_source_file(source, name)
        if found is not None:
            return found
    raise DataFormatError(
        f"no {' or '.join(CAPTION_FILES)} in {source} or two folders below it; name the file with --captions"
    )


def _split_lists(source: Path, lists: str | Path | None) -> dict[str, Path]:
    paths = {}
    for split, name in LIST_FILES.items():
        path = Path(lists) / name if lists is not None else find_source_file(source, name)
        if path is None:
            raise DataFormatError(f"no {name} in {source} or two folders below it; name its folder with --lists")
        paths[split] = path
    return paths


def import_msvd(
    source: str | Path,
    out: str | Path | None = None,
    *,
    videos: str | Path | None = None,
    captions: str | Path | None = None,
    lists: str | Path | None = None,
    keep_missing: bool = False,
    force: bool = False,
) -> ImportSummary:
    """Write MSVD as a vtr data set folder (``annotations.jsonl``); the videos stay where they are.

    Args:
        source: the folder holding MSVD's files (searched two folders deep for those not named).
        out: the data set folder to write (default: ``source``).
        videos: the folder of the video files (default: ``YouTubeClips``, ``MSVD_Videos`` or ``videos`` under
            ``source``, else ``source``), searched recursively.
        captions: ``raw-captions.pkl`` or ``AllVideoDescriptions.txt`` (told apart by the ``.pkl`` suffix).
        lists: the folder of ``train_list.txt``, ``val_list.txt`` and ``test_list.txt``.
        keep_missing: keep videos whose file is missing (else they are skipped and reported).
        force: replace an existing ``annotations.jsonl`` in ``out``.

    Returns:
        What was written and what was skipped.

    Raises:
        DataFormatError: a file is missing or malformed (the message names it), a video is in two split
            lists, the pickle holds anything but plain data, or nothing could be written.
    """
    source = Path(source)
    if not source.is_dir():
        raise DataFormatError(f"MSVD folder {source} does not exist or is not a folder")
    out = Path(out) if out is not None else source
    annotations = check_output(out, force)
    caption_path = _find_captions(source, captions)
    list_paths = _split_lists(source, lists)
    summary = ImportSummary(
        dataset="MSVD",
        protocol=f"train / val / test from {', '.join(LIST_FILES.values())}; captions from {caption_path.name}",
        out_dir=out,
        annotations=annotations,
        videos_dir=find_videos_folder(source, videos, VIDEO_FOLDERS),
        sources=[caption_path, *list_paths.values()],
    )
    read = read_raw_captions if caption_path.suffix.lower() == ".pkl" else read_descriptions
    by_video, summary.dropped_captions = read(caption_path)

    entries: list[Entry] = []
    listed_in: dict[str, Path] = {}
    for split, path in list_paths.items():
        for video_id in read_id_list(path):
            if video_id in listed_in:
                raise DataFormatError(
                    f"{path}: video {video_id} is also in {listed_in[video_id]}; a video belongs to one split"
                )
            listed_in[video_id] = path
            entries.append(Entry(video_id, split, by_video.get(video_id, []), _meta(video_id)))
    num_val = sum(entry.split == "val" for entry in entries)
    summary.val = {
        "method": "list",
        "from": list_paths["val"].name,
        "description": f"{LIST_FILES['val']} ({plural(num_val, 'video')})",
    }
    return write_dataset(entries, summary, extensions=EXTENSIONS, keep_missing=keep_missing, force=force)
