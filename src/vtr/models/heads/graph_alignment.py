"""FCA-Net: segment-phrase alignment as link prediction with a graph auto-encoder (papers/fca-net-abstract.txt).

FCA-Net aligns *visual semantic units* (sub-actions: segments of the video) with the *phrases* of the sentence. The
interactions between them are "formulated as a link prediction problem optimized by a graph auto-encoder to
obtain the explicit relations between them and enhance the aligned feature representation". This head builds,
for every caption-video pair of the batch, a graph of the video's segments and the caption's phrases:

- nodes: ``num_segments`` segments (consecutive runs of frames, each the mean of its real frames' features) and
  the phrases (windows of ``phrase_length`` word tokens, every ``phrase_stride``, each the mean of its real
  tokens), projected into the shared space;
- edges: consecutive segments, consecutive phrases (weight 1), and every segment-phrase pair with weight
  relu(cosine) of the projected units: the initial estimate of their relation;
- encoder (the graph auto-encoder's): one graph convolution, Z = normalise(X + D^-1/2 (A + I) D^-1/2 X W), so that
  a segment's representation takes in the phrases it relates to and its neighbours, and the other way round;
- decoder: the inner product of the encoded nodes, z_phrase . z_segment: the predicted link of the two.

Two losses train it:

- *alignment*: the pair's similarity is the max-mean of its decoded links (each phrase's best segment, each
  segment's best phrase), and InfoNCE over the batch aligns the modalities;
- *link prediction*: a matched pair's graph has links, a mismatched pair's has none. For each real phrase, the
  link to the segment it relates to most (by the initial estimate, not learnt through) is a positive example in
  a matched pair and a negative one in every other pair of the batch: binary cross-entropy on the decoded link
  (over tau), balanced between the two classes, weight ``link_weight``.

Choices where the abstract is silent: segments are fixed, equal runs of frames (no sub-action detector); phrases
are fixed windows of tokens (no parser: works for any tokenizer and language); one graph-convolution layer;
the link targets as above. Retrieval stays a dual encoder on the global embeddings (as for ``hcmi`` and
``ucofia``): the graph is built per pair, which a search over many videos cannot afford for every candidate; it
can for a short list, which is how ``vtr eval --rerank`` uses it (:meth:`GraphAlignmentHead.pair_similarity`).
"""

from __future__ import annotations

import math

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
from vtr.models.heads.hierarchical import max_mean_of_pairs
from vtr.models.registry import register_head


def window_means(units: Tensor, mask: Tensor, length: int, stride: int) -> tuple[Tensor, Tensor]:
    """Means of the real units in windows of ``length`` starting every ``stride`` (the last may be shorter).

    Args:
        units: [B, n, D]; mask: bool [B, n].

    Returns:
        windows [B, w, D] with w = ceil(max(n - length, 0) / stride) + 1, and their mask (False where a window
        holds no real unit).
    """
    n = units.shape[1]
    count = math.ceil(max(n - length, 0) / stride) + 1
    padded = (count - 1) * stride + length - n
    weights = F.pad(mask.to(units.dtype), (0, max(padded, 0)))
    values = F.pad(units, (0, 0, 0, max(padded, 0))) * weights[..., None]
    sums = values.unfold(1, length, stride).sum(-1)  # [B, w, D]
    counts = weights.unfold(1, length, stride).sum(-1)  # [B, w]
    return sums / counts.clamp(min=1)[..., None], counts > 0


