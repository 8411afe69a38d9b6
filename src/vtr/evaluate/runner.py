"""Evaluate a retrieval model on a data set split: encode every video once and every caption, then score.

Similarity comes from the global (pooled) embeddings only, as at search time; the fine-grained heads shape the
encoders in training and cost nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from vtr.config import DataConfig
from vtr.data import EvalVideoDataset, VideoRecord, collate_clips, eval_queries
from vtr.errors import DataFormatError
from vtr.evaluate.metrics import retrieval_metrics


@dataclass
class EncodedSplit:
    """Embeddings of one split: every caption (a query) and every video, with the query -> video map."""

    text: np.ndarray  # [n_queries, E] float32, L2-normalised
    video: np.ndarray  # [n_videos, E] float32, L2-normalised
    query_video: np.ndarray  # [n_queries] int64: the video index of each query
    captions: list[str]
    records: list[VideoRecord]
    failures: list[str] = field(default_factory=list)  # videos that could not be decoded

    def similarity(self) -> np.ndarray:
        """Cosine similarity ``[n_queries, n_videos]`` (Eq. 1; both sides are unit vectors)."""
        return self.text @ self.video.T


@torch.no_grad()
def encode_split(
    model: Any,
    records: list[VideoRecord],
    data: DataConfig,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    progress: bool = True,
    cache: Any = None,
) -> EncodedSplit:
    """Encode every video of ``records`` once (segment-middle frames) and every caption.

    Args:
        model: a :class:`vtr.models.RetrievalModel` (anything with ``embed_videos`` and ``embed_texts``).
        records: the videos of the split, in order; video index i is ``records[i]``.
        data: frame count, image size and normalisation.
        batch_size: videos (and, x4, captions) per forward pass.
        device: where to run the model.
        progress: show progress bars.
        cache: a :class:`vtr.data.clip_cache.DecodedClipCache` to read short videos through (training's
            per-epoch validation reads the same videos each epoch).
    """
    if not records:
        raise DataFormatError("the evaluation split has no videos")
    was_training = model.training
    model.eval()
    dataset = EvalVideoDataset(records, data.num_frames, data.image_size, data.mean, data.std, cache=cache)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_clips, num_workers=data.num_workers)
    video_chunks = []
    for batch in tqdm(loader, desc="encode videos", unit="batch", disable=not progress, leave=False):
        frames = batch["frames"].to(device)  # [B, T, 3, S, S]
        frame_mask = batch["frame_mask"].to(device)  # [B, T]
        video_chunks.append(model.embed_videos(frames, frame_mask).float().cpu())
    captions, query_video = eval_queries(records)
    text_chunks = []
    text_batch = batch_size * 4
    for start in tqdm(
        range(0, len(captions), text_batch), desc="encode captions", unit="batch", disable=not progress, leave=False
    ):
        text_chunks.append(model.embed_texts(captions[start : start + text_batch]).float().cpu())
    model.train(was_training)
    return EncodedSplit(
        text=torch.cat(text_chunks).numpy(),
        video=torch.cat(video_chunks).numpy(),
        query_video=np.asarray(query_video, dtype=np.int64),
        captions=list(captions),
        records=list(records),
        failures=[str(f) for f in getattr(dataset, "failures", [])],
    )


def evaluate_split(encoded: EncodedSplit, v2t: str = "best") -> dict[str, Any]:
    """The field's metrics (R@1/5/10, MdR, MnR, both directions, rsum) of an encoded split."""
    return retrieval_metrics(encoded.similarity(), encoded.query_video, v2t=v2t)


def evaluate_run(
    run_dir: str,
    data_root: str | None = None,
    split: str = "test",
    checkpoint: str = "best",
    v2t: str = "best",
    batch_size: int = 32,
    device: str = "auto",
    progress: bool = True,
) -> tuple[dict[str, Any], EncodedSplit]:
    """Load a trained run and evaluate it on ``split`` of ``data_root`` (default: the data set it trained on).

    Returns:
        The metrics (``{"t2v": .., "v2t": .., "rsum": ..}``, plus ``"failures"`` when videos could not be
        decoded) and the encoded split.
    """
    from vtr.data import read_annotations
    from vtr.models import load_run
    from vtr.train.loop import resolve_device

    torch_device = resolve_device(device)
    model = load_run(run_dir, checkpoint=checkpoint, device=str(torch_device))
    data = model.config.data
    root = data_root or data.root
    records = read_annotations(root, split=split)
    if not records:
        raise DataFormatError(f"{root}: split {split!r} has no videos")
    encoded = encode_split(model, records, data, batch_size, torch_device, progress)
    metrics = evaluate_split(encoded, v2t=v2t)
    if encoded.failures:
        metrics["failures"] = encoded.failures
    return metrics, encoded
