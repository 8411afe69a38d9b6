"""Data sets: the generic folder + ``annotations.jsonl`` format, its checker, and torch datasets over it.

The annotation reader is imported eagerly (it needs only the standard library); the torch datasets and the
checker load on first use, so that reading annotations or generating the synthetic set does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vtr.data.annotations import (
    ANNOTATIONS_FILE,
    SPLITS,
    Problem,
    VideoRecord,
    parse_annotations,
    read_annotations,
)

if TYPE_CHECKING:  # pragma: no cover
    from vtr.data.check import CheckReport, Issue, check_dataset
    from vtr.data.datasets import DecodeFailure, EvalVideoDataset, TrainClipDataset, collate_clips, eval_queries

__all__ = [
    "ANNOTATIONS_FILE",
    "SPLITS",
    "CheckReport",
    "DecodeFailure",
    "EvalVideoDataset",
    "Issue",
    "Problem",
    "TrainClipDataset",
    "VideoRecord",
    "check_dataset",
    "collate_clips",
    "eval_queries",
    "parse_annotations",
    "read_annotations",
]

_LAZY = {
    "CheckReport": "vtr.data.check",
    "Issue": "vtr.data.check",
    "check_dataset": "vtr.data.check",
    "DecodeFailure": "vtr.data.datasets",
    "EvalVideoDataset": "vtr.data.datasets",
    "TrainClipDataset": "vtr.data.datasets",
    "collate_clips": "vtr.data.datasets",
    "eval_queries": "vtr.data.datasets",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'vtr.data' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
