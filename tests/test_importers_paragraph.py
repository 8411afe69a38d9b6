"""``vtr data import didemo|activitynet|lsmdc``: tiny copies of the official files, real videos, checkable results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_importers import by_id, put_videos
from videos_util import make_video

from vtr.cli import main
from vtr.data import check_dataset, read_annotations
from vtr.data.importers import holdout, import_activitynet, import_didemo, import_lsmdc, join_paragraph
from vtr.errors import ConfigError, DataFormatError


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real, decodable MP4 (1 s), copied under whatever name a data set gives its videos."""
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", 8, fps=8)


def checks_clean(folder: Path) -> None:
    report = check_dataset(folder, decode=True, progress=False, workers=1)
    assert report.ok, report.format_text()


def test_join_paragraph_ends_each_sentence_and_keeps_the_order() -> None:
    sentences = ["a man walks in", " He  sits.", "", 'she shouts "stop!"', "   ", "the end (finally)", "why?"]
    paragraph, dropped = join_paragraph(sentences)
    assert paragraph == 'a man walks in. He sits. she shouts "stop!" the end (finally). why?'
    assert dropped == 2
    assert join_paragraph([]) == ("", 0)


# --- DiDeMo ----------------------------------------------------------------------------------------------------

# (video field, description, times); items of one video need not be next to each other, as in the real files.
DIDEMO = {
    "train": [
        ("10@N01_111_aaa.mov", "a dog runs across the lawn", [[0, 0], [0, 1]]),
        ("20@N02_222_bbb.mp4", "the camera pans left.", [[2, 2]]),
        ("10@N01_111_aaa.mov", "  the dog stops and barks!  ", [[3, 4], [3, 3]]),
        ("10@N01_111_aaa.mov", "the dog lies down", [[5, 5]]),
    ],
    "val": [("40@N04_444_ddd.m4v", "a red car drives by", [[1, 2]])],
    "test": [
        ("50@N05_555_eee.3gp", "a girl waves", [[0, 0]]),
        ("50@N05_555_eee.3gp", "", [[1, 1]]),
        ("60@N06_666_fff.mov", "nobody filmed this one", [[0, 0]]),
    ],
}
DIDEMO_FILES = {"train": "train_data.json", "val": "val_data.json", "test": "test_data.json"}


def didemo_items(split: str) -> list[dict[str, Any]]:
    return [
        {"video": video, "description": text, "times": times, "annotation_id": 100 * i, "num_segments": 6}
        | {"dl_link": f"https://example.org/{video}"}
        for i, (video, text, times) in enumerate(DIDEMO[split])
    ]


def make_didemo(root: Path, clip: Path) -> Path:
    """DiDeMo as downloaded: the three JSON files in data/, the videos in videos/ (fff has no file)."""
    for split, name in DIDEMO_FILES.items():
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "data" / name).write_text(json.dumps(didemo_items(split)), encoding="utf-8")
    # ddd's field says .m4v but the file is a re-encoded .mp4: found by its stem.
    names = ["10@N01_111_aaa.mov", "20@N02_222_bbb.mp4", "40@N04_444_ddd.mp4", "50@N05_555_eee.3gp"]
    put_videos(root / "videos", names, clip)
    return root


