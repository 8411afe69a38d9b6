"""``vtr data check`` and ``vtr data synth`` through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from videos_util import write_solid_video

from vtr.cli import main
from vtr.data import read_annotations


def make_folder(root: Path, bad: bool) -> Path:
    write_solid_video(root / "videos" / "a.mp4", num_frames=16)
    entries = [{"video": "videos/a.mp4", "captions": ["a red clip"], "split": "train"}]
    if bad:
        (root / "videos" / "zero.mp4").write_bytes(b"")
        entries += [
            {"video": "videos/zero.mp4", "captions": ["zero bytes"], "split": "val"},
            {"video": "videos/gone.mp4", "captions": ["missing"], "split": "test"},
        ]
    (root / "annotations.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    return root


def test_data_help_lists_both_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["data", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "check" in out and "synth" in out
    assert main(["data"]) == 2  # no subcommand: help, usage error


def test_check_good_folder_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_folder(tmp_path, bad=False)
    assert main(["data", "check", str(folder), "--no-progress"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("OK:") and "1 video (train 1, val 0, test 0)" in last and "0 errors" in last


def test_check_bad_folder_exits_nonzero_naming_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_folder(tmp_path, bad=True)
    assert main(["data", "check", str(folder), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "zero.mp4" in out and "gone.mp4" in out and "FAILED" in out


def test_check_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_folder(tmp_path, bad=True)
    assert main(["data", "check", str(folder), "--json", "--no-progress"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["num_videos"] == 3 and report["num_errors"] == 2
    assert {e["code"] for e in report["errors"]} == {"empty_file", "missing_file"}
    assert [Path(p).name for p in report["bad_files"]] == ["zero.mp4", "gone.mp4"]
    assert set(report["errors"][0]) == {"severity", "code", "message", "line", "video", "path"}
    assert report["splits"]["train"] == {"videos": 1, "captions": 1}


def test_check_missing_folder_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vtr: error:") and "does not exist" in err and err.count("\n") == 1
    assert main(["data", "check", str(tmp_path / "nope"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and "does not exist" in report["error"]


def test_synth_writes_a_checkable_data_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synth"
    argv = ["data", "synth", "--out", str(out), "--videos", "12", "--seed", "1", "--frames", "8", "--size", "32"]
    assert main([*argv, "--workers", "1", "--no-progress"]) == 0
    summary = capsys.readouterr().out.strip()
    assert "\n" not in summary  # one paragraph
    assert summary.startswith("Wrote 12 clips (8 frames at 32x32 pixels, 8 fps, seed 1)")
    assert str(out) in summary and "vtr data check" in summary
    records = read_annotations(out)
    assert len(records) == 12 and all(r.path.is_file() for r in records)
    assert f"captions to {out}" in summary and f"with {sum(len(r.captions) for r in records)} captions" in summary
    assert main(["data", "check", str(out), "--no-progress", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_errors"] == 0 and report["num_videos"] == 12


def test_synth_rejects_nonpositive_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--out", str(tmp_path), "--videos", "0"]) == 1
    assert "--videos must be a positive number" in capsys.readouterr().err
