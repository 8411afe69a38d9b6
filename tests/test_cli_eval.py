"""``vtr eval --postprocess``: labelled post-processed metrics next to unchanged plain ones, QB-Norm's bank.

The run is a randomly initialised tiny model saved as a run folder (as in test_index_build): what is checked is the
wiring, not the quality of the model, so nothing is trained. ``vtr eval`` without post-processing is tested with a
trained run in test_train.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_configs import TINY_MODEL

from vtr.cli import main
from vtr.config import load_config
from vtr.data import eval_queries, read_annotations
from vtr.evaluate.postprocess_report import PostprocessOptions, postprocessed_metrics


@pytest.fixture(scope="module")
def tiny_run(tiny_eval_data, tmp_path_factory) -> Path:
    from vtr.models import build_model, save_model

    folder = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    save_model(build_model(load_config(None, [*TINY_MODEL, f"data.root={tiny_eval_data}"])), folder, "best")
    return folder


def _eval(run: Path, *extra: str) -> list[str]:
    return ["eval", str(run), "--split", "test", "--no-progress", *extra]


def test_postprocess_adds_labelled_sections_and_the_plain_metrics_are_identical(
    tiny_run, tiny_eval_data, tmp_path, capsys
):
    assert main(_eval(tiny_run, "--json")) == 0
    plain = json.loads(capsys.readouterr().out)
    argv = _eval(tiny_run, "--json", "--postprocess", "dsl,qbnorm,sinkhorn", "--save-sim", str(tmp_path))
    assert main([*argv, "--qb-beta", "30"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {key: value for key, value in out.items() if key != "postprocessed"} == plain
    post = out["postprocessed"]
    assert list(post) == ["dsl", "qbnorm", "sinkhorn"]
    assert set(post["dsl"]) == {"method", "uses", "params", "t2v", "v2t", "rsum"}
    assert set(post["qbnorm"]) == {"method", "uses", "params", "t2v"}
    # The bank is every caption of the train split, scored against the test videos.
    train_captions, _ = eval_queries(read_annotations(tiny_eval_data, split="train"))
    assert post["qbnorm"]["params"]["bank"] == "train captions"
    assert post["qbnorm"]["params"]["bank_size"] == len(train_captions) > 0
    assert post["qbnorm"]["params"]["beta"] == 30
    sim, bank_sim = np.load(tmp_path / "sim.npy"), np.load(tmp_path / "bank_sim.npy")
    assert bank_sim.shape == (len(train_captions), sim.shape[1])
    # The saved matrices give the same post-processed numbers through the library ...
    query_video = np.load(tmp_path / "query_video.npy")
    expected = postprocessed_metrics(
        sim,
        query_video,
        ["dsl", "qbnorm", "sinkhorn"],
        bank_sim=bank_sim,
        bank_name="train captions",
        options=PostprocessOptions(qb_beta=30),
    )
    assert post == json.loads(json.dumps(expected))
    # ... and through vtr metrics.
    argv = ["metrics", "--sim", str(tmp_path / "sim.npy"), "--query-video", str(tmp_path / "query_video.npy")]
    bank = ["--bank-sim", str(tmp_path / "bank_sim.npy"), "--qb-beta", "30", "--json"]
    assert main([*argv, "--postprocess", "dsl,qbnorm,sinkhorn", *bank]) == 0
    again = json.loads(capsys.readouterr().out)["postprocessed"]
    for name in post:
        assert again[name]["t2v"] == pytest.approx(post[name]["t2v"])


def test_table_output_labels_every_postprocessed_row(tiny_run, capsys):
    assert main(_eval(tiny_run)) == 0
    plain = capsys.readouterr().out.splitlines()
    assert main(_eval(tiny_run, "--postprocess", "sinkhorn,dsl")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[: len(plain)] == plain
    rest = lines[len(plain) :]
    assert rest[1].startswith("post-processed")
    rows = [line.split()[:2] for line in rest if "-to-" in line]
    assert rows == [
        ["sinkhorn", "text-to-video"],
        ["sinkhorn", "video-to-text"],
        ["dsl", "text-to-video"],
        ["dsl", "video-to-text"],
    ]
    assert "sinkhorn: uses all test queries and videos at once (transductive)" in rest


def test_an_unknown_bank_split_is_a_one_line_error(tiny_run, capsys):
    assert main(_eval(tiny_run, "--postprocess", "qbnorm", "--bank-split", "holdout")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vtr: error:") and "\n" not in err
    assert "--bank-split holdout" in err and "unknown split 'holdout'" in err


def test_bad_postprocess_parameters_fail_before_encoding(tmp_path, capsys):
    # The run folder does not exist: the parameter check comes first, so its message is the one printed.
    assert main(_eval(tmp_path / "missing-run", "--postprocess", "sinkhorn", "--sinkhorn-epsilon", "-1")) == 1
    assert "Sinkhorn epsilon must be a positive finite number" in capsys.readouterr().err
