"""Loss functions of the retrieval models: contrastive (multi-positive InfoNCE) terms as pure functions."""

from __future__ import annotations

from vtr.losses.contrastive import POSITIVE_MODES, contrastive_loss, group_positives, multi_positive_info_nce

__all__ = ["POSITIVE_MODES", "contrastive_loss", "group_positives", "multi_positive_info_nce"]
