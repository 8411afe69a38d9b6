"""A cross-batch memory of embeddings: the negatives of past batches, kept for the contrastive loss of later ones.

With a batch of 32 random clips a caption rarely meets the clips that differ from its own in one noun or one verb,
so the batch loss soon has nothing left to teach: on the synthetic benchmark it falls below 0.1 while the test
split still confuses shapes. Keeping the embeddings of the last few hundred clips and captions (detached: no
gradient flows into them) lets every step score the batch against many more negatives, the hard ones among them,
for the price of a larger similarity matrix. This is XBM (Wang et al., "Cross-Batch Memory for Embedding
Learning", CVPR 2020), the video-text form of MoCo's queue without a momentum encoder: the entries were made by
the model of a few steps ago and drift slowly once training has settled, which is why the memory is only read
after ``start_step`` steps.

The memory is not saved with the weights: a resumed run starts it empty, fills it again in ``size / batch``
steps, and counts ``start_step`` from the resumption.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EmbeddingMemory(nn.Module):
    """A ring buffer of video and caption embeddings [size, E] and their group ids, newest overwriting oldest.

    Row i holds one training pair of a past batch: its video's embedding, its caption's embedding, the video's
    index in the training set and the caption's group (equal for equal strings). Pairs that share either id with a
    batch item are its positives, not negatives. With ``data.concept_positives`` a row also keeps the video's and
    the caption's concepts (bool [V], :mod:`vtr.data.concept_positives`), so that a remembered clip a batch
    caption describes is a positive too; a memory holds concepts for every push or for none.

    Args:
        size: how many pairs it holds.
        dim: the embedding width E.
        start_step: how many training steps (calls of :meth:`push`) pass before :meth:`entries` returns anything.
    """

    def __init__(self, size: int, dim: int, start_step: int = 0) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"memory size must be at least 1, got {size}")
        if start_step < 0:
            raise ValueError(f"memory start_step must be 0 or more, got {start_step}")
        self.size, self.start_step = int(size), int(start_step)
        self.register_buffer("video", torch.zeros(size, dim), persistent=False)
        self.register_buffer("text", torch.zeros(size, dim), persistent=False)
        self.register_buffer("video_index", torch.zeros(size, dtype=torch.long), persistent=False)
        self.register_buffer("caption_group", torch.zeros(size, dtype=torch.long), persistent=False)
        # bool [size, V] each, allocated by the first push with concepts (buffers: they follow .to(device)).
        self.video_concepts: Tensor | None
        self.caption_concepts: Tensor | None
        self.register_buffer("video_concepts", None, persistent=False)
        self.register_buffer("caption_concepts", None, persistent=False)
        self.filled = 0  # rows that hold a pair
        self.cursor = 0  # the next row to write
        self.steps = 0  # pushes so far

    @property
    def active(self) -> bool:
        """Whether the memory is read yet (``start_step`` pushes have happened and a row is filled)."""
        return self.steps >= self.start_step and self.filled > 0

    def entries(self) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
        """The filled rows, ``(video [n, E], text [n, E], video_index [n], caption_group [n])``; None before
        :attr:`active`."""
        if not self.active:
            return None
        n = self.filled
        return self.video[:n], self.text[:n], self.video_index[:n], self.caption_group[:n]

    def concepts(self) -> tuple[Tensor, Tensor] | None:
        """The filled rows' ``(video_concepts [n, V], caption_concepts [n, V])``; None before :attr:`active` or
        when the pushes had no concepts."""
        if not self.active or self.video_concepts is None or self.caption_concepts is None:
            return None
        return self.video_concepts[: self.filled], self.caption_concepts[: self.filled]

    @torch.no_grad()
    def push(
        self,
        video: Tensor,
        text: Tensor,
        video_index: Tensor,
        caption_group: Tensor,
        concepts: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        """Store a batch of pairs (detached, as float32), overwriting the oldest rows; counts one step.

        ``concepts``: the pairs' ``(video_concepts, caption_concepts)``, bool [B, V] each, on every push or on none.
        Every process of a multi-process run pushes the same gathered batch, so their memories stay equal.
        """
        had_concepts = self.video_concepts is not None
        if self.steps and (concepts is not None) != had_concepts:
            raise ValueError("a memory takes concepts on every push or on none")
        count = video.shape[0]
        if count > self.size:  # a batch larger than the memory: keep its last rows
            video, text = video[-self.size :], text[-self.size :]
            video_index, caption_group = video_index[-self.size :], caption_group[-self.size :]
            if concepts is not None:
                concepts = (concepts[0][-self.size :], concepts[1][-self.size :])
            count = self.size
        rows = (self.cursor + torch.arange(count, device=self.video.device)) % self.size
        self.video[rows] = video.detach().float()
        self.text[rows] = text.detach().float()
        self.video_index[rows] = video_index.to(self.video_index.device)
        self.caption_group[rows] = caption_group.to(self.caption_group.device)
        if concepts is not None:
            if self.video_concepts is None or self.caption_concepts is None:
                shape = (self.size, concepts[0].shape[-1])
                self.video_concepts = torch.zeros(shape, dtype=torch.bool, device=self.video.device)
                self.caption_concepts = torch.zeros(shape, dtype=torch.bool, device=self.video.device)
            self.video_concepts[rows] = concepts[0].to(self.video.device, torch.bool)
            self.caption_concepts[rows] = concepts[1].to(self.video.device, torch.bool)
        self.cursor = (self.cursor + count) % self.size
        self.filled = min(self.size, self.filled + count)
        self.steps += 1
