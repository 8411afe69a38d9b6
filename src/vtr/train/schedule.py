"""Learning-rate schedule of the paper: multi-step decay at epoch milestones (x gamma), with optional linear warm-up.

Sec. IV.B: "Multi-interval learning rate tuning is applied: [4, 8], and weights are decayed to 0.1 times their
original values." The schedule is stepped once per optimiser step, so it resumes exactly from a saved state.
"""

from __future__ import annotations

from bisect import bisect_right

import torch


def lr_multiplier(step: int, steps_per_epoch: int, milestones: list[int], gamma: float, warmup_steps: int) -> float:
    """The factor applied to the base learning rate at optimiser step ``step`` (0-based).

    Args:
        step: optimiser steps taken so far.
        steps_per_epoch: optimiser steps in one epoch (epoch of a step = step // steps_per_epoch).
        milestones: epochs (0-based) at whose start the rate is multiplied by ``gamma``.
        gamma: decay factor at each milestone.
        warmup_steps: steps of linear warm-up from ~0 to the base rate (0: none).
    """
    epoch = step // max(1, steps_per_epoch)
    decay = gamma ** bisect_right(sorted(milestones), epoch)
    warmup = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return decay * warmup


def build_scheduler(
    optimizer: torch.optim.Optimizer, steps_per_epoch: int, milestones: list[int], gamma: float, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` following :func:`lr_multiplier`."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_multiplier(step, steps_per_epoch, milestones, gamma, warmup_steps)
    )
