"""Initialise TimeSformer from image ViT weights, as the paper does with ImageNet-21k ViT (Sec. IV.B).

Follows the TimeSformer reference code: patch embedding, [CLS], spatial position embeddings and every spatial block
(attention, MLP, layer norms) are copied; temporal attention starts as a copy of the spatial attention (or from its
random initialisation) and its output layer ``temporal_dense`` starts at zero, and time embeddings start at zero. The
temporal branch therefore adds nothing at first: on a video of identical frames the model computes exactly what the
ViT computes on one frame, and training grows the temporal modelling from there. (The reference code leaves the first
block's temporal output layer random; every block starts at zero here, so that the equivalence holds.)
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TEMPORAL_INITS = ("copy", "zero")

# Per-layer ViT parameters under the names of transformers >= 5 (``layers.i.attention.q_proj``) and of older
# checkpoints and versions (``encoder.layer.i.attention.attention.query``), both mapped to one short name.
_LAYER_PATTERNS = {
    r"layers\.(\d+)\.attention\.q_proj\.(weight|bias)": "q",
    r"layers\.(\d+)\.attention\.k_proj\.(weight|bias)": "k",
    r"layers\.(\d+)\.attention\.v_proj\.(weight|bias)": "v",
    r"layers\.(\d+)\.attention\.o_proj\.(weight|bias)": "o",
    r"layers\.(\d+)\.mlp\.fc1\.(weight|bias)": "fc1",
    r"layers\.(\d+)\.mlp\.fc2\.(weight|bias)": "fc2",
    r"layers\.(\d+)\.layernorm_before\.(weight|bias)": "ln1",
    r"layers\.(\d+)\.layernorm_after\.(weight|bias)": "ln2",
    r"encoder\.layer\.(\d+)\.attention\.attention\.query\.(weight|bias)": "q",
    r"encoder\.layer\.(\d+)\.attention\.attention\.key\.(weight|bias)": "k",
    r"encoder\.layer\.(\d+)\.attention\.attention\.value\.(weight|bias)": "v",
    r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)": "o",
    r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)": "fc1",
    r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)": "fc2",
    r"encoder\.layer\.(\d+)\.layernorm_before\.(weight|bias)": "ln1",
    r"encoder\.layer\.(\d+)\.layernorm_after\.(weight|bias)": "ln2",
}
_GLOBAL_NAMES = {
    "embeddings.cls_token": "embeddings.cls_token",
    "embeddings.patch_embeddings.projection.weight": "embeddings.patch_embeddings.projection.weight",
    "embeddings.patch_embeddings.projection.bias": "embeddings.patch_embeddings.projection.bias",
    "layernorm.weight": "layernorm.weight",
    "layernorm.bias": "layernorm.bias",
}


def _normalise_vit_keys(vit_state_dict: dict[str, Tensor]) -> tuple[dict[tuple[int, str, str], Tensor], dict]:
    """Split a ViT state dict into per-layer tensors keyed (layer, short name, weight|bias) and global tensors."""
    layers: dict[tuple[int, str, str], Tensor] = {}
    global_tensors: dict[str, Tensor] = {}
    for key, tensor in vit_state_dict.items():
        key = key.removeprefix("vit.")  # ViTForImageClassification / ViTForMaskedImageModeling checkpoints
        if key in _GLOBAL_NAMES or key == "embeddings.position_embeddings":
            global_tensors[key] = tensor
            continue
        for pattern, short in _LAYER_PATTERNS.items():
            match = re.fullmatch(pattern, key)
            if match:
                layers[(int(match.group(1)), short, match.group(2))] = tensor
                break
    return layers, global_tensors


def resize_position_embeddings(position_embeddings: Tensor, grid: int) -> Tensor:
    """Resize ``[1, 1 + g*g, D]`` position embeddings to a ``grid x grid`` patch grid (bicubic), keeping [CLS]."""
    cls_pos, patch_pos = position_embeddings[:, :1], position_embeddings[:, 1:]
    old_grid = math.isqrt(patch_pos.shape[1])
    if old_grid == grid:
        return position_embeddings
    dim = patch_pos.shape[-1]
    patch_pos = patch_pos.reshape(1, old_grid, old_grid, dim).permute(0, 3, 1, 2)  # [1, D, g, g]
    patch_pos = F.interpolate(patch_pos.float(), size=(grid, grid), mode="bicubic", align_corners=False)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).to(position_embeddings.dtype)
    return torch.cat([cls_pos, patch_pos], dim=1)


def timesformer_config_from_vit(vit_config: Any, num_frames: int, image_size: int, dropout: float = 0.0) -> Any:
    """A divided space-time ``TimesformerConfig`` with the ViT's widths, depth, patch size and layer-norm epsilon."""
    from transformers import TimesformerConfig

    return TimesformerConfig(
        image_size=image_size,
        patch_size=vit_config.patch_size,
        num_channels=vit_config.num_channels,
        num_frames=num_frames,
        hidden_size=vit_config.hidden_size,
        num_hidden_layers=vit_config.num_hidden_layers,
        num_attention_heads=vit_config.num_attention_heads,
        intermediate_size=vit_config.intermediate_size,
        hidden_act=vit_config.hidden_act,
        layer_norm_eps=vit_config.layer_norm_eps,
        qkv_bias=getattr(vit_config, "qkv_bias", True),
        initializer_range=vit_config.initializer_range,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        attention_type="divided_space_time",
    )


