"""Build a retrieval model from a run config: towers from the registries (random or pretrained), then heads."""

from __future__ import annotations

from vtr.config import RunConfig
from vtr.models.registry import TEXT_ENCODERS, VIDEO_ENCODERS
from vtr.models.retrieval import RetrievalModel


def build_model(config: RunConfig) -> RetrievalModel:
    """The model ``config.model`` describes, for frames of ``config.data.num_frames`` x ``image_size``.

    Pretrained weights named in the config (hub ids, local folders, ``minilm-offline``) are loaded here; a saved
    run is rebuilt with :func:`vtr.models.load_run` instead, which needs nothing but the run folder.

    Raises:
        vtr.errors.ConfigError: unknown encoder or head, inconsistent sizes, pretrained weights not found.
    """
    # The text tower first: it is the cheaper one to fail on (a tokenizer or pretrained id not found).
    text, tokenizer = TEXT_ENCODERS.get(config.model.text.name).from_run_config(config)
    text.freeze_bottom(config.model.text.freeze_layers)
    video = VIDEO_ENCODERS.get(config.model.video.name).from_run_config(config)
    return RetrievalModel(config, video, text, tokenizer)
