"""SyncedBatchNorm2d on two CPU processes (Gloo) normalises, learns and keeps statistics like BatchNorm2d on the
whole batch in one process."""

from __future__ import annotations

import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from vtr.models.synced_batch_norm import SyncedBatchNorm2d

CHANNELS = 3


def _batch() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(8, CHANNELS, 5, 5, generator=generator) * torch.tensor([1.0, 3.0, 0.5]).view(3, 1, 1) + 2.0


def _step(
    norm: nn.BatchNorm2d, x: torch.Tensor, rows: slice = slice(None)
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Output, and the gradients of weight and input, for the loss of the batch's ``rows`` (every element weighted
    by its place in the whole batch)."""
    x = x[rows].clone().requires_grad_(True)
    y = norm(x)
    weights = torch.arange(1, _batch().numel() + 1, dtype=y.dtype).view_as(_batch())[rows] / _batch().numel()
    (y * weights).square().sum().backward()
    assert norm.weight.grad is not None and x.grad is not None
    return y.detach(), norm.weight.grad.clone(), x.grad


def _worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        norm = SyncedBatchNorm2d(CHANNELS)
        y, weight_grad, x_grad = _step(norm, _batch(), slice(rank, None, 2))
        dist.all_reduce(weight_grad)  # what DDP does with parameter gradients (before dividing by 2)
        state = {"y": y, "weight_grad": weight_grad, "x_grad": x_grad, **norm.state_dict()}
        torch.save(state, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_normalise_by_the_global_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference = nn.BatchNorm2d(CHANNELS)
    y, weight_grad, x_grad = _step(reference, _batch())

    mp.start_processes(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    for rank, got in enumerate(ranks):
        assert torch.allclose(got["y"], y[rank::2], atol=1e-5)
        assert torch.allclose(got["x_grad"], x_grad[rank::2], atol=1e-5)
        assert torch.allclose(got["weight_grad"], weight_grad, atol=1e-5)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            assert torch.allclose(got[name].float(), reference.state_dict()[name].float(), atol=1e-5), name


def test_in_one_process_it_is_batch_norm() -> None:
    torch.manual_seed(0)
    synced, plain = SyncedBatchNorm2d(CHANNELS), nn.BatchNorm2d(CHANNELS)
    assert synced.state_dict().keys() == plain.state_dict().keys()
    for a, b in zip(_step(synced, _batch()), _step(plain, _batch()), strict=True):
        assert torch.equal(a, b)
