"""Re-ranking by the fine-grained heads: each query's best videos by the global similarity, scored again by heads
that read a caption against one video (the noun and verb heads' cross-modal encoders, FCA-Net's graphs).

Not in the paper, whose retrieval is the dual encoder alone: the heads that shape the video tower in training are
cross-encoders too costly to run on every caption-video pair, but affordable on a short list. For each query q,
its ``depth`` best videos v by the global cosine s(q, v) are ordered by

    s(q, v) + weight * sum over the chosen heads h of s_h(q, v)

and stay ahead of every other video, whose order is unchanged. Each query is answered on its own (nothing
transductive), so a search engine could do the same. Memory stays bounded: the videos are encoded a second time,
a batch at a time, and each batch's video tokens score the (query, video) pairs whose video is in that batch; the
text tower's outputs are memoised for the pass (within :class:`vtr.models.text_cache.FrozenTextCache`'s budget).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from vtr.config import DataConfig
from vtr.data import EvalVideoDataset, VideoRecord, collate_clips
from vtr.errors import ConfigError
from vtr.evaluate.metrics import ranks_to_metrics, t2v_ranks
from vtr.evaluate.rerank_options import RerankOptions
from vtr.models.heads import HeadInputs
from vtr.models.outputs import EncodedText, EncodedVideo
from vtr.models.text_cache import FrozenTextCache

__all__ = ["RerankOptions", "rerank_heads", "rerank_pair_scores", "rerank_report", "reranked_similarity", "shortlist"]

_PAIR_BATCH = 256  # pairs scored per call of the heads


def rerank_heads(model: Any, names: Sequence[str] | None = None) -> list[str]:
    """The heads of ``model`` that will score pairs: ``names`` checked, or every head that can.

    Raises:
        ConfigError: an unknown head, a head that cannot score pairs, or (``names`` None) a model without any.
    """
    able = [name for name, head in model.heads.items() if head.scores_pairs]
    if names is None:
        if not able:
            raise ConfigError(
                f"no head of this run can re-rank (heads: {', '.join(model.heads)}); "
                "the noun, verb and fcanet heads can"
            )
        return able
    for name in names:
        if name not in model.heads:
            raise ConfigError(f"re-ranking head {name!r} is not in this run (heads: {', '.join(model.heads)})")
        if name not in able:
            raise ConfigError(
                f"head {name!r} cannot score a caption against a video; heads of this run that can: "
                f"{', '.join(able) or 'none'}"
            )
    return list(dict.fromkeys(names))


def shortlist(sim: np.ndarray, depth: int) -> np.ndarray:
    """The ``depth`` best videos of each query, best first: int64 [n_queries, min(depth, n_videos)] (ties: lower
    video index first, as the metrics count them)."""
    depth = min(depth, sim.shape[1])
    order = np.argsort(-sim, axis=1, kind="stable")
    return np.ascontiguousarray(order[:, :depth], dtype=np.int64)


@torch.no_grad()
def rerank_pair_scores(
    model: Any,
    records: Sequence[VideoRecord],
    data: DataConfig,
    captions: Sequence[str],
    candidates: np.ndarray,
    heads: Sequence[str],
    parts: Callable[[Sequence[str]], list[Any]] | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Each head's score of every (query, candidate video) pair.

    Args:
        model: a :class:`vtr.models.RetrievalModel`.
        records: the split's videos (video index i is ``records[i]``).
        data: frame count, image size and normalisation (the model's).
        captions: the queries.
        candidates: int [n_queries, depth]: the videos to score for each query.
        heads: names of heads that score pairs (:func:`rerank_heads`).
        parts: caption -> :class:`vtr.text.CaptionParts` lookup, needed by the noun and verb heads.
        batch_size: videos per forward pass.
        device: where to run the model.
        progress: show a progress bar.

    Returns:
        ``{head: float32 [n_queries, depth]}``, in the layout of ``candidates``.
    """
    if any(model.heads[name].needs_parts for name in heads) and parts is None:
        raise ValueError(f"heads {', '.join(heads)} need a CaptionParts lookup (parts=...)")
    was_training = model.training
    model.eval()
    n_queries, depth = candidates.shape
    scores = {name: np.zeros((n_queries, depth), dtype=np.float32) for name in heads}
    dataset = EvalVideoDataset(records, data.num_frames, data.image_size, data.mean, data.std)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_clips, num_workers=data.num_workers)
    flat = candidates.reshape(-1)
    order = np.argsort(flat, kind="stable")  # pairs grouped by video
    bounds = np.searchsorted(flat[order], np.arange(len(records) + 1))
    # A query comes back with each of its candidates, with the same texts (caption, words removed, words): the
    # tower reads each text once. Nothing trains here, so its outputs can be kept even if its weights may train.
    trainable = [param for param in model.text_encoder.parameters() if param.requires_grad]
    for param in trainable:
        param.requires_grad_(False)
    try:
        tower = FrozenTextCache(model.text_encoder)
        start = 0
        for batch in tqdm(loader, desc="re-rank", unit="batch", disable=not progress, leave=False):
            count = batch["frames"].shape[0]
            pairs = order[bounds[start] : bounds[start + count]]  # flat pair indices whose video is in this batch
            if pairs.size:
                video = model.encode_video(batch["frames"].to(device), batch["frame_mask"].to(device))
                for chunk in range(0, pairs.size, _PAIR_BATCH):
                    picked = pairs[chunk : chunk + _PAIR_BATCH]
                    rows = torch.as_tensor(flat[picked] - start, device=video.tokens.device)
                    queries = [captions[i] for i in picked // depth]
                    inputs = _pair_inputs(model, _rows_of(video, rows), queries, parts, heads, device, tower)
                    for name in heads:
                        values = model.heads[name].pair_similarity(inputs).float().cpu().numpy()
                        scores[name].reshape(-1)[picked] = values
            start += count
    finally:
        for param in trainable:
            param.requires_grad_(True)
        model.train(was_training)
    return scores


def _rows_of(video: EncodedVideo, rows: torch.Tensor) -> EncodedVideo:
    """The encoded videos ``rows`` (repeats allowed)."""
    return EncodedVideo(
        tokens=video.tokens[rows],
        token_mask=video.token_mask[rows],
        pooled=video.pooled[rows],
        frame_features=None if video.frame_features is None else video.frame_features[rows],
        frame_mask=None if video.frame_mask is None else video.frame_mask[rows],
    )


def _pair_inputs(
    model: Any,
    video: EncodedVideo,
    queries: list[str],
    parts: Callable[[Sequence[str]], list[Any]] | None,
    heads: Sequence[str],
    device: str | torch.device,
    tower: FrozenTextCache,
) -> HeadInputs:
    """What the heads see for pairs (query i, video row i): the queries' text tensors, as in a training batch (only
    the chosen heads' own tensors)."""
    needs = any(model.heads[name].needs_parts for name in heads)
    caption_parts = parts(queries) if needs and parts is not None else None
    batch: dict[str, Any] = dict(model.tokenize(queries))
    for name in heads:
        batch.update(model.heads[name].text_batch(queries, caption_parts, model.tokenize))
    batch = {key: value.to(device) for key, value in batch.items()}
    text: EncodedText = model.encode_text(batch["input_ids"], batch["attention_mask"], tower=tower)
    return model.head_inputs(batch, video, text, tower=tower)


def reranked_similarity(
    sim: np.ndarray, candidates: np.ndarray, pair_scores: dict[str, np.ndarray], weight: float
) -> np.ndarray:
    """A score matrix [n_queries, n_videos] that ranks each query's candidates first, by s + weight * sum of the
    heads' scores, and every other video after them in the order of ``sim``."""
    sim = np.asarray(sim, dtype=np.float64)
    combined = np.take_along_axis(sim, candidates, axis=1)
    for values in pair_scores.values():
        combined = combined + weight * values.astype(np.float64)
    # Lift the candidates above everything else: past the largest gap any combined score can span.
    lift = (np.abs(sim).max() + np.abs(combined).max()) * 2 + 1
    out = sim.copy()
    np.put_along_axis(out, candidates, combined + lift, axis=1)
    return out


def rerank_report(
    sim: np.ndarray,
    query_video: np.ndarray,
    candidates: np.ndarray,
    pair_scores: dict[str, np.ndarray],
    options: RerankOptions,
) -> dict[str, Any]:
    """The labelled section of ``vtr eval --rerank`` (the layout of the ``"postprocessed"`` sections)."""
    scores = reranked_similarity(sim, candidates, pair_scores, options.weight)
    hits = (candidates == np.asarray(query_video)[:, None]).any(axis=1)
    return {
        "method": "re-ranking by the fine-grained heads (not in the paper)",
        "uses": f"each query on its own; its {candidates.shape[1]} best videos scored again by the heads",
        "params": {
            "depth": int(candidates.shape[1]),
            "weight": float(options.weight),
            "heads": ",".join(pair_scores),
            "target_in_shortlist_percent": round(100.0 * float(hits.mean()), 2),
        },
        "t2v": ranks_to_metrics(t2v_ranks(scores, query_video)),
    }
