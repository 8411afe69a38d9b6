"""``vtr data import``: MSR-VTT and MSVD from tiny copies of their official files, to checkable data sets."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from videos_util import make_video

from vtr.cli import main
from vtr.data import check_dataset, read_annotations
from vtr.data.importers import holdout, import_msrvtt, import_msvd, load_plain_pickle
from vtr.errors import ConfigError, DataFormatError

# A miniature MSR-VTT: 12 videos, official split 6 train / 2 validate / 4 test. As in the real files, the 9k
# CSV is the official train and validate videos plus some official test videos, the 7k CSV is train and
# validate, and the JSFusion 1k-A test holds the remaining test videos, one sentence each.
NUM_VIDEOS = 12
OFFICIAL = ["train"] * 6 + ["validate"] * 2 + ["test"] * 4
TRAIN_9K = [f"video{i}" for i in range(10)]
TRAIN_7K = [f"video{i}" for i in range(8)]
TEST_1KA = {"video10": "a man cooks pasta in a kitchen", "video11": "two dogs, one brown, run on a beach"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real, decodable MP4 (1 s), copied wherever a fixture needs a video file."""
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", 8, fps=8)


def put_videos(folder: Path, names: list[str], clip: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(clip, folder / name)


def msrvtt_json(ids: range) -> dict[str, Any]:
    videos = [
        {
            "category": i % 20,
            "url": f"https://www.youtube.com/watch?v=yt{i}",
            "video_id": f"video{i}",
            "start time": 1.5 * i,
            "end time": 1.5 * i + 10,
            "split": OFFICIAL[i],
            "id": i,
        }
        for i in ids
    ]
    sentences = []
    for i in ids:
        captions = [f"video {i} caption {k}" for k in range(3)]
        if i == 1:
            captions = ["  padded caption of video 1  ", "", "   ", "another caption of video 1"]
        sentences += [
            {"caption": c, "video_id": f"video{i}", "sen_id": len(sentences) + k} for k, c in enumerate(captions)
        ]
    return {"info": {"year": 2016}, "videos": videos, "sentences": sentences}


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def make_msrvtt(root: Path, clip: Path, missing: tuple[int, ...] = ()) -> Path:
    """MSR-VTT laid out as CLIP4Clip users have it: msrvtt_data/ with the JSON and CSVs, videos/all/."""
    data = root / "msrvtt_data"
    data.mkdir(parents=True)
    (data / "MSRVTT_data.json").write_text(json.dumps(msrvtt_json(range(NUM_VIDEOS))), encoding="utf-8")
    write_csv(data / "MSRVTT_train.9k.csv", "video_id", TRAIN_9K)
    write_csv(data / "MSRVTT_train.7k.csv", "video_id", TRAIN_7K)
    rows = [f'ret{k},msr{v[5:]},{v},"{s}"' for k, (v, s) in enumerate(TEST_1KA.items())]  # quoted: commas
    write_csv(data / "MSRVTT_JSFUSION_test.csv", "key,vid_key,video_id,sentence", rows)
    put_videos(root / "videos" / "all", [f"video{i}.mp4" for i in range(NUM_VIDEOS) if i not in missing], clip)
    return root


def by_id(records: list[Any]) -> dict[str, Any]:
    return {r.meta["video_id"]: r for r in records}


# --- MSR-VTT ---------------------------------------------------------------------------------------------------


def test_msrvtt_9k_records_splits_and_single_sentence_test(tmp_path: Path, clip: Path) -> None:
    source = make_msrvtt(tmp_path / "msrvtt", clip)
    summary = import_msrvtt(source, val_size=2)
    records = by_id(read_annotations(source))

    assert set(records) == set(TRAIN_9K) | set(TEST_1KA)  # videos of neither list are left out
    splits = {split: {v for v, r in records.items() if r.split == split} for split in ("train", "val", "test")}
    assert splits["test"] == set(TEST_1KA) and len(splits["val"]) == 2
    assert splits["train"] | splits["val"] == set(TRAIN_9K) and not splits["train"] & splits["val"]
    # 1k-A: the one JSFusion sentence, not the 20 (here 3) captions of the official file.
    for video_id, sentence in TEST_1KA.items():
        assert records[video_id].captions == (sentence,)
        assert records[video_id].meta["protocol"] == "1k-A" and records[video_id].meta["official_split"] == "test"
    assert records["video10"].meta["jsfusion_key"] == "ret0"
    # Training captions come from the official JSON, stripped, empty ones dropped.
    assert records["video1"].captions == ("padded caption of video 1", "another caption of video 1")
    assert splits["val"] == {"video5", "video7"}  # the sha256 slice of seed 0 (pinned below)
    assert records["video3"].captions == ("video 3 caption 0", "video 3 caption 1", "video 3 caption 2")
    assert records["video3"].meta == {
        "source": "msrvtt",
        "video_id": "video3",
        "official_split": "train",
        "category": 3,
        "url": "https://www.youtube.com/watch?v=yt3",
        "source_start": 4.5,
        "source_end": 14.5,
    }
    assert records["video0"].video == "videos/all/video0.mp4" and records["video0"].path.is_file()

    assert summary.dropped_captions == 2 and summary.link is None
    assert summary.splits == {
        "train": {"videos": 8, "captions": sum(len(records[v].captions) for v in splits["train"])},
        "val": {"videos": 2, "captions": sum(len(records[v].captions) for v in splits["val"])},
        "test": {"videos": 2, "captions": 2},
    }
    assert summary.val["method"] == "holdout" and summary.val["size"] == 2 and summary.val["seed"] == 0
    for video_id in splits["val"]:
        assert records[video_id].meta["val_slice"] == {"from": "MSRVTT_train.9k.csv", "seed": 0, "size": 2}


def test_val_slice_is_deterministic_nested_and_never_test(tmp_path: Path, clip: Path) -> None:
    ids = [f"video{i}" for i in range(9000)]
    slice_500 = holdout(ids, 500, seed=0)
    assert len(slice_500) == 500
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    assert holdout(shuffled, 500, seed=0) == slice_500  # not the order of the CSV
    assert holdout(ids, 300, seed=0) < slice_500  # nested
    assert holdout(ids, 500, seed=1) != slice_500
    # Pinned: a change to the rule would silently move every imported data set's val split.
    assert sorted(holdout(ids, 3, seed=0)) == ["video1599", "video6165", "video7515"]

    first = make_msrvtt(tmp_path / "a", clip)
    second = make_msrvtt(tmp_path / "b", clip)
    # The same files with the training CSV in another order give the same val videos.
    write_csv(second / "msrvtt_data" / "MSRVTT_train.9k.csv", "video_id", list(reversed(TRAIN_9K)))
    vals = []
    for source in (first, second):
        import_msrvtt(source, val_size=3, val_seed=7)
        records = read_annotations(source)
        val = {r.meta["video_id"] for r in records if r.split == "val"}
        assert len(val) == 3 and not val & {r.meta["video_id"] for r in records if r.split == "test"}
        assert not val & set(TEST_1KA)
        vals.append(val)
    assert vals[0] == vals[1]


def test_val_size_must_fit(tmp_path: Path, clip: Path) -> None:
    source = make_msrvtt(tmp_path / "msrvtt", clip)
    with pytest.raises(ConfigError, match="--val-size"):
        import_msrvtt(source)  # the default 500 does not fit 10 training videos
    with pytest.raises(ConfigError, match="official validate"):
        import_msrvtt(source, split="full", val_size=2)
    import_msrvtt(source, val_size=0)
    assert {r.split for r in read_annotations(source)} == {"train", "test"}


def test_msrvtt_7k_and_full(tmp_path: Path, clip: Path) -> None:
    source = make_msrvtt(tmp_path / "msrvtt", clip)
    import_msrvtt(source, tmp_path / "7k", split="7k", val_size=1)
    records = read_annotations(tmp_path / "7k")
    assert {r.meta["video_id"] for r in records if r.split != "test"} == set(TRAIN_7K)
    assert {r.meta["video_id"] for r in records if r.split == "test"} == set(TEST_1KA)

    summary = import_msrvtt(source, tmp_path / "full", split="full")
    records = by_id(read_annotations(tmp_path / "full"))
    official = {"train": "train", "validate": "val", "test": "test"}
    assert {v: r.split for v, r in records.items()} == {f"video{i}": official[s] for i, s in enumerate(OFFICIAL)}
    assert len(records["video10"].captions) == 3  # every caption of a test video, not the 1k-A sentence
    assert summary.val["method"] == "official" and summary.splits["val"]["videos"] == 2


def test_train_and_test_csv_sharing_a_video_is_refused(tmp_path: Path, clip: Path) -> None:
    source = make_msrvtt(tmp_path / "msrvtt", clip)
    write_csv(source / "msrvtt_data" / "MSRVTT_train.9k.csv", "video_id", [*TRAIN_9K, "video11"])
    with pytest.raises(DataFormatError, match="share 1 videos .video11."):
        import_msrvtt(source, val_size=1)
    assert not (source / "annotations.jsonl").exists()


def test_missing_files_are_skipped_and_reported_or_kept(tmp_path: Path, clip: Path) -> None:
    source = make_msrvtt(tmp_path / "msrvtt", clip, missing=(4, 11))
    summary = import_msrvtt(source, val_size=0)
    assert summary.missing_files == ["video4", "video11"]
    ids = {r.meta["video_id"] for r in read_annotations(source)}
    assert "video4" not in ids and "video11" not in ids and len(ids) == 10
    assert "2 videos with no file (video4, video11)" in summary.format_text()
    assert "--keep-missing" in summary.warnings()[0]

    summary = import_msrvtt(source, val_size=0, keep_missing=True, force=True)
    records = by_id(read_annotations(source))
    assert summary.missing_files == [] and summary.kept_missing == ["video4", "video11"]
    assert records["video4"].video == "videos/all/video4.mp4" and not records["video4"].path.exists()


def test_no_video_found_at_all_is_an_error(tmp_path: Path, clip: Path) -> None:
    source = make_msrvtt(tmp_path / "msrvtt", clip)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="--videos"):
        import_msrvtt(source, videos=empty, val_size=0)


