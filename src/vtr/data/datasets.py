"""Torch datasets over annotation records: clips with one random caption for training, every video once for
evaluation, and the collate function that pads frames and (optionally) tokenises captions.

A video that cannot be decoded never stops a job. In training it is replaced by another video (chosen
deterministically from the seed, epoch and index) and a warning is logged once per file; in evaluation it
becomes an all-padding clip (zero frames, all-False mask) and is listed in ``dataset.failures``. Failures
are flagged in a shared-memory tensor, so ``failures`` is complete even when DataLoader workers did the
decoding.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vtr.data.annotations import VideoRecord
from vtr.data.clip_cache import DecodedClipCache
from vtr.data.concept_positives import ConceptTable
from vtr.errors import DataFormatError, VideoDecodeError
from vtr.video import FrameTransform, sample_frames
from vtr.video.augment import CropJitter

logger = logging.getLogger(__name__)

# A training item tries this many videos (the one asked for, then deterministic replacements) before giving up.
MAX_TRAIN_ATTEMPTS = 16


@dataclass(frozen=True)
class DecodeFailure:
    """A video that could not be decoded while a dataset was read.

    Attributes:
        video_index: index of the video in the dataset's records.
        video: the video's path relative to the data set folder.
        cause: what went wrong.
    """

    video_index: int
    video: str
    cause: str

    def __str__(self) -> str:
        return f"{self.video}: {self.cause}"


def _rng(*keys: int) -> random.Random:
    """A Python RNG seeded from integer keys, well mixed so that neighbouring keys give unrelated streams."""
    state = np.random.SeedSequence([int(k) & (2**64 - 1) for k in keys]).generate_state(2, dtype=np.uint64)
    return random.Random(int(state[0]) << 64 | int(state[1]))


class _ClipReader(Dataset):
    """Shared machinery: frame sampling and transform, and failure bookkeeping that survives worker processes."""

    def __init__(
        self,
        records: Sequence[VideoRecord],
        num_frames: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        keyframes: bool = False,
        cache: DecodedClipCache | None = None,
    ) -> None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {num_frames}")
        self.records = list(records)
        self.num_frames = num_frames
        self.image_size = image_size
        self.keyframes = keyframes
        self.cache = cache
        self.transform = FrameTransform(image_size, tuple(mean), tuple(std))
        # [N] bool, True = the video failed to decode. In shared memory so that flags set by DataLoader
        # workers are seen by the main process (and by the other workers, which then skip the file).
        self._failed = torch.zeros(len(self.records), dtype=torch.bool).share_memory_()
        self._causes: dict[int, str] = {}

    def _load(
        self, index: int, mode: str, rng: random.Random | None, augment: CropJitter | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames float [T, 3, S, S] and mask bool [T] of video ``index``, through ``augment`` (drawing from
        ``rng``) when given; raises VideoDecodeError."""
        record = self.records[index]
        try:
            sample = self.cache.sample if self.cache is not None else sample_frames
            sampled = sample(record.path, self.num_frames, mode=mode, rng=rng, keyframes=self.keyframes)
        except OSError as error:  # the file vanished or cannot be opened after the data set was checked
            raise VideoDecodeError(record.path, error.strerror or str(error)) from error
        if sampled.recovered_frames == 0 or not bool(sampled.mask.any()):
            raise VideoDecodeError(record.path, "no frame could be decoded")
        frames = sampled.frames  # uint8 [T, 3, H, W]
        if augment is not None and rng is not None:
            frames = augment(frames, rng)
        return self.transform(frames), sampled.mask.bool()

    def _record_failure(self, index: int, error: VideoDecodeError) -> bool:
        """Remember a failure; True the first time this process hears of it (to warn once per file)."""
        first = not bool(self._failed[index]) and index not in self._causes
        self._failed[index] = True
        self._causes[index] = error.cause
        return first

    @property
    def failures(self) -> list[DecodeFailure]:
        """Every video that failed to decode so far, in index order (also those seen only by workers)."""
        found = []
        for index in torch.nonzero(self._failed).flatten().tolist():
            cause = self._causes.get(index)
            if cause is None:  # decoded in a worker process: find the cause again, here
                cause = self._find_cause(index)
            found.append(DecodeFailure(index, self.records[index].video, cause))
        return found

    def _find_cause(self, index: int) -> str:
        try:
            self._load(index, "middle", None)
        except VideoDecodeError as error:
            self._causes[index] = error.cause
            return error.cause
        return "could not be decoded in a DataLoader worker"

    def __len__(self) -> int:
        return len(self.records)


