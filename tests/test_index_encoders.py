"""The index's model adapters: a tiny random CLIP (and X-CLIP) written to a folder, loaded as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vtr.errors import CheckpointError
from vtr.index.encoders import HFClipEncoder, HFXClipEncoder, VideoTextEncoder, load_encoder


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2 / CLIP byte-level BPE alphabet: every byte as a printable character.
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, map(chr, chars), strict=True))


def write_clip_tokenizer(folder: Path) -> object:
    """A real CLIPTokenizer over a character-level vocabulary (no merges), saved to ``folder``."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    alphabet = list(_bytes_to_unicode().values())
    vocab = {token: i for i, token in enumerate(alphabet + [c + "</w>" for c in alphabet])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    tokenizer.save_pretrained(folder)
    return tokenizer


def write_tiny_clip(folder: Path, seed: int = 0, image_size: int = 32, kind: str = "clip") -> Path:
    """A randomly initialised tiny CLIP (or X-CLIP) with its tokenizer and preprocessor config, in ``folder``."""
    from transformers import CLIPConfig, CLIPModel, XCLIPConfig, XCLIPModel

    tokenizer = write_clip_tokenizer(folder)
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 64,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": image_size,
    }
    torch.manual_seed(seed)
    if kind == "clip":
        model = CLIPModel(CLIPConfig(text_config=text, vision_config={**vision, "patch_size": 8}, projection_dim=16))
    else:
        config = XCLIPConfig(
            text_config=text,
            vision_config={
                **vision,
                "patch_size": 8,
                "num_frames": 4,
                "mit_hidden_size": 16,  # the MIT runs on the projected frame features
                "mit_intermediate_size": 32,
                "mit_num_hidden_layers": 1,
                "mit_num_attention_heads": 2,
            },
            projection_dim=16,
            prompt_layers=1,
            prompt_num_attention_heads=2,
            prompt_attention_dropout=0.0,
            prompt_projection_dropout=0.0,
        )
        model = XCLIPModel(config)
    model.save_pretrained(folder)
    processor = {
        "crop_size": {"height": image_size, "width": image_size},
        "image_mean": [0.5] * 3,
        "image_std": [0.25] * 3,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return folder


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return write_tiny_clip(tmp_path_factory.mktemp("clip"))


def test_clip_adapter_reads_the_folder_and_embeds_unit_vectors(tiny_clip):
    encoder = load_encoder(tiny_clip, num_frames=4)
    assert isinstance(encoder, HFClipEncoder) and isinstance(encoder, VideoTextEncoder)
    assert (encoder.dim, encoder.num_frames, encoder.image_size) == (16, 4, 32)
    assert encoder.mean == (0.5, 0.5, 0.5) and encoder.std == (0.25, 0.25, 0.25)  # from preprocessor_config.json
    assert encoder.model_spec == str(tiny_clip.resolve())
    texts = encoder.embed_texts(["a red square moves left", "a blue circle", "x"])
    assert texts.shape == (3, 16) and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(texts[0], texts[1])
    # The same text alone or in a padded batch embeds the same (the attention mask is honoured).
    np.testing.assert_allclose(encoder.embed_texts(["x"])[0], texts[2], atol=1e-5)


def test_clip_clip_embedding_is_the_masked_mean_of_normalised_frame_features(tiny_clip):
    from transformers import CLIPModel

    encoder = load_encoder(tiny_clip, num_frames=4)
    torch.manual_seed(0)
    frames = torch.randn(2, 4, 3, 32, 32)  # [B, T, 3, S, S]
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    got = encoder.embed_clips(frames, mask)  # [2, 16]
    model = CLIPModel.from_pretrained(tiny_clip).eval()
    with torch.no_grad():
        out = model.get_image_features(pixel_values=frames.reshape(8, 3, 32, 32))
        feats = out if isinstance(out, torch.Tensor) else out.pooler_output
    feats = torch.nn.functional.normalize(feats, dim=-1).reshape(2, 4, -1)
    expected = torch.stack([feats[0].mean(0), feats[1, :2].mean(0)])
    expected = torch.nn.functional.normalize(expected, dim=-1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # Padded frames do not count: changing them changes nothing.
    frames[1, 2:] = 0
    np.testing.assert_allclose(encoder.embed_clips(frames, mask)[1], got[1], atol=1e-6)


def test_model_id_names_the_weights(tiny_clip, tmp_path):
    same = load_encoder(tiny_clip)
    again = load_encoder(tiny_clip)
    other = load_encoder(write_tiny_clip(tmp_path / "other", seed=1))
    assert same.model_id == again.model_id
    assert same.model_id.startswith("hf-clip:") and same.model_id != other.model_id


def test_xclip_adapter_uses_video_features(tmp_path):
    folder = write_tiny_clip(tmp_path / "xclip", kind="x_clip")
    encoder = load_encoder(folder)
    assert isinstance(encoder, HFXClipEncoder) and encoder.num_frames == 4
    clips = encoder.embed_clips(torch.randn(2, 4, 3, 32, 32), torch.ones(2, 4, dtype=torch.bool))
    texts = encoder.embed_texts(["a dog runs"])
    assert clips.shape == (2, 16) and texts.shape == (1, 16)
    np.testing.assert_allclose(np.linalg.norm(clips, axis=1), 1.0, rtol=1e-5)


def test_unloadable_models_raise_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="neither a vtr run"):
        load_encoder(tmp_path)  # an empty folder
    with pytest.raises(CheckpointError, match="neither a vtr run"):
        load_encoder("no-such-org/no-such-model-for-vtr-tests")  # offline: not in the cache
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="supported: clip, xclip"):
        load_encoder(tmp_path / "bert")
