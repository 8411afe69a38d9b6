"""Training: the run folder, the log, resume continues exactly, training learns, eval and ablation CLIs."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from tiny_configs import TINY_MODEL

from vtr.cli import main
from vtr.config import load_config
from vtr.data import read_annotations
from vtr.errors import CheckpointError, ConfigError
from vtr.evaluate.runner import encode_split, evaluate_split
from vtr.train.ablation import ablation_table, variant_config
from vtr.train.runlog import read_log

# A model that trains in seconds: 1-layer towers of width 32 on 4 frames of 32 px, all three heads.
TINY = [
    *TINY_MODEL,
    "model.embed_dim=32",
    "model.heads=[{name: global}, {name: noun, params: {depth: 1, num_heads: 2}}, {name: verb, params: {depth: 1}}]",
    "train.batch_size=8",
    "train.lr=1.0e-3",
    "train.warmup_steps=2",
    "train.milestones=[1]",
    "train.epochs=2",
]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from vtr.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, num_videos=40, seed=3, num_frames=8, fps=8, size=32, workers=1, progress=False)
    return root


def tiny_config(root, *extra):
    return load_config("synthetic-dual-align", [f"data.root={root}", *TINY, *extra])


@pytest.fixture(scope="module")
def two_epoch_run(tiny_data, tmp_path_factory):
    from vtr.train import fit

    out = tmp_path_factory.mktemp("runs") / "straight"
    fit(tiny_config(tiny_data), out, progress=False, echo=lambda line: None)
    return out


def _steps_per_epoch(root) -> int:
    from vtr.data import read_annotations

    return len(read_annotations(root, split="train")) // 8  # batch 8, last partial batch dropped


def test_run_folder_and_log(two_epoch_run, tiny_data):
    for name in ("config.yaml", "best.safetensors", "last.safetensors", "checkpoint.pt", "log.jsonl"):
        assert (two_epoch_run / name).is_file(), name
    records = read_log(two_epoch_run / "log.jsonl")
    steps = [r for r in records if r["event"] == "step"]
    epochs = [r for r in records if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1]
    per_epoch = _steps_per_epoch(tiny_data)
    assert per_epoch >= 2
    assert [r["step"] for r in steps] == list(range(1, 2 * per_epoch + 1))  # every step, each loss term
    for record in steps:
        for key in ("loss", "global_loss", "noun_loss", "verb_loss", "lr"):
            assert key in record and record[key] == record[key], key  # present and not NaN
    # The schedule: warm-up over 2 steps, then x0.1 from epoch 1 (the milestone).
    assert steps[0]["lr"] == pytest.approx(1e-3)
    assert steps[per_epoch]["lr"] == pytest.approx(1e-4)
    assert "val" in epochs[-1] and set(epochs[-1]["val"]) >= {"t2v", "v2t", "rsum"}


def test_a_run_with_the_cross_batch_memory(tiny_data, tmp_path):
    from vtr.train import fit

    heads = "model.heads=[{name: global, params: {memory_size: 12, memory_start_step: 1}}]"
    out = fit(tiny_config(tiny_data, heads, "train.epochs=1"), tmp_path / "run", progress=False, echo=lambda x: None)
    steps = [r for r in read_log(out / "log.jsonl") if r["event"] == "step"]
    # Read from the second step on: one batch of 8 pairs remembered, then two (16) capped at the size, 12.
    assert [r["global_memory"] for r in steps[:3]] == [0, 8, 12]
    assert all(r["global_loss"] == r["global_loss"] for r in steps)  # not NaN


def test_the_memory_is_read_from_its_start_epoch(tiny_data, tmp_path):
    from vtr.train import fit

    heads = "model.heads=[{name: global, params: {memory_size: 12, memory_start_epoch: 1}}]"
    out = fit(tiny_config(tiny_data, heads), tmp_path / "run", progress=False, echo=lambda x: None)
    steps = [r for r in read_log(out / "log.jsonl") if r["event"] == "step"]
    per_epoch = _steps_per_epoch(tiny_data)
    assert [r["global_memory"] for r in steps[:per_epoch]] == [0] * per_epoch  # filled, not read, in epoch 0
    assert [r["global_memory"] for r in steps[per_epoch:]] == [12] * per_epoch  # full and read from epoch 1


def test_a_run_with_concept_positives(tiny_data, tmp_path):
    from vtr.data import TrainClipDataset, collate_clips
    from vtr.data.concept_positives import ConceptTable
    from vtr.train import fit

    records = read_annotations(tiny_data, split="train")
    table = ConceptTable(records)
    dataset = TrainClipDataset(records, num_frames=2, image_size=32, concepts=table)
    items = [dataset[i] for i in range(3)]
    batch = collate_clips(items)
    for row, item in enumerate(items):
        assert torch.equal(batch["video_concepts"][row], table.video(item["video_index"]))
        assert torch.equal(batch["caption_concepts"][row], table.caption(item["caption"]))
    heads = "model.heads=[{name: global, params: {memory_size: 12, memory_start_step: 1}}]"
    config = tiny_config(tiny_data, heads, "train.epochs=1", "data.concept_positives=true")
    out = fit(config, tmp_path / "run", progress=False, echo=lambda x: None)
    assert load_config(out / "config.yaml").data.concept_positives is True
    steps = [r for r in read_log(out / "log.jsonl") if r["event"] == "step"]
    assert steps[-1]["global_memory"] == 12 and all(r["global_loss"] == r["global_loss"] for r in steps)


def test_concept_positives_on_data_without_concepts_stop_before_anything_is_written(tiny_data, tmp_path):
    from vtr.errors import DataFormatError
    from vtr.train import fit

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "videos").symlink_to(tiny_data / "videos")
    lines = (tiny_data / "annotations.jsonl").read_text(encoding="utf-8").splitlines()
    records = [{k: v for k, v in json.loads(line).items() if k != "meta"} for line in lines]
    (plain / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    config = tiny_config(plain, "data.concept_positives=true")
    with pytest.raises(DataFormatError, match="concept_positives needs the synthetic benchmark's meta"):
        fit(config, tmp_path / "run", progress=False, echo=lambda x: None)
    assert not (tmp_path / "run").exists()


def test_crop_jitter_changes_what_training_sees(two_epoch_run, tiny_data, tmp_path):
    from vtr.train import fit

    config = tiny_config(tiny_data, "data.augment.crop_area=[0.6,0.9]")
    out = fit(config, tmp_path / "run", progress=False, echo=lambda x: None)
    straight, jittered = load_file(two_epoch_run / "last.safetensors"), load_file(out / "last.safetensors")
    assert straight.keys() == jittered.keys()
    assert any(not torch.equal(straight[key], jittered[key]) for key in straight)
    with pytest.raises(ConfigError, match="data.augment.crop_area"):
        fit(tiny_config(tiny_data, "data.augment.crop_area=[0.9,0.6]"), tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()  # refused before any work


def test_an_existing_run_is_not_overwritten(two_epoch_run, tiny_data):
    from vtr.train import fit

    with pytest.raises(CheckpointError, match="--resume"):
        fit(tiny_config(tiny_data), two_epoch_run, progress=False, echo=lambda line: None)


def test_resume_continues_the_schedule_where_it_stopped(two_epoch_run, tiny_data, tmp_path):
    """One epoch, stop, resume for the second: the same weights as two epochs in one go."""
    from vtr.train import fit

    out = tmp_path / "resumed"
    fit(tiny_config(tiny_data, "train.epochs=1"), out, progress=False, echo=lambda line: None)
    # The resumed run reads its own config.yaml: raise its epoch budget there, as a longer run would.
    config_file = out / "config.yaml"
    config_file.write_text(config_file.read_text().replace("epochs: 1", "epochs: 2"))
    fit(None, out, resume=True, progress=False, echo=lambda line: None)

    straight, resumed = load_file(two_epoch_run / "last.safetensors"), load_file(out / "last.safetensors")
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=1e-6, msg=key)
    steps = [r for r in read_log(out / "log.jsonl") if r["event"] == "step"]
    per_epoch = _steps_per_epoch(tiny_data)
    assert [r["step"] for r in steps] == list(range(1, 2 * per_epoch + 1))
    assert steps[per_epoch]["lr"] == pytest.approx(1e-4)  # the milestone was honoured after the restart


def test_the_decoded_clip_cache_trains_the_same_weights(two_epoch_run, tiny_data, tmp_path):
    """data.decoded_cache keeps the clips decoded on disk: the same frames, so the same run."""
    from vtr.train import fit

    out = tmp_path / "cached"
    fit(tiny_config(tiny_data, "data.decoded_cache=true"), out, progress=False, echo=lambda line: None)
    straight, cached = load_file(two_epoch_run / "last.safetensors"), load_file(out / "last.safetensors")
    for key in straight:
        torch.testing.assert_close(cached[key], straight[key], rtol=0, atol=1e-6, msg=key)
    # Every validation video, and the training videos that the dropped last batches did not leave out.
    kept = len(list((tiny_data / ".vtr_cache" / "decoded").glob("*.npz")))
    train, val = (len(read_annotations(tiny_data, split=split)) for split in ("train", "val"))
    assert val + 3 * 8 <= kept <= val + train


def test_a_bf16_run_learns_and_keeps_float32_weights(tiny_data, tmp_path):
    from vtr.train import fit

    lines: list[str] = []
    out = tmp_path / "bf16"
    fit(tiny_config(tiny_data, "train.precision=bf16"), out, progress=False, echo=lines.append)
    assert any("bfloat16 autocast" in line for line in lines)
    log = read_log(out / "log.jsonl")
    assert log[0]["precision"] == "bf16"
    steps = [r for r in log if r["event"] == "step"]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in steps)
    assert steps[-1]["loss"] < steps[0]["loss"]
    weights = load_file(out / "last.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    from vtr.train import fit

    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        fit(None, tmp_path / "nothing", resume=True, progress=False, echo=lambda line: None)


@pytest.mark.slow
def test_two_epochs_lift_recall_above_the_untrained_model(tmp_path):
    """Two epochs of real training rank the training captions' videos better than the random weights did."""
    from vtr.data import read_annotations
    from vtr.data.synth import generate_dataset
    from vtr.models import build_model, load_run
    from vtr.train import fit

    root = tmp_path / "data"
    generate_dataset(root, num_videos=200, seed=5, num_frames=8, fps=8, size=32, workers=1, progress=False)
    # The demo's text side: the pretrained MiniLM (offline), frozen and mean-pooled. From scratch, a text tower
    # this small needs far more steps; fine-tuned at this lr, it collapses onto what the new video tower sees.
    extra = [
        "train.epochs=2",
        "train.milestones=[100]",
        "train.lr=1.0e-3",
        'data.val_split=""',
        "model.text.pretrained=minilm-offline",
        "model.text.freeze_layers=-1",
        "model.text.pooling=mean",
    ]
    config = tiny_config(root, *extra)
    records = read_annotations(root, split="train")
    torch.manual_seed(0)
    before = evaluate_split(encode_split(build_model(config), records, config.data, progress=False))["t2v"]
    run = fit(config, tmp_path / "run", progress=False, echo=lambda line: None)
    after = evaluate_split(encode_split(load_run(run, "last"), records, config.data, progress=False))["t2v"]
    # Measured (seed 0): R@1 0.9 -> 2.7, R@10 4.6 -> 30.4, MnR 79 -> 29 over 166 videos.
    assert after["R@1"] > before["R@1"]
    assert after["R@10"] > before["R@10"] + 12
    assert after["MnR"] < 0.6 * before["MnR"]


