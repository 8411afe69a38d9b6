"""The multi-step schedule with warm-up, stepped per optimiser step."""

from __future__ import annotations

import pytest
import torch

from vtr.train.schedule import build_scheduler, lr_multiplier


def test_multistep_decay_at_epoch_milestones():
    # 10 steps an epoch, milestones at epochs 4 and 8 (the paper's [4, 8], x0.1).
    factors = [lr_multiplier(s, 10, [4, 8], 0.1, 0) for s in range(100)]
    assert factors[39] == 1.0 and factors[40] == pytest.approx(0.1)
    assert factors[79] == pytest.approx(0.1) and factors[80] == pytest.approx(0.01)


def test_linear_warmup_then_flat():
    assert [lr_multiplier(s, 100, [], 0.1, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_scheduler_state_resumes_where_it_stopped():
    def make():
        param = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([param], lr=1.0)
        return optimizer, build_scheduler(optimizer, 5, [2], 0.1, 3)

    optimizer, scheduler = make()
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    saved = scheduler.state_dict()
    optimizer2, scheduler2 = make()
    scheduler2.load_state_dict(saved)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
        optimizer2.step()
        scheduler2.step()
        assert scheduler2.get_last_lr() == scheduler.get_last_lr()
    assert scheduler.get_last_lr()[0] == pytest.approx(0.1)  # step 12 is in epoch 2, past the milestone