def test_videos_outside_out_get_a_link_and_the_result_checks(tmp_path: Path, clip: Path) -> None:
    source = make_msrvtt(tmp_path / "msrvtt", clip)
    out = tmp_path / "datasets" / "msrvtt"
    summary = import_msrvtt(source, out, val_size=2)
    link = out / "videos"
    assert summary.link == link and summary.link_created and link.is_symlink()
    assert link.resolve() == (source / "videos" / "all").resolve()
    assert "made the link" in summary.format_text()
    records = read_annotations(out)
    assert all(r.video.startswith("videos/video") for r in records) and all(r.path.is_file() for r in records)

    report = check_dataset(out, decode=True, progress=False, workers=1)
    assert report.ok, report.format_text()
    assert report.num_videos == 12 and report.splits["test"] == {"videos": 2, "captions": 2}

    again = import_msrvtt(source, out, val_size=2, force=True)  # the link is reused, not made twice
    assert again.link == link and not again.link_created
    with pytest.raises(DataFormatError, match="not a link to the videos"):
        import_msrvtt(source, out, videos=tmp_path, val_size=2, force=True)


def test_existing_annotations_are_replaced_only_with_force(tmp_path: Path, clip: Path) -> None:
    source = make_msrvtt(tmp_path / "msrvtt", clip)
    (source / "annotations.jsonl").write_text("keep me\n")
    with pytest.raises(DataFormatError, match="--force"):
        import_msrvtt(source, val_size=0)
    assert (source / "annotations.jsonl").read_text() == "keep me\n"
    import_msrvtt(source, val_size=0, force=True)
    assert len(read_annotations(source)) == 12
    assert not list(source.glob(".annotations.jsonl.*"))  # no temporary file left behind


