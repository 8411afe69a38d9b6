"""The demo's search check: filtered ranks, which clips a caption describes, and the demo's pair of models."""

from __future__ import annotations

from pathlib import Path

import pytest

from vtr.config import load_config
from vtr.data.annotations import VideoRecord
from vtr.evaluate.search_check import described_clips, filtered_rank, summary_line


def test_the_filtered_rank_leaves_out_the_other_clips_a_caption_describes():
    ranked = ["a", "b", "own", "c"]
    assert filtered_rank(ranked, "own", {"own"}) == 3  # nothing described: the plain rank
    assert filtered_rank(ranked, "own", {"own", "b"}) == 2
    assert filtered_rank(ranked, "own", {"own", "a", "b", "c"}) == 1  # "c", below it, changes nothing
    assert filtered_rank(ranked, "gone", {"gone"}) is None


def _heart(scene: str, action: str, size: str = "small") -> dict:
    return {
        "scene": scene,
        "objects": [{"shape": "heart", "colour": "turquoise", "size": size, "action": action}],
        "relation": None,
    }


def _record(video: str, meta: dict, *captions: str) -> VideoRecord:
    return VideoRecord(video=video, path=Path(video), captions=captions, split="test", meta=meta)


def test_a_caption_without_scene_or_size_describes_every_clip_of_its_object_and_action():
    records = [
        _record(
            "v/brick.mp4",
            _heart("brick wall", "rotate"),
            "The turquoise heart is rotating.",
            "A turquoise heart is rotating in front of a brick wall.",
        ),
        _record("v/desert.mp4", _heart("desert", "rotate", size="large"), "A large turquoise heart spins."),
        _record("v/still.mp4", _heart("desert", "stay still"), "The turquoise heart is sitting still."),
    ]
    described = described_clips(records)
    assert described == [
        [{"brick.mp4", "desert.mp4"}, {"brick.mp4"}],  # the scene named: its own clip only
        [{"desert.mp4"}],  # the size named: the small heart is not it
        [{"still.mp4"}],
    ]


def test_records_without_the_synthetic_meta_have_no_described_clips():
    records = [_record("a.mp4", {"source": "msrvtt"}, "a man is cooking")]
    assert described_clips(records) is None


def test_the_summary_line_names_the_filtered_count_only_where_it_differs():
    check = {"k": 5, "queries": 10, "hits": 9, "filtered_hits": 10, "videos": 2, "videos_found_by_every_caption": 1}
    line = summary_line(check)
    assert line.startswith("search check: 9 of 10 test captions find their video in the top 5 (90.0%), 10 with")
    assert line.endswith("1 of 2 videos are found by every caption")
    assert "with other clips" not in summary_line({**check, "filtered_hits": 9})
    assert "with other clips" not in summary_line({**check, "filtered_hits": None})


@pytest.mark.parametrize(("norm", "partner"), [("group", "layer"), ("layer", "group"), ("batch", "group")])
def test_every_second_model_of_the_demo_has_the_other_stem_normalisation(norm, partner):
    from vtr.demo import member_config

    config = load_config("synthetic-dual-align", [f"model.video.stem_norm={norm}", "train.seed=3"])
    members = [member_config(config, i) for i in range(3)]
    assert [m.train.seed for m in members] == [3, 4, 5]
    assert [m.model.video.stem_norm for m in members] == [norm, partner, norm]
    assert members[0] == config
    assert config.model.video.stem_norm == norm and config.train.seed == 3  # not changed in place


def test_a_tower_without_a_trained_convolutional_stem_keeps_its_config_in_the_pair():
    from vtr.demo import member_config

    patch = load_config("synthetic-dual-align", ["model.video.stem=patch"])
    assert member_config(patch, 1).model.video.stem_norm == "group"
    pretrained = load_config("synthetic-dual-align", ["model.video.pretrained=some/hub-id"])
    assert member_config(pretrained, 1).model.video.stem_norm == "group"
