"""Evaluation: retrieval metrics over a similarity matrix (pure functions, :mod:`vtr.evaluate.metrics`), and
test-time post-processing reported apart from them (:mod:`vtr.evaluate.postprocess`)."""

from __future__ import annotations

from vtr.evaluate.metrics import (
    InvalidSimilarityError,
    ranks_to_metrics,
    retrieval_metrics,
    t2v_ranks,
    v2t_ranks,
)
from vtr.evaluate.postprocess import (
    dual_softmax,
    dynamic_inverted_softmax,
    inverted_softmax,
    sinkhorn_knopp,
)
from vtr.evaluate.postprocess_report import postprocessed_metrics

__all__ = [
    "InvalidSimilarityError",
    "dual_softmax",
    "dynamic_inverted_softmax",
    "inverted_softmax",
    "postprocessed_metrics",
    "ranks_to_metrics",
    "retrieval_metrics",
    "sinkhorn_knopp",
    "t2v_ranks",
    "v2t_ranks",
]
