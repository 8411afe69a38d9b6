"""HCMI's frame-word and clip-phrase levels: the max-mean similarity against loops, masks, the soft clusters, the
loss as InfoNCE on those similarities, gathering, and config errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from test_models import CAPTIONS, make_batch, tiny_config

from vtr.errors import ConfigError
from vtr.losses import multi_positive_info_nce
from vtr.models import build_model
from vtr.models.heads.hierarchical import SoftClusters, max_mean_similarity


def brute_force(video: torch.Tensor, vmask: torch.Tensor, text: torch.Tensor, tmask: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(text.shape[0], video.shape[0])
    for t in range(text.shape[0]):
        for v in range(video.shape[0]):
            words = [text[t, i] for i in range(text.shape[1]) if tmask[t, i]]
            units = [video[v, j] for j in range(video.shape[1]) if vmask[v, j]]
            text_side = sum(max(float(w @ u) for u in units) for w in words) / len(words)
            video_side = sum(max(float(u @ w) for w in words) for u in units) / len(units)
            out[t, v] = (text_side + video_side) / 2
    return out


def unit_sets(seed: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    video = F.normalize(torch.randn(3, 5, 8, generator=generator), dim=-1)
    text = F.normalize(torch.randn(4, 6, 8, generator=generator), dim=-1)
    vmask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    tmask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    return video, vmask, text, tmask


def test_max_mean_similarity_matches_loops_and_ignores_masked_units() -> None:
    video, vmask, text, tmask = unit_sets(0)
    got = max_mean_similarity(video, vmask, text, tmask)
    assert torch.allclose(got, brute_force(video, vmask, text, tmask), atol=1e-6)
    scrambled_video, scrambled_text = video.clone(), text.clone()
    scrambled_video[~vmask] = 5.0
    scrambled_text[~tmask] = -5.0
    assert torch.allclose(max_mean_similarity(scrambled_video, vmask, scrambled_text, tmask), got, atol=1e-6)


def test_identical_unit_sets_score_one() -> None:
    video, vmask, _, _ = unit_sets(1)
    sim = max_mean_similarity(video, vmask, video, vmask)
    assert torch.allclose(sim.diagonal(), torch.ones(3), atol=1e-6)


def test_soft_clusters_ignore_padded_units_and_drop_empty_clusters() -> None:
    torch.manual_seed(0)
    clusters = SoftClusters(dim=8, count=3, num_heads=2).eval()
    units = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    got, got_mask = clusters(units, mask)
    changed = units.clone()
    changed[0, 3:] = 100.0
    again, _ = clusters(changed, mask)
    assert got.shape == (2, 3, 8) and got_mask.all()
    assert torch.allclose(got[0], again[0], atol=1e-5)
    with torch.no_grad():
        clusters.centroids.copy_(torch.eye(3, 8) * torch.tensor([[1.0], [1.0], [-1.0]]))
        clusters.temperature = 1e-4  # hard assignment: cluster 2 (the opposite of 0) may get nothing
    positive = torch.zeros(1, 2, 8)
    positive[0, :, 0] = 1.0
    _, hard_mask = clusters(positive, torch.ones(1, 2, dtype=torch.bool))
    assert hard_mask.tolist() == [[True, False, False]]


def test_forward_is_infonce_on_each_levels_similarity() -> None:
    torch.manual_seed(3)
    model = build_model(tiny_config([{"name": "hcmi", "params": {"num_heads": 2}}])).eval()
    batch = make_batch(model, CAPTIONS)
    out = model(batch)
    from vtr.models.heads import HeadInputs

    with torch.no_grad():
        video = model.encode_video(batch["frames"], batch["frame_mask"])
        text = model.encode_text(batch["input_ids"], batch["attention_mask"])
        head = model.head("hcmi")
        units = head.units(HeadInputs(batch, video, text, model.text_encoder))
    total = 0.0
    for level, (v, vm, t, tm) in units.items():
        logits = max_mean_similarity(v, vm, t, tm) / 0.05
        expected = (multi_positive_info_nce(logits) + multi_positive_info_nce(logits.T)) / 2
        assert out[f"hcmi_{level}_loss"].item() == pytest.approx(expected.item(), rel=1e-4), level
        total += expected.item()
    assert out["hcmi_loss"].item() == pytest.approx(total, rel=1e-4)
    assert set(units) == {"frame_word", "clip_phrase"}
    assert units["frame_word"][2].shape == (5, 32, 16)  # max_words slots, embed_dim 16


def test_padded_frames_take_no_part_in_the_frame_word_level() -> None:
    torch.manual_seed(4)
    model = build_model(tiny_config([{"name": "hcmi", "params": {"levels": ["frame_word"]}}])).eval()
    batch = make_batch(model, CAPTIONS)  # clip 0 has one padded frame
    from vtr.models.heads import HeadInputs

    with torch.no_grad():
        video = model.encode_video(batch["frames"], batch["frame_mask"])
        text = model.encode_text(batch["input_ids"], batch["attention_mask"])
        inputs = HeadInputs(batch, video, text, model.text_encoder)
        before = model.head("hcmi")(inputs)["loss"]
        video.frame_features[0, 3] = 50.0  # the padded frame's feature
        after = model.head("hcmi")(inputs)["loss"]
    assert after.item() == pytest.approx(before.item(), rel=1e-6)


def test_gather_of_one_process_changes_nothing_and_training_reaches_both_towers() -> None:
    torch.manual_seed(5)
    model = build_model(tiny_config([{"name": "global"}, {"name": "hcmi"}])).train()
    batch = make_batch(model, CAPTIONS)
    plain = model(batch)
    gathered = model(batch, gather=lambda tensor: tensor)
    for key in ("hcmi_frame_word_loss", "hcmi_clip_phrase_loss", "hcmi_loss"):
        assert gathered[key].item() == pytest.approx(plain[key].item(), rel=1e-5), key
    model.zero_grad()
    model(batch)["hcmi_loss"].backward()
    head = model.head("hcmi")
    assert head.clips.centroids.grad.abs().sum() > 0 and head.phrases.centroids.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.video_encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.text_encoder.parameters())
    assert model.retrieval_dim == model.embed_dim  # retrieval stays on the global embeddings


@pytest.mark.parametrize(
    "params, message",
    [
        ({"levels": ["video_sentence"]}, "levels"),
        ({"num_heads": 3}, "num_heads"),
        ({"num_clips": 0}, "at least 1"),
    ],
)
def test_config_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(tiny_config([{"name": "hcmi", "params": params}]))
