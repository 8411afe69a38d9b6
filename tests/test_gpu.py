"""The CUDA path: training, evaluation and index encoding on a GPU give the CPU's numbers.

Skipped where torch sees no CUDA device (CI has none; a developer with a GPU runs ``python -m pytest
tests/test_gpu.py``). TF32 is switched off for these tests: it rounds the inputs of float32 matrix products and
convolutions to 10 bits of mantissa, which is a speed choice, not a property of the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny_configs import TINY_MODEL

from vtr.config import load_config
from vtr.train.runlog import read_log

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

OVERRIDES = [
    *TINY_MODEL,
    "model.text.dropout=0.0",  # no random numbers drawn on the device: CPU and GPU draw different ones
    "train.batch_size=8",
    "train.lr=1.0e-3",
    "train.epochs=1",
    "train.milestones=[]",
    'data.val_split=""',
]

# The paper's three heads, and the other methods' heads (the same sets as the two-process test).
HEAD_SETS = {
    "paper": "[{name: global}, {name: noun, params: {depth: 1, num_heads: 2}}, {name: verb, params: {depth: 1}}]",
    "mcsan": "[{name: global}, {name: mcsan, params: {num_heads: 2}}]",
    "hcmi": "[{name: global}, {name: hcmi, params: {num_heads: 2}}]",
    "ucofia": "[{name: global}, {name: ucofia, params: {num_patches: 8}}]",
    "fcanet": "[{name: global}, {name: fcanet}]",
    # Concept positives and the global head's cross-batch memory: their buffers must follow the model's device.
    "concepts": (
        "[{name: global, params: {memory_size: 16, memory_start_step: 1}}, {name: ucofia, params: {num_patches: 8}}]"
    ),
}
EXTRA_OVERRIDES = {"concepts": ["data.concept_positives=true"]}


@pytest.fixture(scope="module", autouse=True)
def ieee_float32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from vtr.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, num_videos=40, seed=3, num_frames=8, fps=8, size=32, workers=1, progress=False)
    return root


def _train(root, out, device, *extra):
    from vtr.train import fit

    config = load_config("synthetic-dual-align", [f"data.root={root}", *OVERRIDES, f"train.device={device}", *extra])
    fit(config, out, progress=False, echo=lambda line: None)
    return out


@pytest.fixture(scope="module")
def cpu_run(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cpu"
    return _train(tiny_data, out, "cpu", "train.precision=fp32", f"model.heads={HEAD_SETS['paper']}")


@pytest.mark.parametrize("head_set", list(HEAD_SETS))
def test_training_on_cuda_gives_the_cpu_weights(tiny_data, tmp_path, head_set):
    overrides = ["train.precision=fp32", f"model.heads={HEAD_SETS[head_set]}", *EXTRA_OVERRIDES.get(head_set, [])]
    cpu = _train(tiny_data, tmp_path / "cpu", "cpu", *overrides)
    gpu = _train(tiny_data, tmp_path / "gpu", "cuda", *overrides)

    expected, got = load_file(cpu / "last.safetensors"), load_file(gpu / "last.safetensors")
    assert expected.keys() == got.keys()
    bad = [name for name, tensor in expected.items() if not torch.allclose(got[name], tensor, rtol=1e-3, atol=1e-4)]
    assert not bad, bad

    log_cpu, log_gpu = read_log(cpu / "log.jsonl"), read_log(gpu / "log.jsonl")
    assert log_gpu[0]["device"].startswith("cuda")
    steps_cpu = [r for r in log_cpu if r["event"] == "step"]
    steps_gpu = [r for r in log_gpu if r["event"] == "step"]
    assert len(steps_cpu) == len(steps_gpu) >= 3
    for a, b in zip(steps_cpu, steps_gpu, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)


def test_auto_precision_trains_in_bf16_on_a_gpu_that_has_it(tiny_data, tmp_path):
    from vtr.train.precision import resolve_precision

    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == expected
    out = _train(tiny_data, tmp_path / "auto", "cuda", "train.precision=auto", "train.epochs=2", "train.warmup_steps=2")
    log = read_log(out / "log.jsonl")
    assert log[0]["precision"] == expected
    steps = [r for r in log if r["event"] == "step"]
    assert all(np.isfinite(r["loss"]) for r in steps)
    assert steps[-1]["loss"] < steps[0]["loss"]
    assert {t.dtype for t in load_file(out / "last.safetensors").values()} == {torch.float32}


def test_evaluation_on_cuda_gives_the_cpu_embeddings_and_metrics(cpu_run, tiny_data):
    from vtr.data import read_annotations
    from vtr.evaluate.runner import encode_split, evaluate_split
    from vtr.models import load_run

    records = read_annotations(tiny_data, split="test")
    config = load_config(cpu_run / "config.yaml")
    encoded = {}
    for device in ("cpu", "cuda"):
        model = load_run(cpu_run, checkpoint="last", device=device)
        encoded[device] = encode_split(model, records, config.data, batch_size=4, device=device, progress=False)
    np.testing.assert_allclose(encoded["cuda"].video, encoded["cpu"].video, atol=1e-5)
    np.testing.assert_allclose(encoded["cuda"].text, encoded["cpu"].text, atol=1e-5)
    on_gpu, on_cpu = evaluate_split(encoded["cuda"]), evaluate_split(encoded["cpu"])
    for direction in ("t2v", "v2t"):
        assert on_gpu[direction] == pytest.approx(on_cpu[direction]), direction


def test_an_index_built_on_cuda_searches_like_one_built_on_the_cpu(cpu_run, tiny_data, tmp_path):
    from vtr.data import read_annotations
    from vtr.index.builder import build_index
    from vtr.index.searcher import Searcher

    videos = tiny_data / "videos"
    captions = [caption for record in read_annotations(tiny_data, split="test") for caption in record.captions]
    found = {}
    for device in ("cpu", "cuda"):
        index = tmp_path / f"index-{device}"
        report = build_index(videos, index, model=cpu_run, device=device, progress=False)
        assert not report.failed
        with Searcher(index, device=device) as searcher:
            found[device] = [searcher.search(caption, k=5) for caption in captions]
    for on_cpu, on_gpu in zip(found["cpu"], found["cuda"], strict=True):
        assert [r.score for r in on_gpu] == pytest.approx([r.score for r in on_cpu], abs=1e-4)
        # Equal scores may swap places; every video whose score is clear of its neighbours keeps its rank.
        assert {r.path for r in on_gpu if r.rank < 5} <= {r.path for r in on_cpu}