def test_original_release_two_json_files_and_video_folders(tmp_path: Path, clip: Path) -> None:
    """The 2016 release: train_val_videodatainfo.json + test_videodatainfo.json, TrainValVideo/ + TestVideo/."""
    source = tmp_path / "msrvtt"
    source.mkdir()
    (source / "train_val_videodatainfo.json").write_text(json.dumps(msrvtt_json(range(8))))
    (source / "test_videodatainfo.json").write_text(json.dumps(msrvtt_json(range(8, NUM_VIDEOS))))
    put_videos(source / "TrainValVideo", [f"video{i}.mp4" for i in range(8)], clip)
    put_videos(source / "TestVideo", [f"video{i}.mp4" for i in range(8, NUM_VIDEOS)], clip)
    summary = import_msrvtt(source, split="full")
    assert [p.name for p in summary.sources] == ["train_val_videodatainfo.json", "test_videodatainfo.json"]
    records = by_id(read_annotations(source))
    assert len(records) == NUM_VIDEOS and records["video9"].video == "TestVideo/video9.mp4"
    assert records["video9"].split == "test" and records["video7"].split == "val"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["videos"][3].pop("split"), r"MSRVTT_data.json: videos\[3\] has no 'split'"),
        (lambda d: d["videos"][2].update(split="dev"), r"MSRVTT_data.json: videos\[2\] \(video2\) has split 'dev'"),
        (lambda d: d["sentences"][5].pop("caption"), r"MSRVTT_data.json: sentences\[5\] has no 'caption'"),
        (lambda d: d.pop("sentences"), r"MSRVTT_data.json: no 'sentences' list"),
        (lambda d: d["videos"][0].update(video_id="../x"), r"MSRVTT_data.json: videos\[0\]: video id '../x'"),
    ],
)
def test_malformed_json_names_file_and_entry(tmp_path: Path, clip: Path, change: Any, message: str) -> None:
    source = make_msrvtt(tmp_path / "msrvtt", clip)
    path = source / "msrvtt_data" / "MSRVTT_data.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=message):
        import_msrvtt(source, split="full")


