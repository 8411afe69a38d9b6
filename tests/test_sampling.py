"""Batch samplers: hard-negative groups stay together, every item comes once, the order depends on (seed, epoch)."""

from __future__ import annotations

import pytest

from vtr.data import VideoRecord, read_annotations
from vtr.data.sampling import HardNegativeBatchSampler, hard_negative_groups


def _record(name: str, negatives=None) -> VideoRecord:
    meta = {} if negatives is None else {"hard_negatives": negatives}
    return VideoRecord(video=name, path=name, captions=("a caption",), split="train", meta=meta)


def test_groups_are_the_connected_sets_of_the_relation():
    records = [
        _record("a", {"action": ["b"], "object": ["c"]}),
        _record("b"),
        _record("c", ["d"]),  # a plain list works too; d joins a's group through c
        _record("d"),
        _record("e", ["elsewhere.mp4"]),  # a name outside these records (another split) is ignored
        _record("f"),
    ]
    groups = sorted(sorted(g) for g in hard_negative_groups(records))
    assert groups == [[0, 1, 2, 3], [4], [5]]


def test_synthetic_groups_are_the_planned_groups(tmp_path):
    from vtr.data.synth import generate_dataset

    generate_dataset(tmp_path, num_videos=36, seed=1, num_frames=4, size=32, workers=1, progress=False)
    records = read_annotations(tmp_path, split="train")
    groups = hard_negative_groups(records)
    for group in groups:
        assert len({records[i].meta["group"] for i in group}) == 1
    assert sorted(len(g) for g in groups) == sorted(
        sum(1 for r in records if r.meta["group"] == g) for g in {r.meta["group"] for r in records}
    )


def test_batches_hold_whole_groups_and_every_item_once():
    groups = [list(range(start, start + 6)) for start in range(0, 60, 6)]
    sampler = HardNegativeBatchSampler(groups, batch_size=12, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5
    assert sorted(i for batch in batches for i in batch) == list(range(60))
    for batch in batches:  # 12 = two whole groups: nothing straddles
        assert len({i // 6 for i in batch}) == 2


def test_the_last_incomplete_batch_is_dropped():
    sampler = HardNegativeBatchSampler([list(range(6)), list(range(6, 11))], batch_size=4, seed=0)
    batches = list(sampler)
    assert len(batches) == 2 and all(len(b) == 4 for b in batches)


def test_order_is_a_function_of_seed_and_epoch():
    groups = [list(range(s, s + 3)) for s in range(0, 30, 3)]
    first = HardNegativeBatchSampler(groups, 6, seed=4)
    again = HardNegativeBatchSampler(groups, 6, seed=4)
    assert list(first) == list(again)
    epoch0 = list(first)
    first.set_epoch(1)
    assert list(first) != epoch0
    assert list(HardNegativeBatchSampler(groups, 6, seed=5)) != epoch0


def test_bad_batch_size_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        HardNegativeBatchSampler([[0, 1]], 0)