class TrainClipDataset(_ClipReader):
    """Training clips: each video with one of its captions, drawn at random per epoch, and frames sampled at a
    random offset inside each of ``num_frames`` equal segments.

    Both draws are deterministic functions of ``(seed, epoch, index)``, so a run is reproducible whatever the
    DataLoader worker count. Videos without captions are left out; ``video_index`` in an item is the index in
    ``records`` as given.

    Args:
        records: the training videos.
        num_frames: frames per clip (T).
        image_size: output side S (shorter side resized to S, then centre crop).
        mean: per-channel normalisation mean.
        std: per-channel normalisation standard deviation.
        seed: run seed.
        keyframes: sample the key frame at or before each target (faster, less exact).
        cache: sample short videos from frames decoded once (:class:`vtr.data.clip_cache.DecodedClipCache`):
            the same frames, without decoding each epoch.
        augment: a random window of each clip (:class:`vtr.video.augment.CropJitter`), drawn like the frame
            offsets from ``(seed, epoch, index)``; None shows whole frames.
        concepts: the concepts of ``records`` (:class:`vtr.data.concept_positives.ConceptTable`); items then also
            carry ``video_concepts`` and ``caption_concepts`` (bool [V]), so that the loss can tell which clips
            of the batch a caption describes.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        num_frames: int,
        image_size: int,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        seed: int = 0,
        keyframes: bool = False,
        cache: DecodedClipCache | None = None,
        augment: CropJitter | None = None,
        concepts: ConceptTable | None = None,
    ) -> None:
        super().__init__(records, num_frames, image_size, mean, std, keyframes, cache)
        self.augment = augment
        self.concepts = concepts
        self.seed = seed
        self.epoch = 0
        # Positions in `records` of the videos that have a caption: only these can make a training pair.
        self._usable = [i for i, r in enumerate(self.records) if r.captions]
        if not self._usable:
            raise DataFormatError("no training video has a caption: training needs (video, caption) pairs")

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose captions and frame offsets items draw (call before each epoch's loader)."""
        self.epoch = epoch

    @property
    def item_records(self) -> list[VideoRecord]:
        """The record of each item, in item order (videos without captions are not items)."""
        return [self.records[i] for i in self._usable]

    def __len__(self) -> int:
        return len(self._usable)

    def __getitem__(self, item: int) -> dict[str, Any]:
        """``{"frames": float [T,3,S,S], "frame_mask": bool [T], "caption": str, "video_index": int}``, and
        ``video_concepts`` / ``caption_concepts`` bool [V] with a concept table."""
        if not 0 <= item < len(self._usable):
            raise IndexError(f"item {item} out of range for {len(self._usable)} training videos")
        last_error: VideoDecodeError | None = None
        for attempt in range(MAX_TRAIN_ATTEMPTS):
            rng = _rng(self.seed, self.epoch, item, attempt)
            # Attempt 0 is the video asked for; later attempts draw a replacement from the same key.
            position = item if attempt == 0 else rng.randrange(len(self._usable))
            index = self._usable[position]
            if bool(self._failed[index]):
                continue  # known bad: skipping it gives the same result as trying and failing again
            record = self.records[index]
            caption = record.captions[rng.randrange(len(record.captions))]
            try:
                frames, mask = self._load(index, "random", rng, self.augment)
            except VideoDecodeError as error:
                last_error = error
                if self._record_failure(index, error):
                    logger.warning(
                        "skipping undecodable training video %s (%s); using another", record.path, error.cause
                    )
                continue
            item = {"frames": frames, "frame_mask": mask, "caption": caption, "video_index": index}
            if self.concepts is not None:
                item["video_concepts"] = self.concepts.video(index)
                item["caption_concepts"] = self.concepts.caption(caption)
            return item
        detail = f"; last error: {last_error}" if last_error else ""
        raise DataFormatError(
            f"{MAX_TRAIN_ATTEMPTS} training videos in a row could not be decoded{detail}; run `vtr data check`"
        )


