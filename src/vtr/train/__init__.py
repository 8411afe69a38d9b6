"""Training: the loop, optimiser and schedule, resumable checkpoints, the run log, the loss ablation."""

from __future__ import annotations

from typing import Any

__all__ = ["fit"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing a small part (the schedule, the log) does not load models and data.
    if name == "fit":
        from vtr.train.loop import fit

        return fit
    raise AttributeError(f"module 'vtr.train' has no attribute {name!r}")
