"""Pretrained towers without network: ViT -> TimeSformer mapping, TimeSformer checkpoints, the offline MiniLM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from vtr.config import RunConfig, from_dict
from vtr.errors import ConfigError
from vtr.models import build_model, load_run, save_model, timesformer_from_vit
from vtr.models.pretrained import resolve_pretrained
from vtr.models.vit_to_timesformer import timesformer_config_from_vit


def run_config(video: dict[str, Any], text: dict[str, Any] | None = None, frames: int = 4, size: int = 32) -> RunConfig:
    return from_dict(
        RunConfig,
        {
            "data": {"num_frames": frames, "image_size": size},
            "model": {
                "embed_dim": 16,
                "video": video,
                "text": text
                or {
                    "pretrained": None,
                    "tokenizer": "minilm-offline",
                    "hidden_size": 32,
                    "num_hidden_layers": 1,
                    "num_attention_heads": 4,
                    "intermediate_size": 64,
                },
                "heads": [{"name": "global"}],
            },
        },
    )


@pytest.fixture(scope="module")
def tiny_vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random ViT (32 px, patch 8, width 32, 2 layers) saved as a Hugging Face folder, like a hub checkpoint."""
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    vit = ViTModel(config, add_pooling_layer=False)
    with torch.no_grad():  # non-trivial values everywhere, so a copy mistake cannot hide behind zeros or ones
        for parameter in vit.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    folder = tmp_path_factory.mktemp("vit")
    vit.save_pretrained(folder)
    return folder


def vit_model(folder: Path) -> Any:
    from transformers import ViTModel

    return ViTModel.from_pretrained(folder, add_pooling_layer=False).eval()


def test_mapping_copies_the_tensors_it_claims(tiny_vit_dir: Path) -> None:
    vit = vit_model(tiny_vit_dir)
    state = vit.state_dict()
    config = timesformer_config_from_vit(vit.config, num_frames=4, image_size=32)
    ts = timesformer_from_vit(state, config).state_dict()
    for name in (
        "embeddings.cls_token",
        "embeddings.position_embeddings",
        "embeddings.patch_embeddings.projection.weight",
        "layernorm.bias",
    ):
        assert torch.equal(ts[name], state[name]), name
    assert torch.equal(ts["embeddings.time_embeddings"], torch.zeros(1, 4, 32))
    for i in range(2):
        vit_layer, ts_layer = f"layers.{i}.", f"encoder.layer.{i}."
        qkv = torch.cat([state[vit_layer + f"attention.{p}_proj.weight"] for p in "qkv"])
        assert torch.equal(ts[ts_layer + "attention.attention.qkv.weight"], qkv)
        assert torch.equal(ts[ts_layer + "temporal_attention.attention.qkv.weight"], qkv)
        assert torch.equal(ts[ts_layer + "attention.output.dense.weight"], state[vit_layer + "attention.o_proj.weight"])
        assert torch.equal(ts[ts_layer + "intermediate.dense.bias"], state[vit_layer + "mlp.fc1.bias"])
        assert torch.equal(ts[ts_layer + "output.dense.weight"], state[vit_layer + "mlp.fc2.weight"])
        assert torch.equal(ts[ts_layer + "temporal_layernorm.weight"], state[vit_layer + "layernorm_before.weight"])
        assert torch.equal(ts[ts_layer + "layernorm_after.bias"], state[vit_layer + "layernorm_after.bias"])
        assert torch.equal(ts[ts_layer + "temporal_dense.weight"], torch.zeros(32, 32))


@pytest.mark.parametrize("temporal_init", ["copy", "zero"])
def test_static_video_equals_the_image_model(tiny_vit_dir: Path, temporal_init: str) -> None:
    # With a zero temporal branch, a video of one repeated image is the ViT on that image, frame by frame.
    vit = vit_model(tiny_vit_dir)
    config = timesformer_config_from_vit(vit.config, 4, 32)
    ts = timesformer_from_vit(vit.state_dict(), config, temporal_init=temporal_init).eval()
    spatial = ts.encoder.layer[0].attention.attention.qkv.weight
    temporal = ts.encoder.layer[0].temporal_attention.attention.qkv.weight
    assert torch.equal(spatial, temporal) == (temporal_init == "copy")
    image = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = vit(pixel_values=image).last_hidden_state  # [2, 1 + 16, 32]
        got = ts(pixel_values=image[:, None].repeat(1, 4, 1, 1, 1)).last_hidden_state  # [2, 1 + 16*4, 32]
    assert torch.allclose(got[:, 0], expected[:, 0], atol=1e-4)
    patches = got[:, 1:].unflatten(1, (16, 4))  # [2, P, T, 32], patch-major
    for t in range(4):
        assert torch.allclose(patches[:, :, t], expected[:, 1:], atol=1e-4)