def test_didemo_one_paragraph_a_video_with_moments_in_meta(tmp_path: Path, clip: Path) -> None:
    source = make_didemo(tmp_path / "didemo", clip)
    summary = import_didemo(source)
    records = by_id(read_annotations(source))

    assert {v: r.split for v, r in records.items()} == {
        "10@N01_111_aaa": "train",
        "20@N02_222_bbb": "train",
        "40@N04_444_ddd": "val",
        "50@N05_555_eee": "test",
    }
    # File order, a full stop where a description had no final punctuation, one caption.
    aaa = records["10@N01_111_aaa"]
    assert aaa.captions == ("a dog runs across the lawn. the dog stops and barks! the dog lies down.",)
    assert records["20@N02_222_bbb"].captions == ("the camera pans left.",)
    assert records["50@N05_555_eee"].captions == ("a girl waves.",)  # the empty description is dropped
    assert aaa.video == "videos/10@N01_111_aaa.mov" and records["40@N04_444_ddd"].video == "videos/40@N04_444_ddd.mp4"
    assert aaa.meta["file"] == "10@N01_111_aaa.mov" and aaa.meta["num_segments"] == 6
    # Segment pairs include both ends and are 5 s long: [3, 4] is seconds 15 to 25.
    first, barks, lies = aaa.meta["moments"]
    assert first["times"] == [[0, 0], [0, 1]] and first["seconds"] == [[0, 5], [0, 10]]
    assert barks == {
        "description": "the dog stops and barks!",
        "annotation_id": 200,
        "times": [[3, 4], [3, 3]],
        "seconds": [[15, 25], [15, 20]],
    }
    assert lies["description"] == "the dog lies down" and lies["seconds"] == [[25, 30]]

    assert summary.missing_files == ["60@N06_666_fff"] and summary.dropped_captions == 1
    assert summary.splits == {
        "train": {"videos": 2, "captions": 2},
        "val": {"videos": 1, "captions": 1},
        "test": {"videos": 1, "captions": 1},
    }
    assert summary.val["description"] == "val_data.json (1 video)"
    checks_clean(source)

    summary = import_didemo(source, keep_missing=True, force=True)
    kept = by_id(read_annotations(source))["60@N06_666_fff"]
    assert summary.kept_missing == ["60@N06_666_fff"] and kept.video == "videos/60@N06_666_fff.mp4"


@pytest.mark.parametrize(
    ("split", "content", "message"),
    [
        ("test", {"videos": []}, r"test_data.json: expected the DiDeMo format, a JSON list"),
        ("train", [{"video": "a.mov", "times": [[0, 0]]}], r"train_data.json: \[0\] has no 'description'"),
        ("val", [{"video": "a.mov", "description": "x", "times": [[3, 1]]}], r"val_data.json: \[0\]: 'times' must"),
        ("val", [{"video": "a.mov", "description": "x", "times": [0, 1]}], r"val_data.json: \[0\]: 'times' must"),
        ("train", [{"video": "../a.mov", "description": "x"}], r"train_data.json: \[0\]: video id '../a.mov'"),
        (
            "val",
            [{"video": "10@N01_111_aaa.mp4", "description": "x"}],
            r"val_data.json: video 10@N01_111_aaa is also in",
        ),
        ("test", '[{"video": ', r"test_data.json: not valid JSON"),
    ],
)
def test_didemo_malformed_input_names_the_file(
    tmp_path: Path, clip: Path, split: str, content: Any, message: str
) -> None:
    source = make_didemo(tmp_path / "didemo", clip)
    path = source / "data" / DIDEMO_FILES[split]
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(DataFormatError, match=message):
        import_didemo(source)
    assert not (source / "annotations.jsonl").exists()


def test_didemo_files_found_by_folder_or_reported(tmp_path: Path, clip: Path) -> None:
    source = make_didemo(tmp_path / "didemo", clip)
    (source / "data" / "val_data.json").rename(source / "val_data.json.bak")
    with pytest.raises(DataFormatError, match="no val_data.json in .*--annotations-dir"):
        import_didemo(source)
    elsewhere = tmp_path / "annotations"
    (source / "data").rename(elsewhere)
    (elsewhere / "val_data.json").write_text(json.dumps(didemo_items("val")))
    summary = import_didemo(source, annotations_dir=elsewhere)
    assert [p.parent for p in summary.sources] == [elsewhere] * 3 and summary.num_videos == 4


