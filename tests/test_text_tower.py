"""Text tower options: [CLS] or mean pooling, frozen layers kept in eval mode, and the frozen-tower cache."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from test_models import CAPTIONS, make_batch, tiny_config

from vtr.errors import ConfigError
from vtr.models import build_model
from vtr.models.text_cache import FrozenTextCache


def _dropout_text(**text: Any) -> Any:
    config = tiny_config([{"name": "global"}, {"name": "noun", "params": {"depth": 1}}])
    config.model.text.dropout = 0.5
    for key, value in text.items():
        setattr(config.model.text, key, value)
    return config


def test_mean_pooling_averages_the_real_tokens() -> None:
    config = tiny_config([{"name": "global"}])
    config.model.text.pooling = "mean"
    model = build_model(config).eval()
    tokens = model.tokenize(["a red circle moves left", "a dog"])
    with torch.no_grad():
        out = model.text_encoder(tokens["input_ids"], tokens["attention_mask"])
        encoded = model.encode_text(tokens["input_ids"], tokens["attention_mask"])
    short = int(tokens["attention_mask"][1].sum())
    assert short < tokens["input_ids"].shape[1]  # the second row is padded
    assert torch.allclose(out.pooled[1], out.tokens[1, :short].mean(0), atol=1e-6)
    assert not torch.allclose(out.pooled[1], out.cls[1])
    assert torch.allclose(encoded.pooled, F.normalize(model.text_proj(out.pooled), dim=-1), atol=1e-6)


def test_cls_pooling_is_the_first_token() -> None:
    model = build_model(tiny_config([{"name": "global"}])).eval()
    tokens = model.tokenize(["a red circle moves left"])
    with torch.no_grad():
        out = model.text_encoder(tokens["input_ids"], tokens["attention_mask"])
    assert torch.equal(out.pooled, out.tokens[:, 0])


def test_unknown_pooling_is_a_config_error() -> None:
    config = tiny_config([{"name": "global"}])
    config.model.text.pooling = "max"
    with pytest.raises(ConfigError, match="pooling"):
        build_model(config)


def test_frozen_layers_stay_in_eval_mode_while_training() -> None:
    model = build_model(_dropout_text(freeze_layers=1)).train()
    encoder = model.text_encoder.model
    assert not encoder.embeddings.training and not encoder.encoder.layer[0].training
    assert encoder.encoder.layer[1].training  # the trainable layer keeps its dropout
    model.eval()
    model.train()
    assert not encoder.encoder.layer[0].training


def test_a_fully_frozen_tower_is_deterministic_in_training_and_cached() -> None:
    torch.manual_seed(0)
    model = build_model(_dropout_text(freeze_layers=-1)).train()
    assert model.use_text_cache()
    tokens = model.tokenize([p.caption for p in CAPTIONS])
    direct = model.text_encoder(tokens["input_ids"], tokens["attention_mask"])
    again = model.text_encoder(tokens["input_ids"], tokens["attention_mask"])
    assert torch.equal(direct.pooled, again.pooled)  # dropout is off in a frozen tower
    cache = model.text_cache
    first = cache(tokens["input_ids"], tokens["attention_mask"])
    assert cache.misses == len(CAPTIONS) and cache.hits == 0
    # The same texts in another order and padded to another length hit the cache and give the same output.
    order = [3, 0, 4]
    subset = model.tokenize([CAPTIONS[i].caption for i in order])
    second = cache(subset["input_ids"], subset["attention_mask"])
    assert cache.hits == 3 and cache.misses == len(CAPTIONS)
    assert torch.allclose(second.pooled, first.pooled[order], atol=1e-5)
    assert torch.allclose(second.cls, first.cls[order], atol=1e-5)
    mask = subset["attention_mask"].bool()
    assert torch.equal(second.token_mask, mask)
    width = subset["input_ids"].shape[1]
    for row, source in enumerate(order):
        n = int(mask[row].sum())
        assert torch.allclose(second.tokens[row, :n], first.tokens[source, :n], atol=1e-5)
        assert second.tokens.shape[1] == width


def test_training_forward_with_the_cache_equals_without() -> None:
    torch.manual_seed(1)
    model = build_model(_dropout_text(freeze_layers=-1)).train()
    batch = make_batch(model, CAPTIONS)
    torch.manual_seed(5)
    plain = model(batch)["loss"]
    model.use_text_cache()
    torch.manual_seed(5)
    cached = model(batch)["loss"]
    torch.manual_seed(5)
    hit = model(batch)["loss"]
    assert torch.allclose(plain, cached, atol=1e-5) and torch.allclose(cached, hit, atol=1e-5)
    assert model.text_cache.hits > 0
    hit.backward()
    assert model.text_proj.weight.grad is not None


def test_no_cache_when_the_tower_trains() -> None:
    model = build_model(_dropout_text(freeze_layers=1))
    assert not model.use_text_cache() and model.text_cache is None
    with pytest.raises(ValueError, match="no trainable"):
        FrozenTextCache(model.text_encoder)


def test_cache_budget_stops_storing_but_still_answers() -> None:
    model = build_model(_dropout_text(freeze_layers=-1)).eval()
    cache = FrozenTextCache(model.text_encoder, budget_bytes=1)
    tokens = model.tokenize(["a red circle", "a blue square"])
    out = cache(tokens["input_ids"], tokens["attention_mask"])
    assert len(cache) == 0 and out.pooled.shape[0] == 2


def test_cached_outputs_are_float32_under_bf16_autocast() -> None:
    model = build_model(_dropout_text(freeze_layers=-1)).eval()
    cache = FrozenTextCache(model.text_encoder)
    tokens = model.tokenize(["a red circle", "a blue square"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = cache(tokens["input_ids"], tokens["attention_mask"])
    plain = model.text_encoder(tokens["input_ids"], tokens["attention_mask"])
    assert under_autocast.tokens.dtype == torch.float32
    torch.testing.assert_close(under_autocast.pooled, plain.pooled)  # as evaluation computes them
