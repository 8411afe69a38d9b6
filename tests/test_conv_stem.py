"""The convolutional stem of TimeSformer: token layout, what each token can see, its normalisation, saving and
loading, bad configs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from vtr.config import RunConfig, from_dict
from vtr.errors import ConfigError
from vtr.models import build_model, load_run, save_model
from vtr.models.conv_stem import ConvPatchEmbeddings, stem_channels
from vtr.models.video_encoders import TimesformerVideoEncoder

NUM_FRAMES, IMAGE_SIZE = 4, 32


def config(stem: str, patch_size: int = 8, **video: object) -> RunConfig:
    return from_dict(
        RunConfig,
        {
            "data": {"num_frames": NUM_FRAMES, "image_size": IMAGE_SIZE},
            "model": {
                "embed_dim": 16,
                "video": {
                    "patch_size": patch_size,
                    "hidden_size": 32,
                    "num_hidden_layers": 1,
                    "num_attention_heads": 2,
                    "intermediate_size": 64,
                    "stem": stem,
                    **video,
                },
                "text": {
                    "pretrained": None,
                    "tokenizer": "minilm-offline",
                    "hidden_size": 32,
                    "num_hidden_layers": 1,
                    "num_attention_heads": 2,
                    "intermediate_size": 64,
                },
                "heads": [{"name": "global"}],
            },
        },
    )


def test_stem_channels_double_up_to_half_the_width() -> None:
    assert stem_channels(4, 128) == [32, 64]
    assert stem_channels(16, 768) == [48, 96, 192, 384]
    assert stem_channels(2, 32) == [16]
    for bad in (1, 6, 12):
        with pytest.raises(ConfigError, match="power-of-two"):
            stem_channels(bad, 128)


@pytest.mark.parametrize("stem", ["conv", "conv3d"])
def test_conv_stems_keep_timesformer_token_layout(stem: str) -> None:
    torch.manual_seed(0)
    patch = TimesformerVideoEncoder.from_run_config(config("patch"))
    conv = TimesformerVideoEncoder.from_run_config(config(stem))
    assert isinstance(conv.model.embeddings.patch_embeddings, ConvPatchEmbeddings)
    frames = torch.randn(2, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE)
    a, b = patch(frames), conv(frames)
    assert a.tokens.shape == b.tokens.shape == (2, 1 + NUM_FRAMES * 16, 32)
    assert a.frame_features.shape == b.frame_features.shape
    b.tokens.square().mean().backward()
    stem_grads = [p.grad for p in conv.model.embeddings.patch_embeddings.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in stem_grads)


@pytest.mark.parametrize(("temporal", "reach"), [(False, {0}), (True, {0, 1})])
def test_conv3d_stem_mixes_neighbouring_frames_and_conv_does_not(temporal: bool, reach: set[int]) -> None:
    torch.manual_seed(1)
    stem = ConvPatchEmbeddings(3, 32, 8, temporal=temporal).eval()
    frames = torch.randn(1, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE)
    changed = frames.clone()
    changed[:, 0] += 1.0
    with torch.no_grad():
        before, num_frames, grid = stem(frames)
        after, _, _ = stem(changed)
    assert (num_frames, grid) == (NUM_FRAMES, IMAGE_SIZE // 8)
    moved = {t for t in range(NUM_FRAMES) if not torch.allclose(before[t], after[t])}
    assert moved == reach


def _object_on_plain_background(contrast: float) -> torch.Tensor:
    """One clip [1, T, 3, S, S]: a square of colour ``contrast * (0.9, 0.6, 0.3)`` on a background of 0."""
    frames = torch.zeros(1, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE)
    frames[..., 10:18, 12:20] = contrast * torch.tensor([0.9, 0.6, 0.3]).view(3, 1, 1)
    return frames


@pytest.mark.parametrize(("norm", "same"), [("group", True), ("layer", True), ("batch", False)])
def test_on_black_group_and_layer_norm_divide_out_an_objects_contrast_and_batch_norm_keeps_it(
    norm: str, same: bool
) -> None:
    # The demo's stem has one channel per group: instance normalisation. An object halfway between the background
    # and a bright colour then makes the bright object's tokens. With one group, one spread over all channels is
    # divided out: on a black background (no bias, so the convolution of zero is zero) that is the contrast too.
    assert stem_channels(8, 64)[0] == 8  # 8 channels in GroupNorm's 8 groups
    change = _contrast_kept(norm, _object_on_plain_background)
    # GroupNorm: what is left is its epsilon's share of the first layer's small variances at initialisation
    assert change < 0.02 if same else change > 0.2


def _night_sky_clip(contrast: float) -> torch.Tensor:
    """One clip as the stem sees it (pixels normalised to [-1, 1]): a square ``contrast`` of the way from the
    demo's night sky (12, 16, 50) to white; 0.5 is about the demo's gray."""
    sky = torch.tensor([12.0, 16.0, 50.0]).view(3, 1, 1) / 255
    frames = sky.expand(1, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE).clone()
    frames[..., 10:18, 12:20] = sky + contrast * (1 - sky)
    return (frames - 0.5) / 0.5


def _contrast_kept(norm: str, clip: Callable[[float], torch.Tensor]) -> float:
    """How far a half-contrast object's stem tokens are from the full-contrast object's, against what the
    full-contrast object adds to the plain background's tokens: 0 when the stem divides contrast out."""
    torch.manual_seed(4)
    stem = ConvPatchEmbeddings(3, 64, 8, norm=norm)
    for _ in range(3):  # running statistics of a few training batches
        stem(torch.randn(4, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE))
    stem.eval()
    with torch.no_grad():
        bright, _, _ = stem(clip(1.0))
        dim, _, _ = stem(clip(0.5))
        plain, _, _ = stem(clip(0.0))
    return float((bright - dim).norm() / (bright - plain).norm())