def test_eval_cli_prints_json_and_saves_the_matrix(two_epoch_run, tiny_data, tmp_path, capsys):
    assert (
        main(["eval", str(two_epoch_run), "--split", "test", "--json", "--no-progress", "--save-sim", str(tmp_path)])
        == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"t2v", "v2t", "rsum"}
    # vtr metrics on the saved matrix gives the same numbers.
    assert (
        main(
            [
                "metrics",
                "--sim",
                str(tmp_path / "sim.npy"),
                "--query-video",
                str(tmp_path / "query_video.npy"),
                "--json",
            ]
        )
        == 0
    )
    again = json.loads(capsys.readouterr().out)
    assert again["t2v"] == pytest.approx(metrics["t2v"]) and again["rsum"] == pytest.approx(metrics["rsum"])


def test_eval_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing-run"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vtr: error:") and "\n" not in err


def test_ablation_variants_keep_head_settings_and_set_the_seed(tiny_data):
    config = tiny_config(tiny_data)
    l1_l3 = variant_config(config, "L1+L3", seed=4)
    assert [h.name for h in l1_l3.model.heads] == ["global", "verb"]
    assert l1_l3.model.heads[1].params == {"depth": 1}
    assert l1_l3.train.seed == 4
    assert [h.name for h in config.model.heads] == ["global", "noun", "verb"]  # the input is not changed


