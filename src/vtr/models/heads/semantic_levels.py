"""MCSAN: video-text similarity on several semantic levels beside the global one (papers/mcsan-abstract.txt).

Video and text are each decomposed into an *entity* level (what is there: the caption's nouns) and an *action*
level (what happens: its verbs). Per level and per modality a learnt query attends over the tower's tokens and gives
a level embedding; the two modalities' level embeddings are aligned by InfoNCE, like the global ones. A linear
*attribute projection shared by both modalities* maps a level embedding to one logit per word of the level's
vocabulary; focal binary cross-entropy (FBCE) makes both predict the caption's words, and a KL term makes the two
predicted distributions agree (the abstract's "KLDivLoss and a cross-modal parameter-share attribute projection layer
as statistical constraints").

At retrieval the level similarities are added to the global one: the head contributes one embedding per level to
the retrieval embedding (weight ``retrieval_weight`` each), so search stays one inner product.

Choices where the abstract is silent, and what they rest on:

- Levels: entity and action. The abstract's relationship level needs subject-verb-object triplets, which the
  part-of-speech tagger does not give; it is not built.
- Vocabulary: the ``vocab_size`` most frequent lower-cased nouns (verbs) of the training captions seen at least
  ``min_count`` times, ties broken alphabetically; :meth:`SemanticLevelsHead.prepare_params` builds it before the
  model is made and the run's config keeps it.
- Level embeddings: one attention pooling (a learnt query, multi-head attention over the layer-normed tokens, a
  linear map into the shared space) per level and modality, over all tokens of the tower; the abstract's
  spatial-temporal structures are not reproduced.
- FBCE: RetinaNet's form (gamma 2, alpha 0.25), summed over words and divided by the number of positive labels.
- KL: symmetric, between the softmax distributions over the vocabulary of the video and the text side.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vtr.errors import ConfigError
from vtr.losses import attribute_kl, contrastive_loss, focal_binary_cross_entropy
from vtr.models.heads.base import (
    AlignmentHead,
    HeadContext,
    HeadInputs,
    Temperature,
    Tokenize,
    batch_positives,
    check_head_params,
    zero_loss,
)
from vtr.models.outputs import EncodedText, EncodedVideo
from vtr.models.registry import register_head

# Level name -> the CaptionParts field its words come from.
LEVEL_PARTS = {"entity": "nouns", "action": "verbs"}


class AttentionPool(nn.Module):
    """A learnt query attends over tokens [B, L, D] (mask [B, L], True = valid) and gives one vector [B, out_dim].

    Args:
        dim: width of the tokens.
        out_dim: width of the output.
        num_heads: attention heads (must divide ``dim``).
    """

    def __init__(self, dim: int, out_dim: int, num_heads: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        keys = self.norm(tokens)
        query = self.query.expand(tokens.shape[0], -1, -1)
        pooled, _ = self.attention(query, keys, keys, key_padding_mask=~mask.bool(), need_weights=False)
        return self.proj(pooled[:, 0])  # [B, out_dim]


def build_vocabulary(parts: Sequence[Any], field: str, size: int, min_count: int) -> list[str]:
    """The ``size`` most frequent lower-cased words of ``field`` ("nouns" or "verbs") over ``parts``, each seen at
    least ``min_count`` times, most frequent first (ties alphabetical)."""
    counts = Counter(word.lower() for p in parts for word in getattr(p, field))
    ranked = sorted((word for word, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return ranked[:size]


@register_head("mcsan")
class SemanticLevelsHead(AlignmentHead):
    """Entity and action levels: level embeddings aligned by InfoNCE, attribute prediction by FBCE, KL between
    modalities; the levels also score retrieval. See the module docstring for the method and its choices.

    Args:
        context: sizes and defaults from the model.
        levels: which levels, a subset of ``("entity", "action")``.
        vocabulary: level -> its words (the attribute classes); None until :meth:`prepare_params` fills it.
        vocab_size: at most this many words per level when the vocabulary is built.
        min_count: a word must occur this often in the training captions to enter the vocabulary.
        num_heads: attention heads of the pooling (must divide both towers' widths).
        gamma: FBCE focusing exponent.
        alpha: FBCE weight of positive labels (None: no class weighting).
        attribute_weight: weight of the FBCE terms (both modalities) in the head's loss.
        kl_weight: weight of the KL term.
        retrieval_weight: weight of each level's similarity in retrieval, against 1 for the global one; 0 keeps
            retrieval global (the head then only shapes the towers).
        temperature: tau of the level InfoNCE; the model's when None.
        learn_temperature: learn tau; the model's setting when None.
        min_temperature: the clamp of a learned tau.
        positive_mode: how several positives of a row are scored (``vtr.losses.multi_positive_info_nce``).
    """

    needs_parts = True
    uses_video_tokens = True

    def __init__(
        self,
        context: HeadContext,
        levels: Sequence[str] = ("entity", "action"),
        vocabulary: dict[str, list[str]] | None = None,
        vocab_size: int = 512,
        min_count: int = 2,
        num_heads: int = 4,
        gamma: float = 2.0,
        alpha: float | None = 0.25,
        attribute_weight: float = 1.0,
        kl_weight: float = 1.0,
        retrieval_weight: float = 1.0,
        temperature: float | None = None,
        learn_temperature: bool | None = None,
        min_temperature: float = 0.01,
        positive_mode: str = "each",
    ) -> None:
        super().__init__(context)
        levels = check_head_params(context, levels, tuple(LEVEL_PARTS), positive_mode, num_heads)
        if retrieval_weight < 0:
            raise ConfigError(f"head {context.name}: retrieval_weight must be >= 0, got {retrieval_weight}")
        if vocabulary is not None:
            missing = [level for level in levels if not vocabulary.get(level)]
            if missing:
                raise ConfigError(
                    f"head {context.name}: the vocabulary of level {missing[0]!r} is empty: the training captions "
                    f"have no {LEVEL_PARTS[missing[0]]} seen {min_count} times or more; drop the level"
                )
        self.levels = levels
        self.vocab_size, self.min_count = vocab_size, min_count
        self.vocabulary = {level: list(vocabulary[level]) for level in levels} if vocabulary else None
        self.word_index = {
            level: {word: i for i, word in enumerate(words)} for level, words in (self.vocabulary or {}).items()
        }
        self.gamma, self.alpha = gamma, alpha
        self.attribute_weight, self.kl_weight, self.retrieval_weight = attribute_weight, kl_weight, retrieval_weight
        self.positive_mode = positive_mode
        embed = context.embed_dim
        self.video_pools = nn.ModuleDict({lv: AttentionPool(context.video_dim, embed, num_heads) for lv in levels})
        self.text_pools = nn.ModuleDict({lv: AttentionPool(context.text_dim, embed, num_heads) for lv in levels})
        # The attribute projection of each level, one for both modalities (none until there is a vocabulary).
        self.attributes = nn.ModuleDict(
            {level: nn.Linear(embed, len(words)) for level, words in (self.vocabulary or {}).items()}
        )
        self.temperature = Temperature.for_head(context, temperature, learn_temperature, min_temperature)

    @classmethod
    def prepare_params(cls, params: dict[str, Any], parts: Sequence[Any]) -> dict[str, Any]:
        """Fill ``vocabulary`` from the training captions' parts when the params have none."""
        if params.get("vocabulary"):
            return params
        levels = tuple(params.get("levels", ("entity", "action")))
        size, min_count = int(params.get("vocab_size", 512)), int(params.get("min_count", 2))
        vocabulary = {
            level: build_vocabulary(parts, LEVEL_PARTS[level], size, min_count)
            for level in levels
            if level in LEVEL_PARTS
        }
        return {**params, "vocabulary": vocabulary}

    # ----------------------------------------------------------------- level embeddings

    def _video_levels(self, video: EncodedVideo) -> dict[str, Tensor]:
        """Level embeddings [B, E] of the videos, before normalisation."""
        return {level: self.video_pools[level](video.tokens, video.token_mask) for level in self.levels}

    def _text_levels(self, tokens: Tensor, mask: Tensor) -> dict[str, Tensor]:
        return {level: self.text_pools[level](tokens, mask) for level in self.levels}

    @property
    def retrieval_levels(self) -> int:
        return len(self.levels) if self.retrieval_weight > 0 else 0

    def retrieval_video(self, video: EncodedVideo) -> list[tuple[Tensor, float]]:
        if self.retrieval_weight == 0:
            return []
        levels = self._video_levels(video)
        return [(F.normalize(levels[level], dim=-1), self.retrieval_weight) for level in self.levels]

    def retrieval_text(self, text: EncodedText) -> list[tuple[Tensor, float]]:
        if self.retrieval_weight == 0:
            return []
        levels = self._text_levels(text.tokens, text.token_mask)
        return [(F.normalize(levels[level], dim=-1), self.retrieval_weight) for level in self.levels]

    # ----------------------------------------------------------------- training

    def text_batch(self, captions: Sequence[str], parts: Sequence[Any] | None, tokenize: Tokenize) -> dict[str, Tensor]:
        """Multi-hot labels [B, V] per level: the caption's words that are in the level's vocabulary."""
        if parts is None:
            raise ValueError(f"head {self.name} needs CaptionParts for every caption (vtr.text.PartOfSpeechTagger)")
        if len(parts) != len(captions):
            raise ValueError(f"{len(parts)} CaptionParts for {len(captions)} captions")
        out = {}
        for level in self.levels:
            index = self._word_index(level)
            labels = torch.zeros(len(captions), len(index))
            for row, p in enumerate(parts):
                for word in getattr(p, LEVEL_PARTS[level]):
                    column = index.get(word.lower())
                    if column is not None:
                        labels[row, column] = 1.0
            out[f"{self.name}_{level}_labels"] = labels
        return out

    def _word_index(self, level: str) -> dict[str, int]:
        if self.vocabulary is None:
            raise ConfigError(
                f"head {self.name} has no vocabulary: vtr train builds it from the training captions "
                "(or give model.heads params.vocabulary: {level: [words]})"
            )
        return self.word_index[level]

    def forward(self, inputs: HeadInputs) -> dict[str, Tensor]:
        video_levels = self._video_levels(inputs.video)
        text_levels = self._text_levels(inputs.text.tokens, inputs.text.token_mask)
        out: dict[str, Tensor] = {}
        total = zero_loss(self)
        for level in self.levels:
            v, t = video_levels[level], text_levels[level]
            labels = inputs.batch[f"{self.name}_{level}_labels"].to(v.device)
            v_logits, t_logits = self.attributes[level](v), self.attributes[level](t)
            if inputs.gather is not None:  # over the global batch, as one process would compute them
                v_logits, t_logits = inputs.gather(v_logits), inputs.gather(t_logits)
                labels = inputs.gather(labels)
            attribute = focal_binary_cross_entropy(v_logits, labels, self.gamma, self.alpha)
            attribute = attribute + focal_binary_cross_entropy(t_logits, labels, self.gamma, self.alpha)
            kl = attribute_kl(v_logits, t_logits)
            align = self._align(v, t, inputs)
            out[f"{level}_align"] = align.detach()
            out[f"{level}_attribute"] = attribute.detach()
            out[f"{level}_kl"] = kl.detach()
            total = total + align + self.attribute_weight * attribute + self.kl_weight * kl
        out["loss"] = total
        out["count"] = torch.tensor(float(inputs.video.tokens.shape[0]))
        return out

    def _align(self, video: Tensor, text: Tensor, inputs: HeadInputs) -> Tensor:
        """InfoNCE between the level embeddings of the batch (the global head's positives: same video or caption)."""
        if inputs.gather is not None:
            video, text = inputs.gather(video), inputs.gather(text)
        positives = batch_positives(inputs, video.shape[0], video.device).T  # [videos, captions]
        return contrastive_loss(video, text, self.temperature(), positives, mode=self.positive_mode)["loss"]