def test_layer_norm_stem_keeps_more_of_a_gray_objects_contrast_on_the_night_sky_than_group_norm() -> None:
    # GroupNorm with one group normalises each frame by one mean and spread over all channels; the sky's colour
    # differs between the channels, so a gray object no longer makes a white one's features. BatchNorm keeps most.
    kept = {norm: _contrast_kept(norm, _night_sky_clip) for norm in ("group", "layer", "batch")}
    assert kept["group"] < 0.4 < kept["layer"] < kept["batch"], kept


def test_the_colour_path_starts_at_zero_and_then_tells_a_dim_object_from_a_bright_one() -> None:
    torch.manual_seed(6)
    plain = ConvPatchEmbeddings(3, 64, 8).eval()
    torch.manual_seed(6)
    coloured = ConvPatchEmbeddings(3, 64, 8, colour=True).eval()
    clip = _object_on_plain_background(1.0)
    with torch.no_grad():
        assert torch.equal(coloured(clip)[0], plain(clip)[0])  # training starts from the plain GroupNorm stem
        assert coloured.colour is not None
        coloured.colour.weight.normal_()  # as training would move it
    # GroupNorm divides the dim object's contrast out of the convolutions; the colour path keeps it
    assert _contrast_kept("group", _object_on_plain_background) < 0.02
    with torch.no_grad():
        bright, dim, black = (coloured(_object_on_plain_background(c))[0] for c in (1.0, 0.5, 0.0))
    assert float((bright - dim).norm() / (bright - black).norm()) > 0.1  # five times what GroupNorm leaves


@pytest.mark.parametrize("norm", ["group", "layer", "batch"])
def test_a_video_encodes_the_same_alone_and_in_a_batch(norm: str) -> None:
    torch.manual_seed(2)
    encoder = TimesformerVideoEncoder.from_run_config(config("conv3d", stem_norm=norm)).eval()
    frames = torch.randn(3, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        batch = encoder(frames).tokens
        alone = encoder(frames[1:2]).tokens
    assert torch.allclose(batch[1:2], alone, atol=1e-5)


@pytest.mark.parametrize(("norm", "colour"), [("group", False), ("layer", False), ("batch", False), ("group", True)])
def test_saved_run_with_conv_stem_loads_identically(tmp_path: Path, norm: str, colour: bool) -> None:
    torch.manual_seed(3)
    model = build_model(config("conv3d", stem_norm=norm, stem_colour=colour))
    model.video_encoder(torch.randn(2, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE))  # BatchNorm's running statistics move
    embeddings = model.video_encoder.model.embeddings.patch_embeddings
    if colour:
        with torch.no_grad():
            embeddings.colour.weight.normal_()  # as training would move it
    model.eval()
    save_model(model, tmp_path, "best")
    loaded = load_run(tmp_path)
    stem = loaded.video_encoder.model.embeddings.patch_embeddings
    assert isinstance(stem, ConvPatchEmbeddings)
    assert stem.temporal
    assert isinstance(stem.rest[0], torch.nn.BatchNorm2d if norm == "batch" else torch.nn.GroupNorm)
    if norm != "batch":
        assert stem.rest[0].num_groups == (1 if norm == "layer" else 8)
    assert (stem.colour is not None) == colour
    frames = torch.randn(2, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert torch.equal(model.embed_videos(frames), loaded.embed_videos(frames))


def test_a_run_saved_before_stem_norm_existed_loads_with_group_norm(tmp_path: Path) -> None:
    torch.manual_seed(5)
    model = build_model(config("conv")).eval()
    save_model(model, tmp_path, "best")
    tower_file = tmp_path / "towers" / "video_config.json"
    tower = json.loads(tower_file.read_text())
    del tower["vtr_stem_norm"]
    tower_file.write_text(json.dumps(tower))
    loaded = load_run(tmp_path)
    assert isinstance(loaded.video_encoder.model.embeddings.patch_embeddings.rest[0], torch.nn.GroupNorm)
    frames = torch.randn(2, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert torch.equal(model.embed_videos(frames), loaded.embed_videos(frames))


@pytest.mark.parametrize(
    ("stem", "video", "message"),
    [
        ("convnext", {}, "must be one of patch, conv, conv3d"),
        ("convnext", {"pretrained": "/no/such/folder"}, "must be one of patch, conv, conv3d"),
        ("conv", {"pretrained": "/no/such/folder"}, "trained from scratch"),
        ("conv", {"stem_norm": "instance"}, "stem_norm must be one of group, layer, batch"),
        ("patch", {"stem_norm": "batch"}, "normalisation of a convolutional stem"),
        ("patch", {"stem_colour": True}, "side path of a convolutional stem"),
    ],
)
def test_stem_config_errors(stem: str, video: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TimesformerVideoEncoder.from_run_config(config(stem, **video))


def test_non_power_of_two_patch_is_refused() -> None:
    cfg = from_dict(RunConfig, {"data": {"image_size": 24, "num_frames": 2}})
    cfg.model.video.stem = "conv"
    cfg.model.video.patch_size = 6
    cfg.model.video.hidden_size, cfg.model.video.num_attention_heads = 32, 2
    with pytest.raises(ConfigError, match="power-of-two"):
        TimesformerVideoEncoder.from_run_config(cfg)
