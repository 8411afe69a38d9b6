"""L1, global alignment (Sec. III.C.1, Eq. 1, 3, 4): InfoNCE between pooled video and caption embeddings."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vtr.errors import ConfigError
from vtr.losses import POSITIVE_MODES, contrastive_loss, group_positives
from vtr.models.heads.base import AlignmentHead, HeadContext, HeadInputs, Temperature
from vtr.models.registry import register_head


@register_head("global")
class GlobalHead(AlignmentHead):
    """Contrastive loss over the batch between the global (retrieval) embeddings of videos and captions.

    Positives of a video are its own caption and, when the batch says so, every caption of the same video
    (``video_index``) and every identical caption string (``caption_group``): such pairs are not negatives.

    Args:
        context: sizes and defaults from the model.
        temperature: tau; the model's ``temperature`` when None.
        learn_temperature: learn tau; the model's ``learn_temperature`` when None.
        min_temperature: the clamp of a learned tau.
        symmetric: average the video->text and text->video terms (default); False gives Eq. 4 exactly, which
            normalises each video's similarities over the captions of the batch.
        positive_mode: how a row with several positives is scored (``vtr.losses.multi_positive_info_nce``).
    """

    def __init__(
        self,
        context: HeadContext,
        temperature: float | None = None,
        learn_temperature: bool | None = None,
        min_temperature: float = 0.01,
        symmetric: bool = True,
        positive_mode: str = "each",
    ) -> None:
        super().__init__(context)
        if positive_mode not in POSITIVE_MODES:
            raise ConfigError(
                f"head {context.name}: positive_mode {positive_mode!r}, choose {', '.join(POSITIVE_MODES)}"
            )
        self.temperature = Temperature.for_head(context, temperature, learn_temperature, min_temperature)
        self.symmetric = symmetric
        self.positive_mode = positive_mode

    def forward(self, inputs: HeadInputs) -> dict[str, Tensor]:
        video, text = inputs.video.pooled, inputs.text.pooled  # [B, E], [B, E]
        groups = {k: inputs.batch[k] for k in ("video_index", "caption_group") if torch.is_tensor(inputs.batch.get(k))}
        if inputs.gather is not None:
            video, text = inputs.gather(video), inputs.gather(text)
            groups = {k: inputs.gather(v.to(video.device)) for k, v in groups.items()}
        positives = torch.eye(video.shape[0], dtype=torch.bool, device=video.device)  # [B, B] video i <-> caption i
        for ids in groups.values():
            positives |= group_positives(ids.to(video.device))
        terms: dict[str, Any] = contrastive_loss(
            video, text, self.temperature(), positives, symmetric=self.symmetric, mode=self.positive_mode
        )
        return {
            "loss": terms["loss"],
            "count": torch.tensor(float(video.shape[0])),
            "temperature": 1.0 / self.temperature().detach(),
        }
