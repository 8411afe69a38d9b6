"""Loss functions of the retrieval models as pure functions: contrastive (multi-positive InfoNCE) terms, and focal
binary cross-entropy and KL terms on attribute predictions."""

from __future__ import annotations

from vtr.losses.attributes import attribute_kl, focal_binary_cross_entropy
from vtr.losses.contrastive import (
    POSITIVE_MODES,
    contrastive_loss,
    described_positives,
    group_positives,
    multi_positive_info_nce,
)

__all__ = [
    "POSITIVE_MODES",
    "attribute_kl",
    "contrastive_loss",
    "described_positives",
    "focal_binary_cross_entropy",
    "group_positives",
    "multi_positive_info_nce",
]
