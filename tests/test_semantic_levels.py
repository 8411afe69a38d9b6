"""MCSAN's semantic levels: focal BCE and KL against hand-written references, the vocabulary, the head's labels and
gradients, the retrieval embedding that joins the levels, and a training run that builds and keeps the vocabulary."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from test_models import CAPTIONS, NUM_FRAMES, make_batch, parts, tiny_config
from tiny_configs import TINY_MODEL

from vtr.errors import ConfigError
from vtr.losses import attribute_kl, focal_binary_cross_entropy
from vtr.models import build_model, load_run
from vtr.models.heads.semantic_levels import build_vocabulary

VOCABULARY = {"entity": ["circle", "dog", "grass", "square"], "action": ["moves", "runs", "jumps"]}


def mcsan_model(**params: Any) -> Any:
    torch.manual_seed(0)
    heads = [{"name": "global"}, {"name": "mcsan", "params": {"vocabulary": VOCABULARY, **params}}]
    return build_model(tiny_config(heads))


# ----------------------------------------------------------------------------------------------- losses


def fbce_by_hand(logits: torch.Tensor, targets: torch.Tensor, gamma: float, alpha: float | None) -> float:
    total = 0.0
    for x, y in zip(logits.flatten().tolist(), targets.flatten().tolist(), strict=True):
        p = 1 / (1 + math.exp(-x))
        pt = p if y else 1 - p
        weight = 1.0 if alpha is None else (alpha if y else 1 - alpha)
        total += -weight * (1 - pt) ** gamma * math.log(pt)
    return total / max(1.0, float(targets.sum()))


@pytest.mark.parametrize("gamma, alpha", [(0.0, None), (2.0, 0.25), (1.0, 0.5), (3.0, None)])
def test_focal_bce_matches_its_definition(gamma: float, alpha: float | None) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 7, generator=generator) * 3
    targets = (torch.rand(4, 7, generator=generator) < 0.3).float()
    got = focal_binary_cross_entropy(logits, targets, gamma, alpha)
    assert got.item() == pytest.approx(fbce_by_hand(logits, targets, gamma, alpha), rel=1e-5)


def test_focal_bce_without_focus_is_binary_cross_entropy_per_positive() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    expected = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / 3
    assert focal_binary_cross_entropy(logits, targets, gamma=0.0, alpha=None).item() == pytest.approx(expected.item())


def test_focal_bce_down_weights_easy_negatives_and_stays_finite() -> None:
    targets = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    easy = torch.tensor([[0.0, -4.0, -4.0, -4.0]], requires_grad=True)
    focal = focal_binary_cross_entropy(easy, targets, gamma=2.0, alpha=None)
    plain = focal_binary_cross_entropy(easy, targets, gamma=0.0, alpha=None)
    assert focal.item() < plain.item()
    extreme = torch.tensor([[-1e4, 1e4, -1e4, 1e4]], requires_grad=True)
    loss = focal_binary_cross_entropy(extreme, targets)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(extreme.grad).all()


def test_focal_bce_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="shape"):
        focal_binary_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="alpha"):
        focal_binary_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3), alpha=1.5)
    with pytest.raises(ValueError, match="gamma"):
        focal_binary_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3), gamma=-1)


def test_attribute_kl_is_symmetric_zero_on_agreement_and_matches_the_sum() -> None:
    generator = torch.Generator().manual_seed(1)
    v, t = torch.randn(3, 5, generator=generator), torch.randn(3, 5, generator=generator)
    assert attribute_kl(v, v).item() == pytest.approx(0.0, abs=1e-7)
    assert attribute_kl(v, t).item() == pytest.approx(attribute_kl(t, v).item())
    pv, pt = v.softmax(-1), t.softmax(-1)
    by_hand = 0.5 * ((pt * (pt / pv).log()).sum(-1) + (pv * (pv / pt).log()).sum(-1)).mean()
    assert attribute_kl(v, t).item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert attribute_kl(torch.zeros(0, 5), torch.zeros(0, 5)).item() == 0.0


# ----------------------------------------------------------------------------------------------- vocabulary and head


def test_vocabulary_keeps_frequent_lower_cased_words_most_frequent_first() -> None:
    items = [
        parts("a Dog runs", ("Dog",), ("runs",)),
        parts("a dog and a cat", ("dog", "cat"), ()),
        parts("a cat and a bird", ("cat", "bird"), ()),
        parts("a dog", ("dog",), ()),
    ]
    assert build_vocabulary(items, "nouns", size=10, min_count=2) == ["dog", "cat"]
    assert build_vocabulary(items, "nouns", size=1, min_count=1) == ["dog"]
    assert build_vocabulary(items, "nouns", size=10, min_count=1) == ["dog", "cat", "bird"]  # ties alphabetical
    assert build_vocabulary(items, "verbs", size=10, min_count=2) == []


def test_prepare_params_fills_a_missing_vocabulary_only() -> None:
    from vtr.models.heads import SemanticLevelsHead

    items = [parts("a dog runs", ("dog",), ("runs",))] * 2
    filled = SemanticLevelsHead.prepare_params({"levels": ["entity"], "min_count": 2}, items)
    assert filled["vocabulary"] == {"entity": ["dog"]} and filled["min_count"] == 2
    given = {"vocabulary": {"entity": ["cat"]}}
    assert SemanticLevelsHead.prepare_params(given, items) is given


def test_labels_are_the_captions_vocabulary_words() -> None:
    model = mcsan_model()
    batch = make_batch(model, CAPTIONS)
    entity, action = batch["mcsan_entity_labels"], batch["mcsan_action_labels"]
    assert entity.shape == (5, 4) and action.shape == (5, 3)
    assert entity[1].tolist() == [0.0, 1.0, 1.0, 0.0]  # "a dog runs on grass"
    assert entity[2].sum() == 0 and action[2].sum() == 0  # neither nouns nor verbs
    assert action[4].sum() == 0  # "spins" is not in the vocabulary
    assert action[0].tolist() == [1.0, 0.0, 0.0]


def test_forward_reports_every_term_and_trains_both_towers() -> None:
    model = mcsan_model().train()
    out = model(make_batch(model, CAPTIONS))
    for level in ("entity", "action"):
        for term in ("align", "attribute", "kl"):
            assert torch.isfinite(out[f"mcsan_{level}_{term}"])
    out["loss"].backward()
    head = model.head("mcsan")
    assert head.attributes["entity"].weight.grad.abs().sum() > 0
    assert head.video_pools["action"].query.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.video_encoder.parameters())


def test_the_attribute_projection_is_shared_by_both_modalities() -> None:
    head = mcsan_model().head("mcsan")
    names = [n for n, _ in head.named_parameters() if n.startswith("attributes.")]
    assert sorted(names) == [
        "attributes.action.bias",
        "attributes.action.weight",
        "attributes.entity.bias",
        "attributes.entity.weight",
    ]  # one layer per level, no video or text copy


@pytest.mark.parametrize(
    "params, message",
    [
        ({"levels": ["relation"]}, "levels"),
        ({"levels": []}, "levels"),
        ({"num_heads": 3}, "num_heads"),
        ({"vocabulary": {"entity": ["dog"], "action": []}}, "vocabulary of level 'action' is empty"),
        ({"retrieval_weight": -1}, "retrieval_weight"),
    ],
)
def test_config_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        mcsan_model(**params)


def test_a_head_without_vocabulary_says_how_to_get_one() -> None:
    model = build_model(tiny_config([{"name": "global"}, {"name": "mcsan"}]))
    with pytest.raises(ConfigError, match="vtr train builds it"):
        make_batch(model, CAPTIONS)


# ----------------------------------------------------------------------------------------------- retrieval


def test_retrieval_embedding_is_the_weighted_mean_of_level_similarities() -> None:
    model = mcsan_model(retrieval_weight=0.5).eval()
    frames = torch.randn(3, NUM_FRAMES, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    captions = [p.caption for p in CAPTIONS[:4]]
    videos, texts = model.embed_videos(frames), model.embed_texts(captions)
    assert videos.shape == (3, 16 * 3) and texts.shape == (4, 16 * 3) and model.retrieval_dim == 48
    assert torch.allclose(videos.norm(dim=-1), torch.ones(3), atol=1e-5)
    with torch.no_grad():
        encoded_video = model.encode_video(frames)
        tokens = model.tokenize(captions)
        encoded_text = model.encode_text(tokens["input_ids"], tokens["attention_mask"])
        head = model.head("mcsan")
        levels_v, levels_t = head.retrieval_video(encoded_video), head.retrieval_text(encoded_text)
    expected = encoded_text.pooled @ encoded_video.pooled.T  # weight 1
    for (v, _), (t, _) in zip(levels_v, levels_t, strict=True):
        expected = expected + 0.5 * (t @ v.T)
    expected = expected / 2.0  # 1 + 0.5 + 0.5
    assert torch.allclose(texts @ videos.T, expected, atol=1e-5)


def test_retrieval_weight_zero_keeps_retrieval_global() -> None:
    model = mcsan_model(retrieval_weight=0.0).eval()
    assert model.retrieval_dim == 16
    captions = [p.caption for p in CAPTIONS]
    tokens = model.tokenize(captions)
    with torch.no_grad():
        pooled = model.encode_text(tokens["input_ids"], tokens["attention_mask"]).pooled
    assert torch.allclose(model.embed_texts(captions), pooled)


# ----------------------------------------------------------------------------------------------- training


def test_training_builds_the_vocabulary_and_the_run_keeps_it(tmp_path: Any) -> None:
    from vtr.config import load_config
    from vtr.data.synth import generate_dataset
    from vtr.evaluate.runner import evaluate_run
    from vtr.index.encoders import VtrRunEncoder
    from vtr.train import fit

    root = tmp_path / "data"
    generate_dataset(root, num_videos=24, seed=5, num_frames=8, fps=8, size=32, workers=1, progress=False)
    heads = "model.heads=[{name: global}, {name: mcsan, params: {num_heads: 2, min_count: 3}}]"
    overrides = [
        f"data.root={root}",
        *TINY_MODEL,
        "model.embed_dim=16",
        heads,
        "train.batch_size=8",
        "train.epochs=1",
        "train.milestones=[]",
        "train.warmup_steps=1",
    ]
    fit(load_config("synthetic-dual-align", overrides), tmp_path / "run", progress=False, echo=lambda line: None)

    saved = load_config(tmp_path / "run" / "config.yaml")
    vocabulary = saved.model.heads[1].params["vocabulary"]
    assert set(vocabulary) == {"entity", "action"} and vocabulary["entity"] and vocabulary["action"]
    model = load_run(tmp_path / "run")
    assert model.head("mcsan").vocabulary == vocabulary
    metrics, encoded = evaluate_run(tmp_path / "run", split="test", progress=False)
    assert encoded.video.shape[1] == 48 and 0 <= metrics["t2v"]["R@5"] <= 100
    encoder = VtrRunEncoder(tmp_path / "run")
    assert encoder.dim == 48 and encoder.embed_texts(["a red circle"]).shape == (1, 48)

    # A run given the completed config from the start trains exactly the same weights.
    fit(saved, tmp_path / "again", progress=False, echo=lambda line: None)
    first, again = load_file(tmp_path / "run" / "last.safetensors"), load_file(tmp_path / "again" / "last.safetensors")
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
