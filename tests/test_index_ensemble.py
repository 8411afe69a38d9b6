"""Several models behind one index: joined embeddings rank by the mean of the models' similarities.

The models are tiny random CLIPs loaded from folders, as a user's would be; videos, decoding, the store and
FAISS are the real ones.
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
from vtr.errors import CheckpointError, ModelMismatchError
from vtr.index.builder import IndexOptions, build_index
from vtr.index.encoders import load_encoder
from vtr.index.ensemble import EnsembleEncoder, join_embeddings, parse_ensemble_spec
from vtr.index.searcher import Searcher
from vtr.video import FrameTransform

QUERIES = ["a red square", "a green circle moves left", "blue"]


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_joined_embeddings_are_unit_and_score_the_mean_of_the_cosines():
    rng = np.random.default_rng(0)
    texts = [_unit(rng.normal(size=(5, d))) for d in (8, 3, 6)]
    videos = [_unit(rng.normal(size=(4, d))) for d in (8, 3, 6)]
    text, video = join_embeddings(texts), join_embeddings(videos)
    assert text.shape == (5, 17) and text.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, rtol=1e-6)
    mean = sum(t @ v.T for t, v in zip(texts, videos, strict=True)) / 3
    np.testing.assert_allclose(text @ video.T, mean, atol=1e-6)
    with pytest.raises(ValueError, match="nothing to join"):
        join_embeddings([])


def test_only_a_json_list_of_strings_is_an_ensemble_spec():
    assert parse_ensemble_spec('["/runs/a", "openai/clip-vit-base-patch32"]') == [
        "/runs/a",
        "openai/clip-vit-base-patch32",
    ]
    for single in ("/runs/a", "openai/clip-vit-base-patch32", "[draft] run", "[]", '["a", 1]', '{"a": 1}'):
        assert parse_ensemble_spec(single) is None, single


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> tuple[Path, Path]:
    """Two tiny CLIPs: 32 px frames with mean 0.5 / std 0.25, and 16 px frames with other pixel statistics."""
    first = write_tiny_clip(tmp_path_factory.mktemp("clip-a"), seed=0, image_size=32)
    second = write_tiny_clip(tmp_path_factory.mktemp("clip-b"), seed=1, image_size=16)
    config = second / "preprocessor_config.json"
    config.write_text(
        json.dumps({**json.loads(config.read_text()), "image_mean": [0.4, 0.45, 0.5], "image_std": [0.2, 0.3, 0.25]})
    )
    return first, second


def test_a_list_of_models_loads_as_one_encoder_that_joins_their_embeddings(clips):
    encoder = load_encoder([str(p) for p in clips], num_frames=4)
    members = [load_encoder(p, num_frames=4) for p in clips]
    assert isinstance(encoder, EnsembleEncoder)
    assert encoder.dim == 32 and encoder.image_size == 32 and encoder.num_frames == 4
    assert encoder.model_id == "ensemble:" + "+".join(m.model_id for m in members)
    assert parse_ensemble_spec(encoder.model_spec) == [str(p.resolve()) for p in clips]
    # The spec an index records loads the same ensemble again.
    assert load_encoder(encoder.model_spec, num_frames=4).model_id == encoder.model_id
    np.testing.assert_allclose(
        encoder.embed_texts(QUERIES), join_embeddings([m.embed_texts(QUERIES) for m in members]), atol=1e-6
    )


def test_each_member_sees_frames_as_it_would_have_decoded_them(clips):
    """Decoded once at 32 px with the first model's statistics, the 16 px member gets its size and its statistics."""
    encoder = load_encoder([str(p) for p in clips], num_frames=4)
    second = encoder.members[1]
    ramp = torch.linspace(0, 255, 48).round().to(torch.uint8)  # a smooth picture: resizing twice costs little
    frames = torch.stack(
        [ramp.view(1, 48).expand(48, 48), ramp.view(48, 1).expand(48, 48), ramp.flip(0).view(1, 48).expand(48, 48)]
    )
    frames = frames.unsqueeze(0).expand(4, 3, 48, 48).contiguous()  # uint8 [T, 3, H, W]
    decoded = FrameTransform(32, encoder.mean, encoder.std)(frames).unsqueeze(0)  # [1, T, 3, 32, 32]
    direct = FrameTransform(16, second.mean, second.std)(frames).unsqueeze(0)  # [1, T, 3, 16, 16]
    through = encoder._frames_for(second, decoded)
    assert through.shape == direct.shape
    # One grey level is 1 / (255 * 0.2) = 0.02 in the member's units; allow a few for the two resizes.
    assert (through - direct).abs().max().item() < 0.1
    assert encoder._frames_for(encoder.members[0], decoded) is decoded  # the first member's own frames, untouched


def test_members_with_other_frame_counts_are_refused(tmp_path):
    xclip = write_tiny_clip(tmp_path / "xclip", kind="xclip")  # takes exactly 4 frames
    clip = write_tiny_clip(tmp_path / "clip")
    with pytest.raises(CheckpointError, match="same frames per clip"):
        load_encoder([str(clip), str(xclip)], num_frames=8)
    with pytest.raises(CheckpointError, match="at least two"):
        EnsembleEncoder([load_encoder(clip)])


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for name, colour in (("red", (255, 0, 0)), ("green", (0, 255, 0)), ("blue", (0, 0, 255)), ("grey", (128,) * 3)):
        write_solid_video(folder / f"{name}.mp4", num_frames=8, fps=4, size=48, colour=colour)
    return folder


def test_an_index_of_two_models_ranks_by_their_mean_similarity(clips, videos, tmp_path, capsys):
    first, second = clips
    both = tmp_path / "both"
    args = ["index", str(videos), "--model", str(first), "--model", str(second), "--db", str(both), "--no-progress"]
    args += ["--num-frames", "4"]
    assert main([*args, "--no-moments"]) == 0
    singles = []
    for model in clips:
        singles.append(tmp_path / model.name)
        build_index(videos, singles[-1], model, options=IndexOptions(num_frames=4, moments=False), progress=False)
    for query in QUERIES:
        capsys.readouterr()
        assert main(["search", query, "--db", str(both), "-k", "4", "--json"]) == 0  # the models are remembered
        together = {r["path"]: r["score"] for r in json.loads(capsys.readouterr().out)["results"]}
        alone = []
        for index in singles:
            with Searcher(index) as searcher:
                alone.append({r.path: r.score for r in searcher.search(query, k=4)})
        assert together.keys() == alone[0].keys() == alone[1].keys()
        for path, score in together.items():
            # Frames of the 16 px model are resized from 32 px in the joined index: a small difference.
            assert score == pytest.approx((alone[0][path] + alone[1][path]) / 2, abs=0.02)
    # A second run encodes nothing; one model alone, or the two in the other order, is not the index's model.
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["indexed"] == []
    with pytest.raises(ModelMismatchError):
        Searcher(both, model=first)
    with pytest.raises(ModelMismatchError):
        Searcher(both, model=[str(second), str(first)])
    with Searcher(both, model=[str(first), str(second)]) as searcher:  # a moved copy is named model by model
        assert len(searcher.search("red", k=2)) == 2
