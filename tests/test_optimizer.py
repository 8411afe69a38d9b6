"""The optimiser: parameter groups by weight decay and by per-module learning-rate scale."""

from __future__ import annotations

import pytest
from test_models import tiny_config

from vtr.errors import ConfigError
from vtr.models import build_model
from vtr.train.loop import build_optimizer


def _group_of(optimizer, parameter):
    return next(g for g in optimizer.param_groups if any(p is parameter for p in g["params"]))


def test_lr_scale_applies_to_a_module_prefix_and_decay_skips_biases():
    model = build_model(tiny_config())
    optimizer = build_optimizer(model, 1e-3, 0.01, {"text_encoder": 0.1, "heads.noun": 2.0})
    text_weight = model.text_encoder.model.encoder.layer[0].attention.self.query.weight
    text_bias = model.text_encoder.model.encoder.layer[0].attention.self.query.bias
    assert _group_of(optimizer, text_weight)["lr"] == pytest.approx(1e-4)
    assert _group_of(optimizer, text_weight)["weight_decay"] == 0.01
    assert _group_of(optimizer, text_bias)["weight_decay"] == 0.0
    noun = next(model.heads["noun"].parameters())
    verb = next(model.heads["verb"].parameters())
    assert _group_of(optimizer, noun)["lr"] == pytest.approx(2e-3)
    assert _group_of(optimizer, verb)["lr"] == pytest.approx(1e-3)  # "heads.noun" does not match "heads.verb"
    assert _group_of(optimizer, model.video_proj.weight)["lr"] == pytest.approx(1e-3)
    trainable = sum(1 for p in model.parameters() if p.requires_grad)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == trainable


def test_a_prefix_that_names_nothing_is_a_config_error():
    model = build_model(tiny_config())
    with pytest.raises(ConfigError, match="text_encodr"):
        build_optimizer(model, 1e-3, 0.01, {"text_encodr": 0.1})
