"""Grad-CAM of the global score: which video tokens drove the cosine similarity that retrieval ranks by.

Selvaraju et al., "Grad-CAM" (ICCV 2017), on the video tower's tokens. A is the patch tokens ``[T, P, D]`` output by
one TimeSformer layer ([CLS] left out), S the cosine of the global video and text embeddings, the text embedding held
fixed. The channel weights are dS/dA averaged over the clip's real tokens (the paper's Eq. 1), and a token's map is
``ReLU(sum_c w_c A_c)`` (Eq. 2); tokens of padded frames get 0. Unlike the cross-attention maps of
:mod:`vtr.viz.attention` it needs no fine-grained head, so a run with the global head alone has one too.

With ``model.video_pooling: cls`` the last layer's patch tokens never reach the [CLS] token (the final layer norm acts
per token), so the last layer's map is all 0: ask for an earlier layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vtr.errors import ConfigError
from vtr.models.video_encoders import TimesformerVideoEncoder

SIGNIFICANT_DIGITS = 6  # of each raw map value in the JSON: maps are small numbers, so not a fixed number of decimals


@dataclass
class GradCam:
    """Grad-CAM of the retrieval similarity over the video tokens of one layer.

    Attributes:
        layer: 0-based layer of the video tower whose output tokens the maps are over.
        similarity: the score differentiated: the cosine of the retrieval embeddings, as retrieval computes it.
        maps: float32 ``[T, g, g]``: ``ReLU(sum_c w_c A_c)`` of each frame's patch tokens, raw (not normalised);
            0 on padded frames.
    """

    layer: int
    similarity: float
    maps: np.ndarray

    @property
    def normalised(self) -> np.ndarray:
        """``maps`` divided by their maximum over the clip, for display (all zeros stay zeros)."""
        peak = float(self.maps.max()) if self.maps.size else 0.0
        return self.maps / peak if peak > 0 else np.zeros_like(self.maps)

    @property
    def frame_share(self) -> np.ndarray:
        """float ``[T]``: each frame's part of the map's total (all zeros when the map is all zero)."""
        per_frame = self.maps.sum(axis=(1, 2))
        total = float(per_frame.sum())
        return per_frame / total if total > 0 else np.zeros_like(per_frame)

    def to_json(self) -> dict[str, Any]:
        """The layer (from 1, as the CLI counts), each frame's share, the maximum and the raw maps ``[T][g][g]``."""
        return {
            "layer": self.layer + 1,
            "max": _significant(float(self.maps.max()) if self.maps.size else 0.0),
            "frame_share": [round(float(s), 6) for s in self.frame_share],
            "maps": [[[_significant(v) for v in row] for row in frame] for frame in self.maps.tolist()],
        }


def _significant(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def video_layers(model: Any) -> nn.ModuleList | None:
    """The TimeSformer layers of the model's video tower, or None for a tower that has none."""
    encoder = model.video_encoder
    return encoder.model.encoder.layer if isinstance(encoder, TimesformerVideoEncoder) else None


def grad_cam(model: Any, pixels: Tensor, mask: Tensor, text: Tensor, layer: int = -1) -> GradCam:
    """Grad-CAM of the cosine similarity of one clip and one text embedding over the tokens of a video layer.

    The model runs in eval mode (and is put back in the mode it was in), in float32 maps. The gradient is taken
    with ``torch.autograd.grad`` with respect to the hooked activation only: no parameter's ``.grad`` is touched,
    and nothing before the layer is differentiated.

    Args:
        model: a :class:`vtr.models.RetrievalModel` with a TimeSformer video tower.
        pixels: float ``[T, 3, S, S]``, the clip as the model takes it (:class:`vtr.viz.frames.Clip`).
        mask: bool ``[T]``, True for a real frame; at least one is.
        text: the caption's retrieval embedding ``[R]`` or ``[1, R]`` (``model.embed_texts``).
        layer: layer of the video tower, Python-indexed (-1: the last).

    Raises:
        ConfigError: the tower is not a TimeSformer, or has no layer ``layer``.
    """
    layers = video_layers(model)
    if layers is None:
        tower = type(model.video_encoder).__name__
        raise ConfigError(f"Grad-CAM needs a TimeSformer video tower; this run's is a {tower}")
    depth = len(layers)
    if not -depth <= layer < depth:
        shown = layer + 1 if layer >= 0 else layer  # as the CLI counts: 1-based
        raise ConfigError(f"the video tower has {depth} layers (1 to {depth}); there is no layer {shown} for Grad-CAM")
    layer %= depth
    captured: list[Tensor] = []

    def keep_activation(module: nn.Module, inputs: Any, output: Any) -> Any:
        # The layer's output replaced by an equal leaf: the gradient is taken with respect to it alone, so neither
        # the parameters nor anything before the layer need one (and a tower with frozen weights works too).
        hidden = (output[0] if isinstance(output, tuple) else output).detach().requires_grad_(True)
        captured.append(hidden)  # [1, 1 + P*T, D], patch-major
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    was_training = model.training
    handle = layers[layer].register_forward_hook(keep_activation)
    device = model.device
    try:
        model.eval()
        with torch.enable_grad():
            encoded = model.encode_video(pixels[None].to(device), mask[None].to(device))
            video = model.retrieval_video_embedding(encoded)[0]  # [R]: the global embedding, and any head's levels
            score = (video.float() * text.reshape(-1).to(device).float()).sum()  # S, a scalar
            (gradient,) = torch.autograd.grad(score, captured[0])  # [1, 1 + P*T, D]
    finally:
        handle.remove()
        model.train(was_training)
    num_frames, grid = pixels.shape[0], model.video_encoder.patch_grid
    activation = _frame_major(captured[0].detach(), num_frames)  # [T, P, D]
    gradient = _frame_major(gradient, num_frames)  # [T, P, D]
    real = mask.to(device).bool()  # [T]
    weights = gradient[real].mean(dim=(0, 1))  # [D]: Eq. 1, the mean over the real tokens
    cam = torch.relu(torch.einsum("tpd,d->tp", activation, weights)) * real[:, None]  # [T, P]: Eq. 2, padding 0
    maps = cam.reshape(num_frames, grid, grid).cpu().numpy()  # [T, g, g]
    return GradCam(layer=layer, similarity=float(score.detach()), maps=maps)


def _frame_major(tokens: Tensor, num_frames: int) -> Tensor:
    """A layer's ``[1, 1 + P*T, D]`` tokens as float32 ``[T, P, D]`` without [CLS]. Layers keep them patch-major
    (token ``1 + p*T + t``), as :meth:`vtr.models.TimesformerVideoEncoder.forward` reads them."""
    return tokens[0, 1:].float().unflatten(0, (-1, num_frames)).transpose(0, 1)