def segments(frames: Tensor, frame_mask: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """Consecutive runs of ceil(T / count) frames (``count`` of them, fewer when T does not split so), each the mean
    of its real frames, and their mask."""
    length = math.ceil(frames.shape[1] / count)
    return window_means(frames, frame_mask, length, length)


def chain_adjacency(mask: Tensor) -> Tensor:
    """Edges [N, k, k] between consecutive units that are both real (mask bool [N, k])."""
    both = (mask[:, 1:] & mask[:, :-1]).to(torch.float32)  # [N, k-1]
    return torch.diag_embed(both, offset=1) + torch.diag_embed(both, offset=-1)


class PairGraphEncoder(nn.Module):
    """One graph convolution over every caption-video pair's graph of segments and phrases (see the module
    docstring); returns the encoded segments [Nt, Nv, n, E] and phrases [Nt, Nv, m, E], unit rows, and the initial
    segment-phrase relations [Nt, Nv, m, n]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Linear(dim, dim, bias=False)
        nn.init.zeros_(self.weight.weight)  # starts as the identity: Z = X

    def forward(self, seg: Tensor, seg_mask: Tensor, phr: Tensor, phr_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """seg [Nv, n, E] unit rows, seg_mask bool [Nv, n]; phr [Nt, m, E], phr_mask bool [Nt, m]."""
        real = phr_mask[:, None, :, None] & seg_mask[None, :, None, :]
        relation = torch.einsum("tme,vne->tvmn", phr, seg).clamp(min=0) * real  # [Nt, Nv, m, n]
        seg_chain, phr_chain = chain_adjacency(seg_mask).to(seg.dtype), chain_adjacency(phr_mask).to(phr.dtype)
        # Degrees with the self-loop: [Nt, Nv, n] and [Nt, Nv, m].
        seg_scale = (1 + seg_chain.sum(-1)[None] + relation.sum(2)).rsqrt()
        phr_scale = (1 + phr_chain.sum(-1)[:, None] + relation.sum(3)).rsqrt()
        seg_in = seg[None] * seg_scale[..., None]  # D^-1/2 X, per pair
        phr_in = phr[:, None] * phr_scale[..., None]
        seg_agg = seg_in + torch.einsum("vij,tvje->tvie", seg_chain, seg_in)
        seg_agg = seg_agg + torch.einsum("tvmn,tvme->tvne", relation, phr_in)
        phr_agg = phr_in + torch.einsum("tij,tvje->tvie", phr_chain, phr_in)
        phr_agg = phr_agg + torch.einsum("tvmn,tvne->tvme", relation, seg_in)
        seg_out = F.normalize(seg[None] + self.weight(seg_agg * seg_scale[..., None]), dim=-1)
        phr_out = F.normalize(phr[:, None] + self.weight(phr_agg * phr_scale[..., None]), dim=-1)
        return seg_out, phr_out, relation


def link_targets(relation: Tensor, phr_mask: Tensor, seg_mask: Tensor) -> Tensor:
    """One-hot [Nt, Nv, m, n]: each real phrase's strongest initial relation among the real segments."""
    masked = relation.masked_fill(~seg_mask[None, :, None, :], -1.0)
    best = masked.argmax(dim=-1)  # [Nt, Nv, m]
    return F.one_hot(best, relation.shape[-1]).to(torch.bool) & phr_mask[:, None, :, None]


@register_head("fcanet")
class GraphAlignmentHead(AlignmentHead):
    """Segment-phrase alignment by a graph auto-encoder's link prediction (FCA-Net); see the module docstring.

    Args:
        context: sizes and defaults from the model.
        num_segments: runs of frames per video (the visual semantic units).
        phrase_length: word tokens per phrase.
        phrase_stride: tokens between the starts of two phrases.
        max_words: at most this many word tokens of a caption take part.
        link_weight: weight of the link-prediction loss against the alignment loss.
        temperature: tau of the InfoNCE term and of the link logits; the model's when None.
        learn_temperature: learn tau; the model's setting when None.
        min_temperature: the clamp of a learned tau.
        positive_mode: how several positives of a row are scored (``vtr.losses.multi_positive_info_nce``).
    """

    uses_video_tokens = True
    scores_pairs = True

    def __init__(
        self,
        context: HeadContext,
        num_segments: int = 4,
        phrase_length: int = 3,
        phrase_stride: int = 2,
        max_words: int = 32,
        link_weight: float = 1.0,
        temperature: float | None = None,
        learn_temperature: bool | None = None,
        min_temperature: float = 0.01,
        positive_mode: str = "each",
    ) -> None:
        super().__init__(context)
        check_head_params(context, ("segment_phrase",), ("segment_phrase",), positive_mode, num_heads=1)
        if min(num_segments, phrase_length, phrase_stride, max_words) < 1:
            raise ConfigError(
                f"head {context.name}: num_segments, phrase_length, phrase_stride and max_words must be at least 1"
            )
        if link_weight < 0:
            raise ConfigError(f"head {context.name}: link_weight must be >= 0, got {link_weight}")
        self.num_segments, self.phrase_length, self.phrase_stride = num_segments, phrase_length, phrase_stride
        self.max_words, self.link_weight, self.positive_mode = max_words, link_weight, positive_mode
        embed = context.embed_dim
        self.segment_proj = nn.Linear(context.video_dim, embed)
        self.phrase_proj = nn.Linear(context.text_dim, embed)
        self.graph = PairGraphEncoder(embed)
        self.temperature = Temperature.for_head(context, temperature, learn_temperature, min_temperature)

    def units(self, inputs: HeadInputs) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Segments [B, n, E] and their mask, phrases [B, m, E] and their mask (unit rows)."""
        video = inputs.video
        frames, frame_mask = frame_units(video)  # [B, T, Dv], [B, T]
        seg, seg_mask = segments(frames, frame_mask, self.num_segments)
        words, word_mask = word_tokens(inputs.text, self.max_words)
        phr, phr_mask = window_means(words, word_mask, self.phrase_length, self.phrase_stride)
        return (
            F.normalize(self.segment_proj(seg), dim=-1),
            seg_mask,
            F.normalize(self.phrase_proj(phr), dim=-1),
            phr_mask,
        )

    def pair_scores(
        self, seg: Tensor, seg_mask: Tensor, phr: Tensor, phr_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The pairs' similarity [Nt, Nv], their decoded links [Nt, Nv, m, n] (cosines of encoded nodes) and the
        link targets (:func:`link_targets`)."""
        seg_out, phr_out, relation = self.graph(seg, seg_mask, phr, phr_mask)
        links = torch.einsum("tvme,tvne->tvmn", phr_out, seg_out)
        similarity = max_mean_of_pairs(links, seg_mask, phr_mask)
        return similarity, links, link_targets(relation.detach(), phr_mask, seg_mask)

    def pair_similarity(self, inputs: HeadInputs, chunk: int = 16) -> Tensor:
        """The max-mean of the decoded links [B] of caption i's graph with video i (the training similarity of a
        pair), ``chunk`` pairs at a time (each chunk's graphs are built for every pair of the chunk and the
        diagonal kept: a few wasted small graphs buy one vectorised call)."""
        seg, seg_mask, phr, phr_mask = self.units(inputs)
        scores = []
        for start in range(0, seg.shape[0], chunk):
            rows = slice(start, start + chunk)
            with torch.autocast(device_type=seg.device.type, enabled=False):
                grid, _, _ = self.pair_scores(seg[rows].float(), seg_mask[rows], phr[rows].float(), phr_mask[rows])
            scores.append(grid.diagonal())
        return torch.cat(scores)

    def forward(self, inputs: HeadInputs) -> dict[str, Tensor]:
        seg, seg_mask, phr, phr_mask = self.units(inputs)
        if inputs.gather is not None:
            seg, phr = inputs.gather(seg), inputs.gather(phr)
            seg_mask, phr_mask = inputs.gather(seg_mask), inputs.gather(phr_mask)
        phr, phr_mask = drop_empty_slots(phr, phr_mask)  # the same on every process: after the gather
        with torch.autocast(device_type=seg.device.type, enabled=False):
            similarity, links, targets = self.pair_scores(seg.float(), seg_mask, phr.float(), phr_mask)
            scale = self.temperature()
            positives = batch_positives(inputs, similarity.shape[0], similarity.device)
            align = symmetric_info_nce(similarity, scale, positives, self.positive_mode)
            logits = scale * links[targets]  # one slot per real phrase of every pair
            labels = positives[:, :, None, None].expand_as(targets)[targets].to(logits.dtype)
            bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
            matched = labels > 0
            if matched.all() or not matched.any():
                link = bce.mean()
            else:  # the two classes weigh the same: a batch of B pairs has B matched ones and B^2 - B others
                link = (bce[matched].mean() + bce[~matched].mean()) / 2
            loss = align + self.link_weight * link
        return {
            "loss": loss,
            "align_loss": align.detach(),
            "link_loss": link.detach(),
            "count": torch.tensor(float(inputs.video.frame_features.shape[0])),
        }
