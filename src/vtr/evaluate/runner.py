"""Evaluate a retrieval model on a data set split: encode every video once and every caption, then score.

Similarity comes from the global (pooled) embeddings only, as at search time; the fine-grained heads shape the
encoders in training and cost nothing here, unless asked to re-rank each query's best videos
(:mod:`vtr.evaluate.rerank`). Post-processed metrics (:mod:`vtr.evaluate.postprocess`) are added
in a separate ``"postprocessed"`` section when asked for; the plain metrics never change.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from vtr.evaluate.postprocess_report import PostprocessOptions, postprocessed_metrics
from vtr.evaluate.rerank import rerank_heads, rerank_pair_scores, rerank_report, shortlist
from vtr.evaluate.rerank_options import RerankOptions


@dataclass
class EncodedBank:
    """A query bank for QB-Norm: the embeddings of another split's captions (text only, no video decoded)."""

    name: str  # what the bank is, for the report, e.g. "train captions"
    text: np.ndarray  # [n_bank, E] float32, L2-normalised


@dataclass
class EncodedSplit:
    """Embeddings of one split: every caption (a query) and every video, with the query -> video map."""

    text: np.ndarray  # [n_queries, E] float32, L2-normalised
    video: np.ndarray  # [n_videos, E] float32, L2-normalised
    query_video: np.ndarray  # [n_queries] int64: the video index of each query
    captions: list[str]
    records: list[VideoRecord]
    failures: list[str] = field(default_factory=list)  # videos that could not be decoded
    bank: EncodedBank | None = None  # QB-Norm's query bank, when post-processing asked for one

    def similarity(self) -> np.ndarray:
        """Cosine similarity ``[n_queries, n_videos]`` (Eq. 1; both sides are unit vectors)."""
        return self.text @ self.video.T

    def bank_similarity(self) -> np.ndarray | None:
        """Cosine similarity of the query bank to this split's videos, ``[n_bank, n_videos]`` (None without one)."""
        return None if self.bank is None else self.bank.text @ self.video.T


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
    text = _embed_captions(model, captions, batch_size * 4, progress)
    model.train(was_training)
    return EncodedSplit(
        text=text,
        video=torch.cat(video_chunks).numpy(),
        query_video=np.asarray(query_video, dtype=np.int64),
        captions=list(captions),
        records=list(records),
        failures=[str(f) for f in getattr(dataset, "failures", [])],
    )


@torch.no_grad()
def encode_bank(
    model: Any, records: list[VideoRecord], name: str, batch_size: int = 32, progress: bool = True
) -> EncodedBank:
    """Encode every caption of ``records`` as QB-Norm's query bank (text only: no video is read).

    Args:
        model: anything with ``embed_texts``.
        records: the bank split's videos; their captions are gathered as for evaluation (:func:`eval_queries`).
        name: what the bank is, for the report (e.g. ``"train captions"``).
        batch_size: videos per forward pass of :func:`encode_split` (captions go ``4 * batch_size`` at a time).
        progress: show a progress bar.
    """
    captions, _ = eval_queries(records)
    if not captions:
        raise DataFormatError(f"the query bank ({name}) has no captions")
    was_training = model.training
    model.eval()
    text = _embed_captions(model, captions, batch_size * 4, progress, desc="encode query bank")
    model.train(was_training)
    return EncodedBank(name=name, text=text)


def _embed_captions(
    model: Any, captions: Sequence[str], text_batch: int, progress: bool, desc: str = "encode captions"
) -> np.ndarray:
    """``[n, E]`` float32 embeddings of ``captions``, ``text_batch`` at a time."""
    text_chunks = []
    for start in tqdm(range(0, len(captions), text_batch), desc=desc, unit="batch", disable=not progress, leave=False):
        text_chunks.append(model.embed_texts(captions[start : start + text_batch]).float().cpu())
    return torch.cat(text_chunks).numpy()


