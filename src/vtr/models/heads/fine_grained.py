"""L2 and L3, fine-grained noun and verb alignment (Sec. III.C.2, Fig. 2, Eq. 5 and 6).

The caption with its nouns (verbs) removed goes through the text encoder; a multimodal encoder lets those tokens
attend to the video tokens and yields x_n, "the noun as seen in the video". The removed nouns, joined, go through the
text encoder and give y_n. Two separate linear layers map x_n and y_n into a common space, and InfoNCE over the batch
aligns them. The only way to predict the missing words is from the video, so the gradient shapes the video encoder.

Choices where the paper is silent, and what they rest on:

- Depth 3: "we employ Grad-CAM to visualize the third layer of the multimodal encoder" (Sec. V.A) implies at least
  three layers. Heads 8: "eight attention heads" (Sec. IV.B).
- Width: that of the text tokens, since they are the queries ("the linear transformation of the noun text sequence
  is treated as the query").
- x_n pooling: the first output token, as the text side is read everywhere else ("extracts the representation by
  taking the first [CLS] token", Sec. III.C.1); ``pooling="mean"`` averages the valid output tokens instead.
- y_n: the [CLS] token of the text encoder over the removed words joined by spaces ("the nouns, removed from the
  text, are also processed through the text encoder").
- One multimodal encoder per head: the paper describes the noun and the verb branch as "the same operation".
- Direction: x -> y as written in Eq. 5 (each x_n normalised over the y of the batch); ``symmetric=True`` adds y -> x.
- A caption without a noun (verb) has nothing to align and is left out of the loss (not counted as a zero); a batch
  with none gives a zero loss that still touches the head's parameters. Identical noun strings in a batch are
  positives of one another (multi-positive InfoNCE), never negatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vtr.errors import ConfigError
from vtr.losses import POSITIVE_MODES, contrastive_loss, group_positives
from vtr.models.heads.base import (
    AlignmentHead,
    HeadContext,
    HeadInputs,
    Temperature,
    Tokenize,
    string_group_ids,
    zero_loss,
)
from vtr.models.heads.cross_modal import CrossModalEncoder
from vtr.models.outputs import EncodedVideo, TextEncoderOutput
from vtr.models.registry import register_head

REMOVALS = ("delete", "mask")
POOLINGS = ("cls", "mean")


class WordAlignmentHead(AlignmentHead):
    """Align words of one part of speech (``part`` = ``"nouns"`` or ``"verbs"``) removed from the caption.

    Args:
        context: sizes and defaults from the model.
        removal: ``"delete"`` the words (``CaptionParts.without_nouns``) or ``"mask"`` them (``masked_nouns``).
        depth: layers of the multimodal encoder.
        num_heads: attention heads of the multimodal encoder.
        width: width of the multimodal encoder; the text tower's width when None.
        mlp_ratio: MLP width of the multimodal encoder / its width.
        dropout: dropout of the multimodal encoder.
        pooling: ``"cls"`` (first output token) or ``"mean"`` (mean of the valid output tokens) for x_n.
        temperature: tau; the model's when None.
        learn_temperature: learn tau; the model's setting when None.
        min_temperature: the clamp of a learned tau.
        symmetric: add the y -> x direction to Eq. 5's x -> y.
        positive_mode: how several positives of a row are scored (``vtr.losses.multi_positive_info_nce``).
    """

    needs_parts = True
    uses_video_tokens = True
    scores_pairs = True
    part = "nouns"

    def __init__(
        self,
        context: HeadContext,
        removal: str = "delete",
        depth: int = 3,
        num_heads: int = 8,
        width: int | None = None,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        pooling: str = "cls",
        temperature: float | None = None,
        learn_temperature: bool | None = None,
        min_temperature: float = 0.01,
        symmetric: bool = False,
        positive_mode: str = "each",
    ) -> None:
        super().__init__(context)
        if removal not in REMOVALS:
            raise ConfigError(f"head {context.name}: removal {removal!r}, choose one of {', '.join(REMOVALS)}")
        if pooling not in POOLINGS:
            raise ConfigError(f"head {context.name}: pooling {pooling!r}, choose one of {', '.join(POOLINGS)}")
        if positive_mode not in POSITIVE_MODES:
            raise ConfigError(
                f"head {context.name}: positive_mode {positive_mode!r}, choose {', '.join(POSITIVE_MODES)}"
            )
        width = width or context.text_dim
        if width % num_heads:
            raise ConfigError(f"head {context.name}: width {width} is not divisible by num_heads {num_heads}")
        self.removal, self.pooling = removal, pooling
        self.symmetric, self.positive_mode = symmetric, positive_mode
        self.encoder = CrossModalEncoder(
            context.text_dim, context.video_dim, width, depth, num_heads, mlp_ratio, dropout
        )
        self.video_side_proj = nn.Linear(width, context.embed_dim)  # x_n -> common space
        self.text_side_proj = nn.Linear(context.text_dim, context.embed_dim)  # y_n -> common space
        self.temperature = Temperature.for_head(context, temperature, learn_temperature, min_temperature)

    # CaptionParts field names for this part of speech.
    def _fields(self) -> tuple[str, str, str]:
        stem = self.part  # "nouns" / "verbs"
        removed = f"without_{stem}" if self.removal == "delete" else f"masked_{stem}"
        return stem, removed, f"has_{stem}"

    def removed(self, parts: Any) -> tuple[tuple[str, ...], str, bool]:
        """What this head does to one caption: the words it removes, its query (the caption without them or with
        them masked), and whether the caption takes part in the loss (it has at least one such word).

        Args:
            parts: the caption's :class:`vtr.text.CaptionParts`.
        """
        words_field, query_field, has_field = self._fields()
        words = tuple(getattr(parts, words_field))
        return words, getattr(parts, query_field), bool(getattr(parts, has_field)) and len(words) > 0

    def text_batch(self, captions: Sequence[str], parts: Sequence[Any] | None, tokenize: Tokenize) -> dict[str, Tensor]:
        """Query (caption without the words), target (the words joined), valid mask and target group ids."""
        if parts is None:
            raise ValueError(f"head {self.name} needs CaptionParts for every caption (vtr.text.PartOfSpeechTagger)")
        if len(parts) != len(captions):
            raise ValueError(f"{len(parts)} CaptionParts for {len(captions)} captions")
        removed = [self.removed(p) for p in parts]
        words = [w for w, _, _ in removed]
        valid = [v for _, _, v in removed]
        queries = [q for _, q, _ in removed]
        targets = [" ".join(w) for w in words]
        query = tokenize(queries)
        target = tokenize(targets)
        prefix = self.name
        return {
            f"{prefix}_query_ids": query["input_ids"],
            f"{prefix}_query_mask": query["attention_mask"],
            f"{prefix}_target_ids": target["input_ids"],
            f"{prefix}_target_mask": target["attention_mask"],
            f"{prefix}_valid": torch.tensor(valid, dtype=torch.bool),
            f"{prefix}_group": string_group_ids(targets),
        }

    def pool(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """x_n from the multimodal encoder's output [n, Lq, W] with mask [n, Lq]."""
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.to(hidden.dtype)[..., None]  # [n, Lq, 1]
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)

    def attention_maps(self, video: EncodedVideo, query: TextEncoderOutput) -> list[Tensor]:
        """Cross-attention weights of every layer, [B, heads, Lq, Lv] each, for explaining a match (Grad-CAM, Fig. 3).

        Args:
            video: encoded videos (``tokens`` [B, Lv, D] and ``token_mask``).
            query: the text tower's output for the captions with the words removed (``<name>_query_ids``).
        """
        _, maps = self.encoder(query.tokens, query.token_mask, video.tokens, video.token_mask, need_weights=True)
        return maps

    def embed_pairs(self, inputs: HeadInputs, rows: Tensor) -> tuple[Tensor, Tensor]:
        """x_n and y_n [n, E] (normalised) for the batch rows ``rows``."""
        batch, prefix = inputs.batch, self.name
        query = inputs.encode_text_tokens(batch[f"{prefix}_query_ids"][rows], batch[f"{prefix}_query_mask"][rows])
        video_tokens = inputs.video.tokens[rows]  # [n, Lv, Dv]
        video_mask = inputs.video.token_mask[rows]  # [n, Lv]
        hidden, _ = self.encoder(query.tokens, query.token_mask, video_tokens, video_mask)  # [n, Lq, W]
        x = self.video_side_proj(self.pool(hidden, query.token_mask))  # [n, E]
        target = inputs.encode_text_tokens(batch[f"{prefix}_target_ids"][rows], batch[f"{prefix}_target_mask"][rows])
        y = self.text_side_proj(target.pooled)  # [n, E]
        return F.normalize(x, dim=-1), F.normalize(y, dim=-1)

    def pair_similarity(self, inputs: HeadInputs) -> Tensor:
        """cos(x_n, y_n) [B]: how well video i, read through caption i without its nouns (verbs), predicts the
        removed words. A caption with none of them scores 0: it has nothing this head can check."""
        valid = inputs.batch[f"{self.name}_valid"].to(torch.bool)
        rows = valid.nonzero().squeeze(1)
        scores = torch.zeros(valid.shape[0], device=inputs.video.tokens.device)
        if rows.numel():
            x, y = self.embed_pairs(inputs, rows)
            scores = scores.index_copy(0, rows.to(scores.device), (x.float() * y.float()).sum(-1))
        return scores

    def forward(self, inputs: HeadInputs) -> dict[str, Tensor]:
        batch, prefix = inputs.batch, self.name
        valid = batch[f"{prefix}_valid"].to(torch.bool)  # [B]
        groups = batch[f"{prefix}_group"]  # [B]
        rows = valid.nonzero().squeeze(1)  # [n]
        if inputs.gather is not None:
            return self._forward_gathered(inputs, valid, groups, rows)
        count = int(rows.numel())
        if count == 0:
            return {"loss": zero_loss(self, inputs.video.tokens), "count": torch.tensor(0.0)}
        x, y = self.embed_pairs(inputs, rows)
        row_groups = groups[rows].to(x.device)
        terms = contrastive_loss(
            x, y, self.temperature(), group_positives(row_groups), symmetric=self.symmetric, mode=self.positive_mode
        )
        return {"loss": terms["loss"], "count": torch.tensor(float(count))}

    def _forward_gathered(self, inputs: HeadInputs, valid: Tensor, groups: Tensor, rows: Tensor) -> dict[str, Tensor]:
        # Every process gathers tensors of the batch size, so valid rows are scattered into zeros first.
        gather = inputs.gather
        assert gather is not None
        batch_size, embed_dim = valid.shape[0], self.context.embed_dim
        device = inputs.video.tokens.device
        x_full = torch.zeros(batch_size, embed_dim, device=device)
        y_full = torch.zeros(batch_size, embed_dim, device=device)
        if rows.numel():
            x, y = self.embed_pairs(inputs, rows)
            x_full = x_full.index_copy(0, rows.to(device), x.float())
            y_full = y_full.index_copy(0, rows.to(device), y.float())
        all_valid = gather(valid.to(device))
        all_groups = gather(groups.to(device))
        all_x, all_y = gather(x_full)[all_valid], gather(y_full)[all_valid]
        count = int(all_valid.sum())
        if count == 0 or rows.numel() == 0:
            # Nothing here (or anywhere) to align: a zero that keeps every parameter in the graph.
            zero = zero_loss(self, inputs.video.tokens)
            if count == 0:
                return {"loss": zero, "count": torch.tensor(0.0)}
            all_x = all_x + zero
        positives = group_positives(all_groups[all_valid])
        terms = contrastive_loss(
            all_x, all_y, self.temperature(), positives, symmetric=self.symmetric, mode=self.positive_mode
        )
        return {"loss": terms["loss"], "count": torch.tensor(float(count))}


@register_head("noun")
class NounHead(WordAlignmentHead):
    """L2 (Eq. 5): nouns removed from the caption, recovered from the video. Parameters: :class:`WordAlignmentHead`."""

    part = "nouns"


@register_head("verb")
class VerbHead(WordAlignmentHead):
    """L3 (Eq. 6): verbs removed from the caption, recovered from the video. Parameters: :class:`WordAlignmentHead`."""

    part = "verbs"
