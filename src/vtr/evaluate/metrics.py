"""Retrieval metrics as pure functions of a similarity matrix: R@1/5/10, median and mean rank, both directions.

Conventions, fixed here once for every report of the project:

* ``sim[q, v]`` is the score of query (caption) ``q`` against video ``v``; higher means more similar.
  ``query_video[q]`` is the index of the one video caption ``q`` describes (default: query ``i`` belongs to
  video ``i``, which needs a square matrix). A video may have several captions (MSR-VTT has 20).
* **Ties** count in favour of the correct item: its rank is ``1 + (number of items scoring strictly
  higher)``. Each query gets exactly one rank, so a tied row is never counted twice (CLIP4Clip's
  ``compute_metrics`` does, and reports R@1 = 75% for a 3x3 matrix with one tie). The flip side: a model that
  gives every pair the same score gets rank 1 everywhere, so check ties when numbers look too good.
* **Text-to-video**: each query ranks all videos; its rank is the rank of its own video.
* **Video-to-text**, ``"best"`` (the image-text retrieval convention, e.g. open_clip, ALBEF): each video ranks
  all captions; its rank is the best rank among its own captions, i.e. ``1 +`` the number of captions scoring
  strictly higher than its best-scoring own caption. ``"maxpool"`` (CLIP4Clip, X-CLIP): each video's captions
  are first max-pooled into one candidate per video, ``pooled[v, u] = max_{q of u} sim[q, v]``, and each video
  ranks the ``n_videos`` candidates. A video's "maxpool" rank is ``1 +`` the number of *other videos* with a
  caption beating its best own caption, its "best" rank ``1 +`` the number of such *captions*: so "maxpool" ranks
  are never worse, R@1 is the same under both, and with one caption per video they agree.
* Ranks are 1-based; R@k is a percentage; MdR is ``numpy.median`` of the ranks (may end in .5); MnR the mean.

Memory stays bounded for large matrices (20,000 x 20,000 float32 evaluates in well under 2 GB, the matrix
itself included): rows are processed ``chunk_size`` at a time, comparisons run in the input dtype, and nothing
of size ``n_queries x n_videos`` is ever allocated (no float64 copy, no argsort). ``sim`` may be a read-only
``numpy.memmap``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np

from vtr.errors import VtrError

V2TMode = Literal["best", "maxpool"]
V2T_MODES: tuple[str, ...] = ("best", "maxpool")
RECALL_AT: tuple[int, ...] = (1, 5, 10)
# Rows compared at once. One chunk's working memory is a boolean mask, chunk_size * n_videos bytes (20 MB for
# 1024 x 20,000), plus, for v2t "maxpool" with captions not sorted by video, a copy of the chunk's rows.
DEFAULT_CHUNK_SIZE = 1024

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "RECALL_AT",
    "V2T_MODES",
    "InvalidSimilarityError",
    "mean_similarity",
    "ranks_to_metrics",
    "retrieval_metrics",
    "t2v_ranks",
    "v2t_ranks",
]


class InvalidSimilarityError(VtrError, ValueError):
    """A similarity matrix or query-to-video array cannot be evaluated (wrong shape, NaN, index out of range)."""


def mean_similarity(sims: list[np.ndarray], *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> np.ndarray:
    """The element-wise mean of several similarity matrices of the same queries and videos, in float32.

    This scores by a score-level ensemble: several models evaluated on the same queries and videos, in the same
    order (``vtr eval --save-sim`` of each). The mean ranks as the concatenation of the models' unit embeddings
    would. Rows are added ``chunk_size`` at a time, so memory-mapped inputs are read once and only the result, one
    ``[n_queries, n_videos]`` float32 matrix, is held whole.

    Raises:
        InvalidSimilarityError: no matrix, or matrices of different shapes.
    """
    if not sims:
        raise InvalidSimilarityError("mean_similarity needs at least one similarity matrix")
    shapes = {tuple(np.shape(sim)) for sim in sims}
    if len(shapes) != 1:
        raise InvalidSimilarityError(
            f"similarity matrices of different shapes {sorted(shapes)} cannot be averaged: they must score the same "
            "queries against the same videos"
        )
    shape = shapes.pop()
    if len(shape) != 2:
        raise InvalidSimilarityError(f"similarity matrix must be 2-D [n_queries, n_videos], got shape {shape}")
    out = np.empty(shape, dtype=np.float32)
    step = max(1, chunk_size)
    for start in range(0, shape[0], step):
        stop = min(start + step, shape[0])
        total = np.array(sims[0][start:stop], dtype=np.float32)  # a copy, even of a float32 memmap
        for sim in sims[1:]:
            total += np.asarray(sim[start:stop], dtype=np.float32)
        out[start:stop] = total / len(sims)
    return out


def t2v_ranks(
    sim: np.ndarray, query_video: np.ndarray | None = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> np.ndarray:
    """Text-to-video rank of every query: ``1 +`` the number of videos scoring strictly higher than its own.

    Args:
        sim: similarity matrix ``[n_queries, n_videos]`` (integer or floating dtype; a memmap is fine).
        query_video: ``[n_queries]`` integer video index of each query; ``None`` means query ``i`` is video ``i``.
        chunk_size: rows compared at once (bounds memory, not the result).

    Returns:
        int64 array ``[n_queries]`` of 1-based ranks.

    Raises:
        InvalidSimilarityError: bad shape or dtype, NaN in ``sim``, bad ``query_video``.
    """
    sim, query_video = _validate(sim, query_video, chunk_size)
    ranks, _ = _ranks(sim, query_video, chunk_size, v2t=None)
    return ranks


def v2t_ranks(
    sim: np.ndarray,
    query_video: np.ndarray | None = None,
    *,
    mode: V2TMode = "best",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """Video-to-text rank of every video (see the module docstring for ``"best"`` and ``"maxpool"``).

    Args:
        sim: similarity matrix ``[n_queries, n_videos]``.
        query_video: ``[n_queries]`` video index of each query; ``None`` means query ``i`` is video ``i``.
            Every video needs at least one caption, or it has no correct answer to rank.
        mode: ``"best"`` ranks all captions and keeps the best own caption; ``"maxpool"`` ranks one max-pooled
            candidate per video (CLIP4Clip).
        chunk_size: rows compared at once (bounds memory, not the result).

    Returns:
        int64 array ``[n_videos]`` of 1-based ranks.

    Raises:
        InvalidSimilarityError: as :func:`t2v_ranks`, an unknown ``mode``, or a video without captions.
    """
    sim, query_video = _validate(sim, query_video, chunk_size)
    _check_mode(mode)
    _check_every_video_captioned(query_video, sim.shape[1])
    _, ranks = _ranks(sim, query_video, chunk_size, v2t=mode)
    return ranks


def retrieval_metrics(
    sim: np.ndarray,
    query_video: np.ndarray | None = None,
    v2t: V2TMode = "best",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict:
    """Text-to-video and video-to-text metrics of a similarity matrix.

    Args:
        sim: similarity matrix ``[n_queries, n_videos]``; higher is more similar.
        query_video: ``[n_queries]`` video index of each query; ``None`` means query ``i`` is video ``i``.
        v2t: video-to-text convention, ``"best"`` (default) or ``"maxpool"`` (CLIP4Clip).
        chunk_size: rows compared at once (bounds memory, not the result).

    Returns:
        ``{"t2v": {"R@1", "R@5", "R@10", "MdR", "MnR"}, "v2t": {...}, "rsum": float}``, R@k in percent and
        rsum the sum of the six recalls.

    Raises:
        InvalidSimilarityError: bad shape or dtype, NaN, bad ``query_video``, a video without captions,
            unknown ``v2t``.
    """
    sim, query_video = _validate(sim, query_video, chunk_size)
    _check_mode(v2t)
    _check_every_video_captioned(query_video, sim.shape[1])
    text_ranks, video_ranks = _ranks(sim, query_video, chunk_size, v2t=v2t)
    t2v = ranks_to_metrics(text_ranks)
    v2t_metrics = ranks_to_metrics(video_ranks)
    rsum = sum(t2v[f"R@{k}"] + v2t_metrics[f"R@{k}"] for k in RECALL_AT)
    return {"t2v": t2v, "v2t": v2t_metrics, "rsum": float(rsum)}


def ranks_to_metrics(ranks: np.ndarray) -> dict[str, float]:
    """R@1, R@5, R@10 (percent), MdR and MnR of 1-based ranks.

    Raises:
        InvalidSimilarityError: ``ranks`` is empty or holds a rank below 1.
    """
    ranks = np.asarray(ranks)
    if ranks.ndim != 1 or ranks.size == 0:
        raise InvalidSimilarityError(f"ranks must be a non-empty 1-D array, got shape {ranks.shape}")
    if ranks.min() < 1:
        raise InvalidSimilarityError("ranks are 1-based; got a rank below 1")
    metrics = {f"R@{k}": float(100.0 * np.count_nonzero(ranks <= k) / ranks.size) for k in RECALL_AT}
    metrics["MdR"] = float(np.median(ranks))
    metrics["MnR"] = float(ranks.mean())
    return metrics


def _validate(sim: np.ndarray, query_video: np.ndarray | None, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    # np.asarray keeps a memmap or an ndarray as it is: never a copy of the whole matrix.
    sim = np.asarray(sim)
    if sim.ndim != 2:
        raise InvalidSimilarityError(f"similarity matrix must be 2-D [n_queries, n_videos], got shape {sim.shape}")
    n_queries, n_videos = sim.shape
    if n_queries == 0 or n_videos == 0:
        raise InvalidSimilarityError(f"similarity matrix is empty (shape {sim.shape})")
    if not (np.issubdtype(sim.dtype, np.floating) or np.issubdtype(sim.dtype, np.integer)):
        raise InvalidSimilarityError(f"similarity matrix must hold real numbers, got dtype {sim.dtype}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise InvalidSimilarityError(f"chunk_size must be a positive integer, got {chunk_size!r}")

    if query_video is None:
        if n_queries != n_videos:
            raise InvalidSimilarityError(
                f"similarity matrix is {n_queries} x {n_videos}: with more than one caption per video, give the "
                "video index of each query (query_video / --query-video)"
            )
        return sim, np.arange(n_queries, dtype=np.int64)

    query_video = np.asarray(query_video)
    if query_video.ndim != 1 or query_video.shape[0] != n_queries:
        raise InvalidSimilarityError(
            f"query_video must have one entry per query ({n_queries}, the rows of the similarity matrix), "
            f"got shape {query_video.shape}"
        )
    if not np.issubdtype(query_video.dtype, np.integer):
        raise InvalidSimilarityError(f"query_video must hold integer video indices, got dtype {query_video.dtype}")
    bad = np.flatnonzero((query_video < 0) | (query_video >= n_videos))
    if bad.size:
        q = int(bad[0])
        raise InvalidSimilarityError(
            f"query_video[{q}] = {int(query_video[q])} is out of range: the similarity matrix has {n_videos} videos "
            f"(columns), so indices must be in 0..{n_videos - 1} ({bad.size} bad entries)"
        )
    return sim, query_video.astype(np.int64, copy=False)


def _check_mode(mode: str) -> None:
    if mode not in V2T_MODES:
        raise InvalidSimilarityError(f"unknown video-to-text convention {mode!r}; choose one of {', '.join(V2T_MODES)}")


def _check_every_video_captioned(query_video: np.ndarray, n_videos: int) -> None:
    captions_per_video = np.bincount(query_video, minlength=n_videos)  # [n_videos]
    missing = np.flatnonzero(captions_per_video == 0)
    if missing.size:
        raise InvalidSimilarityError(
            f"video {int(missing[0])} has no caption ({missing.size} of {n_videos} videos have none), so video-to-text "
            "ranks are undefined; drop caption-less videos from the columns or use t2v_ranks"
        )


def _ranks(
    sim: np.ndarray, query_video: np.ndarray, chunk_size: int, v2t: str | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """t2v ranks and, unless ``v2t`` is None, v2t ranks, in one pass over chunks of rows.

    Video-to-text needs no transpose: a video's rank is 1 + a count over its column of the candidates that beat
    its best own caption, and column counts add up over row chunks. For "maxpool" the candidates are the rows
    max-pooled per video, so chunks are cut at video boundaries and pooled before counting; a video's own
    pooled score is again its best own caption's score.
    """
    n_queries, n_videos = sim.shape
    text_ranks = np.empty(n_queries, dtype=np.int64)
    beaten = None if v2t is None else np.zeros(n_videos, dtype=np.int64)  # [n_videos]
    best_own = None if v2t is None else _best_own_scores(sim, query_video)  # [n_videos]
    for rows in _row_chunks(query_video, chunk_size, by_video=v2t == "maxpool"):
        # sim[rows] goes out of scope when the call returns: only one chunk is held at a time.
        _rank_chunk(sim[rows], rows, query_video[rows], best_own, v2t, text_ranks, beaten)
    return text_ranks, None if beaten is None else 1 + beaten


def _rank_chunk(
    block: np.ndarray,
    rows: slice | np.ndarray,
    block_video: np.ndarray,
    best_own: np.ndarray | None,
    v2t: str | None,
    text_ranks: np.ndarray,
    beaten: np.ndarray | None,
) -> None:
    """Fill ``text_ranks[rows]`` and add this chunk's candidates to ``beaten`` (block: [c, n_videos], sim[rows])."""
    if _has_nan(block):
        r, column = (int(i[0]) for i in np.nonzero(np.isnan(block)))
        raise _nan_error(rows.start + r if isinstance(rows, slice) else int(rows[r]), column)
    own = block[np.arange(block.shape[0]), block_video]  # [c]
    text_ranks[rows] = 1 + np.count_nonzero(block > own[:, None], axis=1)
    if v2t == "best":
        beaten += np.count_nonzero(block > best_own[None, :], axis=0)
    elif v2t == "maxpool":
        group_starts = np.flatnonzero(np.r_[True, block_video[1:] != block_video[:-1]])  # [g]
        # [g (candidate videos), n_videos]; with one caption per video the rows are the candidates already
        pooled = block if len(group_starts) == len(block) else np.maximum.reduceat(block, group_starts, axis=0)
        beaten += np.count_nonzero(pooled > best_own[None, :], axis=0)


