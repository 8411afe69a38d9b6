"""HCMI: hierarchical contrastive learning at the frame-word and clip-phrase levels (papers/hcmi-summary.txt).

The video-sentence level is the global head (L1). This head adds the two finer levels of HCMI's hierarchy:

- *frame-word*: the frames' features and the caption's word tokens, each projected into the shared space;
- *clip-phrase*: frames grouped into clips, words into phrases, by soft clustering after a self-attention layer
  ("self-attention to explore frame-level correlations and adaptively cluster correlated frames").

A level's similarity of a video and a caption is the mean of two best matches: each text unit's best video unit,
averaged over the text units, and each video unit's best text unit, averaged over the video units (the max-mean
aggregation of token-level retrieval). InfoNCE over the batch on each level's similarity matrix trains the towers.

Choices where the summary is silent, and what they rest on:

- Clustering: ``num_clips`` (``num_phrases``) learnt centroids; each frame (word) is softly assigned to them by a
  softmax over its cosine to each centroid, and a clip (phrase) is the assignment-weighted mean of its frames
  (words). Padded frames and padding tokens get no weight; a cluster no unit joins has weight zero.
- Words: the text tower's tokens after the first ([CLS]), at most ``max_words`` of them (kept fixed so that the
  levels can be gathered across processes).
- Retrieval stays a dual encoder on the global embeddings: the finer levels shape the towers in training. HCMI
  itself sums the three levels at test time; here that would need token-level scoring of every candidate.
- Not built: adaptive label denoising and marginal sample enhancement (the summary names them only).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vtr.errors import ConfigError
from vtr.models.heads.base import (
    AlignmentHead,
    HeadContext,
    HeadInputs,
    Temperature,
    batch_positives,
    check_head_params,
    drop_empty_slots,
    frame_units,
    symmetric_info_nce,
    word_tokens,
)
from vtr.models.registry import register_head

LEVELS = ("frame_word", "clip_phrase")


def max_mean_similarity(video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor) -> Tensor:
    """Similarity [N_text, N_video] of sets of unit vectors: for each pair, the mean over text units of their best
    cosine with a video unit, and the mean over video units of their best cosine with a text unit, averaged.

    Args:
        video: [Nv, n, E] unit rows; video_mask: bool [Nv, n] (True = a real unit; at least one per row).
        text: [Nt, m, E] unit rows; text_mask: bool [Nt, m].
    """
    return max_mean_of_pairs(torch.einsum("tme,vne->tvmn", text, video), video_mask, text_mask)


def max_mean_of_pairs(sim: Tensor, video_mask: Tensor, text_mask: Tensor) -> Tensor:
    """The max-mean aggregation of :func:`max_mean_similarity` from the unit similarities ``sim`` [Nt, Nv, m, n]
    of every caption-video pair (text unit i, video unit j); masks bool [Nv, n] and [Nt, m]."""
    fill = torch.finfo(sim.dtype).min
    sim = sim.masked_fill(~video_mask[None, :, None, :], fill)
    best_video = sim.amax(dim=3)  # [Nt, Nv, m]: each text unit's best video unit
    t_weights = text_mask.to(sim.dtype)[:, None, :]  # [Nt, 1, m]
    text_side = (best_video * t_weights).sum(2) / t_weights.sum(2).clamp(min=1)  # [Nt, Nv]
    sim = sim.masked_fill(~text_mask[:, None, :, None], fill)
    best_text = sim.amax(dim=2)  # [Nt, Nv, n]: each video unit's best text unit
    v_weights = video_mask.to(sim.dtype)[None, :, :]  # [1, Nv, n]
    video_side = (best_text * v_weights).sum(2) / v_weights.sum(2).clamp(min=1)  # [Nt, Nv]
    return (text_side + video_side) / 2


class SoftClusters(nn.Module):
    """Self-attention over units [B, n, D] (mask [B, n]), then ``count`` learnt centroids: each unit is softly
    assigned to the centroids, and a cluster is the assignment-weighted mean of its units.

    Returns the clusters [B, count, D] and their mask [B, count] (False for a cluster no real unit joined).
    """

    def __init__(self, dim: int, count: int, num_heads: int, temperature: float = 0.1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.centroids = nn.Parameter(torch.randn(count, dim) * 0.02)
        self.temperature = temperature

    def forward(self, units: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        h = self.norm(units)
        attended, _ = self.attention(h, h, h, key_padding_mask=~mask, need_weights=False)
        units = units + attended
        logits = F.normalize(units, dim=-1) @ F.normalize(self.centroids, dim=-1).T / self.temperature  # [B, n, K]
        assign = logits.softmax(dim=-1) * mask[..., None].to(units.dtype)  # padded units join nothing
        weight = assign.sum(dim=1)  # [B, K]
        clusters = assign.transpose(1, 2) @ units / weight[..., None].clamp(min=1e-6)  # [B, K, D]
        return clusters, weight > 1e-6


@register_head("hcmi")
class HierarchicalHead(AlignmentHead):
    """Frame-word and clip-phrase contrastive levels (HCMI); see the module docstring for the method and choices.

    Args:
        context: sizes and defaults from the model.
        levels: which levels, a subset of ``("frame_word", "clip_phrase")``.
        num_clips: clusters of frames.
        num_phrases: clusters of words.
        num_heads: attention heads of the clustering (must divide both towers' widths).
        max_words: at most this many word tokens of a caption take part.
        temperature: tau of the InfoNCE terms; the model's when None.
        learn_temperature: learn tau; the model's setting when None.
        min_temperature: the clamp of a learned tau.
        positive_mode: how several positives of a row are scored (``vtr.losses.multi_positive_info_nce``).
    """

    uses_video_tokens = True

    def __init__(
        self,
        context: HeadContext,
        levels: tuple[str, ...] | list[str] = LEVELS,
        num_clips: int = 4,
        num_phrases: int = 4,
        num_heads: int = 4,
        max_words: int = 32,
        temperature: float | None = None,
        learn_temperature: bool | None = None,
        min_temperature: float = 0.01,
        positive_mode: str = "each",
    ) -> None:
        super().__init__(context)
        levels = check_head_params(context, levels, LEVELS, positive_mode, num_heads)
        if min(num_clips, num_phrases, max_words) < 1:
            raise ConfigError(f"head {context.name}: num_clips, num_phrases and max_words must be at least 1")
        self.levels, self.max_words, self.positive_mode = levels, max_words, positive_mode
        embed = context.embed_dim
        self.frame_proj = nn.Linear(context.video_dim, embed)
        self.word_proj = nn.Linear(context.text_dim, embed)
        self.clips = SoftClusters(context.video_dim, num_clips, num_heads) if "clip_phrase" in levels else None
        self.phrases = SoftClusters(context.text_dim, num_phrases, num_heads) if "clip_phrase" in levels else None
        self.temperature = Temperature.for_head(context, temperature, learn_temperature, min_temperature)

    def units(self, inputs: HeadInputs) -> dict[str, tuple[Tensor, Tensor, Tensor, Tensor]]:
        """Per level: video units [B, n, E] and mask, text units [B, m, E] and mask (unit rows)."""
        video = inputs.video
        frames, frame_mask = frame_units(video)  # [B, T, Dv], [B, T]
        words, word_mask = word_tokens(inputs.text, self.max_words)
        out = {}
        if "frame_word" in self.levels:
            out["frame_word"] = (
                F.normalize(self.frame_proj(frames), dim=-1),
                frame_mask,
                F.normalize(self.word_proj(words), dim=-1),
                word_mask,
            )
        if self.clips is not None and self.phrases is not None:
            clips, clip_mask = self.clips(frames, frame_mask)
            phrases, phrase_mask = self.phrases(words, word_mask)
            out["clip_phrase"] = (
                F.normalize(self.frame_proj(clips), dim=-1),
                clip_mask,
                F.normalize(self.word_proj(phrases), dim=-1),
                phrase_mask,
            )
        return out

    def forward(self, inputs: HeadInputs) -> dict[str, Tensor]:
        gather = inputs.gather
        out: dict[str, Any] = {}
        total = None
        for level, (video, video_mask, text, text_mask) in self.units(inputs).items():
            if gather is not None:
                video, text = gather(video), gather(text)
                video_mask, text_mask = gather(video_mask), gather(text_mask)
            text, text_mask = drop_empty_slots(text, text_mask)  # the same on every process: after the gather
            with torch.autocast(device_type=video.device.type, enabled=False):
                sim = max_mean_similarity(video.float(), video_mask, text.float(), text_mask)  # [B_text, B_video]
                positives = batch_positives(inputs, sim.shape[0], sim.device)
                loss = symmetric_info_nce(sim, self.temperature(), positives, self.positive_mode)
            out[f"{level}_loss"] = loss.detach()
            total = loss if total is None else total + loss
        out["loss"] = total
        out["count"] = torch.tensor(float(inputs.video.frame_features.shape[0]))
        return out
