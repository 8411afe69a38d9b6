"""Training on two processes (torchrun, Gloo on CPU) gives the weights of one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from tiny_configs import TINY_MODEL

from vtr.config import load_config
from vtr.train.distributed import Processes, ShardedBatchSampler, processes_from_environment

OVERRIDES = [
    *TINY_MODEL,
    "model.text.dropout=0.0",  # the two runs must draw no different random numbers
    "train.batch_size=8",
    "train.lr=1.0e-3",
    "train.epochs=1",
    "train.milestones=[]",
    'data.val_split=""',
    "train.device=cpu",  # Gloo on CPU whatever the machine has: both runs on the same kind of device
]


def test_processes_come_from_the_torchrun_environment(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert processes_from_environment() == Processes(0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    found = processes_from_environment()
    assert found == Processes(rank=3, world_size=4, local_rank=1) and found.distributed and not found.is_main


def test_each_process_takes_every_nth_row_of_the_global_batch():
    batches = [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    shards = [list(ShardedBatchSampler(batches, 6, Processes(rank, 2, rank))) for rank in (0, 1)]
    assert shards[0] == [[0, 2, 4], [6, 8, 10]] and shards[1] == [[1, 3, 5], [7, 9, 11]]
    with pytest.raises(Exception, match="multiple"):
        ShardedBatchSampler(batches, 6, Processes(0, 4, 0))


# Every head that looks beyond its own rows of the batch: the paper's (global, noun) and the other methods'.
HEAD_SETS = {
    "paper": ("[{name: global}, {name: noun, params: {depth: 1, num_heads: 2}}]", ("global_loss", "noun_loss")),
    "mcsan": ("[{name: global}, {name: mcsan, params: {num_heads: 2}}]", ("global_loss", "mcsan_loss")),
    "hcmi": ("[{name: global}, {name: hcmi, params: {num_heads: 2}}]", ("global_loss", "hcmi_loss")),
    "ucofia": ("[{name: global}, {name: ucofia, params: {num_patches: 8}}]", ("global_loss", "ucofia_loss")),
    "fcanet": ("[{name: global}, {name: fcanet}]", ("global_loss", "fcanet_loss")),
    # The cross-batch memory holds the gathered batch, the same in every process (whole batches: which rows of a
    # batch a full memory overwrites first depends on the order of the batch, which gathering changes).
    "memory": ("[{name: global, params: {memory_size: 16, memory_start_step: 1}}]", ("global_loss",)),
    # Concept positives (data.concept_positives) gathered with the batch, in the memory and in a multi-level head.
    "concepts": (
        "[{name: global, params: {memory_size: 16, memory_start_step: 1}}, {name: ucofia, params: {num_patches: 8}}]",
        ("global_loss", "ucofia_loss"),
    ),
}
EXTRA_OVERRIDES = {"concepts": ["data.concept_positives=true"]}


@pytest.mark.slow
@pytest.mark.parametrize("head_set", list(HEAD_SETS))
def test_two_processes_train_like_one(tmp_path, head_set):
    from vtr.data.synth import generate_dataset
    from vtr.train import fit

    heads, losses = HEAD_SETS[head_set]
    data = tmp_path / "data"
    generate_dataset(data, num_videos=40, seed=3, num_frames=8, fps=8, size=32, workers=1, progress=False)
    overrides = [f"data.root={data}", *OVERRIDES, f"model.heads={heads}", *EXTRA_OVERRIDES.get(head_set, [])]
    single = tmp_path / "single"
    fit(load_config("synthetic-dual-align", overrides), single, progress=False, echo=lambda line: None)

    double = tmp_path / "double"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command += ["-m", "vtr", "train", "--config", "synthetic-dual-align", "--out", str(double), "--no-progress"]
    for override in overrides:
        command += ["--set", override]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    expected, got = load_file(single / "last.safetensors"), load_file(double / "last.safetensors")
    assert expected.keys() == got.keys()
    bad = [name for name, tensor in expected.items() if not torch.allclose(got[name], tensor, rtol=1e-3, atol=1e-4)]
    assert not bad, bad

    def steps(run):
        log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        return log[0]["processes"], [r for r in log if r["event"] == "step"]

    (one, single_steps), (two, double_steps) = steps(single), steps(double)
    assert (one, two) == (1, 2)
    assert len(single_steps) >= 3  # at least three steps of the global batch of 8
    assert [r["step"] for r in double_steps] == [r["step"] for r in single_steps]  # one writer: no step twice
    for a, b in zip(single_steps, double_steps, strict=True):
        # Process 0's loss is over the gathered global batch: the single process's loss, step by step.
        for loss in losses:
            assert b[loss] == pytest.approx(a[loss], rel=1e-4), loss