def test_malformed_csv_and_json_syntax(tmp_path: Path, clip: Path) -> None:
    source = make_msrvtt(tmp_path / "msrvtt", clip)
    data = source / "msrvtt_data"
    write_csv(data / "MSRVTT_JSFUSION_test.csv", "key,vid_key,video,caption", ["ret0,msr10,video10,a man"])
    with pytest.raises(DataFormatError, match=r"MSRVTT_JSFUSION_test.csv: the header .* has no column video_id"):
        import_msrvtt(source, val_size=0)
    write_csv(data / "MSRVTT_train.9k.csv", "", [])
    with pytest.raises(DataFormatError, match=r"MSRVTT_train.9k.csv: the header '\(empty file\)'"):
        import_msrvtt(source, val_size=0)
    (data / "MSRVTT_data.json").write_text('{"videos": [')
    with pytest.raises(DataFormatError, match=r"MSRVTT_data.json: not valid JSON"):
        import_msrvtt(source, val_size=0)
    (data / "MSRVTT_data.json").unlink()
    with pytest.raises(DataFormatError, match="--annotations"):
        import_msrvtt(source, val_size=0)


# --- MSVD ------------------------------------------------------------------------------------------------------

MSVD_SPLITS = {
    "train": ["-4wsuPCjDBc_5_15", "_0nX-El-ySo_83_93", "abc_1_2", "noclip"],
    "val": ["val_a_3_9"],
    "test": ["test_x_0_4", "test_y_10_20"],
}


