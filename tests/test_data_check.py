"""``check_dataset``: a good folder passes; each kind of bad file or caption is found and named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from videos_util import write_solid_video

from vtr.data.check import check_dataset, check_video_file


def make_folder(root: Path, entries: list[dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "annotations.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    return root


@pytest.fixture(scope="module")
def good_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("good")
    entries = []
    for i, split in enumerate(["train", "train", "val", "test"]):
        write_solid_video(root / "videos" / f"v{i}.mp4", num_frames=16, fps=8, colour=(40 * i, 0, 0))
        entries.append({"video": f"videos/v{i}.mp4", "captions": [f"clip {i}", f"video {i}"], "split": split})
    return make_folder(root, entries)


def test_good_folder_passes(good_folder: Path) -> None:
    report = check_dataset(good_folder, progress=False)
    assert report.ok, report.format_text()
    assert report.issues == []
    assert report.num_videos == 4 and report.num_captions == 8
    assert report.splits == {
        "train": {"videos": 2, "captions": 4},
        "val": {"videos": 1, "captions": 2},
        "test": {"videos": 1, "captions": 2},
    }
    assert report.format_text().startswith("OK:")


def test_bad_folder_names_each_problem(tmp_path: Path, good_folder: Path) -> None:
    root = tmp_path / "bad"
    (root / "videos").mkdir(parents=True)
    write_solid_video(root / "videos" / "fine.mp4", num_frames=16)
    (root / "videos" / "empty.mp4").write_bytes(b"")
    (root / "videos" / "text.mp4").write_text("this is not a video\n" * 50)
    write_solid_video(root / "videos" / "blank_caption.mp4", num_frames=16)
    entries = [
        {"video": "videos/fine.mp4", "captions": ["a fine clip"], "split": "train"},
        {"video": "videos/missing.mp4", "captions": ["gone"], "split": "train"},
        {"video": "videos/empty.mp4", "captions": ["nothing"], "split": "val"},
        {"video": "videos/text.mp4", "captions": ["text"], "split": "test"},
        {"video": "videos/blank_caption.mp4", "captions": [""], "split": "train"},
        {"video": "videos/fine.mp4", "captions": ["listed twice"], "split": "test"},
    ]
    make_folder(root, entries)
    report = check_dataset(root, progress=False, workers=2)
    assert not report.ok
    codes = {(issue.line, issue.code) for issue in report.errors}
    assert codes == {
        (2, "missing_file"),
        (3, "empty_file"),
        (4, "undecodable"),
        (5, "empty_caption"),
        (6, "duplicate_video"),
    }
    by_code = {issue.code: issue for issue in report.errors}
    assert by_code["missing_file"].path == str(root.resolve() / "videos" / "missing.mp4")
    assert by_code["undecodable"].video == "videos/text.mp4"
    assert report.bad_files() == [str(root.resolve() / "videos" / n) for n in ("missing.mp4", "empty.mp4", "text.mp4")]
    text = report.format_text()
    for name in ("missing.mp4", "empty.mp4", "text.mp4", "annotations.jsonl:5:", "already listed on line 1"):
        assert name in text
    assert text.splitlines()[-1].startswith("FAILED:")


def test_warnings_do_not_fail(tmp_path: Path) -> None:
    root = tmp_path / "warn"
    write_solid_video(root / "short.mp4", num_frames=4, fps=8)  # 0.5 s
    write_solid_video(root / "quiet.mp4", num_frames=16, fps=8)
    write_solid_video(root / "twice.mp4", num_frames=16, fps=8)
    make_folder(
        root,
        [
            {"video": "short.mp4", "captions": ["short"], "split": "train"},
            {"video": "quiet.mp4", "captions": [], "split": "train"},
            {"video": "twice.mp4", "captions": ["same", "same"], "split": "test"},
        ],
    )
    report = check_dataset(root, progress=False)
    assert report.ok, report.format_text()
    assert {(i.line, i.code) for i in report.warnings} == {
        (1, "short_video"),
        (2, "no_captions"),
        (3, "duplicate_caption"),
        (0, "empty_split"),  # no val videos
    }
    assert not any(i.code == "short_video" for i in check_dataset(root, progress=False, min_duration=0.4).issues)


def test_no_decode_checks_only_existence(tmp_path: Path) -> None:
    (tmp_path / "junk.mp4").write_text("junk")
    assert check_video_file(tmp_path / "junk.mp4", decode=False) == []
    assert [i.code for i in check_video_file(tmp_path / "junk.mp4")] == ["undecodable"]
    assert [i.code for i in check_video_file(tmp_path)] == ["missing_file"]


def test_to_dict_is_json_ready(good_folder: Path) -> None:
    report = check_dataset(good_folder, progress=False, decode=False)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True and data["decoded"] is False
    assert data["num_videos"] == 4 and data["errors"] == [] and data["bad_files"] == []
