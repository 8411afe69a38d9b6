"""``vtr metrics`` end to end through ``vtr.cli.main``: table, JSON, output file, post-processing, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vtr.cli import main
from vtr.evaluate.metrics import retrieval_metrics
from vtr.evaluate.postprocess_report import PostprocessOptions, postprocessed_metrics


@pytest.fixture
def multi_caption(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """A 4-query x 3-video matrix where v2t "best" and "maxpool" differ (see test_metrics)."""
    query_video = np.array([0, 1, 1, 2])
    sim = np.array([[0.5, 0, 0], [0.9, 0.8, 0], [0.8, 0.1, 0.3], [0.1, 0, 0.9]], dtype=np.float32)
    np.save(tmp_path / "sim.npy", sim)
    np.save(tmp_path / "q2v.npy", query_video)
    return tmp_path / "sim.npy", tmp_path / "q2v.npy", sim, query_video


def test_json_output_has_the_agreed_shape_and_values(multi_caption, capsys) -> None:
    sim_path, q2v_path, sim, query_video = multi_caption
    assert main(["metrics", "--sim", str(sim_path), "--query-video", str(q2v_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"t2v", "v2t", "rsum"}
    for direction in ("t2v", "v2t"):
        assert list(out[direction]) == ["R@1", "R@5", "R@10", "MdR", "MnR"]
    assert out == retrieval_metrics(sim, query_video)
    # t2v ranks [1, 2, 3, 1]; v2t best ranks [3, 1, 1].
    assert out["t2v"]["R@1"] == 50.0 and out["t2v"]["MnR"] == 1.75
    assert out["v2t"]["MnR"] == pytest.approx(5 / 3)


def test_maxpool_flag_and_out_file(multi_caption, tmp_path, capsys) -> None:
    sim_path, q2v_path, _, _ = multi_caption
    out_file = tmp_path / "reports" / "metrics.json"
    argv = ["metrics", "--sim", str(sim_path), "--query-video", str(q2v_path), "--v2t", "maxpool", "--json"]
    assert main([*argv, "--out", str(out_file)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["v2t"]["MnR"] == pytest.approx(4 / 3)  # v2t maxpool ranks [2, 1, 1]
    assert json.loads(out_file.read_text()) == printed


def test_table_output_is_aligned_and_holds_the_numbers(multi_caption, capsys) -> None:
    sim_path, q2v_path, _, _ = multi_caption
    assert main(["metrics", "--sim", str(sim_path), "--query-video", str(q2v_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["R@1", "R@5", "R@10", "MdR", "MnR"]
    assert lines[1].split() == ["text-to-video", "50.0", "100.0", "100.0", "1.5", "1.8"]
    assert lines[2].split() == ["video-to-text", "66.7", "100.0", "100.0", "1.0", "1.7"]
    assert lines[3].split() == ["R-sum", "516.7"]
    assert len({len(line) for line in lines[:3]}) == 1  # columns line up


def test_square_matrix_without_query_video(tmp_path, capsys) -> None:
    np.save(tmp_path / "sim.npy", np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
    assert main(["metrics", "--sim", str(tmp_path / "sim.npy"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["t2v"]["R@1"] == 100.0  # a tie is not counted twice


def _save(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d: ["--sim", str(d / "missing.npy")], "similarity matrix file not found"),
        (lambda d: ["--sim", str(_save(d / "v.npy", np.zeros(3)))], "must be 2-D"),
        (
            lambda d: ["--sim", str(_save(d / "s.npy", np.zeros((4, 2)))), "--query-video", str(d / "none.npy")],
            "query-to-video array file not found",
        ),
        (
            lambda d: [
                "--sim",
                str(_save(d / "s.npy", np.zeros((4, 2)))),
                "--query-video",
                str(_save(d / "q.npy", np.array([0, 1, 1]))),
            ],
            "one entry per query",
        ),
        (
            lambda d: [
                "--sim",
                str(_save(d / "s.npy", np.zeros((4, 2)))),
                "--query-video",
                str(_save(d / "q.npy", np.array([0, 1, 5, 1]))),
            ],
            "out of range",
        ),
        (lambda d: ["--sim", str(_save(d / "s.npy", np.zeros((4, 2))))], "--query-video"),
        (lambda d: ["--sim", str(_save(d / "n.npy", np.array([[1.0, np.nan], [0.0, 1.0]])))], "NaN"),
        (lambda d: ["--sim", str(d / "a.npz")], ".npz archive"),
        (lambda d: ["--sim", str(d / "t.npy")], "cannot read similarity matrix"),
    ],
)
def test_user_errors_print_one_line_and_exit_1(tmp_path, capsys, make_args, message) -> None:
    np.savez(tmp_path / "a.npz", sim=np.eye(2))
    (tmp_path / "t.npy").write_text("not an array\n")
    assert main(["metrics", *make_args(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 1, captured.err
    assert err_lines[0].startswith("vtr: error: ")
    assert message in err_lines[0]


# ------------------------------------------------------------------------------------------- --postprocess

# Video 0 is every caption's top-1 (see test_postprocess): the post-processed numbers differ from the plain ones.
HUB = np.array([[0.9, 0.5, 0.4], [0.8, 0.7, 0.3], [0.8, 0.3, 0.6]])
BANK = np.array([[0.8, 0.1, 0.2], [0.8, 0.2, 0.1]])


@pytest.fixture
def hub_files(tmp_path: Path) -> tuple[Path, Path]:
    return _save(tmp_path / "sim.npy", HUB), _save(tmp_path / "bank.npy", BANK)


def test_postprocess_adds_a_section_and_leaves_the_plain_numbers_identical(multi_caption, capsys) -> None:
    sim_path, q2v_path, sim, query_video = multi_caption
    argv = ["metrics", "--sim", str(sim_path), "--query-video", str(q2v_path), "--v2t", "maxpool", "--json"]
    assert main(argv) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*argv, "--postprocess", "dsl,sinkhorn", "--dsl-temperature", "0.05", "--sinkhorn-iters", "7"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {key: value for key, value in out.items() if key != "postprocessed"} == plain
    assert list(out["postprocessed"]) == ["dsl", "sinkhorn"]
    options = PostprocessOptions(dsl_temperature=0.05, sinkhorn_max_iter=7)
    expected = postprocessed_metrics(sim, query_video, ["dsl", "sinkhorn"], v2t="maxpool", options=options)
    assert out["postprocessed"] == json.loads(json.dumps(expected))
    assert out["postprocessed"]["dsl"]["params"] == {"temperature": 0.05}
    assert out["postprocessed"]["sinkhorn"]["params"]["max_iter"] == 7


def test_postprocessed_table_is_labelled_and_follows_the_plain_one(hub_files, capsys) -> None:
    sim_path, bank_path = hub_files
    assert main(["metrics", "--sim", str(sim_path)]) == 0
    plain = capsys.readouterr().out.splitlines()
    argv = ["metrics", "--sim", str(sim_path), "--postprocess", "dsl,qbnorm", "--bank-sim", str(bank_path)]
    assert main([*argv, "--dsl-temperature", "0.1", "--qb-beta", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[: len(plain)] == plain
    assert plain[1].split()[:2] == ["text-to-video", "33.3"]
    rest = lines[len(plain) :]
    assert rest[0] == "" and rest[1].startswith("post-processed (not comparable")
    dsl_rows = [line.split() for line in rest if line.startswith("dsl ")]
    assert dsl_rows[0][:3] == ["dsl", "text-to-video", "100.0"] and dsl_rows[1][:3] == ["dsl", "video-to-text", "100.0"]
    assert "dsl: temperature=0.1" in rest
    assert any(line.startswith("dsl: uses all test queries") for line in rest)
    # QB-Norm with this bank: ranks [3, 1, 1]; text-to-video only.
    qb_rows = [line.split() for line in rest if line.startswith("qbnorm ")]
    assert qb_rows == [["qbnorm", "text-to-video", "66.7", "100.0", "100.0", "1.0", "1.7"]]
    assert "qbnorm: beta=10, top_k=1, bank=queries from bank.npy, bank_size=2, normalised_percent=100" in rest
    # Every number below the heading sits on a row that names its method.
    for line in rest[2:]:
        assert not line or line.split()[0] in {"R@1"} or line.split()[0].rstrip(":") in {"dsl", "qbnorm"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--postprocess", "qbnorm"], "--postprocess qbnorm needs the query bank"),
        (["--postprocess", "dsl", "--bank-sim", "BANK"], "--bank-sim is only used by --postprocess qbnorm"),
        (["--postprocess", "dsl", "--dsl-temperature", "0"], "temperature must be a positive finite number"),
        (["--postprocess", "qbnorm", "--bank-sim", "WIDE"], "same test videos"),
        (["--postprocess", "qbnorm", "--bank-sim", "MISSING"], "query bank similarity matrix file not found"),
        (["--postprocess", "qbnorm", "--bank-sim", "BANK", "--qb-top-k", "5"], "top_k must be an integer in 1..3"),
    ],
)
def test_postprocess_user_errors_are_one_line(hub_files, tmp_path, capsys, extra, message) -> None:
    sim_path, bank_path = hub_files
    files = {"BANK": bank_path, "WIDE": _save(tmp_path / "wide.npy", np.zeros((2, 4))), "MISSING": tmp_path / "no.npy"}
    extra = [str(files.get(arg, arg)) for arg in extra]
    assert main(["metrics", "--sim", str(sim_path), *extra]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("vtr: error: ") and captured.err.count("\n") == 1
    assert message in captured.err


def test_unknown_postprocess_method_is_a_usage_error(hub_files, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["metrics", "--sim", str(hub_files[0]), "--postprocess", "dsl,isoftmax"])
    assert exit_info.value.code == 2
    assert "unknown post-processing method 'isoftmax'" in capsys.readouterr().err


def test_several_sims_are_scored_by_their_mean(multi_caption, tmp_path, capsys) -> None:
    """Two models that each miss a different query: their mean ranks both right, as an ensemble index would."""
    sim_path, q2v_path, sim, query_video = multi_caption
    other = np.array([[0.3, 0.4, 0], [0.1, 0.9, 0], [0.1, 0.9, 0.3], [0.1, 0, 0.9]], dtype=np.float32)
    other_path = _save(tmp_path / "other.npy", other)
    argv = ["metrics", "--sim", str(sim_path), "--sim", str(other_path), "--query-video", str(q2v_path), "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == retrieval_metrics((sim + other) / 2, query_video)
    # Alone, each model ranks some query's video below first; the mean ranks every query's video first.
    assert retrieval_metrics(sim, query_video)["t2v"]["R@1"] == 50.0
    assert retrieval_metrics(other, query_video)["t2v"]["R@1"] == 75.0
    assert out["t2v"]["R@1"] == 100.0


def test_mean_similarity_reads_in_chunks_and_refuses_other_shapes(tmp_path) -> None:
    from vtr.evaluate.metrics import InvalidSimilarityError, mean_similarity

    rng = np.random.default_rng(0)
    first, second = rng.random((7, 3), dtype=np.float32), rng.random((7, 3), dtype=np.float32)
    mapped = np.load(_save(tmp_path / "a.npy", first), mmap_mode="r")
    mean = mean_similarity([mapped, second], chunk_size=2)
    np.testing.assert_allclose(mean, (first + second) / 2, rtol=1e-6)
    assert mean.dtype == np.float32 and np.array_equal(mapped, first)  # the inputs are left as they were
    with pytest.raises(InvalidSimilarityError, match="different shapes"):
        mean_similarity([first, second[:, :2]])


def test_several_sims_of_other_shapes_or_with_a_bank_are_refused(multi_caption, tmp_path, capsys) -> None:
    sim_path, q2v_path, _, _ = multi_caption
    wide = _save(tmp_path / "wide.npy", np.zeros((4, 4), dtype=np.float32))
    assert main(["metrics", "--sim", str(sim_path), "--sim", str(wide), "--query-video", str(q2v_path)]) != 0
    assert "different shapes" in capsys.readouterr().err
    argv = ["metrics", "--sim", str(sim_path), "--sim", str(sim_path), "--query-video", str(q2v_path)]
    assert main([*argv, "--postprocess", "qbnorm", "--bank-sim", str(sim_path)]) != 0
    assert "give one --bank-sim per --sim, in the same order: 2 --sim, 1 --bank-sim" in capsys.readouterr().err


def test_qbnorm_of_several_sims_uses_the_mean_of_their_banks(hub_files, tmp_path, capsys) -> None:
    """An ensemble's score for a bank query is the mean of its members' scores, as for a test query."""
    sim_path, bank_path = hub_files
    other_sim = _save(tmp_path / "other_sim.npy", HUB[:, ::-1].copy())
    other_bank = _save(tmp_path / "other_bank.npy", BANK[:, ::-1].copy())
    common = ["--postprocess", "qbnorm", "--qb-beta", "10", "--json"]
    argv = ["metrics", "--sim", str(sim_path), "--sim", str(other_sim)]
    assert main([*argv, "--bank-sim", str(bank_path), "--bank-sim", str(other_bank), *common]) == 0
    ensemble = json.loads(capsys.readouterr().out)["postprocessed"]["qbnorm"]
    mean_sim = _save(tmp_path / "mean_sim.npy", (HUB + HUB[:, ::-1]) / 2)
    mean_bank = _save(tmp_path / "mean_bank.npy", (BANK + BANK[:, ::-1]) / 2)
    assert main(["metrics", "--sim", str(mean_sim), "--bank-sim", str(mean_bank), *common]) == 0
    single = json.loads(capsys.readouterr().out)["postprocessed"]["qbnorm"]
    assert ensemble["t2v"] == single["t2v"]
    # Ranks [2, 1, 1]; the first bank alone would give [3, 1, 1], the second [1, 1, 3].
    assert ensemble["t2v"]["MnR"] == pytest.approx(4 / 3)
    assert ensemble["params"]["bank"] == f"queries from the mean of {bank_path}, {other_bank}"
    assert single["params"]["bank"] == "queries from mean_bank.npy"
