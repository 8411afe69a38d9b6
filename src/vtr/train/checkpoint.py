"""The resumable training state of a run: model, optimiser, schedule, counters and random states in one file.

Written atomically at the end of every epoch (``run_dir/checkpoint.pt``), so a run killed at any moment resumes
from its last finished epoch. Inference weights are written separately as safetensors by ``vtr.models.save_model``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vtr.errors import CheckpointError
from vtr.fileio import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainState:
    """Counters that must survive a restart."""

    epoch: int = 0  # epochs finished
    step: int = 0  # optimiser steps taken
    best_rsum: float = float("-inf")
    best_epoch: int = -1


def save_checkpoint(
    run_dir: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: TrainState,
) -> Path:
    """Write ``run_dir/checkpoint.pt`` atomically."""
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "state": vars(state),
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
        },
    }
    return atomic_write(Path(run_dir) / CHECKPOINT_NAME, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(
    run_dir: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> TrainState:
    """Restore everything :func:`save_checkpoint` wrote; raises CheckpointError when the file is missing or bad."""
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"cannot resume: {path} does not exist (no epoch of this run has finished)")
    try:
        payload: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        state = TrainState(**payload["state"])
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"cannot resume from {path}: {error}") from None
    rng = payload.get("rng", {})
    if "python" in rng:
        random.setstate(rng["python"])
    if "numpy" in rng:
        np.random.set_state(rng["numpy"])
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    return state
