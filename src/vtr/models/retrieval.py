"""The retrieval model: a video tower and a text tower in a shared space, and the alignment heads that train them.

Retrieval is a dual encoder: one embedding per video and per text, compared by inner product. That embedding is the
global one (``encode_video`` / ``encode_text``), joined by the embeddings a head adds for its own similarity level
(``AlignmentHead.retrieval_video``), each scaled by the square root of its share of the weights, so that the inner
product is the weighted mean of the level similarities. The fine-grained heads of the dual-alignment paper add none:
they shape the towers during training and cost nothing at query time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vtr.config import RunConfig
from vtr.errors import ConfigError
from vtr.models.heads.base import AlignmentHead, Gather, HeadContext, HeadInputs, TextTower, string_group_ids
from vtr.models.outputs import EncodedText, EncodedVideo, TextEncoderOutput
from vtr.models.registry import HEADS
from vtr.models.text_cache import FrozenTextCache
from vtr.models.text_encoders import TextEncoder
from vtr.models.video_encoders import VideoEncoder

VIDEO_POOLINGS = ("mean", "cls")


def build_heads(config: RunConfig, video_dim: int, text_dim: int) -> tuple[nn.ModuleDict, dict[str, float]]:
    """The heads named in ``config.model.heads`` and their loss weights; ConfigError for unknown names or params."""
    model_cfg = config.model
    heads, weights = nn.ModuleDict(), {}
    if not model_cfg.heads:
        raise ConfigError("model.heads is empty: name at least one alignment head (e.g. global)")
    for spec in model_cfg.heads:
        if spec.name in heads:
            raise ConfigError(f"model.heads names {spec.name!r} twice")
        cls = HEADS.get(spec.name)
        context = HeadContext(
            name=spec.name,
            video_dim=video_dim,
            text_dim=text_dim,
            embed_dim=model_cfg.embed_dim,
            temperature=model_cfg.temperature,
            learn_temperature=model_cfg.learn_temperature,
        )
        try:
            heads[spec.name] = cls(context, **spec.params)
        except TypeError as error:
            raise ConfigError(f"model.heads {spec.name}: bad params {spec.params}: {error}") from None
        except ValueError as error:
            raise ConfigError(f"model.heads {spec.name}: {error}") from None
        weights[spec.name] = float(spec.weight)
    return heads, weights


class RetrievalModel(nn.Module):
    """Video and text towers, linear projections into a shared space of ``embed_dim``, and alignment heads.

    Args:
        config: the run config (kept as ``.config``; its model section decides pooling and heads).
        video_encoder: a registered video tower.
        text_encoder: a registered text tower.
        tokenizer: the text tower's tokenizer (kept as ``.tokenizer``).
    """

    def __init__(
        self, config: RunConfig, video_encoder: VideoEncoder, text_encoder: TextEncoder, tokenizer: Any
    ) -> None:
        super().__init__()
        model_cfg = config.model
        if model_cfg.video_pooling not in VIDEO_POOLINGS:
            raise ConfigError(
                f"model.video_pooling {model_cfg.video_pooling!r}; choose one of {', '.join(VIDEO_POOLINGS)}"
            )
        self.config = config
        self.tokenizer = tokenizer
        self.embed_dim = int(model_cfg.embed_dim)
        self.max_length = int(model_cfg.text.max_length)
        self.video_pooling = model_cfg.video_pooling
        self.video_encoder = video_encoder
        self.text_encoder = text_encoder
        # Sec. III.C.1: "the video embedding sequences and text embedding sequences are initially projected into a
        # shared space through linear projection".
        self.video_proj = nn.Linear(video_encoder.hidden_size, self.embed_dim)
        self.text_proj = nn.Linear(text_encoder.hidden_size, self.embed_dim)
        self.heads, self.head_weights = build_heads(config, video_encoder.hidden_size, text_encoder.hidden_size)
        self.text_cache: FrozenTextCache | None = None

    def use_text_cache(self) -> bool:
        """Memoise the text tower's outputs in training if none of its parameters trains; returns whether it does.

        Equal texts then cost one run of the tower per run instead of one per step (see
        :class:`vtr.models.text_cache.FrozenTextCache`). Evaluation always runs the tower.
        """
        if any(p.requires_grad for p in self.text_encoder.parameters()):
            self.text_cache = None
        elif self.text_cache is None:
            self.text_cache = FrozenTextCache(self.text_encoder)
        return self.text_cache is not None

    def _run_text_tower(self, input_ids: Tensor, attention_mask: Tensor) -> TextEncoderOutput:
        if self.text_cache is not None and self.training:
            return self.text_cache(input_ids, attention_mask)
        return self.text_encoder(input_ids, attention_mask)

    @property
    def required_parts(self) -> bool:
        """Whether a head needs part-of-speech results (CaptionParts); False means tagging can be skipped."""
        return any(head.needs_parts for head in self.heads.values())

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.parameters()).device

    # ----------------------------------------------------------------- encoding (the dual encoder)

    def encode_video(self, frames: Tensor, frame_mask: Tensor | None = None) -> EncodedVideo:
        """Encode frames [B, T, 3, S, S] (float, normalised) with mask bool [B, T] (True = real frame).

        The pooled embedding is the mean over valid frames of the projected per-frame representations
        (Sec. III.C.1), or the projected [CLS] token with ``video_pooling: cls``; L2-normalised.
        """
        if frame_mask is None:
            frame_mask = torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
        frame_mask = frame_mask.to(torch.bool)
        out = self.video_encoder(frames, frame_mask)
        if self.video_pooling == "cls" and out.cls is not None:
            pooled = self.video_proj(out.cls)  # [B, E]
        else:
            projected = self.video_proj(out.frame_features)  # [B, T, E]
            weights = frame_mask.to(projected.dtype)[..., None]  # [B, T, 1]
            pooled = (projected * weights).sum(1) / weights.sum(1).clamp(min=1)  # [B, E]
        return EncodedVideo(
            tokens=out.tokens,
            token_mask=out.token_mask,
            pooled=F.normalize(pooled, dim=-1),
            frame_features=out.frame_features,
            frame_mask=frame_mask,
        )

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor, tower: TextTower | None = None) -> EncodedText:
        """Encode token ids [B, L] with mask [B, L]; pooled = the projected sentence representation ([CLS] or the
        token mean, ``model.text.pooling``), L2-normalised. ``tower`` runs the text tower instead of the model's
        own call (e.g. a :class:`vtr.models.text_cache.FrozenTextCache` when the same texts come back)."""
        out = (tower if tower is not None else self._run_text_tower)(input_ids, attention_mask)
        pooled = F.normalize(self.text_proj(out.pooled), dim=-1)  # [B, E]
        return EncodedText(tokens=out.tokens, token_mask=out.token_mask, pooled=pooled)

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Token ids and attention mask [N, L] (padded to the longest, truncated at ``model.text.max_length``)."""
        encoded = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    @property
    def retrieval_dim(self) -> int:
        """Dimension of the retrieval embeddings (``embed_texts`` / ``embed_videos``): ``embed_dim`` times one plus the
        number of levels the heads add."""
        return self.embed_dim * (1 + sum(head.retrieval_levels for head in self.heads.values()))

    def retrieval_video_embedding(self, video: EncodedVideo) -> Tensor:
        """The retrieval embedding [B, R] of encoded videos: the global one, joined by the heads' levels."""
        extra = [item for head in self.heads.values() for item in head.retrieval_video(video)]
        return _join_levels(video.pooled, extra)

    def retrieval_text_embedding(self, text: EncodedText) -> Tensor:
        """The retrieval embedding [B, R] of encoded texts (see :meth:`retrieval_video_embedding`)."""
        extra = [item for head in self.heads.values() for item in head.retrieval_text(text)]
        return _join_levels(text.pooled, extra)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], batch_size: int = 256) -> Tensor:
        """Retrieval embeddings [N, R] of ``texts`` (eval mode, no gradient), on the model's device."""
        was_training = self.training
        self.eval()
        try:
            chunks = []
            for start in range(0, len(texts), batch_size):
                tokens = self.tokenize(texts[start : start + batch_size])
                tokens = {k: v.to(self.device) for k, v in tokens.items()}
                encoded = self.encode_text(tokens["input_ids"], tokens["attention_mask"])
                chunks.append(self.retrieval_text_embedding(encoded))
            if not chunks:
                return torch.zeros(0, self.retrieval_dim, device=self.device)
            return torch.cat(chunks)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def embed_videos(self, frames: Tensor, frame_mask: Tensor | None = None) -> Tensor:
        """Retrieval embeddings [B, R] of frames [B, T, 3, S, S] (eval mode, no gradient), on the model's device."""
        was_training = self.training
        self.eval()
        try:
            frames = frames.to(self.device)
            frame_mask = None if frame_mask is None else frame_mask.to(self.device)
            return self.retrieval_video_embedding(self.encode_video(frames, frame_mask))
        finally:
            self.train(was_training)

    # ----------------------------------------------------------------- training

    def text_batch(self, captions: Sequence[str], parts: Sequence[Any] | None = None) -> dict[str, Tensor]:
        """The text tensors of a training batch: tokenised captions, caption groups, and every head's own inputs.

        Args:
            captions: the batch's captions, in batch order.
            parts: their :class:`vtr.text.CaptionParts` (needed when :attr:`required_parts`).

        Returns:
            ``input_ids``, ``attention_mask`` [B, L], ``caption_group`` [B] (equal for identical captions), and for
            each fine-grained head ``<name>_query_ids/_query_mask/_target_ids/_target_mask/_valid/_group``.
        """
        if self.required_parts and parts is None:
            names = [name for name, head in self.heads.items() if head.needs_parts]
            raise ValueError(f"heads {', '.join(names)} need CaptionParts: pass parts to text_batch")
        out = self.tokenize(captions)
        out["caption_group"] = string_group_ids(captions)
        for head in self.heads.values():
            out.update(head.text_batch(captions, parts, self.tokenize))
        return out

    def set_epoch(self, epoch: int) -> None:
        """Tell every head which training epoch starts (0-based); the training loop calls it before each epoch."""
        for head in self.heads.values():
            head.set_epoch(epoch)

    def forward(
        self, batch: dict[str, Any], gather: Gather | None = None, return_embeddings: bool = False
    ) -> dict[str, Tensor]:
        """Every head's loss on a batch, and their weighted sum (Eq. 7: L = L1 + lambda2 L2 + lambda3 L3).

        Args:
            batch: ``frames`` [B, T, 3, S, S], ``frame_mask`` [B, T], ``video_index`` [B] (optional), and the output
                of :meth:`text_batch`.
            gather: for multi-process training, concatenates a tensor over processes (with gradient); heads use it
                so that negatives come from the global batch.
            return_embeddings: also return ``video_embeds`` and ``text_embeds`` [B, E].

        Returns:
            ``"<head>_loss"`` (unweighted), ``"<head>_count"`` (items that took part; 0 = the term was absent),
            other per-head scalars (``"global_temperature"``), and ``"loss"``, the weighted total.
        """
        video = self.encode_video(batch["frames"], batch.get("frame_mask"))
        text = self.encode_text(batch["input_ids"], batch["attention_mask"])
        inputs = self.head_inputs(batch, video, text, gather)
        out: dict[str, Tensor] = {}
        total: Tensor | None = None
        for name, head in self.heads.items():
            terms = head(inputs)
            loss = terms.pop("loss")
            out[f"{name}_loss"] = loss
            for key, value in terms.items():
                out[f"{name}_{key}"] = value
            weighted = self.head_weights[name] * loss
            total = weighted if total is None else total + weighted
        assert total is not None  # build_heads refuses an empty head list
        out["loss"] = total
        if return_embeddings:
            out["video_embeds"], out["text_embeds"] = video.pooled, text.pooled
        return out

    def head_inputs(
        self,
        batch: dict[str, Any],
        video: EncodedVideo,
        text: EncodedText,
        gather: Gather | None = None,
        tower: TextTower | None = None,
    ) -> HeadInputs:
        """What the heads see of a batch (:class:`HeadInputs`): in training, and when evaluation re-ranks
        (``tower`` as in :meth:`encode_text`)."""
        encode = tower if tower is not None else self._run_text_tower
        return HeadInputs(batch=batch, video=video, text=text, encode_text_tokens=encode, gather=gather)

    def head(self, name: str) -> AlignmentHead:
        """The head called ``name``."""
        return self.heads[name]


def _join_levels(pooled: Tensor, extra: list[tuple[Tensor, float]]) -> Tensor:
    """``pooled`` [B, E] alone, or joined with each extra level [B, E] (weight w), every part scaled by
    sqrt(w / total weight) with weight 1 for ``pooled``: unit rows whose inner product is the weighted mean of the
    level cosines."""
    if not extra:
        return pooled
    total = 1.0 + sum(weight for _, weight in extra)
    parts = [pooled * math.sqrt(1.0 / total)] + [level * math.sqrt(weight / total) for level, weight in extra]
    return torch.cat(parts, dim=-1)
