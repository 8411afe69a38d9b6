"""The annotations reader: valid folders read back exactly; every kind of bad line is named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vtr.data import VideoRecord, parse_annotations, read_annotations
from vtr.errors import DataFormatError


def write_lines(folder: Path, lines: list[object]) -> Path:
    """Write annotations.jsonl from objects (dumped as JSON) or raw strings (written as they are)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    (folder / "annotations.jsonl").write_text(text, encoding="utf-8")
    return folder


GOOD = [
    {"video": "videos/a.mp4", "captions": ["a red circle moves left", "a circle slides left"], "split": "train"},
    {"video": "./videos/sub/../b.mp4", "captions": ["a square"], "split": "val", "meta": {"group": 3}},
    {"video": "c.mp4", "captions": [], "split": "test"},
]


def test_reads_records_in_order_with_normalised_paths(tmp_path: Path) -> None:
    write_lines(tmp_path, [GOOD[0], "", GOOD[1], "   ", GOOD[2]])  # blank lines are skipped, not counted
    records = read_annotations(tmp_path)
    assert [r.video for r in records] == ["videos/a.mp4", "videos/b.mp4", "c.mp4"]
    assert [r.line for r in records] == [1, 3, 5]
    assert records[0].captions == ("a red circle moves left", "a circle slides left")
    assert records[1].meta == {"group": 3} and records[0].meta == {}
    assert records[1].path == tmp_path.resolve() / "videos" / "b.mp4"
    assert records[1].path.is_absolute()
    assert isinstance(records[2], VideoRecord) and records[2].captions == ()


def test_split_filter_and_file_path(tmp_path: Path) -> None:
    write_lines(tmp_path, GOOD)
    assert [r.video for r in read_annotations(tmp_path, split="val")] == ["videos/b.mp4"]
    assert [r.video for r in read_annotations(tmp_path / "annotations.jsonl", split="train")] == ["videos/a.mp4"]
    with pytest.raises(DataFormatError, match="unknown split 'dev'"):
        read_annotations(tmp_path, split="dev")


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ('{"video": "a.mp4", "captions": ["x"], "split": "train"', "not valid JSON"),
        ('["a.mp4", ["x"], "train"]', "expected a JSON object"),
        ({"video": "b.mp4", "split": "train"}, "missing key(s) captions"),
        ({"captions": ["x"], "split": "train"}, "missing key(s) video"),
        ({"video": "b.mp4", "captions": "one caption", "split": "train"}, "list of strings"),
        ({"video": 7, "captions": ["x"], "split": "train"}, '"video" must be a string'),
        ({"video": "/data/b.mp4", "captions": ["x"], "split": "train"}, "is absolute"),
        ({"video": "../outside/b.mp4", "captions": ["x"], "split": "train"}, "leaves the data set folder"),
        ({"video": "videos/../../b.mp4", "captions": ["x"], "split": "train"}, "leaves the data set folder"),
        ({"video": "b.mp4", "captions": ["x"], "split": "training"}, "expected one of train, val, test"),
        ({"video": "b.mp4", "captions": ["x", "  "], "split": "train"}, "caption 1 is empty"),
        ({"video": "videos/a.mp4", "captions": ["again"], "split": "test"}, "already listed on line 1"),
        ({"video": "b.mp4", "captions": ["x"], "split": "train", "meta": [1]}, '"meta" must be an object'),
    ],
)
def test_bad_line_is_named_by_file_and_line(tmp_path: Path, bad_line: object, expected: str) -> None:
    write_lines(tmp_path, [GOOD[0], GOOD[2], bad_line])  # the bad line is line 3
    with pytest.raises(DataFormatError) as caught:
        read_annotations(tmp_path)
    message = str(caught.value)
    assert "annotations.jsonl:3:" in message
    assert expected in message
    assert "\n" not in message


def test_non_utf8_line_is_named(tmp_path: Path) -> None:
    write_lines(tmp_path, [GOOD[0]])
    with open(tmp_path / "annotations.jsonl", "ab") as handle:
        handle.write(b'{"video": "\xff.mp4", "captions": [], "split": "train"}\n')
    with pytest.raises(DataFormatError, match=r"annotations.jsonl:2: not UTF-8"):
        read_annotations(tmp_path)


def test_parse_collects_every_problem_and_keeps_good_lines(tmp_path: Path) -> None:
    write_lines(
        tmp_path,
        [
            GOOD[0],
            "not json",
            {"video": "d.mp4", "captions": ["same", "same"], "split": "train", "extra": 1},
            {"video": "../e.mp4", "captions": ["x"], "split": "nope"},
        ],
    )
    records, problems = parse_annotations(tmp_path)
    assert [r.video for r in records] == ["videos/a.mp4", "d.mp4"]  # warnings do not drop a line
    found = {(p.line, p.code, p.severity) for p in problems}
    assert found == {
        (2, "json", "error"),
        (3, "duplicate_caption", "warning"),
        (3, "unknown_key", "warning"),
        (4, "bad_path", "error"),
        (4, "bad_split", "error"),
    }
    with pytest.raises(DataFormatError) as caught:
        read_annotations(tmp_path)
    assert "annotations.jsonl:2:" in str(caught.value) and "annotations.jsonl:4:" in str(caught.value)


def test_many_errors_are_summarised(tmp_path: Path) -> None:
    write_lines(tmp_path, ["{"] * 9)
    with pytest.raises(DataFormatError, match="and 4 more"):
        read_annotations(tmp_path)


def test_missing_folder_or_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="does not exist"):
        read_annotations(tmp_path / "nowhere")
    with pytest.raises(DataFormatError, match="has no annotations.jsonl"):
        read_annotations(tmp_path)