def test_cli_didemo_json(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_didemo(tmp_path / "didemo", clip)
    out = tmp_path / "out"
    assert main(["data", "import", "didemo", str(source), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["dataset"] == "DiDeMo" and summary["num_videos"] == 4 and summary["num_captions"] == 4
    assert summary["skipped"]["missing_files"] == ["60@N06_666_fff"] and summary["link"] == str(out / "videos")
    assert "1 video skipped: no file under" in captured.err
    assert main(["data", "check", str(out), "--no-progress", "--json", "--workers", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["num_errors"] == 0


# --- ActivityNet Captions --------------------------------------------------------------------------------------

# Sentences written out of timestamp order (with the leading spaces of the real files): the paragraph sorts them.
ANET_TRAIN = {
    "v_QOlSCBRmfWY": {
        "duration": 82.73,
        "timestamps": [[56.26, 79.42], [0.83, 19.86], [17.37, 60.81]],
        "sentences": [" She ends by laying on the floor.", "A young woman is seen standing in a room", " She dances."],
    },
    "v_ehGHCYKzyZ8": {"duration": 61.72, "timestamps": [[0, 61.72]], "sentences": ["A man plays a drum."]},
    "v_nwznKOuZM7w": {"duration": 20.0, "timestamps": [[2, 9], [2, 5]], "sentences": ["two", "one"]},
    "v_ogQozSI5V8U": {"duration": 30.0, "timestamps": [[0, 30]], "sentences": ["A dog catches a frisbee."]},
    "v_-_lw9_iGm6k": {"duration": 40.0, "timestamps": [[0, 10]], "sentences": ["No file was downloaded."]},
}
ANET_VAL_1 = {
    "v_uqiMw7tQ1Cc": {"duration": 55.0, "timestamps": [[0, 20], [20, 55]], "sentences": ["A cat sits", "It jumps."]},
    "v_bXdq2zI1Ms0": {"duration": 73.1, "timestamps": [[0, 73.1]], "sentences": ["People ride camels."]},
}
ANET_VAL_2 = {
    "v_uqiMw7tQ1Cc": {"duration": 55.0, "timestamps": [[0, 55]], "sentences": ["A cat sits and then jumps."]},
    "v_bXdq2zI1Ms0": {"duration": 73.1, "timestamps": [[0, 73.1]], "sentences": ["A caravan crosses a desert."]},
}


def make_activitynet(root: Path, clip: Path) -> Path:
    """The caption files in captions/; videos named both ways in videos/, as releases differ."""
    for name, content in (("train.json", ANET_TRAIN), ("val_1.json", ANET_VAL_1), ("val_2.json", ANET_VAL_2)):
        (root / "captions").mkdir(parents=True, exist_ok=True)
        (root / "captions" / name).write_text(json.dumps(content), encoding="utf-8")
    names = ["v_QOlSCBRmfWY.mp4", "ehGHCYKzyZ8.mp4", "v_nwznKOuZM7w.mkv", "ogQozSI5V8U.mp4", "v_uqiMw7tQ1Cc.mp4"]
    put_videos(root / "videos", [*names, "bXdq2zI1Ms0.webm"], clip)
    return root


def test_activitynet_paragraphs_in_timestamp_order_and_both_file_names(tmp_path: Path, clip: Path) -> None:
    source = make_activitynet(tmp_path / "anet", clip)
    summary = import_activitynet(source)
    records = by_id(read_annotations(source))

    assert {v: r.split for v, r in records.items()} == {
        "v_QOlSCBRmfWY": "train",
        "v_ehGHCYKzyZ8": "train",
        "v_nwznKOuZM7w": "train",
        "v_ogQozSI5V8U": "train",
        "v_uqiMw7tQ1Cc": "test",
        "v_bXdq2zI1Ms0": "test",
    }
    woman = records["v_QOlSCBRmfWY"]
    assert woman.captions == ("A young woman is seen standing in a room. She dances. She ends by laying on the floor.",)
    assert records["v_nwznKOuZM7w"].captions == ("one. two.",)  # same start: the earlier end comes first
    assert woman.meta == {
        "source": "activitynet",
        "video_id": "v_QOlSCBRmfWY",
        "youtube_id": "QOlSCBRmfWY",
        "duration": 82.73,
        "timestamps": [[0.83, 19.86], [17.37, 60.81], [56.26, 79.42]],
        "sentences": ["A young woman is seen standing in a room", "She dances.", "She ends by laying on the floor."],
    }
    # v_<id>.mp4 and <id>.mp4 are both found; the record's meta keeps the annotation's id.
    assert woman.video == "videos/v_QOlSCBRmfWY.mp4"
    assert records["v_ehGHCYKzyZ8"].video == "videos/ehGHCYKzyZ8.mp4"
    assert records["v_bXdq2zI1Ms0"].video == "videos/bXdq2zI1Ms0.webm"
    assert records["v_uqiMw7tQ1Cc"].captions == ("A cat sits. It jumps.",)  # val_1 by default
    assert summary.missing_files == ["v_-_lw9_iGm6k"]
    assert summary.splits["val"] == {"videos": 0, "captions": 0} and summary.val["size"] == 0
    checks_clean(source)


def test_activitynet_val_holdout_and_val_2(tmp_path: Path, clip: Path) -> None:
    source = make_activitynet(tmp_path / "anet", clip)
    summary = import_activitynet(source, test_file="val_2.json", val_size=2, val_seed=3)
    records = by_id(read_annotations(source))
    val = {v for v, r in records.items() if r.split == "val"}
    expected = holdout(list(ANET_TRAIN), 2, 3) - {"v_-_lw9_iGm6k"}  # the video without a file is skipped
    assert val == expected and val and not val & set(ANET_VAL_2)
    assert {v for v, r in records.items() if r.split == "train"} == set(ANET_TRAIN) - val - {"v_-_lw9_iGm6k"}
    assert all(records[v].meta["val_slice"] == {"from": "train.json", "seed": 3, "size": 2} for v in val)
    assert records["v_uqiMw7tQ1Cc"].captions == ("A cat sits and then jumps.",)
    assert summary.protocol == "paragraphs; train train.json, test val_2.json"
    with pytest.raises(ConfigError, match="--val-size"):
        import_activitynet(source, val_size=6, force=True)
    with pytest.raises(ConfigError, match="val_3.json"):
        import_activitynet(source, test_file="val_3.json", force=True)


DOG, CAMELS = ANET_TRAIN["v_ogQozSI5V8U"], ANET_VAL_1["v_bXdq2zI1Ms0"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("train.json", {"v_ogQozSI5V8U": DOG | {"sentences": ["a", "b"]}}, r"train.json: v_ogQozSI5V8U: 2 sentences"),
        ("train.json", {"v_ogQozSI5V8U": {"sentences": ["a"]}}, r"train.json: v_ogQozSI5V8U: expected"),
        ("val_1.json", {"v_bXdq2zI1Ms0": CAMELS | {"timestamps": [[0]]}}, r"val_1.json: v_bXdq2zI1Ms0: 'timestamps"),
        ("val_1.json", {"v_bXdq2zI1Ms0": CAMELS | {"sentences": [3]}}, r"val_1.json: v_bXdq2zI1Ms0: 'sentences"),
        ("val_1.json", {"v_bXdq2zI1Ms0": CAMELS | {"duration": "1m"}}, r"val_1.json: v_bXdq2zI1Ms0: 'duration"),
        ("val_1.json", {"v_ogQozSI5V8U": DOG}, r"train.json and .*val_1.json share 1 videos .v_ogQozSI5V8U."),
        ("val_1.json", [ANET_VAL_1], r"val_1.json: expected the ActivityNet Captions format, a JSON object"),
    ],
)
def test_activitynet_malformed_input_names_the_file(
    tmp_path: Path, clip: Path, name: str, content: Any, message: str
) -> None:
    source = make_activitynet(tmp_path / "anet", clip)
    path = source / "captions" / name
    original = json.loads(path.read_text())
    path.write_text(json.dumps(original | content if isinstance(content, dict) else content))
    with pytest.raises(DataFormatError, match=message):
        import_activitynet(source)


def test_cli_activitynet_json(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_activitynet(tmp_path / "anet", clip)
    out = tmp_path / "out"
    argv = ["data", "import", "activitynet", str(source), "--out", str(out), "--json"]
    assert main([*argv, "--test-file", "val_2.json", "--val-size", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dataset"] == "ActivityNet Captions" and summary["num_videos"] == 6
    assert summary["splits"]["test"] == {"videos": 2, "captions": 2} and summary["val"]["size"] == 1
    assert main(["data", "check", str(out), "--no-progress", "--json", "--workers", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["num_errors"] == 0
    with pytest.raises(SystemExit) as exit_info:  # a usage error: argparse refuses it
        main([*argv, "--force", "--test-file", "val_9.json"])
    assert exit_info.value.code == 2 and "invalid choice: 'val_9.json'" in capsys.readouterr().err


# --- LSMDC -----------------------------------------------------------------------------------------------------

BEAUTY_1 = "0001_American_Beauty_00.00.51.926-00.00.54.129"
BEAUTY_2 = "0001_American_Beauty_00.01.02.000-00.01.05.500"
JUMP = "3001_21_JUMP_STREET_01.02.03.400-01.02.07.000"  # the movie's name holds "_" and digits
TITANIC = "1010_TITANIC_00.10.00.000-00.10.04.000"
TEST_A = "1001_Harry_Potter_00.00.10.100-00.00.12.200"
TEST_B = "1001_Harry_Potter_00.00.20.000-00.00.22.000"  # no video file


def lsmdc_lines(clip_id: str, sentence: str) -> str:
    span = clip_id.rpartition("_")[2].split("-")
    return "\t".join([clip_id, span[0], span[1], span[0], span[1], sentence])


LSMDC_FILES = {
    "LSMDC16_annos_training.csv": [
        lsmdc_lines(BEAUTY_1, "SOMEONE sits at a desk."),
        lsmdc_lines(BEAUTY_2, "He looks up.") + "\t",  # a trailing tab: seven columns, the sentence is still one
        lsmdc_lines(BEAUTY_2, "She smiles."),  # a clip on two lines keeps both sentences
        "",
        f'{JUMP}\tTwo men "run" outside.',  # only the id and the sentence
    ],
    "LSMDC16_annos_val.csv": [f"{TITANIC}\t00.10.00.000\t00.10.04.000\tThe ship sails."],  # four columns
    "LSMDC16_challenge_1000_publictect.csv": [
        lsmdc_lines(TEST_A, "SOMEONE waves a wand."),
        lsmdc_lines(TEST_B, "   "),  # an empty sentence: the clip has none
    ],
}


def make_lsmdc(root: Path, clip: Path, test_name: str = "LSMDC16_challenge_1000_publictect.csv") -> Path:
    """The three files at the top, the videos in avi/<movie>/<clip id>.avi."""
    root.mkdir(parents=True)
    for name, lines in LSMDC_FILES.items():
        name = test_name if "challenge" in name else name
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    for clip_id in (BEAUTY_1, BEAUTY_2, JUMP, TITANIC, TEST_A):
        put_videos(root / "avi" / clip_id.rpartition("_")[0], [f"{clip_id}.avi"], clip)
    return root


def test_lsmdc_clips_in_movie_folders(tmp_path: Path, clip: Path) -> None:
    source = make_lsmdc(tmp_path / "lsmdc", clip)
    summary = import_lsmdc(source)
    records = by_id(read_annotations(source))

    assert {v: r.split for v, r in records.items()} == {
        BEAUTY_1: "train",
        BEAUTY_2: "train",
        JUMP: "train",
        TITANIC: "val",
        TEST_A: "test",
    }
    assert records[JUMP].video == f"avi/3001_21_JUMP_STREET/{JUMP}.avi"
    assert records[BEAUTY_1].video == f"avi/0001_American_Beauty/{BEAUTY_1}.avi"
    assert records[BEAUTY_2].captions == ("He looks up.", "She smiles.")
    assert records[JUMP].captions == ('Two men "run" outside.',)
    assert records[TITANIC].captions == ("The ship sails.",)
    assert records[BEAUTY_1].meta == {
        "source": "lsmdc",
        "video_id": BEAUTY_1,
        "movie": "0001_American_Beauty",
        "source_start": 51.926,
        "source_end": 54.129,
        "aligned": ["00.00.51.926", "00.00.54.129"],
        "extracted": ["00.00.51.926", "00.00.54.129"],
    }
    assert records[JUMP].meta == {
        "source": "lsmdc",
        "video_id": JUMP,
        "movie": "3001_21_JUMP_STREET",
        "source_start": 3723.4,
        "source_end": 3727.0,
    }
    assert summary.no_captions == [TEST_B] and summary.missing_files == [] and summary.dropped_captions == 1
    assert summary.sources[2].name == "LSMDC16_challenge_1000_publictect.csv"
    assert summary.val["description"] == "LSMDC16_annos_val.csv (1 clip)"
    checks_clean(source)


def test_lsmdc_accepts_the_corrected_test_file_name(tmp_path: Path, clip: Path) -> None:
    source = make_lsmdc(tmp_path / "lsmdc", clip, test_name="LSMDC16_challenge_1000_publictest.csv")
    summary = import_lsmdc(source, annotations_dir=source)
    assert summary.sources[2].name == "LSMDC16_challenge_1000_publictest.csv" and summary.splits["test"]["videos"] == 1
    (source / "LSMDC16_challenge_1000_publictest.csv").unlink()
    with pytest.raises(DataFormatError, match="no LSMDC16_challenge_1000_publictect.csv or .*publictest.csv"):
        import_lsmdc(source, force=True)


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("LSMDC16_annos_val.csv", f"{TITANIC} The ship sails.", r"LSMDC16_annos_val.csv:2: no tab in"),
        ("LSMDC16_annos_training.csv", "../x\tA sentence.", r"LSMDC16_annos_training.csv:6: video id '../x'"),
        ("LSMDC16_annos_val.csv", lsmdc_lines(JUMP, "Again."), rf"LSMDC16_annos_val.csv: clip {JUMP} is also in"),
    ],
)
def test_lsmdc_malformed_lines_name_file_and_line(
    tmp_path: Path, clip: Path, name: str, line: str, message: str
) -> None:
    source = make_lsmdc(tmp_path / "lsmdc", clip)
    with open(source / name, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    with pytest.raises(DataFormatError, match=message):
        import_lsmdc(source)


def test_cli_lsmdc_json_with_a_missing_video(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_lsmdc(tmp_path / "lsmdc", clip)
    (source / "avi" / "3001_21_JUMP_STREET" / f"{JUMP}.avi").unlink()
    out = tmp_path / "out"
    assert main(["data", "import", "lsmdc", str(source), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["dataset"] == "LSMDC" and summary["skipped"] == {"no_captions": [TEST_B], "missing_files": [JUMP]}
    assert summary["splits"]["train"] == {"videos": 2, "captions": 3} and summary["link"] == str(out / "videos")
    assert f"no file under {source / 'avi'}" in captured.err
    assert main(["data", "check", str(out), "--no-progress", "--json", "--workers", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["num_errors"] == 0

    (source / "LSMDC16_annos_val.csv").write_text("no tabs here\n")
    assert main(["data", "import", "lsmdc", str(source), "--out", str(out), "--force", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"] is False
    assert captured.err.startswith("vtr: error:") and "LSMDC16_annos_val.csv:1: no tab" in captured.err


def test_lsmdc_keeps_a_missing_clip_at_its_movie_folder(tmp_path: Path, clip: Path) -> None:
    source = make_lsmdc(tmp_path / "lsmdc", clip)
    (source / "avi" / "3001_21_JUMP_STREET" / f"{JUMP}.avi").unlink()
    summary = import_lsmdc(source, keep_missing=True)
    assert summary.kept_missing == [JUMP]
    assert by_id(read_annotations(source))[JUMP].video == f"avi/3001_21_JUMP_STREET/{JUMP}.avi"