def timesformer_from_vit(vit_state_dict: dict[str, Tensor], config: Any, temporal_init: str = "copy") -> nn.Module:
    """A ``TimesformerModel`` built from ``config`` with its weights taken from a ViT state dict.

    Args:
        vit_state_dict: the state dict of a ``ViTModel`` (or of a ViT classifier, keys prefixed ``vit.``); key names
            of transformers 5 and of older versions are both understood.
        config: a divided space-time ``TimesformerConfig`` whose widths and depth match the ViT (see
            :func:`timesformer_config_from_vit`); position embeddings are resized to its image size.
        temporal_init: ``"copy"``: temporal attention and its layer norm start as copies of the spatial ones (the
            TimeSformer reference code); ``"zero"``: they keep their random initialisation. In both cases
            ``temporal_dense`` starts at zero, so the temporal branch is initially the identity.

    Returns:
        The TimeSformer model (its config is ``config``).

    Raises:
        ValueError: the ViT does not match the config (depth, width, missing tensors) or ``temporal_init`` is unknown.
    """
    from transformers import TimesformerModel

    if temporal_init not in TEMPORAL_INITS:
        raise ValueError(f"unknown temporal_init {temporal_init!r}; choose one of {', '.join(TEMPORAL_INITS)}")
    if config.attention_type != "divided_space_time":
        raise ValueError("timesformer_from_vit needs attention_type='divided_space_time'")
    layers, global_tensors = _normalise_vit_keys(vit_state_dict)
    depth = 1 + max((layer for layer, _, _ in layers), default=-1)
    if depth != config.num_hidden_layers:
        raise ValueError(f"the ViT has {depth} layers, the TimeSformer config {config.num_hidden_layers}")
    missing = [name for name in [*_GLOBAL_NAMES, "embeddings.position_embeddings"] if name not in global_tensors]
    if missing:
        raise ValueError(f"the ViT state dict lacks {', '.join(missing)}")

    model = TimesformerModel(config)
    state = {key: value.clone() for key, value in model.state_dict().items()}
    for vit_name, ts_name in _GLOBAL_NAMES.items():
        state[ts_name] = global_tensors[vit_name]
    grid = config.image_size // config.patch_size
    state["embeddings.position_embeddings"] = resize_position_embeddings(
        global_tensors["embeddings.position_embeddings"], grid
    )
    state["embeddings.time_embeddings"] = torch.zeros_like(state["embeddings.time_embeddings"])

    for i in range(depth):
        prefix = f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            try:
                q, k, v = (layers[(i, name, kind)] for name in ("q", "k", "v"))
                qkv = torch.cat([q, k, v], dim=0)  # TimeSformer's fused projection: rows [query; key; value]
                spatial = {
                    "attention.attention.qkv": qkv,
                    "attention.output.dense": layers[(i, "o", kind)],
                    "intermediate.dense": layers[(i, "fc1", kind)],
                    "output.dense": layers[(i, "fc2", kind)],
                    "layernorm_before": layers[(i, "ln1", kind)],
                    "layernorm_after": layers[(i, "ln2", kind)],
                }
            except KeyError as error:
                raise ValueError(f"the ViT state dict lacks layer {i} tensor {error.args[0]}") from None
            for name, tensor in spatial.items():
                state[f"{prefix}{name}.{kind}"] = tensor
            if temporal_init == "copy":
                state[f"{prefix}temporal_attention.attention.qkv.{kind}"] = qkv
                state[f"{prefix}temporal_attention.output.dense.{kind}"] = layers[(i, "o", kind)]
                state[f"{prefix}temporal_layernorm.{kind}"] = layers[(i, "ln1", kind)]
            dense = f"{prefix}temporal_dense.{kind}"
            state[dense] = torch.zeros_like(state[dense])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"the ViT weights do not fit the TimeSformer config: {error}") from None
    return model