def test_ablation_variants_may_add_other_heads(tiny_data):
    config = tiny_config(tiny_data)
    with_mcsan = variant_config(config, "L1+L2+L3+mcsan", seed=0)
    assert [h.name for h in with_mcsan.model.heads] == ["global", "noun", "verb", "mcsan"]
    assert with_mcsan.model.heads[3].params == {}
    with pytest.raises(ConfigError, match="unknown loss term or head 'L4'.*known: L1, L2, L3, .*hcmi"):
        variant_config(config, "L1+L4", seed=0)
    with pytest.raises(ConfigError, match="twice"):
        variant_config(config, "L1+global", seed=0)


def test_ablation_table_reports_mean_and_sample_std():
    def record(losses, seed, r1):
        row = {"R@1": r1, "R@5": 50.0, "R@10": 60.0, "MdR": 3.0, "MnR": 4.0}
        return {"losses": losses, "seed": seed, "t2v": row, "v2t": row}

    table = ablation_table(
        [record("L1", 0, 10.0), record("L1", 1, 20.0), record("L1+L2", 0, 30.0), record("L1+L2", 1, 30.0)]
    )
    assert "| L1 | 15.0 ± 7.1 | 50.0 ± 0.0 |" in table
    assert "| L1+L2 | 30.0 ± 0.0 |" in table
    assert "mean ± std over 2 seeds" in table


