"""Retrieval models: video and text towers (Hugging Face ``transformers``), the dual encoder, alignment heads.

``build_model(config)`` makes a model from a run config; ``save_model`` / ``load_run`` write and rebuild it from a
run folder. New video encoders and heads join through ``register_video_encoder`` and ``register_head``.
"""

from __future__ import annotations

from vtr.models.factory import build_model
from vtr.models.heads import AlignmentHead, HeadContext, HeadInputs
from vtr.models.outputs import EncodedText, EncodedVideo, TextEncoderOutput, VideoEncoderOutput
from vtr.models.persistence import load_run, save_model
from vtr.models.registry import (
    HEADS,
    TEXT_ENCODERS,
    VIDEO_ENCODERS,
    register_head,
    register_text_encoder,
    register_video_encoder,
)
from vtr.models.retrieval import RetrievalModel
from vtr.models.text_encoders import HFTextEncoder, TextEncoder
from vtr.models.video_encoders import TimesformerVideoEncoder, VideoEncoder
from vtr.models.vit_to_timesformer import timesformer_from_vit

__all__ = [
    "HEADS",
    "TEXT_ENCODERS",
    "VIDEO_ENCODERS",
    "AlignmentHead",
    "EncodedText",
    "EncodedVideo",
    "HFTextEncoder",
    "HeadContext",
    "HeadInputs",
    "RetrievalModel",
    "TextEncoder",
    "TextEncoderOutput",
    "TimesformerVideoEncoder",
    "VideoEncoder",
    "VideoEncoderOutput",
    "build_model",
    "list_heads",
    "list_video_encoders",
    "load_run",
    "register_head",
    "register_text_encoder",
    "register_video_encoder",
    "save_model",
    "timesformer_from_vit",
]


def list_heads() -> list[str]:
    """Names of the registered alignment heads."""
    return HEADS.names()


def list_video_encoders() -> list[str]:
    """Names of the registered video encoders."""
    return VIDEO_ENCODERS.names()