def test_old_vit_key_names_map_the_same(tiny_vit_dir: Path) -> None:
    vit = vit_model(tiny_vit_dir)
    renames = {
        "attention.q_proj": "attention.attention.query",
        "attention.k_proj": "attention.attention.key",
        "attention.v_proj": "attention.attention.value",
        "attention.o_proj": "attention.output.dense",
        "mlp.fc1": "intermediate.dense",
        "mlp.fc2": "output.dense",
    }
    old = {}
    for key, value in vit.state_dict().items():
        for new, legacy in renames.items():
            key = key.replace(new, legacy)
        old["vit." + key.replace("layers.", "encoder.layer.")] = value
    config = timesformer_config_from_vit(vit.config, 4, 32)
    a, b = timesformer_from_vit(vit.state_dict(), config).state_dict(), timesformer_from_vit(old, config).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # "copy" leaves nothing random
    with pytest.raises(ValueError, match="lacks"):
        timesformer_from_vit({k: v for k, v in old.items() if "query" not in k}, config)


def test_build_model_from_a_vit_folder_resizes_to_the_run(tiny_vit_dir: Path) -> None:
    vit = vit_model(tiny_vit_dir)
    config = run_config({"pretrained": str(tiny_vit_dir)}, frames=3, size=48)
    model = build_model(config)
    ts = model.video_encoder.model
    assert ts.config.num_frames == 3 and ts.config.image_size == 48
    assert ts.embeddings.position_embeddings.shape == (1, 1 + 36, 32)  # 6 x 6 patches of 8 px
    assert torch.equal(
        ts.embeddings.patch_embeddings.projection.weight, vit.embeddings.patch_embeddings.projection.weight
    )
    frames = torch.randn(2, 3, 3, 48, 48)
    assert model.embed_videos(frames).shape == (2, 16)


def test_timesformer_checkpoint_is_resized_and_reloads_offline(tiny_vit_dir: Path, tmp_path: Path) -> None:
    from transformers import TimesformerConfig, TimesformerModel

    torch.manual_seed(2)
    source = TimesformerModel(
        TimesformerConfig(
            image_size=32,
            patch_size=8,
            num_frames=8,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=4,
            intermediate_size=64,
        )
    )
    source.save_pretrained(tmp_path / "ts")
    model = build_model(run_config({"pretrained": str(tmp_path / "ts")}, frames=4, size=32)).eval()
    ts = model.video_encoder.model
    assert ts.config.num_frames == 4 and ts.embeddings.time_embeddings.shape == (1, 4, 32)
    assert torch.equal(ts.encoder.layer[0].temporal_dense.weight, source.encoder.layer[0].temporal_dense.weight)
    frames = torch.randn(2, 4, 3, 32, 32)
    save_model(model, tmp_path / "run", "best")
    (tmp_path / "ts" / "model.safetensors").unlink()  # load_run must not go back to the pretrained source
    assert torch.equal(load_run(tmp_path / "run").embed_videos(frames), model.embed_videos(frames))


def test_minilm_offline_matches_the_folder_loaded_directly(tmp_path: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    folder = resolve_pretrained("minilm-offline")
    assert (Path(folder) / "model.safetensors").is_file()
    config = run_config(
        {"patch_size": 8, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 64},
        text={"pretrained": "minilm-offline"},
    )
    model = build_model(config).eval()
    texts = ["a red circle moves left", "two dogs"]
    tokens = model.tokenize(texts)
    direct_model = AutoModel.from_pretrained(folder).eval()
    direct_tokens = AutoTokenizer.from_pretrained(folder)(texts, padding=True, return_tensors="pt")
    assert torch.equal(tokens["input_ids"], direct_tokens["input_ids"])
    with torch.no_grad():
        expected = direct_model(**direct_tokens).last_hidden_state  # [2, L, 384]
        ours = model.text_encoder(tokens["input_ids"], tokens["attention_mask"])
        pooled = model.encode_text(tokens["input_ids"], tokens["attention_mask"]).pooled
    assert torch.allclose(ours.tokens, expected, atol=1e-5)
    assert torch.allclose(pooled, torch.nn.functional.normalize(model.text_proj(expected[:, 0]), dim=-1), atol=1e-5)
    save_model(model, tmp_path, "best")
    assert torch.equal(load_run(tmp_path).embed_texts(texts), model.embed_texts(texts))


def test_missing_pretrained_video_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load pretrained"):
        build_model(run_config({"pretrained": str(tmp_path / "absent")}))
    (tmp_path / "bert").mkdir()
    from transformers import BertConfig

    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64).save_pretrained(
        tmp_path / "bert"
    )
    with pytest.raises(ConfigError, match="cannot initialise TimeSformer"):
        build_model(run_config({"pretrained": str(tmp_path / "bert")}))
