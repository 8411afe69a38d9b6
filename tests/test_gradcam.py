"""Grad-CAM of the global score (``vtr.viz.gradcam``, ``vtr explain``).

The maps are checked against a reference that uses no autograd: each channel weight (the gradient averaged over the
clip's real tokens) is a directional derivative of the score, taken by central differences on a float64 copy of the
model, and the map is then ReLU(activation . weights). Models are tiny and random (nothing is trained).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_viz import CAPTIONS, NUM_FRAMES, _save_run, write_pattern_video
from tiny_configs import TINY_MODEL

from vtr.cli import main
from vtr.config import load_config
from vtr.errors import ConfigError
from vtr.viz.explain import explain, plot_explanation
from vtr.viz.figure import DPI
from vtr.viz.gradcam import GradCam, grad_cam, video_layers

GRID = 4  # data.image_size 32 / model.video.patch_size 8
TWO_LAYERS = ["model.video.num_hidden_layers=2", "model.heads=[{name: global}]"]
HALF_PADDED = torch.tensor([True, True, False, False])  # a video with two frames for four entries


def tiny_model(stem: str = "patch", seed: int = 0):
    from vtr.models import build_model

    torch.manual_seed(seed)
    model = build_model(load_config(None, [*TINY_MODEL, *TWO_LAYERS, f"model.video.stem={stem}"]))
    return model.eval()


def random_clip(seed: int = 1) -> torch.Tensor:
    return torch.randn(NUM_FRAMES, 3, 32, 32, generator=torch.Generator().manual_seed(seed))  # [T, 3, S, S]


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def text(model) -> torch.Tensor:
    return model.embed_texts(["a red circle moves left"])  # [1, E]


def finite_difference_cam(model, pixels, mask, text, layer: int, step: float = 1e-4) -> np.ndarray:
    """Grad-CAM computed without autograd, in float64: w_c = (1 / N) dS/de of S(A + e * 1_c on every real token)."""
    model = copy.deepcopy(model).double()
    pixels, text = pixels.double()[None], text.double().reshape(-1)
    num_frames, patches = pixels.shape[1], GRID * GRID
    # Token 1 + p * T + t of a TimeSformer layer's output is patch p of frame t (the layer reshapes to [h, w, T]).
    index = 1 + torch.arange(patches)[None, :] * num_frames + torch.arange(num_frames)[:, None]  # [T, P]
    real_tokens = index[mask].flatten()  # [N]
    nudge = {"channel": 0, "size": 0.0}

    def perturb(module, inputs, output):
        hidden = output[0].clone()
        hidden[0, real_tokens, nudge["channel"]] += nudge["size"]
        return (hidden, *output[1:])

    def score() -> float:
        return float(model.encode_video(pixels, mask[None]).pooled[0] @ text)

    with torch.no_grad():
        tower = model.video_encoder.model
        outputs = tower(pixel_values=pixels, output_hidden_states=True).hidden_states[1:]  # each layer's, not the input
        activation = outputs[layer][0]  # [1 + P * T, D]
        handle = video_layers(model)[layer].register_forward_hook(perturb)
        weights = torch.zeros(activation.shape[-1], dtype=torch.float64)  # [D]
        for channel in range(len(weights)):
            nudge["channel"] = channel
            nudge["size"] = step
            up = score()
            nudge["size"] = -step
            weights[channel] = (up - score()) / (2 * step) / len(real_tokens)
        handle.remove()
    cam = torch.relu(activation[index] @ weights) * mask[:, None]  # [T, P]
    return cam.reshape(num_frames, GRID, GRID).numpy()


@pytest.mark.parametrize("layer", [-1, 0])
def test_the_map_is_relu_of_the_mean_gradient_weighted_activation(model, text, layer):
    pixels = random_clip()
    cam = grad_cam(model, pixels, HALF_PADDED, text, layer=layer)
    expected = finite_difference_cam(model, pixels, HALF_PADDED, text, layer)
    assert cam.layer == layer % 2
    assert expected.max() > 0 and (expected[:2] == 0).any()  # the reference is neither all zero nor all positive
    np.testing.assert_allclose(cam.maps, expected, rtol=1e-4, atol=1e-5 * expected.max())
    # The score differentiated is the model's global similarity.
    with torch.no_grad():
        pooled = model.encode_video(pixels[None], HALF_PADDED[None]).pooled
    assert cam.similarity == pytest.approx(float(pooled[0] @ text[0]), abs=1e-6)


@pytest.mark.parametrize("stem", ["patch", "conv", "conv3d"])
def test_one_non_negative_map_per_frame_and_none_on_padding(stem):
    model = tiny_model(stem)
    cam = grad_cam(model, random_clip(), HALF_PADDED, model.embed_texts(["a blue square"]))
    assert cam.maps.shape == (NUM_FRAMES, GRID, GRID) and cam.maps.dtype == np.float32
    assert (cam.maps >= 0).all() and cam.maps[:2].max() > 0
    assert (cam.maps[2:] == 0).all() and (cam.frame_share[2:] == 0).all()
    assert cam.frame_share.sum() == pytest.approx(1.0)
    assert cam.normalised.max() == pytest.approx(1.0)
    np.testing.assert_allclose(cam.normalised * cam.maps.max(), cam.maps, rtol=1e-6)


def test_an_all_zero_map_stays_zero():
    cam = GradCam(layer=0, similarity=0.0, maps=np.zeros((NUM_FRAMES, GRID, GRID), dtype=np.float32))
    assert not cam.normalised.any() and not cam.frame_share.any()
    assert cam.to_json()["max"] == 0.0


@pytest.mark.parametrize("training", [True, False])
def test_no_gradient_is_left_on_the_model_and_its_mode_is_kept(text, training):
    model = tiny_model()
    model.train(training)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    with torch.no_grad():  # as explain calls it
        grad_cam(model, random_clip(), HALF_PADDED, text)
    assert model.training is training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())
    assert not any(layer._forward_hooks for layer in video_layers(model))
    # A tower with frozen weights gets the same map: only the hooked activation is differentiated.
    model.eval()
    unfrozen = grad_cam(model, random_clip(), HALF_PADDED, text)
    model.requires_grad_(False)
    np.testing.assert_allclose(grad_cam(model, random_clip(), HALF_PADDED, text).maps, unfrozen.maps, rtol=1e-6)


def test_a_layer_the_tower_does_not_have(model, text):
    with pytest.raises(ConfigError, match="has 2 layers"):
        grad_cam(model, random_clip(), HALF_PADDED, text, layer=2)


def test_json_keeps_the_raw_maps(model, text):
    cam = grad_cam(model, random_clip(), HALF_PADDED, text, layer=0)
    data = json.loads(json.dumps(cam.to_json()))
    assert data["layer"] == 1
    np.testing.assert_allclose(np.array(data["maps"]), cam.maps, rtol=1e-5)  # raw: not divided by the maximum
    assert data["max"] == pytest.approx(float(cam.maps.max()), rel=1e-5)
    assert sum(data["frame_share"]) == pytest.approx(1.0, abs=1e-5)


# ----------------------------------------------------------------------------------------------- vtr explain


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gradcam-data")
    (root / "videos").mkdir()
    write_pattern_video(root / "videos" / "v0.mp4", num_frames=8, seed=0)
    write_pattern_video(root / "videos" / "short.mp4", num_frames=2, seed=99)
    return root


@pytest.fixture(scope="module")
def two_layer_run(tmp_path_factory, videos) -> Path:
    return _save_run(tmp_path_factory.mktemp("gradcam-run"), videos, *TWO_LAYERS)


def test_explain_has_the_grad_cam_of_its_similarity(two_layer_run, videos):
    from vtr.models import load_run

    model = load_run(two_layer_run)
    explanation = explain(model, videos / "videos" / "short.mp4", CAPTIONS[0], gradcam_layer=0)
    cam = explanation.gradcam
    assert cam.layer == 0 and cam.similarity == pytest.approx(explanation.similarity, abs=1e-5)
    assert explanation.clip.mask.tolist() == [True, True, False, False] and (cam.maps[2:] == 0).all()
    direct = grad_cam(model, explanation.clip.pixels, explanation.clip.mask, model.embed_texts([CAPTIONS[0]]), 0)
    np.testing.assert_allclose(cam.maps, direct.maps, rtol=1e-5)
    figure = plot_explanation(explanation)  # frames and Grad-CAM: two rows
    assert figure.get_size_inches()[1] * DPI == pytest.approx(100 * (0.8 + 2 * 2.2))
    assert any(sub.get_suptitle().startswith("Grad-CAM of the global score (layer 1") for sub in figure.subfigs)


def test_explain_cli_prints_and_draws_the_grad_cam(two_layer_run, videos, tmp_path, capsys):
    out = tmp_path / "explain.png"
    argv = ["explain", str(two_layer_run), "--video", str(videos / "videos" / "v0.mp4"), "--text", CAPTIONS[1]]
    assert main([*argv, "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    cam = result["gradcam"]
    assert cam["layer"] == 2  # the last of the tower's two layers
    assert np.array(cam["maps"]).shape == (NUM_FRAMES, GRID, GRID) and min(np.ravel(cam["maps"])) >= 0
    assert out.stat().st_size > 0 and out.read_bytes().startswith(b"\x89PNG")

    assert main([*argv, "--gradcam-layer", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("grad-cam (video layer 1) per frame ")

    assert main([*argv, "--gradcam-layer", "3"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vtr: error:") and "\n" not in err and "has 2 layers" in err
