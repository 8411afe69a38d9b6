"""``vtr metrics`` end to end through ``vtr.cli.main``: table, JSON, output file, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vtr.cli import main
from vtr.evaluate.metrics import retrieval_metrics


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