def _row_chunks(query_video: np.ndarray, chunk_size: int, by_video: bool) -> Iterator[slice | np.ndarray]:
    """Row selections of about ``chunk_size`` rows each that together cover every row once.

    With ``by_video``, rows come grouped by video and a chunk never splits a video's captions (a video with more
    captions than ``chunk_size`` gets a chunk of its own). Selections are slices (so ``sim[rows]`` is a view)
    unless the captions are not already grouped by video, where ``sim[rows]`` copies one chunk.
    """
    n_queries = len(query_video)
    if not by_video:
        for start in range(0, n_queries, chunk_size):
            yield slice(start, min(start + chunk_size, n_queries))
        return
    order = np.argsort(query_video, kind="stable")  # [n_queries]
    in_order = bool(np.all(order == np.arange(n_queries)))
    sorted_video = query_video[order]  # [n_queries]
    start = 0
    while start < n_queries:
        stop = min(start + chunk_size, n_queries)
        # Extend to the end of the last video's captions.
        stop = int(np.searchsorted(sorted_video, sorted_video[stop - 1], side="right"))
        yield slice(start, stop) if in_order else order[start:stop]
        start = stop


def _has_nan(block: np.ndarray) -> bool:
    if not np.issubdtype(block.dtype, np.floating):
        return False
    # A sum is NaN if any element is (or on inf - inf): a cheap screen before the full element-wise test.
    return bool(np.isnan(np.add.reduce(block, axis=None)) and np.isnan(block).any())


def _nan_error(row: int, column: int) -> InvalidSimilarityError:
    return InvalidSimilarityError(
        f"similarity matrix has NaN (at row {row}, column {column}); check the embeddings for NaN before "
        "computing similarities"
    )


def _best_own_scores(sim: np.ndarray, query_video: np.ndarray) -> np.ndarray:
    """Highest score of each video against its own captions, ``[n_videos]`` in the dtype of ``sim``."""
    own = sim[np.arange(sim.shape[0]), query_video]  # [n_queries]: gathers n_queries elements only
    if np.issubdtype(own.dtype, np.floating):
        best = np.full(sim.shape[1], -np.inf, dtype=own.dtype)
    else:
        best = np.full(sim.shape[1], np.iinfo(own.dtype).min, dtype=own.dtype)
    # A NaN here is reported by the row pass, which checks every chunk before comparing.
    np.maximum.at(best, query_video, own)
    return best
