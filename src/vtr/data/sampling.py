"""Batch samplers for contrastive training: plain random batches, or batches that hold hard negatives together.

In-batch negatives are all a contrastive loss learns from. With random batches a clip rarely meets the clips
that differ from it in one detail (the synthetic set's action-only and object-only variants are 5 clips of 480),
so the cheapest cue that separates random clips (the background) is enough to drive the loss down and the
details are never learned. :class:`HardNegativeBatchSampler` puts each clip's annotated hard negatives
(``meta.hard_negatives`` in ``annotations.jsonl``: lists of video names) into the same batch.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

from torch.utils.data import Sampler

from vtr.data.annotations import VideoRecord

BATCH_SAMPLERS = ("random", "hard_negatives")


def hard_negative_groups(records: Sequence[VideoRecord]) -> list[list[int]]:
    """Positions in ``records``, grouped into the connected sets of the hard-negative relation, in record order.

    A record's ``meta["hard_negatives"]`` is a list of video names or a mapping of kinds to such lists; names
    that are not among ``records`` (another split) are ignored. A record with none is a group of its own.
    """
    position = {record.video: i for i, record in enumerate(records)}
    parent = list(range(len(records)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, record in enumerate(records):
        for name in _negative_names(record.meta.get("hard_negatives")):
            j = position.get(name)
            if j is not None:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(records)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _negative_names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [name for names in value.values() for name in _negative_names(names)]
    if isinstance(value, str):
        return [value]
    return [name for name in value if isinstance(name, str)]


class HardNegativeBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size`` items made of whole hard-negative groups, in a new random order each epoch.

    The groups are shuffled, the items inside each group too, and the resulting sequence is cut into batches (a
    group may straddle two batches); the incomplete last batch is dropped, as contrastive batches keep their size.
    The order is a function of ``(seed, epoch)`` alone: set the epoch with :meth:`set_epoch`.

    Args:
        groups: lists of item indices (see :func:`hard_negative_groups`).
        batch_size: items per batch.
        seed: the run's seed.
    """

    def __init__(self, groups: Sequence[Sequence[int]], batch_size: int, seed: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.groups = [list(group) for group in groups if group]
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(len(group) for group in self.groups) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(f"vtr-batches:{self.seed}:{self.epoch}")
        order = [list(group) for group in self.groups]
        rng.shuffle(order)
        stream: list[int] = []
        for group in order:
            rng.shuffle(group)
            stream.extend(group)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield stream[start : start + self.batch_size]
