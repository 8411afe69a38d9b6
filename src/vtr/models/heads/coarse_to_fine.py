"""UCoFiA: coarse-to-fine alignment with interactive similarity aggregation (papers/ucofia-summary.txt).

UCoFiA scores a video and a caption at three granularities. The coarsest, video-sentence, is the global head (L1);
this head adds the two finer ones:

- *frame-sentence*: the cosine of each frame with the sentence, aggregated over the frames;
- *patch-word*: the cosine of each selected patch with each word, aggregated over the patches for each word and
  then over the words (and, the other way round, over the words for each patch and then over the patches; the two
  directions are averaged).

The aggregation is UCoFiA's Interactive Similarity Aggregation (ISA): a unit's weight is computed from its own
similarity *and* the others' (the importance of a frame depends on how the other frames match), softmax over the
real units, and the level's score is the weighted sum of the similarities. InfoNCE over the batch on each level's
similarity matrix trains the towers.

Choices where the summary is silent, and what they rest on:

- ISA's interaction: a small MLP maps each unit's (similarity, similarity minus the mean of the real units',
  similarity minus their maximum) to a logit. It works for any number of units (frames, patches and words vary
  with the config); its last layer starts at zero, so training starts from the plain mean.
- Patch selection: ``num_patches`` tokens of the video tower, the top scores of a learnt linear scorer over the
  real tokens (UCoFiA keeps salient patches only: most patches are background). The scorer learns through a
  straight-through factor p - stop_gradient(p) + 1 on each selected token, p its softmax score: 1 in value, the
  gradient of p in backward.
- Frames, patches and words get their own linear projections into the shared space; the sentence is the global
  text embedding.
- UCoFiA normalises each level's test-set similarity matrix with Sinkhorn-Knopp before summing them. That needs
  every query at once, so it is not part of the head: ``vtr eval --postprocess sinkhorn`` applies it to the
  retrieval scores, reported apart. Retrieval stays a dual encoder on the global embeddings (as for ``hcmi``): the
  finer levels shape the towers in training.
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

LEVELS = ("frame_sentence", "patch_word")


class InteractiveAggregation(nn.Module):
    """ISA: the weighted sum over the last dimension of similarities [..., n], each weight a softmax over the real
    units of an MLP of (s_i, s_i - mean s, s_i - max s). Starts as the mean of the real units.

    Args:
        hidden: width of the MLP's hidden layer.
    """

    def __init__(self, hidden: int = 4) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(3, hidden), nn.GELU(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, sim: Tensor, mask: Tensor) -> Tensor:
        """``sim`` [..., n]; ``mask`` bool, broadcastable to it (True = a real unit, at least one per row)."""
        mask = mask.expand_as(sim)
        weights = mask.to(sim.dtype)
        mean = (sim * weights).sum(-1, keepdim=True) / weights.sum(-1, keepdim=True).clamp(min=1)
        peak = sim.masked_fill(~mask, torch.finfo(sim.dtype).min).amax(-1, keepdim=True)
        # The first layer on (s, s - mean, s - peak), written out: no [..., n, 3] tensor is made.
        first, second = self.mlp[0], self.mlp[2]
        w = first.weight  # [hidden, 3]
        hidden = sim[..., None] * w.sum(1) + (first.bias - mean[..., None] * w[:, 1] - peak[..., None] * w[:, 2])
        logits = second(self.mlp[1](hidden)).squeeze(-1).masked_fill(~mask, torch.finfo(sim.dtype).min)
        return (logits.softmax(dim=-1) * weights * sim).sum(-1)


def select_patches(tokens: Tensor, mask: Tensor, scores: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """The ``count`` real tokens of highest score per row, and their mask (False where a row has fewer real tokens).

    Args:
        tokens: [B, L, D]; mask: bool [B, L]; scores: [B, L] (any real number).

    Returns:
        tokens [B, count, D], each multiplied by p - stop_gradient(p) + 1 (p the softmax of the row's real scores: 1
        in value, so the scorer gets a gradient), and their mask bool [B, count].
    """
    count = min(count, tokens.shape[1])
    fill = torch.finfo(scores.dtype).min
    scores = scores.masked_fill(~mask, fill)
    index = scores.topk(count, dim=1).indices  # [B, count]
    chosen = torch.gather(tokens, 1, index[..., None].expand(-1, -1, tokens.shape[2]))
    p = torch.gather(scores.softmax(dim=1), 1, index)
    chosen = chosen * (p - p.detach() + 1)[..., None].to(chosen.dtype)  # exactly 1 in value
    return chosen, torch.gather(mask, 1, index)


@register_head("ucofia")
class CoarseToFineHead(AlignmentHead):
    """Frame-sentence and patch-word levels with interactive similarity aggregation (UCoFiA); see the module
    docstring for the method and the choices.

    Args:
        context: sizes and defaults from the model.
        levels: which levels, a subset of ``("frame_sentence", "patch_word")``.
        num_patches: tokens of the video tower kept for the patch-word level.
        max_words: at most this many word tokens of a caption take part.
        isa_hidden: hidden width of the aggregation MLPs.
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
        num_patches: int = 16,
        max_words: int = 32,
        isa_hidden: int = 4,
        temperature: float | None = None,
        learn_temperature: bool | None = None,
        min_temperature: float = 0.01,
        positive_mode: str = "each",
    ) -> None:
        super().__init__(context)
        levels = check_head_params(context, levels, LEVELS, positive_mode, num_heads=1)
        if min(num_patches, max_words, isa_hidden) < 1:
            raise ConfigError(f"head {context.name}: num_patches, max_words and isa_hidden must be at least 1")
        self.levels, self.num_patches, self.max_words = levels, num_patches, max_words
        self.positive_mode = positive_mode
        embed = context.embed_dim
        if "frame_sentence" in levels:
            self.frame_proj = nn.Linear(context.video_dim, embed)
            self.over_frames = InteractiveAggregation(isa_hidden)
        if "patch_word" in levels:
            self.patch_score = nn.Sequential(nn.LayerNorm(context.video_dim), nn.Linear(context.video_dim, 1))
            self.patch_proj = nn.Linear(context.video_dim, embed)
            self.word_proj = nn.Linear(context.text_dim, embed)
            # Word side: over the patches for each word, then over the words; patch side: the other way round.
            self.over_patches = InteractiveAggregation(isa_hidden)
            self.over_words = InteractiveAggregation(isa_hidden)
            self.patch_over_words = InteractiveAggregation(isa_hidden)
            self.patch_over_patches = InteractiveAggregation(isa_hidden)
        self.temperature = Temperature.for_head(context, temperature, learn_temperature, min_temperature)

    def units(self, inputs: HeadInputs) -> dict[str, tuple[Tensor, Tensor, Tensor, Tensor]]:
        """Per level: video units [B, n, E] and mask, text units [B, m, E] and mask (unit rows); the sentence is
        one unit (m = 1)."""
        video, text = inputs.video, inputs.text
        out = {}
        if "frame_sentence" in self.levels:
            frames, frame_mask = frame_units(video)  # [B, T, Dv], [B, T]
            sentence = text.pooled[:, None, :]
            out["frame_sentence"] = (
                F.normalize(self.frame_proj(frames), dim=-1),
                frame_mask,
                sentence,
                sentence.new_ones(sentence.shape[:2]).bool(),
            )
        if "patch_word" in self.levels:
            token_mask = video.token_mask.bool()
            scores = self.patch_score(video.tokens).squeeze(-1)  # [B, L]
            patches, patch_mask = select_patches(video.tokens, token_mask, scores, self.num_patches)
            words, word_mask = word_tokens(text, self.max_words)
            out["patch_word"] = (
                F.normalize(self.patch_proj(patches), dim=-1),
                patch_mask,
                F.normalize(self.word_proj(words), dim=-1),
                word_mask,
            )
        return out

    def level_similarity(
        self, level: str, video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor
    ) -> Tensor:
        """Similarity [N_text, N_video] of one level from its units (as :meth:`units` returns them)."""
        sim = torch.einsum("tme,vne->tvmn", text, video)  # [Nt, Nv, m, n]
        vmask = video_mask[None, :, None, :]
        if level == "frame_sentence":
            return self.over_frames(sim[:, :, 0, :], video_mask[None, :, :])
        tmask = text_mask[:, None, :, None]
        per_word = self.over_patches(sim, vmask)  # [Nt, Nv, m]
        text_side = self.over_words(per_word, text_mask[:, None, :])
        per_patch = self.patch_over_words(sim.transpose(2, 3), tmask.transpose(2, 3))  # [Nt, Nv, n]
        video_side = self.patch_over_patches(per_patch, video_mask[None, :, :])
        return (text_side + video_side) / 2

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
                sim = self.level_similarity(level, video.float(), video_mask, text.float(), text_mask)
                positives = batch_positives(inputs, sim.shape[0], sim.device)
                loss = symmetric_info_nce(sim, self.temperature(), positives, self.positive_mode)
            out[f"{level}_loss"] = loss.detach()
            total = loss if total is None else total + loss
        out["loss"] = total
        out["count"] = torch.tensor(float(inputs.video.tokens.shape[0]))
        return out
