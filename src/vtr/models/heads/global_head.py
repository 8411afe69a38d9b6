"""L1, global alignment (Sec. III.C.1, Eq. 1, 3, 4): InfoNCE between pooled video and caption embeddings."""

from __future__ import annotations

import torch
from torch import Tensor

from vtr.errors import ConfigError
from vtr.losses import POSITIVE_MODES, contrastive_loss, described_positives, group_positives, multi_positive_info_nce
from vtr.models.heads.base import (
    AlignmentHead,
    HeadContext,
    HeadInputs,
    Temperature,
    batch_concepts,
    batch_groups,
    pair_positives,
)
from vtr.models.heads.memory import EmbeddingMemory
from vtr.models.registry import register_head


@register_head("global")
class GlobalHead(AlignmentHead):
    """Contrastive loss over the batch between the global (retrieval) embeddings of videos and captions.

    Positives of a video are its own caption and, when the batch says so, every caption of the same video
    (``video_index``), every identical caption string (``caption_group``) and every caption that describes it
    (``video_concepts`` and ``caption_concepts``, from ``data.concept_positives``): such pairs are not negatives.

    Args:
        context: sizes and defaults from the model.
        temperature: tau; the model's ``temperature`` when None.
        learn_temperature: learn tau; the model's ``learn_temperature`` when None.
        min_temperature: the clamp of a learned tau.
        symmetric: average the video->text and text->video terms (default); False gives Eq. 4 exactly, which
            normalises each video's similarities over the captions of the batch.
        positive_mode: how a row with several positives is scored (``vtr.losses.multi_positive_info_nce``).
        memory_size: 0 (default) scores the batch against itself only; N > 0 also scores it against the last N
            pairs of earlier batches (:class:`vtr.models.heads.memory.EmbeddingMemory`): each video against their
            captions and each caption against their videos, as extra negatives (or positives, for the same video or
            the same caption string). Training only; the batch needs ``video_index``.
        memory_start_step: training steps before the memory is read (it fills from the first step).
        memory_start_epoch: the epoch (0-based, as ``train.milestones``) from which the memory is read, whatever
            the number of steps an epoch has; None (default) leaves it to ``memory_start_step``. A resumed run
            reads it from the same epoch as an uninterrupted one.
    """

    def __init__(
        self,
        context: HeadContext,
        temperature: float | None = None,
        learn_temperature: bool | None = None,
        min_temperature: float = 0.01,
        symmetric: bool = True,
        positive_mode: str = "each",
        memory_size: int = 0,
        memory_start_step: int = 0,
        memory_start_epoch: int | None = None,
    ) -> None:
        super().__init__(context)
        if positive_mode not in POSITIVE_MODES:
            raise ConfigError(
                f"head {context.name}: positive_mode {positive_mode!r}, choose {', '.join(POSITIVE_MODES)}"
            )
        self.temperature = Temperature.for_head(context, temperature, learn_temperature, min_temperature)
        self.symmetric = symmetric
        self.positive_mode = positive_mode
        if memory_size < 0:
            raise ConfigError(f"head {context.name}: memory_size must be 0 (off) or more, got {memory_size}")
        self.memory = EmbeddingMemory(memory_size, context.embed_dim, memory_start_step) if memory_size else None
        if memory_start_epoch is not None and (memory_start_epoch < 0 or not memory_size):
            raise ConfigError(
                f"head {context.name}: memory_start_epoch needs memory_size > 0 and an epoch (0 or more), "
                f"got {memory_start_epoch} with memory_size {memory_size}"
            )
        self.memory_start_epoch = memory_start_epoch
        self.epoch = 0  # the training epoch, from set_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _reads_memory(self) -> bool:
        """Whether this training step scores the batch against the memory too (it may still be empty)."""
        if self.memory is None or not self.training:
            return False
        return self.memory_start_epoch is None or self.epoch >= self.memory_start_epoch

    def forward(self, inputs: HeadInputs) -> dict[str, Tensor]:
        video, text = inputs.video.pooled, inputs.text.pooled  # [B, E], [B, E]
        if inputs.gather is not None:
            video, text = inputs.gather(video), inputs.gather(text)
        groups, concepts = batch_groups(inputs, video.device), batch_concepts(inputs, video.device)
        positives = pair_positives(video.shape[0], groups, concepts, video.device).T  # [videos, captions]
        scale = self.temperature()
        remembered = self.memory.entries() if self._reads_memory() else None
        if remembered is None:
            terms = contrastive_loss(video, text, scale, positives, symmetric=self.symmetric, mode=self.positive_mode)
            loss = terms["loss"]
        else:
            loss = self._loss_with_memory(video, text, scale, positives, groups, concepts, remembered)
        if self.memory is not None and self.training:
            self._remember(video, text, groups, concepts)
        out: dict[str, Tensor] = {
            "loss": loss,
            "count": torch.tensor(float(video.shape[0])),
            "temperature": 1.0 / self.temperature().detach(),
        }
        if self.memory is not None:
            out["memory"] = torch.tensor(float(0 if remembered is None else remembered[0].shape[0]))
        return out

    def _loss_with_memory(
        self,
        video: Tensor,
        text: Tensor,
        scale: Tensor,
        positives: Tensor,
        groups: dict[str, Tensor],
        concepts: tuple[Tensor, Tensor] | None,
        remembered: tuple[Tensor, Tensor, Tensor, Tensor],
    ) -> Tensor:
        """InfoNCE of the batch's videos over the batch's captions and the remembered ones, and of its captions
        over the batch's videos and the remembered ones ([B, B + n] logits each)."""
        assert self.memory is not None
        old_video, old_text, old_index, old_group = remembered
        device = video.device
        # Shared ids are symmetric: the same [B, n] matrix serves both directions.
        shared = torch.zeros(video.shape[0], old_video.shape[0], dtype=torch.bool, device=device)  # [B, n]
        for key, old_ids in (("video_index", old_index), ("caption_group", old_group)):
            if key in groups:
                shared |= group_positives(groups[key].to(device), old_ids)
        video_rows, text_rows = shared, shared.clone()  # batch video vs old captions; batch caption vs old videos
        old_concepts = self.memory.concepts()
        if concepts is not None and old_concepts is not None:
            video_rows |= described_positives(concepts[0], old_concepts[1])
            text_rows |= described_positives(old_concepts[0], concepts[1]).T
        # In float32 even under bfloat16 autocast, as contrastive_loss.
        with torch.autocast(device_type=device.type, enabled=False):
            video = torch.nn.functional.normalize(video.float(), dim=-1)
            text = torch.nn.functional.normalize(text.float(), dim=-1)
            v2t = multi_positive_info_nce(
                scale * video @ torch.cat([text, old_text]).t(),
                torch.cat([positives, video_rows], dim=1),
                self.positive_mode,
            )
            if not self.symmetric:
                return v2t
            t2v = multi_positive_info_nce(
                scale * text @ torch.cat([video, old_video]).t(),
                torch.cat([positives.T, text_rows], dim=1),
                self.positive_mode,
            )
        return (v2t + t2v) / 2

    def _remember(
        self, video: Tensor, text: Tensor, groups: dict[str, Tensor], concepts: tuple[Tensor, Tensor] | None
    ) -> None:
        """Push the (gathered) batch into the memory; the batch must say which video each pair shows."""
        assert self.memory is not None
        if "video_index" not in groups:
            raise ValueError(f"head {self.name}: memory_size needs the batch's video_index (which video each pair is)")
        index = groups["video_index"]
        # Without caption groups (never compared then) the caption's row keeps its video's id.
        caption = groups.get("caption_group", index)
        self.memory.push(video, text, index, caption, concepts)