class EvalVideoDataset(_ClipReader):
    """Evaluation clips: every video once, ``num_frames`` frames from the middles of equal segments.

    A video that cannot be decoded gives zero frames with an all-False mask and is listed in ``failures``.

    Args:
        records: the videos of the split; ``video_index`` is the position in this list.
        num_frames: frames per clip (T).
        image_size: output side S.
        mean: per-channel normalisation mean.
        std: per-channel normalisation standard deviation.
        cache: as in :class:`TrainClipDataset`.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        num_frames: int,
        image_size: int,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        cache: DecodedClipCache | None = None,
    ) -> None:
        super().__init__(records, num_frames, image_size, mean, std, cache=cache)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """``{"frames": float [T,3,S,S], "frame_mask": bool [T], "video_index": int}``."""
        if not 0 <= index < len(self.records):
            raise IndexError(f"video {index} out of range for {len(self.records)} videos")
        try:
            frames, mask = self._load(index, "middle", None)
        except VideoDecodeError as error:
            if self._record_failure(index, error):
                logger.warning("undecodable evaluation video %s (%s): encoded as blank", error.path, error.cause)
            size = self.image_size
            frames = torch.zeros(self.num_frames, 3, size, size)  # [T, 3, S, S]
            mask = torch.zeros(self.num_frames, dtype=torch.bool)  # [T], no real frame
        return {"frames": frames, "frame_mask": mask, "video_index": index}


def eval_queries(records: Sequence[VideoRecord]) -> tuple[list[str], np.ndarray]:
    """Every caption of every video as a text query.

    Args:
        records: the videos of the split, in the order the video embeddings are in.

    Returns:
        The captions in record order, and an int64 array [n_queries] giving each query's video index.
    """
    captions: list[str] = []
    video_of: list[int] = []
    for index, record in enumerate(records):
        captions.extend(record.captions)
        video_of.extend([index] * len(record.captions))
    return captions, np.asarray(video_of, dtype=np.int64)


def collate_clips(batch: Sequence[dict[str, Any]], tokenizer: Any = None, max_length: int = 32) -> dict[str, Any]:
    """Stack dataset items into a batch, padding frames to the longest clip and tokenising captions.

    Args:
        batch: items of :class:`TrainClipDataset` or :class:`EvalVideoDataset`.
        tokenizer: a Hugging Face tokenizer; when given and items carry captions, adds ``input_ids`` and
            ``attention_mask`` (padded to the longest caption, truncated to ``max_length`` tokens).
        max_length: the most tokens per caption.

    Returns:
        ``frames`` float [B, T, 3, S, S], ``frame_mask`` bool [B, T], ``video_index`` long [B]; ``captions``
        list[str] when items have a caption; ``input_ids`` / ``attention_mask`` long [B, L] with a tokenizer;
        ``video_concepts`` / ``caption_concepts`` bool [B, V] when items have them.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    max_frames = max(item["frames"].shape[0] for item in batch)
    channels, height, width = batch[0]["frames"].shape[1:]
    frames = torch.zeros(len(batch), max_frames, channels, height, width, dtype=batch[0]["frames"].dtype)
    frame_mask = torch.zeros(len(batch), max_frames, dtype=torch.bool)  # [B, T], True = a real frame
    for row, item in enumerate(batch):
        clip = item["frames"]  # [T_i, 3, S, S]
        if tuple(clip.shape[1:]) != (channels, height, width):
            raise ValueError(
                f"clip {row} has frames of shape {tuple(clip.shape[1:])}, expected {(channels, height, width)}"
            )
        frames[row, : clip.shape[0]] = clip
        frame_mask[row, : clip.shape[0]] = item["frame_mask"]
    out: dict[str, Any] = {
        "frames": frames,
        "frame_mask": frame_mask,
        "video_index": torch.tensor([int(item["video_index"]) for item in batch], dtype=torch.long),
    }
    for key in ("video_concepts", "caption_concepts"):
        if key in batch[0]:
            out[key] = torch.stack([item[key] for item in batch])
    if "caption" in batch[0]:
        captions = [item["caption"] for item in batch]
        out["captions"] = captions
        if tokenizer is not None:
            tokens = tokenizer(captions, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            out["input_ids"] = tokens["input_ids"]
            out["attention_mask"] = tokens["attention_mask"]
    return out
