"""Alignment heads: the training objectives of the retrieval model, one registry entry each.

``global`` (L1), ``noun`` (L2) and ``verb`` (L3) of the dual-alignment paper; ``mcsan`` (entity and action levels
with attribute prediction, MCSAN) and ``hcmi`` (frame-word and clip-phrase contrastive levels, HCMI); ``ucofia``
(frame-sentence and patch-word levels with interactive similarity aggregation, UCoFiA); ``fcanet`` (segment-phrase
graphs trained by link prediction, FCA-Net); other methods add heads here.
"""

from __future__ import annotations

from vtr.models.heads.base import AlignmentHead, HeadContext, HeadInputs, Temperature, string_group_ids
from vtr.models.heads.coarse_to_fine import CoarseToFineHead
from vtr.models.heads.fine_grained import NounHead, VerbHead, WordAlignmentHead
from vtr.models.heads.global_head import GlobalHead
from vtr.models.heads.graph_alignment import GraphAlignmentHead
from vtr.models.heads.hierarchical import HierarchicalHead
from vtr.models.heads.semantic_levels import SemanticLevelsHead

__all__ = [
    "AlignmentHead",
    "CoarseToFineHead",
    "GlobalHead",
    "GraphAlignmentHead",
    "HeadContext",
    "HeadInputs",
    "HierarchicalHead",
    "NounHead",
    "SemanticLevelsHead",
    "Temperature",
    "VerbHead",
    "WordAlignmentHead",
    "string_group_ids",
]
