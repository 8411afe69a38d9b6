"""Where a fine-grained head looks: the cross-attention of its query (the caption with its nouns or verbs removed)
over the video tokens (Sec. III.C.2, Eq. 2; the paper's Fig. 3 shows the same layer through Grad-CAM).

A noun (verb) head is trained to recover the removed words from the video alone, so the video tokens its query
attends to are the evidence it uses. The map of one layer is averaged over the attention heads, then over the real
tokens of the query; it sums to 1 over the video's real tokens and is 0 on the tokens of padded frames (they are
masked out of the keys). With the TimeSformer token layout (``[CLS]``, then ``T x P`` patch tokens, frame-major)
it becomes a ``g x g`` patch map per frame and an attention mass per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vtr.errors import ConfigError
from vtr.models.outputs import EncodedVideo


@dataclass(frozen=True)
class TokenLayout:
    """How a video tower's tokens map onto frames: ``offset`` leading tokens ([CLS]), then ``T`` frames of
    ``grid x grid`` patch tokens, frame-major, each frame's patches row-major."""

    offset: int
    num_frames: int
    grid: int

    @property
    def patches(self) -> int:
        """P, patch tokens per frame."""
        return self.grid * self.grid


def token_layout(video_encoder: Any, num_tokens: int, num_frames: int) -> TokenLayout | None:
    """The layout of ``num_tokens`` video tokens of ``num_frames`` frames, or None when it cannot be told.

    Uses the encoder's ``patch_grid`` when it has one (:class:`vtr.models.TimesformerVideoEncoder`); otherwise
    accepts ``[CLS] + T x g x g`` or ``T x g x g`` tokens for a whole number ``g``.
    """
    grid = getattr(video_encoder, "patch_grid", None)
    for offset in (1, 0):
        per_frame, extra = divmod(num_tokens - offset, num_frames)
        if extra or per_frame < 1:
            continue
        side = math.isqrt(per_frame)
        if side * side == per_frame and (grid is None or side == grid):
            return TokenLayout(offset=offset, num_frames=num_frames, grid=side)
    return None


@dataclass
class HeadAttention:
    """One fine-grained head's view of a (video, caption) pair.

    Attributes:
        head: the head's name in the config (``"noun"``, ``"verb"``).
        part: the part of speech it removes (``"nouns"``, ``"verbs"``).
        words: the words removed from the caption (empty when it has none: the head then has nothing to recover,
            the caption takes no part in its loss, and no map is computed).
        query: the caption without (or with masked) words: the head's query.
        layer: 0-based layer of the multimodal encoder the map comes from.
        word_score: cosine similarity of x (the query after attending to the video) and y (the removed words through
            the text encoder), the pair the head's InfoNCE aligns (Eq. 5, 6); None without words.
        token_attention: float ``[Lq, Lv]``: each real query token's attention over the video tokens, averaged over
            the attention heads; rows sum to 1.
        attention: float ``[Lv]``: ``token_attention`` averaged over the query tokens.
        frame_maps: float ``[T, g, g]``: ``attention`` on each frame's patches (None when the layout is unknown).
        frame_mass: float ``[T]``: the attention on each frame (sum of its patch map).
        cls_mass: the attention on the video's [CLS] token (0 without one).
    """

    head: str
    part: str
    words: tuple[str, ...]
    query: str
    layer: int
    word_score: float | None = None
    token_attention: np.ndarray | None = None
    attention: np.ndarray | None = None
    frame_maps: np.ndarray | None = None
    frame_mass: np.ndarray | None = None
    cls_mass: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary: words, query, score and the per-frame attention (no full maps)."""
        return {
            "head": self.head,
            "part": self.part,
            "words_removed": list(self.words),
            "query": self.query,
            "layer": self.layer + 1,
            "word_score": self.word_score,
            "frame_attention": None if self.frame_mass is None else [round(float(m), 6) for m in self.frame_mass],
            "cls_attention": round(float(self.cls_mass), 6),
        }


def attention_heads(model: Any) -> list[str]:
    """Names of the model's heads whose query attends to the video tokens (the fine-grained heads)."""
    return [
        name
        for name, head in model.heads.items()
        if getattr(head, "uses_video_tokens", False) and hasattr(head, "removed") and hasattr(head, "encoder")
    ]


@torch.no_grad()
def head_attention(
    model: Any, name: str, video: EncodedVideo, parts: Any, layer: int = -1, layout: TokenLayout | None = None
) -> HeadAttention:
    """The cross-attention of head ``name``'s query over one encoded video.

    Args:
        model: a :class:`vtr.models.RetrievalModel` in eval mode.
        name: a head of :func:`attention_heads`.
        video: the encoded video, a batch of one (``tokens`` [1, Lv, D], ``token_mask`` [1, Lv]).
        parts: the caption's :class:`vtr.text.CaptionParts`.
        layer: layer of the multimodal encoder, Python-indexed (-1: the last).
        layout: the video token layout, for per-frame maps (None: ``token_attention`` and ``attention`` only).

    Raises:
        ConfigError: ``layer`` is not a layer of the head's encoder.
    """
    head = model.heads[name]
    depth = len(head.encoder.layers)
    if not -depth <= layer < depth:
        shown = layer + 1 if layer >= 0 else layer  # as the CLI counts: 1-based
        raise ConfigError(f"head {name} has {depth} cross-attention layers (1 to {depth}); there is no layer {shown}")
    layer = layer % depth
    words, query_text, has_words = head.removed(parts)
    result = HeadAttention(head=name, part=head.part, words=tuple(words), query=query_text, layer=layer)
    if not has_words:
        return result
    batch = {k: v.to(model.device) for k, v in head.text_batch([parts.caption], [parts], model.tokenize).items()}
    query = model.text_encoder(batch[f"{name}_query_ids"], batch[f"{name}_query_mask"])  # tokens [1, Lq, Dt]
    hidden, maps = head.encoder(
        query.tokens, query.token_mask, video.tokens, video.token_mask, need_weights=True
    )  # [1, Lq, W], per layer [1, heads, Lq, Lv]
    x = torch.nn.functional.normalize(head.video_side_proj(head.pool(hidden, query.token_mask)), dim=-1)  # [1, E]
    target = model.text_encoder(batch[f"{name}_target_ids"], batch[f"{name}_target_mask"])
    y = torch.nn.functional.normalize(head.text_side_proj(target.pooled), dim=-1)  # [1, E]
    real_query = query.token_mask[0].bool()  # [Lq]
    token_attention = maps[layer][0].float().mean(0)[real_query]  # [Lq_real, Lv], mean over attention heads
    attention = token_attention.mean(0)  # [Lv]
    result.word_score = float((x * y).sum())
    result.token_attention = token_attention.cpu().numpy()
    result.attention = attention.cpu().numpy()
    if layout is not None:
        patches = result.attention[layout.offset :].reshape(layout.num_frames, layout.grid, layout.grid)
        result.frame_maps = patches  # [T, g, g]
        result.frame_mass = patches.sum(axis=(1, 2))  # [T]
        result.cls_mass = float(result.attention[: layout.offset].sum())
    return result