def msvd_captions() -> dict[str, list[list[str]]]:
    captions = {
        v: [["a", "clip", "of", v], ["someone", "does", "something"]] for ids in MSVD_SPLITS.values() for v in ids
    }
    captions["abc_1_2"].append([])  # an empty caption, dropped
    return captions


def make_msvd(root: Path, clip: Path, captions: Any = None, missing: tuple[str, ...] = ()) -> Path:
    """MSVD laid out as CLIP4Clip users have it: msvd_data/ with the pickle and lists, YouTubeClips/*.avi."""
    data = root / "msvd_data"
    data.mkdir(parents=True)
    with open(data / "raw-captions.pkl", "wb") as handle:
        pickle.dump(msvd_captions() if captions is None else captions, handle)
    for split, ids in MSVD_SPLITS.items():
        (data / f"{split}_list.txt").write_text("".join(f"{v}\n" for v in ids))
    # A real MP4 stream under .avi names: vtr decodes by content, not by extension.
    names = [f"{v}.avi" for ids in MSVD_SPLITS.values() for v in ids if v not in missing]
    put_videos(root / "YouTubeClips", names, clip)
    return root


def test_msvd_records_splits_captions_and_meta(tmp_path: Path, clip: Path) -> None:
    source = make_msvd(tmp_path / "msvd", clip)
    summary = import_msvd(source)
    records = by_id(read_annotations(source))
    assert {split: [v for v, r in records.items() if r.split == split] for split in MSVD_SPLITS} == MSVD_SPLITS
    assert records["abc_1_2"].captions == ("a clip of abc_1_2", "someone does something")
    assert records["_0nX-El-ySo_83_93"].video == "YouTubeClips/_0nX-El-ySo_83_93.avi"
    assert records["_0nX-El-ySo_83_93"].meta == {
        "source": "msvd",
        "video_id": "_0nX-El-ySo_83_93",
        "youtube_id": "_0nX-El-ySo",
        "source_start": 83,
        "source_end": 93,
    }
    assert records["noclip"].meta == {"source": "msvd", "video_id": "noclip"}
    assert summary.dropped_captions == 1 and summary.splits["test"] == {"videos": 2, "captions": 4}
    assert summary.val["description"] == "val_list.txt (1 video)"
    assert check_dataset(source, decode=True, progress=False, workers=1).ok


def test_msvd_listed_video_without_captions_or_file_is_reported(tmp_path: Path, clip: Path) -> None:
    captions = msvd_captions()
    del captions["test_y_10_20"]
    source = make_msvd(tmp_path / "msvd", clip, captions=captions, missing=("abc_1_2",))
    summary = import_msvd(source)
    assert summary.no_captions == ["test_y_10_20"] and summary.missing_files == ["abc_1_2"]
    ids = {r.meta["video_id"] for r in read_annotations(source)}
    assert ids == {v for vs in MSVD_SPLITS.values() for v in vs} - {"test_y_10_20", "abc_1_2"}
    assert "with no caption (test_y_10_20)" in summary.format_text()


def test_msvd_from_all_video_descriptions(tmp_path: Path, clip: Path) -> None:
    source = make_msvd(tmp_path / "msvd", clip)
    (source / "msvd_data" / "raw-captions.pkl").unlink()
    lines = ["# The MSR Video Description Corpus, English descriptions", "#", ""]
    for ids in MSVD_SPLITS.values():
        for v in ids:
            lines += [f"{v} A clip of {v}.", f"{v}  Someone does something. "]
    lines.append("abc_1_2")  # an id with no caption
    (source / "msvd_data" / "AllVideoDescriptions.txt").write_text("\n".join(lines) + "\n")
    summary = import_msvd(source)
    records = by_id(read_annotations(source))
    assert records["abc_1_2"].captions == ("A clip of abc_1_2.", "Someone does something.")
    assert summary.sources[0].name == "AllVideoDescriptions.txt" and summary.dropped_captions == 1


