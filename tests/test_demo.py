"""The demo end to end at toy size: data, training, evaluation, index, and the search check through the index."""

from __future__ import annotations

import json
import shlex

import pytest
from tiny_configs import TINY_MODEL

from vtr.config import load_config
from vtr.index.ensemble import parse_ensemble_spec
from vtr.index.store import IndexStore

TOY = [
    *TINY_MODEL,
    "model.heads=[{name: global}]",
    "train.epochs=1",
    "train.batch_size=8",
    "train.milestones=[]",
]


@pytest.mark.slow
def test_demo_runs_every_stage_and_its_search_check_agrees_with_the_metrics(tmp_path):
    from vtr.demo import run_demo

    lines: list[str] = []
    metrics = run_demo(tmp_path, videos=60, seed=2, overrides=tuple(TOY), progress=False, echo=lines.append)
    for name in ("data/annotations.jsonl", "run/best.safetensors", "metrics.json", "index", "search_check.json"):
        assert (tmp_path / name).exists(), name
    # Two runs (the default), training seeds 0 and 1, the second with the other stem normalisation, each with its
    # own test metrics; metrics.json scores them together.
    runs = [tmp_path / "run", tmp_path / "run-2"]
    configs = [load_config(run / "config.yaml") for run in runs]
    assert [c.train.seed for c in configs] == [0, 1]
    assert [c.model.video.stem_norm for c in configs] == ["group", "layer"]
    alone = [json.loads((run / "test_metrics.json").read_text()) for run in runs]
    assert metrics != alone[0] and metrics != alone[1]
    with IndexStore(tmp_path / "index") as store:  # the index holds both models' embeddings
        assert parse_ensemble_spec(store.settings().model_spec) == [str(run.resolve()) for run in runs]
    assert any(line.startswith("the 2 models together") for line in lines)
    check = json.loads((tmp_path / "search_check.json").read_text())
    test_records = [
        record
        for record in map(json.loads, (tmp_path / "data" / "annotations.jsonl").read_text().splitlines())
        if record["split"] == "test"
    ]
    test_captions = sum(len(record["captions"]) for record in test_records)
    assert check["queries"] == test_captions and check["k"] == 5
    assert len(check["missed"]) == check["queries"] - check["hits"]
    # A miss lists the other clips its caption describes that rank above its video; its filtered rank leaves them
    # out, and the misses whose filtered rank is in the top 5 make the difference of the two counts.
    assert all(miss["rank"] is None or miss["rank"] > 5 for miss in check["missed"])
    assert all(miss["video"] not in miss["described_above"] for miss in check["missed"])
    filtered = [m for m in check["missed"] if m["rank"] is not None and m["rank"] - len(m["described_above"]) <= 5]
    assert check["filtered_hits"] == check["hits"] + len(filtered)
    # The search engine ranks as the model scores, so its top-5 rate is the evaluation's R@5.
    assert 100 * check["hits"] / check["queries"] == pytest.approx(metrics["t2v"]["R@5"], abs=100 / test_captions)
    assert any(line.startswith("search check:") for line in lines)
    # The report is the first run's: its own numbers, and its figures.
    report = tmp_path / "report"
    assert json.loads((report / "metrics.json").read_text()) == alone[0]  # the first run's report
    assert all((report / name).stat().st_size > 0 for name in ("index.html", "curves.png", "cases.png"))
    assert any(line.lstrip().startswith("report of run (") and line.endswith("index.html") for line in lines)
    # The search it suggests is a shell command that asks the index for a caption of a test video.
    suggested = [shlex.split(line) for line in lines if line.lstrip().startswith("vtr search ")]
    assert len(suggested) == 1 and suggested[0][0:2] == ["vtr", "search"]
    assert suggested[0][3:] == ["--db", str(tmp_path / "index")]
    assert suggested[0][2] in {caption for record in test_records for caption in record["captions"]}

    again: list[str] = []
    run_demo(tmp_path, videos=60, seed=2, overrides=tuple(TOY), progress=False, echo=again.append)
    assert any(line.startswith("data: reusing") for line in again)  # finished stages are not redone
    assert any(line.startswith("train: reusing") for line in again)

    # Another config trains again (an old demo folder is not reused for a new recipe); other data remakes all.
    # One model: the index and the metrics are that model's.
    changed: list[str] = []
    metrics = run_demo(
        tmp_path, videos=60, seed=2, overrides=(*TOY, "train.lr=5e-4"), progress=False, echo=changed.append, models=1
    )
    assert any("trained with another config" in line for line in changed)
    assert any(line.startswith("data: reusing") for line in changed)
    assert metrics == json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert json.loads((tmp_path / "report" / "metrics.json").read_text()) == metrics
    assert any(line.lstrip().startswith("report (") for line in changed)
    with IndexStore(tmp_path / "index") as store:
        assert store.settings().model_spec == str((tmp_path / "run").resolve())
    remade: list[str] = []
    metrics = run_demo(tmp_path, videos=48, seed=2, overrides=tuple(TOY), progress=False, echo=remade.append, models=1)
    assert any("holds 60 clips, not 48" in line for line in remade)
    assert any(line.startswith("train: 1 epochs") for line in remade)
    assert not (tmp_path / "run-2").exists()  # trained on the other data
    test_videos = [
        json.loads(line)["video"]
        for line in (tmp_path / "data" / "annotations.jsonl").read_text().splitlines()
        if json.loads(line)["split"] == "test"
    ]
    assert sorted(p.name for p in (tmp_path / "test-videos").iterdir()) == sorted(v.split("/")[-1] for v in test_videos)
