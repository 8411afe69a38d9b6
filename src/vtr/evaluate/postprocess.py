"""Test-time post-processing of a similarity matrix (dual softmax, QB-Norm, Sinkhorn-Knopp), reported apart.

Papers in the field often report numbers after rescoring the whole test similarity matrix; these functions let
vtr reproduce such numbers, always labelled and never in place of the plain metrics of
:mod:`vtr.evaluate.metrics`. Read what each method *uses* before comparing numbers:

* **Dual softmax** (:func:`dual_softmax`) and **Sinkhorn-Knopp** (:func:`sinkhorn_knopp`) rescore every query
  with the help of every *other test query*. A deployed search engine gets one query at a time and has no such
  set, so these numbers are transductive: an upper bound for a benchmark, not what a user would see.
* **QB-Norm** (:func:`inverted_softmax`, :func:`dynamic_inverted_softmax`) uses a *query bank* (e.g. the
  training captions) scored against the gallery, and each test query on its own: it can be deployed, as long as
  the bank holds no test queries.

Conventions are those of :mod:`vtr.evaluate.metrics`: ``sim[q, v]`` is the score of query (caption) ``q``
against video ``v``, higher is more similar; outputs keep that shape and orientation, so they go straight into
:func:`~vtr.evaluate.metrics.t2v_ranks` / :func:`~vtr.evaluate.metrics.v2t_ranks`. Inputs may be any real dtype
(a read-only ``numpy.memmap`` too); NaN and infinities are refused.

Numerics and memory: every exponential is taken in the log domain (log-sum-exp with the maximum subtracted), in
float64, so ``exp(beta * sim)`` never overflows whatever ``beta``. Rows are read ``chunk_size`` at a time; the
only full-size allocation is the float64 output, ``8 * n_queries * n_videos`` bytes (twice a float32 matrix:
3.2 GB for 20,000 x 20,000), plus float64 working arrays of ``chunk_size x n_videos`` (about 40 MB each for
256 x 20,000) and vectors of length ``n_queries`` or ``n_videos``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from vtr.errors import ConfigError
from vtr.evaluate.metrics import InvalidSimilarityError

Direction = Literal["t2v", "v2t"]
DIRECTIONS: tuple[str, ...] = ("t2v", "v2t")

# Rows rescored at once; one float64 chunk of 256 x 20,000 is 41 MB.
DEFAULT_CHUNK_SIZE = 256
# 0.01 on cosine similarities is softmax(100 * cos): CLIP's (and CLIP4Clip's) logit scale of 100 with CAMoE's
# inference temperature of 1 (their DSL rescales logits, not cosines).
DSL_TEMPERATURE = 0.01
# The defaults of the QB-Norm authors' code (ioanacroi/qb-norm, dynamic_inverted_softmax.py): beta 20, top-1.
QB_BETA = 20.0
QB_TOP_K = 1
# Entropic regularisation on the same scale as the dual softmax temperature (NCL uses the model's temperature).
SINKHORN_EPSILON = 0.01
SINKHORN_MAX_ITER = 100
# Stop once every video's transported mass is within 0.1% of its uniform share (rows are exact after each step).
SINKHORN_TOL = 1e-3

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DIRECTIONS",
    "DSL_TEMPERATURE",
    "QB_BETA",
    "QB_TOP_K",
    "SINKHORN_EPSILON",
    "SINKHORN_MAX_ITER",
    "SINKHORN_TOL",
    "SinkhornPotentials",
    "dual_softmax",
    "dynamic_inverted_softmax",
    "inverted_softmax",
    "normalised_queries",
    "sinkhorn_knopp",
    "sinkhorn_potentials",
]


# --------------------------------------------------------------------------------------------- dual softmax


def dual_softmax(
    sim: np.ndarray,
    temperature: float = DSL_TEMPERATURE,
    direction: Direction = "t2v",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """Dual softmax rescoring: each score times a softmax prior over the *query* axis of ``direction``.

    From CAMoE's Dual Softmax Loss (Cheng et al. 2021, "Improving Video-Text Retrieval by Multi-Stream Corpus
    Alignment and Dual Softmax Loss", arXiv:2109.04290), used at inference in CLIP4Clip-style evaluation code:

    * ``"t2v"`` (captions rank videos, along rows): ``out[q, v] = sim[q, v] * softmax_q'(sim[q', v] / T)[q]``,
      the softmax over axis 0, i.e. over all *queries* for a fixed video.
    * ``"v2t"`` (videos rank captions, along columns): ``out[q, v] = sim[q, v] * softmax_v'(sim[q, v'] / T)[v]``,
      the softmax over axis 1, over all *query videos* for a fixed caption.

    Why the other axis: a softmax along the axis being ranked is a monotone function of the scores it ranks, so
    it adds nothing. Over
    the query axis it asks how strongly *this* query claims the item compared with every other query, so a hub
    video that scores high with many captions gets a small prior from each of them and is demoted.

    Uses: every test query at once (the whole matrix). A deployed engine does not have the test query set, so
    the numbers are transductive and not comparable with the plain metrics.

    CAMoE multiplies the prior by the logits (``logit_scale * cos``) and by ``n``; both are positive constants
    and change no rank, so they are left out. As published, a negative score multiplied by a small prior moves
    towards 0, i.e. *up*: items with negative similarity can be reordered among themselves.

    Args:
        sim: ``[n_queries, n_videos]`` similarities; higher is more similar.
        temperature: softmax temperature in units of ``sim`` (default 0.01 for cosine similarities; for logits
            already multiplied by a logit scale use 1.0).
        direction: ``"t2v"`` or ``"v2t"``: which ranking the output is for (use the ``"t2v"`` output with
            ``t2v_ranks`` and the ``"v2t"`` output with ``v2t_ranks``).
        chunk_size: rows processed at once (bounds working memory, not the result).

    Returns:
        float64 ``[n_queries, n_videos]``.

    Raises:
        InvalidSimilarityError: ``sim`` is not a non-empty 2-D real matrix, or holds NaN or an infinity.
        ConfigError: ``temperature`` is not a positive finite number, ``direction`` is unknown, bad
            ``chunk_size``, or the temperature is so small for the spread of the scores that a prior underflows to
            0 in float64 (ties that would flatter the metrics).
    """
    sim = _check_matrix(sim, "similarity matrix")
    scale = 1.0 / check_positive(temperature, "dual softmax temperature")
    if direction not in DIRECTIONS:
        raise ConfigError(f"unknown direction {direction!r}; choose one of {', '.join(DIRECTIONS)}")
    check_chunk_size(chunk_size)
    # "t2v": per-video normaliser over all queries (a pass over the rows first); "v2t": per-query, row by row.
    column_lse = _column_logsumexp(sim, scale, chunk_size) if direction == "t2v" else None  # [n_videos]
    out = np.empty(sim.shape, dtype=np.float64)
    for rows, block in _row_blocks(sim, chunk_size, "similarity matrix"):
        logits = block * scale  # [c, n_videos]
        lse = column_lse[None, :] if column_lse is not None else _row_logsumexp(logits)[:, None]
        prior = np.exp(logits - lse)  # [c, n_videos], each in (0, 1]
        if not prior.all():
            raise ConfigError(
                f"dual softmax temperature {temperature} is too small for these scores (spread "
                f"{float(block.max() - block.min()):.3g} within a chunk): some priors underflow to 0 and would tie; "
                "use a larger temperature (0.01 suits cosine similarities, 1.0 logits scaled by 100)"
            )
        out[rows] = block * prior
    return out


# --------------------------------------------------------------------------------------------------- QB-Norm


def inverted_softmax(
    sim: np.ndarray,
    bank_sim: np.ndarray,
    beta: float = QB_BETA,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """Inverted softmax of QB-Norm, in log form: ``beta * sim[q, v] - log sum_b exp(beta * bank_sim[b, v])``.

    Bogolin et al., "Cross Modal Retrieval with Querybank Normalisation" (CVPR 2022), their inverted softmax: a
    test query's score for video ``v`` is divided by the sum of ``exp(beta * .)`` over the *query
    bank*'s scores for ``v``, so a video that many bank queries score high (a hub) is demoted. The log of that
    ratio is returned: the same ranks as the ratio, without overflow of ``exp(beta * sim)`` (float32 overflows
    from ``beta * sim > 88``, e.g. beta 100 on similarities near 1) and without underflow to tied zeros.

    Uses: the bank (``bank_sim``, e.g. the training captions against the test videos) and each test query on its
    own, never the other test queries; deployable as long as the bank holds no test queries. The normaliser is
    per video, so only ranks within a row (text-to-video) are meaningful.

    Args:
        sim: ``[n_queries, n_videos]`` test similarities.
        bank_sim: ``[n_bank, n_videos]`` similarities of the bank queries to the same videos (same columns).
        beta: inverse temperature (default 20, the authors' code).
        chunk_size: rows processed at once.

    Returns:
        float64 ``[n_queries, n_videos]``.

    Raises:
        InvalidSimilarityError: a matrix is not non-empty, 2-D and real, holds NaN or an infinity, or the two
            have different numbers of videos (columns).
        ConfigError: ``beta`` is not a positive finite number, or bad ``chunk_size``.
    """
    sim, bank_sim, beta, log_norm = _bank_normaliser(sim, bank_sim, beta, chunk_size)
    out = np.empty(sim.shape, dtype=np.float64)
    for rows, block in _row_blocks(sim, chunk_size, "similarity matrix"):
        out[rows] = beta * block - log_norm[None, :]
    return out


def _bank_normaliser(
    sim: np.ndarray, bank_sim: np.ndarray, beta: float, chunk_size: int
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """The checked inputs of QB-Norm and its per-video log normaliser ``log sum_b exp(beta * bank_sim[b, v])``."""
    sim, bank_sim = _check_bank(sim, bank_sim)
    beta = check_positive(beta, "QB-Norm beta")
    check_chunk_size(chunk_size)
    log_norm = _column_logsumexp(bank_sim, beta, chunk_size, what="query bank similarity matrix")  # [n_videos]
    return sim, bank_sim, beta, log_norm


def dynamic_inverted_softmax(
    sim: np.ndarray,
    bank_sim: np.ndarray,
    beta: float = QB_BETA,
    top_k: int = QB_TOP_K,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """QB-Norm with the dynamic inverted softmax: normalise only queries whose top-1 video the bank activates.

    Bogolin et al., CVPR 2022 (the method their code runs as "QB-Norm"). The *activation set* is every video in
    the top ``top_k`` of at least one bank query. A test query whose best video (by raw score) is in it gets the
    :func:`inverted_softmax` row; any other query keeps its raw scores, unchanged. The idea: only a query that
    lands on a video the bank shows to be a hub needs correcting; the rest would only be hurt.

    Ties are counted inclusively, to be deterministic: a video is activated if it scores at least the
    ``top_k``-th best score of some bank query, and a query is normalised if any of its tied best videos is
    activated (the authors break ties by ``argsort`` order).

    Uses: the bank and each test query on its own (see :func:`inverted_softmax`). Rows are on two scales
    (log-ratio or raw score), so only ranks within a row (text-to-video) are meaningful.

    Args:
        sim: ``[n_queries, n_videos]`` test similarities.
        bank_sim: ``[n_bank, n_videos]`` bank similarities to the same videos.
        beta: inverse temperature (default 20).
        top_k: how many top videos of each bank query form the activation set (default 1).
        chunk_size: rows processed at once.

    Returns:
        float64 ``[n_queries, n_videos]``: normalised rows are ``beta * sim - log_norm``, the others ``sim``.

    Raises:
        InvalidSimilarityError: as :func:`inverted_softmax`.
        ConfigError: as :func:`inverted_softmax`, or ``top_k`` is not an integer in ``1..n_videos``.
    """
    sim, bank_sim, beta, log_norm = _bank_normaliser(sim, bank_sim, beta, chunk_size)
    active = _activation_set(bank_sim, top_k, chunk_size)  # [n_videos] bool
    out = np.empty(sim.shape, dtype=np.float64)
    for rows, block in _row_blocks(sim, chunk_size, "similarity matrix"):
        normalise = _top1_active(block, active)  # [c] bool
        out[rows] = np.where(normalise[:, None], beta * block - log_norm[None, :], block)
    return out


def normalised_queries(
    sim: np.ndarray, bank_sim: np.ndarray, top_k: int = QB_TOP_K, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> np.ndarray:
    """Which queries :func:`dynamic_inverted_softmax` normalises: bool ``[n_queries]``."""
    sim, bank_sim = _check_bank(sim, bank_sim)
    check_chunk_size(chunk_size)
    active = _activation_set(bank_sim, top_k, chunk_size)
    mask = np.empty(sim.shape[0], dtype=bool)
    for rows, block in _row_blocks(sim, chunk_size, "similarity matrix"):
        mask[rows] = _top1_active(block, active)
    return mask


def _activation_set(bank_sim: np.ndarray, top_k: int, chunk_size: int) -> np.ndarray:
    """Videos among the ``top_k`` best of at least one bank query (ties at the k-th score included)."""
    n_videos = bank_sim.shape[1]
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= n_videos:
        raise ConfigError(f"QB-Norm top_k must be an integer in 1..{n_videos} (the number of videos), got {top_k!r}")
    active = np.zeros(n_videos, dtype=bool)  # [n_videos]
    for _, block in _row_blocks(bank_sim, chunk_size, "query bank similarity matrix"):
        kth_best = np.partition(block, n_videos - top_k, axis=1)[:, n_videos - top_k]  # [c]
        active |= (block >= kth_best[:, None]).any(axis=0)
    return active


def _top1_active(block: np.ndarray, active: np.ndarray) -> np.ndarray:
    """[c] bool: one of the row's best-scoring videos is in the activation set."""
    best = block.max(axis=1, keepdims=True)  # [c, 1]
    return ((block == best) & active[None, :]).any(axis=1)


# -------------------------------------------------------------------------------------------- Sinkhorn-Knopp


@dataclass(frozen=True)
class SinkhornPotentials:
    """Dual potentials of the entropic transport plan ``P[q, v] = exp(sim[q, v] / eps + row[q] + column[v])``.

    Attributes:
        row: float64 ``[n_queries]``; each row of ``P`` sums to exactly ``1 / n_queries``.
        column: float64 ``[n_videos]``, the learnt per-video bias (in units of ``sim / eps``).
        iterations: row updates run (each but the last followed by a column update).
        marginal_error: ``max_v |n_videos * sum_q P[q, v] - 1|`` when stopped (relative error of the columns).
    """

    row: np.ndarray
    column: np.ndarray
    iterations: int
    marginal_error: float


def sinkhorn_potentials(
    sim: np.ndarray,
    epsilon: float = SINKHORN_EPSILON,
    max_iter: int = SINKHORN_MAX_ITER,
    tol: float = SINKHORN_TOL,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> SinkhornPotentials:
    """Balance ``exp(sim / epsilon)`` to uniform marginals with Sinkhorn-Knopp iterations in the log domain.

    Sinkhorn & Knopp (1967) scaling, as entropic optimal transport (Cuturi 2013, "Sinkhorn Distances"), applied
    to text-video retrieval by Park et al. (EMNLP 2022, "Normalized Contrastive Learning for Text-Video
    Retrieval"). Alternates, with ``lse`` the log-sum-exp:

        ``row[q]    = log(1 / n_queries) - lse_v(sim[q, v] / eps + column[v])``   (rows sum to 1 / n_queries)
        ``column[v] = log(1 / n_videos)  - lse_q(sim[q, v] / eps + row[q])``      (columns sum to 1 / n_videos)

    starting from ``column = 0``, until the columns are within ``tol`` (relative) of uniform after a row update,
    or ``max_iter`` updates. Each update is one pass over the rows of ``sim``; nothing of its size is kept.

    Uses: every test query and every test video at once (transductive, like the dual softmax).

    Raises:
        InvalidSimilarityError: ``sim`` is not a non-empty 2-D real matrix, or holds NaN or an infinity.
        ConfigError: ``epsilon`` not positive and finite, ``max_iter`` not a positive integer, ``tol`` negative
            or not finite, or bad ``chunk_size``.
    """
    sim = _check_matrix(sim, "similarity matrix")
    scale = 1.0 / check_positive(epsilon, "Sinkhorn epsilon")
    check_sinkhorn_stops(max_iter, tol)
    check_chunk_size(chunk_size)
    n_queries, n_videos = sim.shape
    log_row_mass, log_column_mass = -np.log(n_queries), -np.log(n_videos)
    row = np.zeros(n_queries, dtype=np.float64)  # [n_queries]
    column = np.zeros(n_videos, dtype=np.float64)  # [n_videos]
    for iteration in range(1, int(max_iter) + 1):
        # One pass: the row update for a chunk, then that chunk's share of the column sums under the new rows.
        stream = _StreamingColumnLSE(n_videos)
        for rows, block in _row_blocks(sim, chunk_size, "similarity matrix"):
            log_kernel = block * scale + column[None, :]  # [c, n_videos]
            row[rows] = log_row_mass - _row_logsumexp(log_kernel)
            stream.add(log_kernel + row[rows, None])
        log_columns = stream.result()  # [n_videos]: log of each column's mass under the current plan
        marginal_error = float(np.max(np.abs(np.expm1(log_columns - log_column_mass))))
        if marginal_error <= tol or iteration == max_iter:
            break
        column += log_column_mass - log_columns
    return SinkhornPotentials(row=row, column=column, iterations=iteration, marginal_error=marginal_error)


def sinkhorn_knopp(
    sim: np.ndarray,
    epsilon: float = SINKHORN_EPSILON,
    max_iter: int = SINKHORN_MAX_ITER,
    tol: float = SINKHORN_TOL,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """Log of the balanced transport plan, ``sim / eps + row[q] + column[v]`` (see :func:`sinkhorn_potentials`).

    One matrix serves both directions: within a row the row potential is a constant, so text-to-video ranks by
    ``sim / eps + column[v]`` (a learnt per-video bias that demotes hubs); within a column, video-to-text ranks by
    ``sim / eps + row[q]``. ``exp`` of the output is the plan, whose rows sum to ``1 / n_queries`` and columns to
    ``1 / n_videos`` up to ``tol``.

    Uses: every test query and video at once (transductive).

    Returns:
        float64 ``[n_queries, n_videos]``.

    Raises:
        InvalidSimilarityError, ConfigError: as :func:`sinkhorn_potentials`.
    """
    sim = _check_matrix(sim, "similarity matrix")
    potentials = sinkhorn_potentials(sim, epsilon, max_iter, tol, chunk_size=chunk_size)
    return log_plan(sim, potentials, 1.0 / epsilon, chunk_size)


def log_plan(sim: np.ndarray, potentials: SinkhornPotentials, scale: float, chunk_size: int) -> np.ndarray:
    out = np.empty(sim.shape, dtype=np.float64)
    for rows, block in _row_blocks(sim, chunk_size, "similarity matrix"):
        out[rows] = block * scale + potentials.row[rows, None] + potentials.column[None, :]
    return out


# ---------------------------------------------------------------------------------------------- the report


# ------------------------------------------------------------------------------------------------ helpers


def _check_matrix(matrix: np.ndarray, what: str) -> np.ndarray:
    # np.asarray keeps a memmap or an ndarray as it is: never a copy of the whole matrix.
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise InvalidSimilarityError(f"{what} must be 2-D [n_queries, n_videos], got shape {matrix.shape}")
    if 0 in matrix.shape:
        raise InvalidSimilarityError(f"{what} is empty (shape {matrix.shape})")
    if not (np.issubdtype(matrix.dtype, np.floating) or np.issubdtype(matrix.dtype, np.integer)):
        raise InvalidSimilarityError(f"{what} must hold real numbers, got dtype {matrix.dtype}")
    return matrix


def _check_bank(sim: np.ndarray, bank_sim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sim = _check_matrix(sim, "similarity matrix")
    bank_sim = _check_matrix(bank_sim, "query bank similarity matrix")
    if bank_sim.shape[1] != sim.shape[1]:
        raise InvalidSimilarityError(
            f"the query bank is scored against {bank_sim.shape[1]} videos but the similarity matrix has "
            f"{sim.shape[1]}: score the bank queries against the same test videos, in the same order"
        )
    return sim, bank_sim


def check_positive(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{what} must be a positive number, got {value!r}")
    if not np.isfinite(value) or value <= 0:
        raise ConfigError(f"{what} must be a positive finite number, got {value!r}")
    return float(value)


def check_sinkhorn_stops(max_iter: int, tol: float) -> None:
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ConfigError(f"Sinkhorn max_iter must be a positive integer, got {max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.integer, np.floating)):
        raise ConfigError(f"Sinkhorn tol must be a number >= 0, got {tol!r}")
    if not np.isfinite(tol) or tol < 0:
        raise ConfigError(f"Sinkhorn tol must be a finite number >= 0, got {tol!r}")


def check_chunk_size(chunk_size: int) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")


def _row_blocks(matrix: np.ndarray, chunk_size: int, what: str) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows, float64 copy of matrix[rows])`` for consecutive chunks, refusing NaN and infinities."""
    n_rows = matrix.shape[0]
    for start in range(0, n_rows, chunk_size):
        rows = slice(start, min(start + chunk_size, n_rows))
        block = np.asarray(matrix[rows], dtype=np.float64)  # [c, n_videos]
        if not np.isfinite(block).all():
            r, column = (int(i[0]) for i in np.nonzero(~np.isfinite(block)))
            kind = "NaN" if np.isnan(block[r, column]) else "an infinity"
            raise InvalidSimilarityError(
                f"{what} has {kind} (at row {start + r}, column {column}); check the embeddings before computing "
                "similarities"
            )
        yield rows, block


def _row_logsumexp(values: np.ndarray) -> np.ndarray:
    """``log(sum(exp(values), axis=1))`` without overflow: [c, n] -> [c]."""
    peak = values.max(axis=1)  # [c]
    return peak + np.log(np.exp(values - peak[:, None]).sum(axis=1))


class _StreamingColumnLSE:
    """Column-wise log-sum-exp accumulated over row chunks (the running maximum is rescaled as it grows)."""

    def __init__(self, n_columns: int) -> None:
        self.peak = np.full(n_columns, -np.inf)  # [n]
        self.total = np.zeros(n_columns)  # [n]: sum of exp(x - peak)

    def add(self, values: np.ndarray) -> None:
        """Take a chunk of rows ``[c, n]``."""
        peak = np.maximum(self.peak, values.max(axis=0))  # [n], finite from the first chunk on
        self.total = self.total * np.exp(self.peak - peak) + np.exp(values - peak[None, :]).sum(axis=0)
        self.peak = peak

    def result(self) -> np.ndarray:
        return self.peak + np.log(self.total)


def _column_logsumexp(matrix: np.ndarray, scale: float, chunk_size: int, what: str = "similarity matrix") -> np.ndarray:
    """``log(sum_rows(exp(scale * matrix)))`` per column, one chunk of rows at a time: ``[n_columns]``."""
    stream = _StreamingColumnLSE(matrix.shape[1])
    for _, block in _row_blocks(matrix, chunk_size, what):
        stream.add(block * scale)
    return stream.result()
