"""Searching an index: ranking by the best of whole-video and moment scores, moments, the API and the CLI.

Ranking and moments are checked with a model whose answers are known in advance: ``ColourEncoder`` embeds a clip
as its mean colour and a query as the colours it names (a legitimate :class:`VideoTextEncoder`: the index
accepts any). Decoding, the store, FAISS and the search itself are the real ones. The CLI is run with a tiny
random CLIP loaded from a folder, as a user's model would be.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_index_encoders import write_tiny_clip
from videos_util import write_solid_video

from vtr.cli import main
from vtr.errors import ModelMismatchError, VtrError
from vtr.index.builder import IndexOptions, build_index
from vtr.index.searcher import Searcher, UnknownVideoError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
_COLOUR_WORDS = {"red": 0, "green": 1, "blue": 2}


class ColourEncoder:
    """Clip -> mean RGB of its real frames; text -> the sum of the colours it names. Embeddings are unit 3-vectors."""

    model_spec = "colour-test-model"
    dim = 3
    num_frames = 4
    image_size = 16
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __init__(self, model_id: str = "colour@1") -> None:
        self.model_id = model_id
        self.clips_seen = 0

    def embed_texts(self, texts):
        out = np.full((len(texts), 3), 1e-3, dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                if word in _COLOUR_WORDS:
                    out[row, _COLOUR_WORDS[word]] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_clips(self, frames, frame_mask):
        self.clips_seen += len(frames)
        weights = frame_mask.float()[:, :, None]  # [B, T, 1]
        colour = (frames.mean(dim=(3, 4)) * weights).sum(1) / weights.sum(1)  # [B, 3]
        return torch.nn.functional.normalize(colour.clamp_min(1e-3), dim=-1).numpy()


@pytest.fixture(scope="module")
def colour_videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("colours")
    write_solid_video(folder / "red.mp4", num_frames=8, fps=4, colour=RED)
    write_solid_video(folder / "green.mp4", num_frames=8, fps=4, colour=GREEN)
    # 10 s: blue for 6 s, then red for 4 s. Its moments (4 s windows every 2 s) are 0-4, 2-6, 4-8 and 6-10.
    write_solid_video(folder / "sub" / "blue_then_red.mp4", num_frames=40, fps=4, colour=[BLUE] * 24 + [RED] * 16)
    return folder


@pytest.fixture(scope="module")
def colour_index(colour_videos, tmp_path_factory) -> Path:
    index = tmp_path_factory.mktemp("colour-index")
    report = build_index(colour_videos, index, ColourEncoder(), progress=False)
    assert len(report.indexed) == 3 and not report.failed
    return index


def _by_name(results) -> dict[str, object]:
    return {Path(r.path).name: r for r in results}


def test_the_matching_colour_ranks_first(colour_index):
    searcher = Searcher(colour_index, model=ColourEncoder())
    results = searcher.search("green", k=3)
    assert Path(results[0].path).name == "green.mp4"
    assert results[0].score > 0.95 and results[1].score < 0.2
    assert [r.rank for r in results] == [1, 2, 3]
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert len({r.video_id for r in results}) == 3  # each video once, however many moments it has


def test_a_video_scores_its_best_moment_and_reports_where_it_is(colour_index):
    searcher = Searcher(colour_index, model=ColourEncoder())
    red = _by_name(searcher.search("red", k=3))
    mixed = red["blue_then_red.mp4"]
    # The whole 10 s video is mostly blue; its last window (6-10 s) is all red and decides its score.
    assert mixed.score > 0.95
    assert (mixed.start, mixed.end) == (6.0, 10.0)
    assert Path(mixed.thumbnail).is_file() and mixed.thumbnail.endswith(".jpg")
    blue = _by_name(searcher.search("blue", k=3))["blue_then_red.mp4"]
    assert blue.rank == 1 and blue.end <= 6.0  # a window inside the blue part
    # A video shorter than a window is its own moment: 0 to its duration, with the video's thumbnail.
    short = red["red.mp4"]
    assert (short.start, short.end) == (0.0, 2.0)
    assert short.thumbnail == searcher.video(short.video_id).thumbnail


def test_hnsw_index_gives_the_same_results(colour_videos, colour_index, tmp_path):
    build_index(colour_videos, tmp_path, ColourEncoder(), options=IndexOptions(ann_threshold=1), progress=False)
    exact = Searcher(colour_index, model=ColourEncoder())
    approx = Searcher(tmp_path, model=ColourEncoder())
    assert approx.stats()["index_type"] == "hnsw" and exact.stats()["index_type"] == "flat"
    for query in ["red", "green", "blue", "red green"]:
        got = [(Path(r.path).name, round(r.score, 5), r.start, r.end) for r in approx.search(query, k=3)]
        want = [(Path(r.path).name, round(r.score, 5), r.start, r.end) for r in exact.search(query, k=3)]
        assert got == want


def test_video_entries_stats_and_unknown_ids(colour_index):
    searcher = Searcher(colour_index, model=ColourEncoder())
    entries = {Path(e.path).name: e for e in searcher.videos()}
    assert set(entries) == {"red.mp4", "green.mp4", "blue_then_red.mp4"}
    mixed = entries["blue_then_red.mp4"]
    assert mixed.duration == pytest.approx(10.0)
    assert mixed.size_bytes == Path(mixed.path).stat().st_size
    assert [(s, e) for s, e, _ in mixed.moments] == [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]
    assert all(Path(t).is_file() for _, _, t in mixed.moments)
    assert searcher.video(mixed.video_id) == mixed
    assert searcher.videos(offset=1, limit=1) == [searcher.videos()[1]]
    stats = searcher.stats()
    assert (stats["videos"], stats["vectors"], stats["failed"]) == (3, 3 + 4, 0)  # 3 whole videos + 4 moments
    assert stats["model_id"] == "colour@1" and stats["dim"] == 3
    with pytest.raises(LookupError):
        searcher.video(999)
    with pytest.raises(UnknownVideoError, match="no video with id 999"):
        searcher.video(999)


@pytest.mark.parametrize(
    ("text", "k", "message"),
    [
        ("", 5, "empty"),
        ("   \n", 5, "empty"),
        ("red", 0, "k must be"),
        ("red", 101, "k must be"),
        ("red", 2.5, "k must be"),
        ("red " * 2_500_000, 5, "characters long"),
    ],
)
def test_bad_queries_are_user_errors(colour_index, text, k, message):
    searcher = Searcher(colour_index, model=ColourEncoder())
    with pytest.raises(VtrError, match=message):
        searcher.search(text, k=k)


def test_a_searcher_refuses_another_model(colour_index):
    with pytest.raises(ModelMismatchError, match="use the same model"):
        Searcher(colour_index, model=ColourEncoder("colour@2"))


def test_an_open_searcher_sees_a_later_indexing_run(colour_videos, tmp_path):
    folder = tmp_path / "videos"
    write_solid_video(folder / "red.mp4", num_frames=8, fps=4, colour=RED)
    build_index(folder, tmp_path / "index", ColourEncoder(), progress=False)
    searcher = Searcher(tmp_path / "index", model=ColourEncoder())
    assert len(searcher.search("green", k=5)) == 1
    write_solid_video(folder / "green.mp4", num_frames=8, fps=4, colour=GREEN)
    build_index(folder, tmp_path / "index", ColourEncoder(), progress=False)
    top = searcher.search("green", k=5)
    assert len(top) == 2 and Path(top[0].path).name == "green.mp4"


# -- the command line, with a tiny CLIP loaded from a folder ------------------------------------------------


@pytest.fixture(scope="module")
def clip_index(colour_videos, tmp_path_factory) -> tuple[Path, Path]:
    model = write_tiny_clip(tmp_path_factory.mktemp("clip-model"))
    index = tmp_path_factory.mktemp("clip-index") / "db"
    assert main(["index", str(colour_videos), "--model", str(model), "--db", str(index), "--no-progress"]) == 0
    return model, index


def test_cli_index_summary_and_second_run(clip_index, colour_videos, capsys):
    _model, index = clip_index
    capsys.readouterr()
    assert main(["index", str(colour_videos), "--db", str(index), "--no-progress", "--json"]) == 0  # model remembered
    report = json.loads(capsys.readouterr().out)
    assert report["indexed"] == [] and report["unchanged"] == 3 and report["videos"] == 3
    assert report["vectors"] == 7 and report["failed"] == []


def test_cli_search_json_shape(clip_index, colour_videos, capsys):
    _, index = clip_index
    capsys.readouterr()
    assert main(["search", "a red square", "--db", str(index), "-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["query"] == "a red square"
    assert [r["rank"] for r in out["results"]] == [1, 2]
    for result in out["results"]:
        assert list(result) == ["rank", "score", "path", "start", "end", "thumbnail"]
        assert isinstance(result["score"], float) and -1.0001 <= result["score"] <= 1.0001
        assert Path(result["path"]).parent in (colour_videos.resolve(), colour_videos.resolve() / "sub")
        assert 0.0 <= result["start"] < result["end"] and Path(result["thumbnail"]).is_file()
    assert out["results"][0]["score"] >= out["results"][1]["score"]


def test_cli_search_text_output_and_errors(clip_index, tmp_path, capsys):
    _, index = clip_index
    capsys.readouterr()
    assert main(["search", "a red square", "--db", str(index), "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[::2]] == ["1", "2", "3"] and "thumbnail:" in lines[1]
    assert main(["search", "", "--db", str(index)]) == 1
    assert "query is empty" in capsys.readouterr().err
    assert main(["search", "red", "--db", str(index), "-k", "0"]) == 1
    assert main(["search", "red", "--db", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("vtr: error: no index at")


def test_cli_index_refuses_another_model(clip_index, colour_videos, tmp_path, capsys):
    _, index = clip_index
    other = write_tiny_clip(tmp_path / "other-model", seed=7)
    capsys.readouterr()
    assert main(["index", str(colour_videos), "--model", str(other), "--db", str(index), "--no-progress"]) == 1
    assert "was built with model" in capsys.readouterr().err
    assert main(["search", "red", "--db", str(index), "--model", str(other)]) == 1
    assert "was built with model" in capsys.readouterr().err