def evaluate_split(
    encoded: EncodedSplit,
    v2t: str = "best",
    postprocess: Sequence[str] = (),
    postprocess_options: PostprocessOptions | None = None,
) -> dict[str, Any]:
    """The field's metrics (R@1/5/10, MdR, MnR, both directions, rsum) of an encoded split.

    Args:
        encoded: the split's embeddings (with ``bank`` set when ``postprocess`` holds ``"qbnorm"``).
        v2t: video-to-text convention, ``"best"`` or ``"maxpool"``.
        postprocess: post-processing methods (:data:`vtr.evaluate.postprocess_report.POSTPROCESS_METHODS`); their
            metrics go to a separate ``"postprocessed"`` section, the plain ones stay as they are.
        postprocess_options: the methods' parameters (default: the published defaults).
    """
    sim = encoded.similarity()  # [n_queries, n_videos]
    metrics = retrieval_metrics(sim, encoded.query_video, v2t=v2t)
    if postprocess:
        metrics["postprocessed"] = postprocessed_metrics(
            sim,
            encoded.query_video,
            postprocess,
            v2t=v2t,
            bank_sim=encoded.bank_similarity(),
            bank_name=encoded.bank.name if encoded.bank is not None else "queries",
            options=postprocess_options,
        )
    return metrics


def evaluate_run(
    run_dir: str,
    data_root: str | None = None,
    split: str = "test",
    checkpoint: str = "best",
    v2t: str = "best",
    batch_size: int = 32,
    device: str = "auto",
    progress: bool = True,
    postprocess: Sequence[str] = (),
    bank_split: str = "train",
    postprocess_options: PostprocessOptions | None = None,
    rerank: RerankOptions | None = None,
) -> tuple[dict[str, Any], EncodedSplit]:
    """Load a trained run and evaluate it on ``split`` of ``data_root`` (default: the data set it trained on).

    ``postprocess`` adds a ``"postprocessed"`` section (see :func:`evaluate_split`); for ``"qbnorm"`` the captions of
    ``bank_split`` are encoded as the query bank (text only). ``rerank`` adds a ``"rerank"`` entry to that section:
    each query's best videos scored again by the fine-grained heads (:mod:`vtr.evaluate.rerank`).

    Returns:
        The metrics (``{"t2v": .., "v2t": .., "rsum": ..}``, plus ``"failures"`` when videos could not be
        decoded, and ``"postprocessed"`` when asked for) and the encoded split (with its ``bank``, if any).
    """
    from vtr.data import read_annotations
    from vtr.models import load_run
    from vtr.train.loop import resolve_device

    torch_device = resolve_device(device)
    model = load_run(run_dir, checkpoint=checkpoint, device=str(torch_device))
    rerank_with = rerank_heads(model, rerank.heads) if rerank is not None else []  # refused before any encoding
    data = model.config.data
    root = data_root or data.root
    records = read_annotations(root, split=split)
    if not records:
        raise DataFormatError(f"{root}: split {split!r} has no videos")
    encoded = encode_split(model, records, data, batch_size, torch_device, progress)
    if "qbnorm" in postprocess:
        try:
            bank_records = read_annotations(root, split=bank_split)
        except DataFormatError as error:
            raise DataFormatError(f"QB-Norm's query bank (--bank-split {bank_split}): {error}") from error
        if not bank_records:
            raise DataFormatError(
                f"{root}: split {bank_split!r} has no videos, so QB-Norm has no query bank; choose another with "
                "--bank-split"
            )
        encoded.bank = encode_bank(model, bank_records, f"{bank_split} captions", batch_size, progress)
    metrics = evaluate_split(encoded, v2t=v2t, postprocess=postprocess, postprocess_options=postprocess_options)
    if rerank is not None:
        sim = encoded.similarity()
        candidates = shortlist(sim, rerank.depth)
        parts = None
        if any(model.heads[name].needs_parts for name in rerank_with):
            from vtr.train.tagging import CaptionPartsLookup

            parts = CaptionPartsLookup.for_dataset(model, records, root, run_dir, progress=progress)
        pair_scores = rerank_pair_scores(
            model, records, data, encoded.captions, candidates, rerank_with, parts, batch_size, torch_device, progress
        )
        section = rerank_report(sim, encoded.query_video, candidates, pair_scores, rerank)
        metrics.setdefault("postprocessed", {})["rerank"] = section
    if encoded.failures:
        metrics["failures"] = encoded.failures
    return metrics, encoded