@pytest.mark.slow
def test_ablate_cli_writes_records_and_resumes(tiny_data, tmp_path, capsys):
    args = [
        "ablate",
        "--config",
        "synthetic-dual-align",
        "--seeds",
        "1",
        "--out",
        str(tmp_path),
        "--variants",
        "L1,L1+L2",
        "--no-progress",
        "--set",
        f"data.root={tiny_data}",
    ]
    args += [arg for override in [*TINY, "train.epochs=1"] for arg in ("--set", override)]
    assert main(args) == 0
    records = json.loads((tmp_path / "ablation.json").read_text())
    assert [(r["losses"], r["seed"]) for r in records] == [("L1", 0), ("L1+L2", 0)]
    assert all(set(r["t2v"]) == {"R@1", "R@5", "R@10", "MdR", "MnR"} for r in records)
    assert "| L1+L2 |" in (tmp_path / "ablation.md").read_text()
    capsys.readouterr()
    assert main(args) == 0  # a second call reuses the finished runs
    assert capsys.readouterr().out.count("done earlier") == 2


def test_hard_negative_batches_from_an_epoch_on(two_epoch_run, tiny_data, tmp_path):
    """data.hard_negatives_from_epoch: random batches first, then batches of whole hard-negative groups."""
    from vtr.train import fit

    out = tmp_path / "switched"
    fit(tiny_config(tiny_data, "data.hard_negatives_from_epoch=1"), out, progress=False, echo=lambda line: None)
    kinds = [r["batch_sampler"] for r in read_log(out / "log.jsonl") if r["event"] == "epoch"]
    assert kinds == ["random", "hard_negatives"]
    straight = [r for r in read_log(two_epoch_run / "log.jsonl") if r["event"] == "epoch"]
    switched = [r for r in read_log(out / "log.jsonl") if r["event"] == "epoch"]
    assert switched[0]["train"] == straight[0]["train"]  # the same first epoch
    assert switched[1]["train"] != straight[1]["train"]  # other batches in the second
    with pytest.raises(ConfigError, match="hard_negatives_from_epoch"):
        fit(tiny_config(tiny_data, "data.hard_negatives_from_epoch=-1"), tmp_path / "bad", progress=False)
    with pytest.raises(ConfigError, match="data.batch_sampler 'hard'; choose one of random, hard_negatives"):
        fit(tiny_config(tiny_data, "data.batch_sampler=hard"), tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()  # refused before anything was written
