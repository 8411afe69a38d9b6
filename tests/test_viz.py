"""Figures and the HTML report (``vtr.viz``, ``vtr explain``, ``vtr report``).

Runs are randomly initialised tiny models saved as run folders (as in test_cli_eval): what is checked is what the
figures show and that the numbers behind them are right, not the quality of a model, so nothing is trained. The
videos are small random block patterns, so that patches differ within a frame and frames differ within a video.
"""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from tiny_configs import TINY_MODEL

from vtr.cli import main
from vtr.config import load_config
from vtr.data import read_annotations
from vtr.train.runlog import RunLog
from vtr.viz import curves
from vtr.viz.cases import Case, plot_retrieval_cases, select_cases
from vtr.viz.explain import NO_HEADS_NOTE, explain, plot_explanation
from vtr.viz.figure import DPI, save_png
from vtr.viz.report import ExplainedQuery, ReportContent, render_report

NUM_FRAMES = 4  # data.num_frames of TINY_MODEL
SCRIPT_CAPTION = "a <script>alert('x')</script> square & a circle"
CAPTIONS = [
    "a red circle moves left",
    "a blue square moves right",
    SCRIPT_CAPTION,
    "a green star falls down",
    "a small heart grows",
    "two circles approach each other",
]


def write_pattern_video(path: Path, num_frames: int, seed: int, size: tuple[int, int] = (48, 32)) -> Path:
    """An MP4 whose every frame is a different random pattern of 8 px blocks (H.264, 8 fps)."""
    rng = np.random.default_rng(seed)
    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 8)
        for _ in range(num_frames):
            blocks = rng.integers(0, 256, size=(height // 8, width // 8, 3), dtype=np.uint8)
            image = np.ascontiguousarray(blocks.repeat(8, axis=0).repeat(8, axis=1))  # [H, W, 3]
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Six test videos with one caption each (one caption holds markup), and a two-frame video."""
    root = tmp_path_factory.mktemp("data")
    (root / "videos").mkdir()
    lines = []
    for index, caption in enumerate(CAPTIONS):
        write_pattern_video(root / "videos" / f"v{index}.mp4", num_frames=8, seed=index)
        lines.append({"video": f"videos/v{index}.mp4", "captions": [caption], "split": "test"})
    write_pattern_video(root / "videos" / "short.mp4", num_frames=2, seed=99)
    (root / "annotations.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def _save_run(folder: Path, data_root: Path, *extra: str) -> Path:
    from vtr.models import build_model, save_model

    torch.manual_seed(0)
    save_model(build_model(load_config(None, [*TINY_MODEL, f"data.root={data_root}", *extra])), folder, "best")
    return folder


@pytest.fixture(scope="module")
def dual_run(tmp_path_factory, data_root) -> Path:
    """The paper's three heads (global, noun, verb) with the default 3-layer multimodal encoders."""
    return _save_run(tmp_path_factory.mktemp("dual"), data_root)


@pytest.fixture(scope="module")
def global_run(tmp_path_factory, data_root) -> Path:
    return _save_run(tmp_path_factory.mktemp("global"), data_root, "model.heads=[{name: global}]")


@pytest.fixture(scope="module")
def dual_model(dual_run):
    from vtr.models import load_run

    return load_run(dual_run)


def _png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()  # decodes every pixel: a truncated or corrupt PNG fails here
        return image.size


def _expected_size(figure) -> tuple[int, int]:
    width, height = figure.get_size_inches() * DPI
    return round(width), round(height)


# ----------------------------------------------------------------------------------------------- training curves


def _step(step: int, epoch: int, **terms: float) -> dict:
    return {"event": "step", "epoch": epoch, "step": step, "lr": 1e-3 * step, **terms}


def _write_log(run: Path, records: list[dict], torn_tail: str = "") -> Path:
    log = RunLog(run / "log.jsonl")
    for record in records:
        log.write(record)
    log.close()
    if torn_tail:
        with open(run / "log.jsonl", "a", encoding="utf-8") as handle:
            handle.write(torn_tail)
    return run / "log.jsonl"


def _three_head_terms(step: int) -> dict:
    g, n, v = 3.0 - 0.1 * step, 2.0 - 0.05 * step, 4.0 - 0.2 * step
    return {
        "global_loss": g,
        "global_count": 4.0,
        "noun_loss": n,
        "noun_count": 4.0,
        "verb_loss": v,
        "verb_count": 0.0 if step == 3 else 4.0,  # no verb in the batch of step 3: the logged 0 is no loss
        "loss": g + n + v,
    }


def test_log_reader_survives_a_torn_last_line_and_keeps_the_latest_of_repeated_steps(tmp_path):
    start = {"event": "start", "config": {"train": {"epochs": 4}}}
    epoch0 = {"event": "epoch", "epoch": 0, "step": 5, "val": {"t2v": {"R@1": 10.0, "R@5": 40.0, "R@10": 60.0}}}
    epoch0["best_epoch"] = 0
    first = [_step(s, s // 6, **_three_head_terms(s)) for s in range(1, 8)]
    # Killed after step 7, resumed from the end of epoch 0 (step 5): steps 6 and 7 are logged again.
    resumed = [_step(s, 1, **{**_three_head_terms(s), "global_loss": 9.0}) for s in (6, 7, 8)]
    records = [start, *first[:5], epoch0, *first[5:], *resumed]
    _write_log(tmp_path, records, torn_tail='{"event": "step", "epoch": 1, "step": 9, "lr": 0.0')

    log = curves.read_training_log(tmp_path)
    assert log.steps.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert log.losses["global_loss"][5:].tolist() == [9.0, 9.0, 9.0]  # the resumed run's records win
    assert list(log.losses) == ["global_loss", "noun_loss", "verb_loss", "loss"]
    assert np.isnan(log.losses["verb_loss"][2]) and np.isfinite(np.delete(log.losses["verb_loss"], 2)).all()
    assert log.val_epochs.tolist() == [1] and log.val["R@5"].tolist() == [40.0]
    assert log.best_epoch == 1 and log.finished_epochs == 1 and log.planned_epochs == 4 and log.cut_short


def test_curves_figure_shows_every_loss_term_validation_recall_and_lr(tmp_path):
    epochs = [
        {"event": "epoch", "epoch": e, "best_epoch": 1, "val": {"t2v": {"R@1": 5.0 + e, "R@5": 20.0 + e, "R@10": 30.0}}}
        for e in range(3)
    ]
    steps = [_step(s, (s - 1) // 4, **_three_head_terms(s)) for s in range(1, 13)]
    records = [{"event": "start", "config": {"train": {"epochs": 3}}}]
    for e in range(3):
        records += [*steps[4 * e : 4 * e + 4], epochs[e]]
    log = curves.read_training_log(_write_log(tmp_path, records))
    figure = curves.plot_training_curves(log, title="tiny")

    loss_axes, val_axes, lr_axes = figure.axes
    assert [ax.get_title() for ax in figure.axes] == list(curves.TITLES)
    labels = [line.get_label() for line in loss_axes.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["L1 global", "L2 noun", "L3 verb", "total"]
    assert len(loss_axes.get_lines()) == 8  # a faint raw line under each smoothed one
    raw_total = loss_axes.get_lines()[6]
    assert raw_total.get_xdata().tolist() == list(range(1, 13))
    np.testing.assert_allclose(raw_total.get_ydata(), [_three_head_terms(s)["loss"] for s in range(1, 13)])
    recall = {line.get_label(): line for line in val_axes.get_lines()}
    assert recall["R@1"].get_xdata().tolist() == [1, 2, 3]
    assert recall["R@1"].get_ydata().tolist() == [5.0, 6.0, 7.0]
    assert "best (epoch 2)" in recall
    assert lr_axes.get_yscale() == "log"
    assert lr_axes.get_lines()[0].get_ydata().tolist() == pytest.approx([1e-3 * s for s in range(1, 13)])
    assert not log.cut_short and figure.get_suptitle() == "tiny"

    path = save_png(figure, tmp_path / "curves.png")
    assert _png_size(path) == _expected_size(figure) == (1500, 360)


def test_curves_of_a_global_only_run_without_validation_that_was_killed(tmp_path):
    steps = [_step(s, 0, global_loss=2.0 / s, global_count=4.0, loss=2.0 / s) for s in range(1, 6)]
    records = [{"event": "start", "config": {"train": {"epochs": 5}}}, *steps]
    log = curves.read_training_log(_write_log(tmp_path, records, torn_tail='{"event": "ep'))
    figure = curves.plot_training_curves(log)
    loss_axes, val_axes, _ = figure.axes
    labels = [line.get_label() for line in loss_axes.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["L1 global", "total"]
    assert not val_axes.get_lines() and "no validation" in val_axes.texts[0].get_text()
    assert "0 of 5 epochs logged" in figure.get_suptitle()
    assert _png_size(save_png(figure, tmp_path / "c.png")) == (1500, 360)


def test_curves_need_a_log(tmp_path, capsys):
    from vtr.errors import CheckpointError

    with pytest.raises(CheckpointError, match="log.jsonl does not exist"):
        curves.read_training_log(tmp_path)


def test_smoothing_is_bias_corrected_and_skips_gaps():
    values = np.array([4.0, np.nan, 4.0, 4.0])
    assert curves.smooth(values, span=5)[[0, 2, 3]].tolist() == [4.0, 4.0, 4.0]  # no pull towards 0 at the start
    assert np.isnan(curves.smooth(values, span=5)[1])


# ----------------------------------------------------------------------------------------------- retrieval cases


def test_cases_are_deterministic_labelled_and_rank_like_the_metrics():
    # 5 queries x 4 videos; query q describes video q % 4.
    sim = np.array(
        [
            [0.9, 0.1, 0.2, 0.3],  # rank 1
            [0.5, 0.5, 0.2, 0.1],  # tie with video 0: rank 1, and listed first
            [0.9, 0.8, 0.1, 0.2],  # rank 4 (worst)
            [0.1, 0.2, 0.9, 0.3],  # rank 2
            [0.9, 0.2, 0.3, 0.4],  # video 0 again, rank 1
        ]
    )
    query_video = np.array([0, 1, 2, 3, 0])
    captions = [f"q{i}" for i in range(5)]
    cases = select_cases(sim, query_video, captions, successes=2, failures=2, top_k=2)
    assert [(c.query, c.rank, c.success) for c in cases] == [(0, 1, True), (1, 1, True), (2, 4, False), (3, 2, False)]
    assert cases[1].top == [(1, 0.5), (0, 0.5)]
    assert cases[2].top == [(0, 0.9), (1, 0.8)] and cases[2].score == pytest.approx(0.1)
    assert select_cases(sim, query_video, captions, 2, 2, 2) == cases

    names = [f"videos/v{i}.mp4" for i in range(4)]
    thumbnails = {i: np.full((8, 8, 3), 40 * i, dtype=np.uint8) for i in range(4)}
    figure = plot_retrieval_cases(cases, thumbnails, names)
    # A caption column, two ranked videos and one more for a right video ranked below the top 2.
    assert len(figure.axes) == 4 * 4
    row = figure.axes[8:12]  # the rank-4 failure
    assert row[3].get_title().startswith("#4") and row[3].spines["top"].get_visible()
    assert not row[1].spines["top"].get_visible()  # video 0 is not the right one
    assert "failure: right video at rank 4" in [t.get_text() for t in row[0].texts]
    assert _expected_size(figure) == (round(100 * (2.8 + 1.6 * 3)), round(100 * (0.5 + 1.6 * 4)))


# ----------------------------------------------------------------------------------------------- cross-attention


def test_attention_maps_are_distributions_over_the_real_video_tokens(dual_model, data_root):
    explanation = explain(dual_model, data_root / "videos" / "v0.mp4", "a red circle moves left")
    assert [h.head for h in explanation.heads] == ["noun", "verb"]
    noun, verb = explanation.heads
    assert noun.words == ("circle",) and noun.query == "a red moves left"
    assert "moves" in verb.words and "moves" not in verb.query
    grid = dual_model.video_encoder.patch_grid
    for head in explanation.heads:
        assert head.layer == 2  # the last of the default three layers
        assert head.token_attention.shape == (head.token_attention.shape[0], 1 + NUM_FRAMES * grid * grid)
        assert (head.token_attention >= 0).all()
        np.testing.assert_allclose(head.token_attention.sum(axis=1), 1.0, atol=1e-5)
        assert head.frame_maps.shape == (NUM_FRAMES, grid, grid)
        assert head.frame_mass.sum() + head.cls_mass == pytest.approx(1.0, abs=1e-5)
        assert -1.0 <= head.word_score <= 1.0
    # The map is of the layer asked for.
    first = explain(dual_model, data_root / "videos" / "v0.mp4", "a red circle moves left", layer=0)
    assert first.heads[0].layer == 0
    assert not np.allclose(first.heads[0].attention, noun.attention)


def test_padded_frames_get_no_attention(dual_model, data_root):
    explanation = explain(dual_model, data_root / "videos" / "short.mp4", "a red circle moves left")
    mask = explanation.clip.mask.tolist()
    assert mask == [True, True, False, False]  # two frames for four entries
    grid = dual_model.video_encoder.patch_grid
    for head in explanation.heads:
        padded_tokens = head.token_attention[:, 1 + 2 * grid * grid :]
        assert (padded_tokens == 0).all() and (head.frame_mass[2:] == 0).all()
        np.testing.assert_allclose(head.token_attention.sum(axis=1), 1.0, atol=1e-5)
        assert head.frame_mass[:2].sum() > 0.5


def test_another_video_gives_other_maps_and_another_score(dual_model, data_root):
    text = "a red circle moves left"
    one = explain(dual_model, data_root / "videos" / "v0.mp4", text)
    other = explain(dual_model, data_root / "videos" / "v1.mp4", text)
    assert one.similarity != pytest.approx(other.similarity, abs=1e-6)
    for a, b in zip(one.heads, other.heads, strict=True):
        assert np.abs(a.frame_maps - b.frame_maps).max() > 1e-4
    again = explain(dual_model, data_root / "videos" / "v0.mp4", text)
    np.testing.assert_allclose(again.heads[0].frame_maps, one.heads[0].frame_maps, atol=1e-6)


def test_explain_figure_has_a_row_per_head(dual_model, data_root, tmp_path):
    explanation = explain(dual_model, data_root / "videos" / "v2.mp4", "a blue square costs $5 to $10")
    figure = plot_explanation(explanation)
    # Width: T frames and the bars; height: the title and four rows (frames, Grad-CAM, noun, verb).
    assert _expected_size(figure) == (round(100 * 1.7 * (NUM_FRAMES + 1)), round(100 * (0.8 + 4 * (1.7 + 0.5))))
    path = save_png(figure, tmp_path / "explain.png")  # "$5 to $10" must not be read as mathtext
    assert _png_size(path) == _expected_size(figure)


def test_explain_cli_json_matches_the_evaluation_score(dual_run, data_root, tmp_path, capsys):
    from vtr.evaluate.runner import evaluate_run

    out = tmp_path / "explain.png"
    video = data_root / "videos" / "v3.mp4"
    argv = ["explain", str(dual_run), "--video", str(video), "--text", CAPTIONS[3], "--out", str(out), "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    _, encoded = evaluate_run(str(dual_run), split="test", device="cpu", progress=False)
    # Frames sampled as evaluation samples them: the same score as row 3, column 3 of the evaluation matrix.
    assert result["similarity"] == pytest.approx(float(encoded.similarity()[3, 3]), abs=1e-4)
    assert [h["head"] for h in result["heads"]] == ["noun", "verb"]
    assert result["heads"][0]["words_removed"] == ["star"]
    assert len(result["frames"]) == NUM_FRAMES and all(f["real"] for f in result["frames"])
    for head in result["heads"]:
        assert len(head["frame_attention"]) == NUM_FRAMES
        assert sum(head["frame_attention"]) + head["cls_attention"] == pytest.approx(1.0, abs=1e-4)
    assert result["note"] is None
    assert _png_size(out) == (round(100 * 1.7 * (NUM_FRAMES + 1)), round(100 * (0.8 + 4 * 2.2)))

    assert main(["explain", str(dual_run), "--video", str(video), "--text", CAPTIONS[3], "--layer", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("similarity ") and lines[1].startswith("noun: removed star | attention per frame")


def test_explain_a_run_without_fine_grained_heads(global_run, data_root, tmp_path, capsys):
    out = tmp_path / "global.png"
    argv = ["explain", str(global_run), "--video", str(data_root / "videos" / "v0.mp4"), "--text", "a red circle"]
    assert main([*argv, "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["heads"] == [] and result["note"] == NO_HEADS_NOTE
    assert -1.0 <= result["similarity"] <= 1.0
    assert _png_size(out) == (round(100 * 1.7 * (NUM_FRAMES + 1)), round(100 * (0.8 + 2 * 2.2)))  # frames, Grad-CAM
    assert main(argv) == 0
    assert "no cross-attention to show" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing run", "does not exist"),
        ("empty text", "the text is empty"),
        ("undecodable video", "cannot decode video"),
        ("missing video", "cannot decode video"),
        ("layer 9", "has 3 cross-attention layers"),
    ],
)
def test_explain_errors_are_one_line(case, message, dual_run, data_root, tmp_path, capsys):
    video, text, run, extra = data_root / "videos" / "v0.mp4", "a red circle", dual_run, []
    if case == "missing run":
        run = tmp_path / "no-run"
    elif case == "empty text":
        text = "   "
    elif case == "undecodable video":
        video = tmp_path / "fake.mp4"
        video.write_text("not a video")
    elif case == "missing video":
        video = tmp_path / "absent.mp4"
    else:
        extra = ["--layer", "9"]
    out = tmp_path / "x.png"
    assert main(["explain", str(run), "--video", str(video), "--text", text, "--out", str(out), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vtr: error:") and "\n" not in err and message in err
    assert not out.exists()


# ----------------------------------------------------------------------------------------------- the report


def test_report_escapes_every_caption_and_path():
    case = Case(query=0, caption=SCRIPT_CAPTION, video=0, rank=3, score=0.2, top=[(1, 0.5)])
    content = ReportContent(
        run="/runs/<b>bold</b>",
        data_root="data",
        split="test",
        checkpoint="best",
        config={"model": {"heads": [{"name": "global", "weight": 1.0, "params": {}}]}, "data": {"root": "<i>"}},
        metrics={"t2v": {"R@1": 12.5, "R@5": 50.0, "R@10": 75.0, "MdR": 2.0, "MnR": 3.25}, "rsum": 137.5},
        curves_note="no training curves: /runs/log.jsonl does not exist",
        cases=[case],
        cases_image="cases.png",
        video_names=["videos/<img src=x onerror=alert(1)>.mp4", "videos/b&c.mp4"],
        explained=[ExplainedQuery("explain-1.png", SCRIPT_CAPTION, 'videos/"q".mp4', 0.5, [], "a <note>")],
    )
    page = render_report(content)
    for raw in ("<script", "<b>", "<i>", "<img src=x", "<note>"):
        assert raw not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; square &amp; a circle" in page
    assert "videos/b&amp;c.mp4" in page and "videos/&quot;q&quot;.mp4" in page
    assert '<td class="num">12.5</td>' in page and '<td class="num">137.5</td>' in page
    assert "curves.png" not in page and "no training curves: /runs/log.jsonl does not exist" in page


def test_report_end_to_end(dual_run, data_root, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(dual_run, run)
    steps = [_step(s, 0, **_three_head_terms(s)) for s in range(1, 5)]
    _write_log(run, [{"event": "start", "config": {"train": {"epochs": 1}}}, *steps, {"event": "epoch", "epoch": 0}])
    out = tmp_path / "report"
    argv = ["report", str(run), "--out", str(out), "--cases", "6", "--top-k", "3", "--device", "cpu"]
    assert main([*argv, "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out / 'index.html'}"
    page = (out / "index.html").read_text()

    # Every query (6 successes or failures together) is listed, its markup escaped; nothing comes from the network.
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    images = [part.split('"', 1)[0] for part in page.split('<img src="')[1:]]
    assert images == ["curves.png", "cases.png", "explain-1.png", "explain-2.png"]
    for name in images:
        width, height = _png_size(out / name)
        assert width > 300 and height > 200
    assert sorted(p.name for p in out.iterdir()) == sorted([*images, "index.html", "metrics.json"])  # no temp files
    # The numbers are those of vtr eval.
    assert main(["eval", str(run), "--split", "test", "--device", "cpu", "--no-progress", "--json"]) == 0
    assert json.loads((out / "metrics.json").read_text()) == json.loads(capsys.readouterr().out)
    records = read_annotations(data_root, split="test")
    assert all(record.video in page for record in records)


@pytest.mark.parametrize("command", ["explain", "report"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: vtr {command}" in capsys.readouterr().out


def test_report_of_a_missing_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "r")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "r" / "index.html").exists()
