"""What every alignment head shares: the registry interface, the inputs a head receives, and the temperature."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from vtr.errors import ConfigError
from vtr.losses import POSITIVE_MODES, described_positives, group_positives, multi_positive_info_nce
from vtr.models.outputs import EncodedText, EncodedVideo, TextEncoderOutput

Tokenize = Callable[[list[str]], dict[str, Tensor]]
Gather = Callable[[Tensor], Tensor]
# Runs the text tower (or a memo of it): token ids [B, L], mask [B, L] -> its output, unprojected.
TextTower = Callable[[Tensor, Tensor], TextEncoderOutput]


@dataclass(frozen=True)
class HeadContext:
    """Sizes and defaults a head is built with (from the model, not from the head's own params).

    Attributes:
        name: the head's name in the config (also the prefix of its batch keys and outputs).
        video_dim: width D of the video tokens.
        text_dim: width of the text tokens.
        embed_dim: dimension of the shared embedding space.
        temperature: the model's default temperature (``ModelConfig.temperature``).
        learn_temperature: the model's default for a learnable temperature.
    """

    name: str
    video_dim: int
    text_dim: int
    embed_dim: int
    temperature: float
    learn_temperature: bool


@dataclass
class HeadInputs:
    """What a head sees in one training step.

    Attributes:
        batch: the batch dict (frames, masks, token ids, and what :meth:`AlignmentHead.text_batch` added).
        video: the encoded videos of the batch.
        text: the encoded captions of the batch.
        encode_text_tokens: runs the text tower (or its cache): ids [B, L], mask [B, L] -> its output, unprojected.
        gather: None in one process; else concatenates a tensor over processes along dim 0, keeping gradients of
            the local part (every process must pass tensors of the same shape).
    """

    batch: dict[str, Any]
    video: EncodedVideo
    text: EncodedText
    encode_text_tokens: TextTower
    gather: Gather | None = None


class Temperature(nn.Module):
    """The temperature tau of Eq. 3-6, fixed or learned; kept as log(1/tau) and clamped to tau >= ``minimum``.

    Args:
        initial: tau at the start.
        learnable: learn it (CLIP-style); otherwise a constant.
        minimum: the smallest tau allowed (CLIP clamps 1/tau at 100, i.e. tau >= 0.01).
    """

    def __init__(self, initial: float, learnable: bool = False, minimum: float = 0.01) -> None:
        super().__init__()
        if not 0 < minimum <= initial:
            raise ValueError(f"need 0 < minimum ({minimum}) <= temperature ({initial})")
        log_scale = torch.tensor(math.log(1.0 / initial))
        self.max_log_scale = math.log(1.0 / minimum)
        if learnable:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale, persistent=False)

    @classmethod
    def for_head(
        cls, context: HeadContext, temperature: float | None, learnable: bool | None, minimum: float
    ) -> Temperature:
        """A head's temperature: its own ``temperature`` and ``learnable`` where given, else the model's."""
        return cls(
            context.temperature if temperature is None else temperature,
            context.learn_temperature if learnable is None else learnable,
            minimum,
        )

    def forward(self) -> Tensor:
        """1 / tau, the factor applied to cosine similarities."""
        return self.log_scale.clamp(max=self.max_log_scale).exp()


def string_group_ids(texts: Sequence[str]) -> Tensor:
    """Int64 ids equal exactly for equal strings (case and outer spaces ignored), stable across processes."""
    ids = [
        int.from_bytes(
            hashlib.blake2b(t.strip().lower().encode("utf-8"), digest_size=8).digest(), "little", signed=True
        )
        for t in texts
    ]
    return torch.tensor(ids, dtype=torch.long)


def check_head_params(
    context: HeadContext, levels: Sequence[str], known: Sequence[str], positive_mode: str, num_heads: int
) -> tuple[str, ...]:
    """Validate what the multi-level heads share: ``levels`` (a non-empty subset of ``known``, no repeats), the
    positive mode, and ``num_heads`` dividing both towers' widths. Returns the levels as a tuple; ConfigError else."""
    levels = tuple(levels)
    if not levels or any(level not in known for level in levels) or len(set(levels)) != len(levels):
        raise ConfigError(f"head {context.name}: levels {list(levels)}, choose among {', '.join(known)}")
    if positive_mode not in POSITIVE_MODES:
        raise ConfigError(f"head {context.name}: positive_mode {positive_mode!r}, choose {', '.join(POSITIVE_MODES)}")
    for dim, tower in ((context.video_dim, "video"), (context.text_dim, "text")):
        if dim % num_heads:
            raise ConfigError(f"head {context.name}: num_heads {num_heads} does not divide the {tower} width {dim}")
    return levels


def batch_concepts(inputs: HeadInputs, device: torch.device) -> tuple[Tensor, Tensor] | None:
    """The (gathered) ``video_concepts`` and ``caption_concepts`` of a batch, bool [B, V] each, or None when the
    batch has none (``data.concept_positives`` off)."""
    video, caption = inputs.batch.get("video_concepts"), inputs.batch.get("caption_concepts")
    if not (torch.is_tensor(video) and torch.is_tensor(caption)):
        return None
    video, caption = video.to(device), caption.to(device)
    if inputs.gather is not None:
        video, caption = inputs.gather(video), inputs.gather(caption)
    return video, caption


def batch_groups(inputs: HeadInputs, device: torch.device) -> dict[str, Tensor]:
    """The (gathered) ids of a batch that mark pairs as positives, on ``device``: ``video_index`` (the same video)
    and ``caption_group`` (the same caption string), each where the batch has it."""
    groups = {}
    for key in ("video_index", "caption_group"):
        ids = inputs.batch.get(key)
        if torch.is_tensor(ids):
            ids = ids.to(device)
            groups[key] = inputs.gather(ids) if inputs.gather is not None else ids
    return groups


def pair_positives(
    size: int, groups: dict[str, Tensor], concepts: tuple[Tensor, Tensor] | None, device: torch.device
) -> Tensor:
    """The positive matrix bool [size, size] of ``size`` video-caption pairs, captions as rows and videos as
    columns: the diagonal, pairs that share an id of ``groups`` (:func:`batch_groups`) and, with ``concepts``
    (:func:`batch_concepts`), every video a caption describes."""
    positives = torch.eye(size, dtype=torch.bool, device=device)
    for ids in groups.values():
        positives |= group_positives(ids)
    if concepts is not None:
        positives |= described_positives(*concepts).T  # [captions, videos]; not symmetric
    return positives


def batch_positives(inputs: HeadInputs, size: int, device: torch.device) -> Tensor:
    """The positive matrix [size, size] of a (gathered) batch of ``size`` video-caption pairs, captions as rows and
    videos as columns (:func:`pair_positives`)."""
    return pair_positives(size, batch_groups(inputs, device), batch_concepts(inputs, device), device)


def frame_units(video: EncodedVideo) -> tuple[Tensor, Tensor]:
    """The per-frame features [B, T, D_video] of a batch of videos and their mask bool [B, T] (all real when the
    tower gives none)."""
    frames = video.frame_features
    if frames is None:
        raise ValueError("this head needs per-frame features, and the video tower gives none")
    mask = video.frame_mask.bool() if video.frame_mask is not None else frames.new_ones(frames.shape[:2]).bool()
    return frames, mask


def word_tokens(text: EncodedText, max_words: int) -> tuple[Tensor, Tensor]:
    """A caption's word tokens [B, max_words, D_text] (the tower's tokens after the first, [CLS]; padded or cut to
    ``max_words``, a fixed size so that they can be gathered across processes) and their mask bool [B, max_words].
    A caption of [CLS] alone keeps its first slot, so that every row has a unit."""
    tokens, mask = text.tokens[:, 1 : 1 + max_words], text.token_mask[:, 1 : 1 + max_words]
    missing = max_words - tokens.shape[1]
    if missing > 0:
        tokens = torch.nn.functional.pad(tokens, (0, 0, 0, missing))
        mask = torch.nn.functional.pad(mask, (0, missing), value=False)
    mask = mask.bool()
    # Not in place: the slice may be the text's own mask.
    empty = ~mask.any(dim=1)
    return tokens, torch.cat([mask[:, :1] | empty[:, None], mask[:, 1:]], dim=1)


def drop_empty_slots(units: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``units`` [N, m, E] and ``mask`` [N, m] without the trailing slots that no row fills (the padding
    of fixed-size word slots, which costs time in every pairwise step)."""
    filled = mask.any(dim=0).nonzero()
    keep = int(filled.max()) + 1 if filled.numel() else 1
    return units[:, :keep], mask[:, :keep]


def symmetric_info_nce(similarity: Tensor, scale: Tensor, positives: Tensor, mode: str) -> Tensor:
    """InfoNCE of a caption-video similarity matrix [N_text, N_video] times ``scale`` (1 / tau), over its rows and
    over its columns, averaged; ``positives`` bool of the same shape."""
    logits = scale * similarity
    return (multi_positive_info_nce(logits, positives, mode) + multi_positive_info_nce(logits.T, positives.T, mode)) / 2


def zero_loss(*modules_or_tensors: nn.Module | Tensor) -> Tensor:
    """A zero that depends on the given parameters, so that backward and DDP still see them used."""
    total = None
    for item in modules_or_tensors:
        tensors = list(item.parameters()) if isinstance(item, nn.Module) else [item]
        for tensor in tensors:
            if tensor.requires_grad:
                term = tensor.sum() * 0.0
                total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


class AlignmentHead(nn.Module):
    """Base class of the alignment-head registry.

    A head is built as ``cls(context, **params)`` (params from ``HeadConfig.params``; an unknown one is a config
    error). Its forward returns ``{"loss": scalar, "count": how many items took part, ...}``; the model reports them
    as ``"<name>_loss"``, ``"<name>_count"``, ... and adds ``weight * loss`` to the total (Eq. 7).

    Attributes:
        needs_parts: the head needs :class:`vtr.text.CaptionParts` (nouns, verbs) in :meth:`text_batch`.
        uses_video_tokens: the head attends to video tokens (not only to pooled embeddings).
        scores_pairs: the head can score a caption against one video (:meth:`pair_similarity`), which lets
            evaluation re-rank a query's best videos with it (:mod:`vtr.evaluate.rerank`).
    """

    needs_parts: bool = False
    uses_video_tokens: bool = False
    scores_pairs: bool = False

    def __init__(self, context: HeadContext) -> None:
        super().__init__()
        self.context = context
        self.name = context.name

    @classmethod
    def prepare_params(cls, params: dict[str, Any], parts: Sequence[Any]) -> dict[str, Any]:
        """The head's params completed from the training captions, before the model is built (e.g. a vocabulary).

        The training loop calls this with the :class:`vtr.text.CaptionParts` of every training caption when the
        head :attr:`needs_parts`, and saves what it returns in the run's config, so that a loaded or resumed run
        builds the same head. Params that are already complete come back unchanged (the default).
        """
        return params

    def set_epoch(self, epoch: int) -> None:
        """Told by the training loop at the start of each epoch (0-based, also after a resumption); nothing by
        default. A head whose loss changes with the schedule (the global head's memory) overrides it."""

    def text_batch(self, captions: Sequence[str], parts: Sequence[Any] | None, tokenize: Tokenize) -> dict[str, Tensor]:
        """Extra batch tensors the head needs, keyed ``"<name>_..."``; none by default."""
        return {}

    @property
    def retrieval_levels(self) -> int:
        """How many embeddings :meth:`retrieval_video` adds (0 by default)."""
        return 0

    def retrieval_video(self, video: EncodedVideo) -> list[tuple[Tensor, float]]:
        """Embeddings [B, E] (unit rows) this head adds to the retrieval embedding of videos, each with its weight
        in the similarity; none by default (the head only shapes the towers in training)."""
        return []

    def retrieval_text(self, text: EncodedText) -> list[tuple[Tensor, float]]:
        """The text side of :meth:`retrieval_video`: as many embeddings, in the same order, with the same weights."""
        return []

    def pair_similarity(self, inputs: HeadInputs) -> Tensor:
        """The head's similarity [B] of caption i to video i of the batch (not every caption to every video), for
        heads that :attr:`scores_pairs`. ``inputs.gather`` is ignored: a pair is scored on its own."""
        raise NotImplementedError(f"head {self.name} does not score caption-video pairs")

    def forward(self, inputs: HeadInputs) -> dict[str, Tensor]:
        raise NotImplementedError
