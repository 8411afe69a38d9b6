"""How ``vtr eval --rerank`` re-ranks (:mod:`vtr.evaluate.rerank`): its options and defaults, apart from the torch
code so that the command line can be built without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vtr.errors import ConfigError

__all__ = ["RERANK_DEPTH", "RERANK_WEIGHT", "RerankOptions"]

RERANK_DEPTH = 10
# Per head; the validation split of the demo's data set put the best R@5 of the noun and verb heads together
# between 0.2 and 0.5 (benchmarks/RESULTS.md, "Re-ranking by the fine-grained heads").
RERANK_WEIGHT = 0.3


@dataclass(frozen=True)
class RerankOptions:
    """How to re-rank.

    Attributes:
        depth: how many of each query's best videos (by the global similarity) are scored again.
        weight: the weight of each head's score against the global similarity.
        heads: the heads that score; None: every head of the model that can (:attr:`AlignmentHead.scores_pairs`).
    """

    depth: int = RERANK_DEPTH
    weight: float = RERANK_WEIGHT
    heads: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.depth, bool) or not isinstance(self.depth, (int, np.integer)) or self.depth < 1:
            raise ConfigError(f"re-ranking depth must be a positive integer, got {self.depth!r}")
        if not np.isfinite(self.weight) or self.weight < 0:
            raise ConfigError(f"re-ranking weight must be a finite number >= 0, got {self.weight!r}")
        if self.heads is not None and not self.heads:
            raise ConfigError("re-ranking needs at least one head")
