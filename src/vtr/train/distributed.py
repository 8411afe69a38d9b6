"""Training on several processes (``torchrun``): who is who, the process group, the all-gather, batch shards.

Launch ``torchrun --nproc-per-node N -m vtr train ...`` (or ``python -m torch.distributed.run``): each process
reads ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` from the environment torchrun sets. Every global batch is the
batch one process would see; process ``r`` encodes rows ``r, r + N, ...`` of it, and the heads all-gather the
embeddings (with gradient) so that the contrastive losses see the negatives of the whole global batch. The loss
and its gradient are then those of single-process training with the same global batch: the all-gather's backward
sums each embedding's gradient over processes, and DistributedDataParallel averages the parameter gradients.
Only process 0 writes the run folder, logs and evaluates.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from vtr.errors import ConfigError

# Process 0 evaluates on the validation split while the others wait at a barrier: allow for a long evaluation.
_TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Process 0: the one that writes the run folder, logs and evaluates."""
        return self.rank == 0


def processes_from_environment() -> Processes:
    """Read torchrun's ``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE``; a plain launch is rank 0 of 1."""
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as error:
        raise ConfigError(f"bad torchrun environment (RANK/LOCAL_RANK/WORLD_SIZE): {error}") from None
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world_size}")
    return Processes(rank=rank, world_size=world_size, local_rank=local_rank)


def start(processes: Processes, device: torch.device) -> torch.device:
    """Join the process group (NCCL on CUDA, Gloo on CPU); returns this process's device (its GPU on CUDA)."""
    if not processes.distributed:
        return device
    if device.type == "cuda":
        if processes.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"process {processes.rank} has local rank {processes.local_rank} but this machine has "
                f"{torch.cuda.device_count()} GPU(s): start one process per GPU, or --set train.device=cpu"
            )
        device = torch.device("cuda", processes.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=processes.rank, world_size=processes.world_size, timeout=_TIMEOUT)
    return device


def stop(processes: Processes, clean: bool = True) -> None:
    """Leave the process group; after a clean run, first wait at a last barrier so that no process exits while
    another still talks (after a failure torchrun stops the other processes)."""
    if processes.distributed and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def barrier(processes: Processes) -> None:
    if processes.distributed:
        dist.barrier()


class _ContiguousGradient(torch.autograd.Function):
    """The identity, whose backward hands on its gradient made contiguous.

    The backward of ``torch.distributed.nn.functional.all_gather`` on Gloo sends the incoming gradients through an
    all-to-all as they are; a non-contiguous one (``einsum``'s gradient of a 3-d tensor, say) arrives scrambled, and
    training silently differs from one process (found with the ``hcmi`` head; ``tests/test_distributed.py``).
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, gradient: torch.Tensor) -> torch.Tensor:
        return gradient.contiguous()


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` over processes along dim 0, in rank order; floating tensors keep their gradient.

    Every process must pass a tensor of the same shape and dtype (the heads pad their rows to the batch size).
    """
    if tensor.is_floating_point():
        from torch.distributed.nn.functional import all_gather

        pieces = all_gather(tensor.contiguous())
        return torch.cat([_ContiguousGradient.apply(piece) for piece in pieces], dim=0)
    wide = tensor.to(torch.int64).contiguous()  # Gloo has no bool all-gather
    parts = [torch.empty_like(wide) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, wide)
    return torch.cat(parts, dim=0).to(tensor.dtype)


class ShardedBatchSampler(Sampler[list[int]]):
    """This process's rows of every global batch: rows ``rank, rank + world_size, ...``.

    Args:
        batches: the global batch sampler (the same on every process).
        processes: this process's rank and the number of processes; the batch size must be a multiple of it.
    """

    def __init__(self, batches: Sampler[list[int]], batch_size: int, processes: Processes) -> None:
        if batch_size % processes.world_size:
            raise ConfigError(
                f"train.batch_size {batch_size} is not a multiple of the {processes.world_size} training processes"
            )
        self.batches = batches
        self.processes = processes

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            yield batch[self.processes.rank :: self.processes.world_size]
