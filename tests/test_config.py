"""Config: defaults <- YAML <- overrides, strict keys and types, packaged configs, round trip."""

from __future__ import annotations

import pytest
import yaml

from vtr.config import HeadConfig, RunConfig, load_config, save_config, to_dict
from vtr.errors import ConfigError


def test_defaults_are_the_papers_settings():
    config = RunConfig()
    assert config.model.embed_dim == 256
    assert config.train.lr == 3e-5 and config.train.epochs == 10
    assert config.train.milestones == [4, 8] and config.train.gamma == 0.1
    assert [h.name for h in config.model.heads] == ["global", "noun", "verb"]


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"train": {"epochs": 3, "lr": 1e-4}, "model": {"heads": [{"name": "global"}]}}))
    config = load_config(
        path, ["train.epochs=5", "data.root=/x", "model.video.pretrained=null", "train.milestones=[1]"]
    )
    assert config.train.epochs == 5
    assert config.train.lr == 1e-4
    assert config.data.root == "/x"
    assert config.model.video.pretrained is None
    assert config.train.milestones == [1]
    assert config.model.heads == [HeadConfig("global")]


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epoks=3", "unknown key"),
        ("train.epochs=three", "expected int"),
        ("train.epochs", "key=value"),
        ("model.learn_temperature=1", "true or false"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_config_lists_packaged_ones():
    with pytest.raises(ConfigError, match="synthetic-dual-align"):
        load_config("no-such-config")


@pytest.mark.parametrize("name", ["synthetic-dual-align", "msrvtt-dual-align", "msvd-dual-align"])
def test_packaged_configs_load_and_round_trip(name, tmp_path):
    config = load_config(name)
    save_config(config, tmp_path / "config.yaml")
    assert to_dict(load_config(tmp_path / "config.yaml")) == to_dict(config)


def test_paper_configs_carry_the_papers_settings():
    for name in ("msrvtt-dual-align", "msvd-dual-align"):
        config = load_config(name)
        assert config.model.text.pretrained == "distilbert-base-uncased"
        assert "in21k" in config.model.video.pretrained
        assert (config.train.lr, config.train.epochs, config.train.milestones) == (3e-5, 10, [4, 8])
        assert config.model.embed_dim == 256


def test_floats_without_a_dot_and_typed_mappings():
    # YAML 1.1 reads "1e-3" as a string; a float field takes it anyway. Mapping values get their declared type.
    config = load_config("synthetic-dual-align", ["train.lr=1e-3", "train.lr_scale={text_encoder: 1e-1, heads: 2}"])
    assert config.train.lr == 0.001
    assert config.train.lr_scale == {"text_encoder": 0.1, "heads": 2.0}
    with pytest.raises(ConfigError, match=r"train\.lr_scale\.text_encoder"):
        load_config("synthetic-dual-align", ["train.lr_scale={text_encoder: fast}"])
    with pytest.raises(ConfigError, match=r"train\.lr"):
        load_config("synthetic-dual-align", ["train.lr=1e-3x"])
