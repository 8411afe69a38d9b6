"""Evaluation: retrieval metrics over a similarity matrix (pure functions, :mod:`vtr.evaluate.metrics`)."""

from __future__ import annotations

from vtr.evaluate.metrics import (
    InvalidSimilarityError,
    ranks_to_metrics,
    retrieval_metrics,
    t2v_ranks,
    v2t_ranks,
)

__all__ = ["InvalidSimilarityError", "ranks_to_metrics", "retrieval_metrics", "t2v_ranks", "v2t_ranks"]