def test_msvd_video_in_two_lists_is_refused(tmp_path: Path, clip: Path) -> None:
    source = make_msvd(tmp_path / "msvd", clip)
    (source / "msvd_data" / "test_list.txt").write_text("test_x_0_4\nabc_1_2\n")
    with pytest.raises(DataFormatError, match=r"test_list.txt: video abc_1_2 is also in .*train_list.txt"):
        import_msvd(source)


def test_msvd_malformed_pickle_content_names_the_file(tmp_path: Path, clip: Path) -> None:
    source = make_msvd(tmp_path / "msvd", clip, captions={"abc_1_2": [["ok"], [1, 2]]})
    with pytest.raises(DataFormatError, match=r"raw-captions.pkl: abc_1_2: a caption must be"):
        import_msvd(source)
    (source / "msvd_data" / "raw-captions.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DataFormatError, match=r"raw-captions.pkl is not a readable pickle"):
        import_msvd(source)


class _RunsCommand:
    """What an attacker would pickle: unpickling it calls os.system."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_restricted_unpickler_refuses_code_without_running_it(tmp_path: Path, clip: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"abc_1_2": [["a"]], "x": _RunsCommand(f"touch {marker}")}, protocol=protocol)
    assert b"system" in payload  # the file really names os.system
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(DataFormatError, match=r"refusing to load .*evil.pkl: it names (posix|os|nt)\.system"):
        load_plain_pickle(path)
    assert not marker.exists()

    source = make_msvd(tmp_path / "msvd", clip)
    (source / "msvd_data" / "raw-captions.pkl").write_bytes(payload)
    with pytest.raises(DataFormatError, match="raw-captions.pkl: it names"):
        import_msvd(source)
    assert not marker.exists() and not (source / "annotations.jsonl").exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_restricted_unpickler_reads_plain_data(tmp_path: Path, protocol: int) -> None:
    data = {"v1": [["a", "man"], ("b",)], "v2": [], "n": (1, 2.5, None, True), "s": {"a"}, "f": frozenset("b")}
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    assert load_plain_pickle(path) == data


# --- the command line ------------------------------------------------------------------------------------------


def test_cli_msrvtt_end_to_end(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_msrvtt(tmp_path / "msrvtt", clip, missing=(3,))
    out = tmp_path / "out"
    argv = ["data", "import", "msrvtt", str(source), "--out", str(out), "--val-size", "2"]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["ok"] and summary["num_videos"] == 11 and summary["skipped"]["missing_files"] == ["video3"]
    assert summary["splits"]["test"] == {"videos": 2, "captions": 2} and summary["link"] == str(out / "videos")
    assert captured.err.startswith("vtr: warning: 1 video skipped: no file under")

    assert main(argv) == 1  # annotations.jsonl exists now
    assert "pass --force" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    text = capsys.readouterr().out
    assert "Imported MSR-VTT (9k: train MSRVTT_train.9k.csv" in text and f"vtr data check {out}" in text
    assert "train 7 videos" in text and "val 2 videos" in text and "test 2 videos, 2 captions" in text

    assert main(["data", "check", str(out), "--no-progress", "--json", "--workers", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["num_errors"] == 0


def test_cli_errors_are_one_line(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_msrvtt(tmp_path / "msrvtt", clip)
    write_csv(source / "msrvtt_data" / "MSRVTT_train.9k.csv", "id", ["video0"])
    assert main(["data", "import", "msrvtt", str(source), "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"] is False
    assert captured.err.startswith("vtr: error:") and "MSRVTT_train.9k.csv" in captured.err
    assert captured.err.count("\n") == 1
    assert main(["data", "import", "msvd", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_msvd_as_a_process(tmp_path: Path, clip: Path) -> None:
    source = make_msvd(tmp_path / "msvd", clip)
    command = [sys.executable, "-m", "vtr", "data", "import", "msvd", str(source), "--out", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Imported MSVD" in result.stdout and "made the link" in result.stdout
    assert len(read_annotations(tmp_path / "out")) == 7
