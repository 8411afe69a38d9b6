"""Video towers: the interface every registered video encoder implements, and TimeSformer (Sec. III.B.1).

A video encoder turns frames [B, T, 3, S, S] into video tokens [B, L, D] (what cross-modal heads attend to), a token
mask, and per-frame features [B, T, D] (what the global embedding pools). A per-frame image encoder followed by a
temporal module (CLIP-style) implements the same interface and is registered with
:func:`vtr.models.registry.register_video_encoder`; nothing else in the model changes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from vtr.config import RunConfig
from vtr.errors import ConfigError
from vtr.models.conv_stem import check_stem, check_stem_norm, install_stem
from vtr.models.outputs import VideoEncoderOutput
from vtr.models.registry import register_video_encoder

# How a frame's feature is made from its patch tokens: their mean (Sec. III.C.1), or their maximum per channel, which
# keeps what a small object contributes to a few patches from being averaged away by the background.
PATCH_POOLINGS = ("mean", "max")


class VideoEncoder(nn.Module):
    """Base class of the video-encoder registry.

    Subclasses set ``hidden_size`` (D) and ``num_frames`` (T) and implement the four methods below. Building from a
    run config may load pretrained weights; building from a tower config never touches the network (that is how
    :func:`vtr.models.load_run` rebuilds a saved model before loading its weights).
    """

    hidden_size: int
    num_frames: int

    @classmethod
    def from_run_config(cls, config: RunConfig) -> VideoEncoder:
        """Build the tower a run config asks for (random weights, or ``model.video.pretrained``)."""
        raise NotImplementedError

    @classmethod
    def from_tower_config(cls, config: RunConfig, tower_config: dict[str, Any]) -> VideoEncoder:
        """Rebuild, with random weights, a tower saved by :meth:`tower_config`."""
        raise NotImplementedError

    def tower_config(self) -> dict[str, Any]:
        """A JSON-able description from which :meth:`from_tower_config` rebuilds the same architecture."""
        raise NotImplementedError

    def forward(self, frames: Tensor, frame_mask: Tensor | None = None) -> VideoEncoderOutput:
        """Encode frames [B, T, 3, S, S] with mask bool [B, T] (True = real frame)."""
        raise NotImplementedError


def _timesformer_classes() -> tuple[Any, Any]:
    from transformers import TimesformerConfig, TimesformerModel

    return TimesformerConfig, TimesformerModel


def _with_stem(model: nn.Module) -> nn.Module:
    """The model with the stem its config names (``vtr_stem``, ``vtr_stem_norm`` and ``vtr_stem_colour``; configs
    from before they existed mean ``patch``, ``group`` and no colour path)."""
    cfg = model.config
    stem, norm = getattr(cfg, "vtr_stem", "patch"), getattr(cfg, "vtr_stem_norm", "group")
    install_stem(model, stem, norm, bool(getattr(cfg, "vtr_stem_colour", False)))
    return model


@register_video_encoder("timesformer")
class TimesformerVideoEncoder(VideoEncoder):
    """TimeSformer with divided space-time attention, a [CLS] token and learned space and time embeddings.

    Token layout of the output: ``[CLS]`` then ``T x P`` patch tokens, frame-major (token ``1 + t * P + p`` is patch
    ``p`` of frame ``t``), after the final layer norm. The per-frame feature is the mean of a frame's patch tokens.

    With ``model.video.stem`` set to ``conv`` or ``conv3d``, a convolutional stem (:mod:`vtr.models.conv_stem`) makes
    the patch tokens in place of the linear patch embedding; the token layout is the same.

    TimeSformer has no attention mask, so padded frames take part in temporal attention; the data pipeline pads by
    repeating real frames, and padded frames are masked out of pooling and of the cross-modal heads' keys.

    Args:
        model: a ``transformers.TimesformerModel`` whose config has the run's ``num_frames`` and ``image_size``.
    """

    def __init__(self, model: nn.Module, patch_pooling: str = "mean") -> None:
        super().__init__()
        if patch_pooling not in PATCH_POOLINGS:
            raise ConfigError(
                f"model.video.patch_pooling must be one of {', '.join(PATCH_POOLINGS)}, got {patch_pooling!r}"
            )
        self.model = model
        self.patch_pooling = patch_pooling
        cfg = model.config
        self.hidden_size = int(cfg.hidden_size)
        self.num_frames = int(cfg.num_frames)
        self.image_size = int(cfg.image_size)
        self.patch_grid = self.image_size // int(cfg.patch_size)  # patches per side

    @property
    def patches_per_frame(self) -> int:
        """P, the number of patch tokens of one frame."""
        return self.patch_grid * self.patch_grid

    @classmethod
    def from_run_config(cls, config: RunConfig) -> TimesformerVideoEncoder:
        video, data = config.model.video, config.data
        check_stem(video.stem)
        check_stem_norm(video.stem_norm)
        if video.stem == "patch" and video.stem_norm != "group":
            raise ConfigError(
                f"model.video.stem_norm {video.stem_norm!r} is the normalisation of a convolutional stem; "
                "model.video.stem is 'patch', which has none (set stem: conv or conv3d)"
            )
        if video.stem == "patch" and video.stem_colour:
            raise ConfigError(
                "model.video.stem_colour is a side path of a convolutional stem; model.video.stem is 'patch', whose "
                "linear patch embedding sees colour already (set stem: conv or conv3d)"
            )
        if video.pretrained:
            from vtr.models.pretrained import load_pretrained_timesformer

            if video.stem != "patch":
                raise ConfigError(
                    f"model.video.stem {video.stem!r} replaces the patch embedding: it is for a TimeSformer trained "
                    f"from scratch, not for pretrained weights ({video.pretrained})"
                )
            pretrained = load_pretrained_timesformer(video.pretrained, data.num_frames, data.image_size, video.dropout)
            return cls(pretrained, video.patch_pooling)
        if data.image_size % video.patch_size:
            raise ConfigError(
                f"data.image_size {data.image_size} is not a multiple of model.video.patch_size {video.patch_size}"
            )
        if video.hidden_size % video.num_attention_heads:
            raise ConfigError(
                f"model.video.hidden_size {video.hidden_size} is not divisible by num_attention_heads "
                f"{video.num_attention_heads}"
            )
        TimesformerConfig, TimesformerModel = _timesformer_classes()
        hf_config = TimesformerConfig(
            image_size=data.image_size,
            patch_size=video.patch_size,
            num_frames=data.num_frames,
            hidden_size=video.hidden_size,
            num_hidden_layers=video.num_hidden_layers,
            num_attention_heads=video.num_attention_heads,
            intermediate_size=video.intermediate_size,
            hidden_dropout_prob=video.dropout,
            attention_probs_dropout_prob=video.dropout,
            attention_type="divided_space_time",
            vtr_stem=video.stem,
            vtr_stem_norm=video.stem_norm,
            vtr_stem_colour=video.stem_colour,
        )
        return cls(_with_stem(TimesformerModel(hf_config)), video.patch_pooling)

    @classmethod
    def from_tower_config(cls, config: RunConfig, tower_config: dict[str, Any]) -> TimesformerVideoEncoder:
        TimesformerConfig, TimesformerModel = _timesformer_classes()
        hf_config = TimesformerConfig.from_dict(tower_config)
        return cls(_with_stem(TimesformerModel(hf_config)), config.model.video.patch_pooling)

    def tower_config(self) -> dict[str, Any]:
        return self.model.config.to_dict()

    def forward(self, frames: Tensor, frame_mask: Tensor | None = None) -> VideoEncoderOutput:
        batch, num_frames, _, height, width = frames.shape
        if num_frames != self.num_frames or height != self.image_size or width != self.image_size:
            raise ValueError(
                f"TimeSformer was built for {self.num_frames} frames of {self.image_size}x{self.image_size}, "
                f"got frames of shape {tuple(frames.shape)}"
            )
        if frame_mask is None:
            frame_mask = torch.ones(batch, num_frames, dtype=torch.bool, device=frames.device)
        hidden = self.model(pixel_values=frames).last_hidden_state  # [B, 1 + P*T, D], patch-major
        cls_token = hidden[:, 0]  # [B, D]
        patches = hidden[:, 1:].unflatten(1, (self.patches_per_frame, num_frames))  # [B, P, T, D]
        patches = patches.transpose(1, 2)  # [B, T, P, D]
        if self.patch_pooling == "max":
            frame_features = patches.amax(dim=2)  # [B, T, D]
        else:
            frame_features = patches.mean(dim=2)  # [B, T, D]
        tokens = torch.cat([cls_token[:, None], patches.flatten(1, 2)], dim=1)  # [B, 1 + T*P, D], frame-major
        patch_mask = frame_mask.bool().repeat_interleave(self.patches_per_frame, dim=1)  # [B, T*P]
        token_mask = torch.cat([patch_mask.new_ones(batch, 1), patch_mask], dim=1)  # [B, 1 + T*P]
        return VideoEncoderOutput(tokens=tokens, token_mask=token_mask, frame_features=frame_features, cls=cls_token)
