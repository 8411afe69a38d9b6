"""What ``--postprocess`` reports: retrieval metrics after each rescoring of :mod:`vtr.evaluate.postprocess`, each
labelled with what it uses (the test queries at once, or a query bank) and its parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vtr.errors import ConfigError
from vtr.evaluate.metrics import ranks_to_metrics, t2v_ranks, v2t_ranks
from vtr.evaluate.postprocess import (
    DEFAULT_CHUNK_SIZE,
    DSL_TEMPERATURE,
    QB_BETA,
    QB_TOP_K,
    SINKHORN_EPSILON,
    SINKHORN_MAX_ITER,
    SINKHORN_TOL,
    check_chunk_size,
    check_positive,
    check_sinkhorn_stops,
    dual_softmax,
    dynamic_inverted_softmax,
    log_plan,
    normalised_queries,
    sinkhorn_potentials,
)

__all__ = ["POSTPROCESS_METHODS", "PostprocessOptions", "parse_methods", "postprocessed_metrics"]

POSTPROCESS_METHODS: tuple[str, ...] = ("dsl", "qbnorm", "sinkhorn")


@dataclass(frozen=True)
class PostprocessOptions:
    """Parameters of every post-processing method (defaults as in the module constants)."""

    dsl_temperature: float = DSL_TEMPERATURE
    qb_beta: float = QB_BETA
    qb_top_k: int = QB_TOP_K
    sinkhorn_epsilon: float = SINKHORN_EPSILON
    sinkhorn_max_iter: int = SINKHORN_MAX_ITER
    sinkhorn_tol: float = SINKHORN_TOL
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        # Checked here too, so a command refuses a bad value before it spends minutes encoding.
        check_positive(self.dsl_temperature, "dual softmax temperature")
        check_positive(self.qb_beta, "QB-Norm beta")
        if isinstance(self.qb_top_k, bool) or not isinstance(self.qb_top_k, (int, np.integer)) or self.qb_top_k < 1:
            raise ConfigError(f"QB-Norm top_k must be a positive integer, got {self.qb_top_k!r}")
        check_positive(self.sinkhorn_epsilon, "Sinkhorn epsilon")
        check_sinkhorn_stops(self.sinkhorn_max_iter, self.sinkhorn_tol)
        check_chunk_size(self.chunk_size)


def parse_methods(text: str) -> tuple[str, ...]:
    """``"dsl,qbnorm"`` -> ``("dsl", "qbnorm")``: known names, in the order given, each once.

    Raises:
        ConfigError: an empty list or an unknown name.
    """
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigError(f"no post-processing method given; choose from {', '.join(POSTPROCESS_METHODS)}")
    unknown = [name for name in names if name not in POSTPROCESS_METHODS]
    if unknown:
        raise ConfigError(
            f"unknown post-processing method {unknown[0]!r}; choose from {', '.join(POSTPROCESS_METHODS)}"
        )
    return tuple(dict.fromkeys(names))


def postprocessed_metrics(
    sim: np.ndarray,
    query_video: np.ndarray | None = None,
    methods: Sequence[str] = POSTPROCESS_METHODS,
    *,
    v2t: str = "best",
    bank_sim: np.ndarray | None = None,
    bank_name: str = "queries",
    options: PostprocessOptions | None = None,
) -> dict[str, dict[str, Any]]:
    """Retrieval metrics after each post-processing method, each labelled with what it uses and its parameters.

    Args:
        sim: ``[n_queries, n_videos]`` test similarities (left unchanged).
        query_video: ``[n_queries]`` video index of each query (see :mod:`vtr.evaluate.metrics`).
        methods: names from :data:`POSTPROCESS_METHODS`.
        v2t: the video-to-text convention, as for the plain metrics.
        bank_sim: ``[n_bank, n_videos]`` bank similarities; needed by ``"qbnorm"``.
        bank_name: what the bank is, for the report (e.g. ``"train captions"``).
        options: the methods' parameters.

    Returns:
        ``{method: {"method": ..., "uses": ..., "params": {...}, "t2v": {...}, "v2t": {...}, "rsum": ...}}``.
        ``"qbnorm"`` has ``"t2v"`` only: its bank is of text queries, which says nothing about video queries.

    Raises:
        ConfigError: an unknown method, bad parameters, or ``"qbnorm"`` without ``bank_sim``.
        InvalidSimilarityError: as the metrics and the methods.
    """
    options = options or PostprocessOptions()
    report = {}
    for name in methods:
        if name not in _REPORTERS:
            raise ConfigError(f"unknown post-processing method {name!r}; choose from {', '.join(POSTPROCESS_METHODS)}")
        report[name] = _REPORTERS[name](sim, query_video, v2t, bank_sim, bank_name, options)
    return report


def _report_dsl(
    sim: np.ndarray,
    query_video: np.ndarray | None,
    v2t: str,
    bank_sim: np.ndarray | None,
    bank_name: str,
    options: PostprocessOptions,
) -> dict[str, Any]:
    size = options.chunk_size
    t2v = t2v_ranks(dual_softmax(sim, options.dsl_temperature, "t2v", chunk_size=size), query_video)
    # The t2v matrix is freed before the v2t one is built: one float64 copy at a time.
    v2t_r = v2t_ranks(dual_softmax(sim, options.dsl_temperature, "v2t", chunk_size=size), query_video, mode=v2t)
    return {
        "method": "dual softmax (Cheng et al. 2021, CAMoE)",
        "uses": "all test queries at once (transductive)",
        "params": {"temperature": options.dsl_temperature},
        **_both_directions(t2v, v2t_r),
    }


def _report_qbnorm(
    sim: np.ndarray,
    query_video: np.ndarray | None,
    v2t: str,
    bank_sim: np.ndarray | None,
    bank_name: str,
    options: PostprocessOptions,
) -> dict[str, Any]:
    if bank_sim is None:
        raise ConfigError(
            "QB-Norm needs a query bank: the similarities of bank queries (e.g. training captions) to the test videos"
        )
    size = options.chunk_size
    scores = dynamic_inverted_softmax(sim, bank_sim, options.qb_beta, options.qb_top_k, chunk_size=size)
    ranks = t2v_ranks(scores, query_video)
    del scores
    share = float(normalised_queries(sim, bank_sim, options.qb_top_k, chunk_size=size).mean())
    return {
        "method": "QB-Norm, dynamic inverted softmax (Bogolin et al. 2022)",
        "uses": f"a bank of {bank_sim.shape[0]} {bank_name}, each test query on its own",
        "params": {
            "beta": options.qb_beta,
            "top_k": options.qb_top_k,
            "bank": bank_name,
            "bank_size": int(bank_sim.shape[0]),
            "normalised_percent": round(100.0 * share, 2),  # of the test queries
        },
        "t2v": ranks_to_metrics(ranks),
    }


def _report_sinkhorn(
    sim: np.ndarray,
    query_video: np.ndarray | None,
    v2t: str,
    bank_sim: np.ndarray | None,
    bank_name: str,
    options: PostprocessOptions,
) -> dict[str, Any]:
    size = options.chunk_size
    potentials = sinkhorn_potentials(
        sim, options.sinkhorn_epsilon, options.sinkhorn_max_iter, options.sinkhorn_tol, chunk_size=size
    )
    plan = log_plan(np.asarray(sim), potentials, 1.0 / options.sinkhorn_epsilon, size)  # [n_queries, n_videos]
    t2v, v2t_r = t2v_ranks(plan, query_video), v2t_ranks(plan, query_video, mode=v2t)
    return {
        "method": "Sinkhorn-Knopp balancing (Park et al. 2022, NCL)",
        "uses": "all test queries and videos at once (transductive)",
        "params": {
            "epsilon": options.sinkhorn_epsilon,
            "max_iter": options.sinkhorn_max_iter,
            "tol": options.sinkhorn_tol,
            "iterations": potentials.iterations,
            "marginal_error": potentials.marginal_error,
            "converged": potentials.marginal_error <= options.sinkhorn_tol,
        },
        **_both_directions(t2v, v2t_r),
    }


_REPORTERS = {"dsl": _report_dsl, "qbnorm": _report_qbnorm, "sinkhorn": _report_sinkhorn}


def _both_directions(text_ranks: np.ndarray, video_ranks: np.ndarray) -> dict[str, Any]:
    t2v, v2t = ranks_to_metrics(text_ranks), ranks_to_metrics(video_ranks)
    rsum = sum(t2v[key] + v2t[key] for key in t2v if key.startswith("R@"))
    return {"t2v": t2v, "v2t": v2t, "rsum": float(rsum)}
