"""UCoFiA's frame-sentence and patch-word levels: the interactive aggregation against a loop, patch selection, the
level similarities against loops, the loss as InfoNCE on them, masks, gathering, gradients and config errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from test_models import CAPTIONS, make_batch, tiny_config

from vtr.errors import ConfigError
from vtr.losses import multi_positive_info_nce
from vtr.models import build_model
from vtr.models.heads import HeadInputs
from vtr.models.heads.coarse_to_fine import InteractiveAggregation, select_patches


def randomised_isa(seed: int) -> InteractiveAggregation:
    torch.manual_seed(seed)
    isa = InteractiveAggregation(hidden=4)
    with torch.no_grad():
        for parameter in isa.parameters():
            parameter.normal_()
    return isa


@torch.no_grad()
def isa_by_loop(isa: InteractiveAggregation, values: list[float]) -> float:
    """ISA of the real units of one row, written out."""
    s = torch.tensor(values)
    features = torch.stack([s, s - s.mean(), s - s.max()], dim=-1)
    logits = torch.stack([isa.mlp(f).squeeze() for f in features])
    return float((logits.softmax(0) * s).sum())


def test_aggregation_starts_as_the_mean_of_the_real_units() -> None:
    sim = torch.randn(3, 5)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0]], dtype=torch.bool)
    got = InteractiveAggregation()(sim, mask)
    expected = torch.stack([sim[i][mask[i]].mean() for i in range(3)])
    assert torch.allclose(got, expected, atol=1e-6)


def test_aggregation_weights_each_unit_by_all_of_them_and_ignores_masked_units() -> None:
    isa = randomised_isa(0)
    sim = torch.randn(4, 6)
    mask = torch.rand(4, 6) > 0.4
    mask[:, 0] = True
    with torch.no_grad():
        got = isa(sim, mask)
    for row in range(4):
        expected = isa_by_loop(isa, sim[row][mask[row]].tolist())
        assert got[row].item() == pytest.approx(expected, abs=1e-5)
    scrambled = sim.masked_fill(~mask, 9.0)
    assert torch.allclose(isa(scrambled, mask).detach(), got, atol=1e-6)

    # Interactive: a unit's weight moves when another unit's similarity does (through the mean and the maximum).
    @torch.no_grad()
    def weights(values: torch.Tensor) -> torch.Tensor:
        features = torch.stack([values, values - values.mean(), values - values.max()], dim=-1)
        return isa.mlp(features).squeeze(-1).softmax(0)

    row = torch.tensor([0.1, 0.5, 0.2])
    raised = row.clone()
    raised[1] = 0.9  # the maximum
    before, after = weights(row), weights(raised)
    assert after[0] / after[2] != pytest.approx((before[0] / before[2]).item(), rel=1e-3)


def test_patch_selection_keeps_the_top_real_tokens_and_lets_the_scorer_learn() -> None:
    tokens = torch.randn(2, 6, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 0, 1, 0, 0, 0]], dtype=torch.bool)
    scores = torch.tensor([[0.1, 3.0, -1.0, 2.0, 0.5, 0.0], [0.2, 9.0, 0.1, 8.0, 7.0, 6.0]], requires_grad=True)
    chosen, chosen_mask = select_patches(tokens, mask, scores, count=3)
    assert torch.equal(chosen[0], tokens[0, [1, 3, 4]])  # the three best, best first, values unchanged
    assert torch.equal(chosen[1, :2], tokens[1, [0, 2]])  # masked tokens never chosen, however high their score
    assert chosen_mask.tolist() == [[True, True, True], [True, True, False]]
    chosen[chosen_mask].sum().backward()
    assert scores.grad is not None and scores.grad[0].abs().sum() > 0
    assert torch.all(scores.grad[1, [1, 3, 4, 5]] == 0)  # padded tokens get no gradient


def level_units(model: Any, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, ...]]:
    video = model.encode_video(batch["frames"], batch["frame_mask"])
    text = model.encode_text(batch["input_ids"], batch["attention_mask"])
    return model.head("ucofia").units(HeadInputs(batch, video, text, model.text_encoder))


def test_level_similarities_match_loops() -> None:
    torch.manual_seed(1)
    model = build_model(tiny_config([{"name": "ucofia", "params": {"num_patches": 5}}])).eval()
    head = model.head("ucofia")
    with torch.no_grad():
        for module in (head.over_frames, head.over_patches, head.over_words, head.patch_over_words):
            for parameter in module.parameters():
                parameter.normal_()
        units = level_units(model, make_batch(model, CAPTIONS))
        v, vm, t, tm = units["frame_sentence"]
        sim = head.level_similarity("frame_sentence", v, vm, t, tm)
        for i in range(t.shape[0]):
            for j in range(v.shape[0]):
                cosines = [float(v[j, f] @ t[i, 0]) for f in range(v.shape[1]) if vm[j, f]]
                assert sim[i, j].item() == pytest.approx(isa_by_loop(head.over_frames, cosines), abs=1e-5)
        v, vm, t, tm = units["patch_word"]
        sim = head.level_similarity("patch_word", v, vm, t, tm)
        for i in range(t.shape[0]):
            for j in range(v.shape[0]):
                words = [w for w in range(t.shape[1]) if tm[i, w]]
                patches = [p for p in range(v.shape[1]) if vm[j, p]]
                cos = {(w, p): float(t[i, w] @ v[j, p]) for w in words for p in patches}
                per_word = [isa_by_loop(head.over_patches, [cos[w, p] for p in patches]) for w in words]
                per_patch = [isa_by_loop(head.patch_over_words, [cos[w, p] for w in words]) for p in patches]
                expected = (
                    isa_by_loop(head.over_words, per_word) + isa_by_loop(head.patch_over_patches, per_patch)
                ) / 2
                assert sim[i, j].item() == pytest.approx(expected, abs=1e-5)


def test_forward_is_infonce_on_each_levels_similarity() -> None:
    torch.manual_seed(3)
    model = build_model(tiny_config([{"name": "ucofia"}])).eval()
    batch = make_batch(model, CAPTIONS)
    out = model(batch)
    head = model.head("ucofia")
    total = 0.0
    with torch.no_grad():
        units = level_units(model, batch)
        for level, (v, vm, t, tm) in units.items():
            logits = head.level_similarity(level, v, vm, t, tm) / 0.05
            expected = (multi_positive_info_nce(logits) + multi_positive_info_nce(logits.T)) / 2
            assert out[f"ucofia_{level}_loss"].item() == pytest.approx(expected.item(), rel=1e-4), level
            total += expected.item()
    assert out["ucofia_loss"].item() == pytest.approx(total, rel=1e-4)
    assert set(units) == {"frame_sentence", "patch_word"}
    assert units["patch_word"][0].shape == (5, 16, 16)  # num_patches selected tokens, embed_dim 16
    assert units["patch_word"][2].shape == (5, 32, 16)  # max_words slots
    assert torch.allclose(units["frame_sentence"][2][:, 0], F.normalize(units["frame_sentence"][2][:, 0], dim=-1))


def test_padded_frames_take_no_part() -> None:
    torch.manual_seed(4)
    model = build_model(tiny_config([{"name": "ucofia"}])).eval()
    batch = make_batch(model, CAPTIONS)  # clip 0 has one padded frame
    with torch.no_grad():
        video = model.encode_video(batch["frames"], batch["frame_mask"])
        text = model.encode_text(batch["input_ids"], batch["attention_mask"])
        inputs = HeadInputs(batch, video, text, model.text_encoder)
        before = model.head("ucofia")(inputs)
        video.frame_features[0, 3] = 50.0  # the padded frame's feature
        padded = ~video.token_mask[0]
        video.tokens[0, padded] = 50.0  # and its patch tokens
        after = model.head("ucofia")(inputs)
    for key in ("frame_sentence_loss", "patch_word_loss"):
        assert after[key].item() == pytest.approx(before[key].item(), rel=1e-6), key


def test_gather_of_one_process_changes_nothing_and_training_reaches_every_part() -> None:
    torch.manual_seed(5)
    model = build_model(tiny_config([{"name": "global"}, {"name": "ucofia"}])).train()
    batch = make_batch(model, CAPTIONS)
    plain = model(batch)
    gathered = model(batch, gather=lambda tensor: tensor)
    for key in ("ucofia_frame_sentence_loss", "ucofia_patch_word_loss", "ucofia_loss"):
        assert gathered[key].item() == pytest.approx(plain[key].item(), rel=1e-5), key
    model.zero_grad()
    model(batch)["ucofia_loss"].backward()
    head = model.head("ucofia")
    for part in (head.patch_score, head.patch_proj, head.word_proj, head.frame_proj, head.over_words.mlp):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters()), part
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.video_encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.text_encoder.parameters())
    assert model.retrieval_dim == model.embed_dim  # retrieval stays on the global embeddings


def test_one_level_alone() -> None:
    model = build_model(tiny_config([{"name": "ucofia", "params": {"levels": ["frame_sentence"]}}]))
    out = model(make_batch(model, CAPTIONS))
    assert "ucofia_frame_sentence_loss" in out and "ucofia_patch_word_loss" not in out
    assert not hasattr(model.head("ucofia"), "patch_score")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"levels": ["video_sentence"]}, "levels"),
        ({"levels": []}, "levels"),
        ({"num_patches": 0}, "at least 1"),
        ({"positive_mode": "any"}, "positive_mode"),
    ],
)
def test_config_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(tiny_config([{"name": "ucofia", "params": params}]))
