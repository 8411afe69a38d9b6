"""A memo of a frozen text tower's outputs, keyed by token ids.

When no parameter of the text tower trains (``model.text.freeze_layers: -1``, the tower in eval mode), a text
always gives the same output, and a training run sees the same captions every epoch: with the noun and verb
heads the tower reads five texts per caption per step. The cache runs the tower once per distinct text and
then answers from memory; only the projections and heads above it train.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vtr.models.outputs import TextEncoderOutput
from vtr.models.text_encoders import TextEncoder

DEFAULT_BUDGET_BYTES = 2 << 30  # past this, texts not yet cached are computed every time


class FrozenTextCache:
    """Call like the tower: ``cache(input_ids, attention_mask) -> TextEncoderOutput``.

    Rows are keyed by their real (unmasked) token ids, so the same text padded to other lengths hits the same
    entry. Outputs carry no gradient (the tower is frozen).

    Args:
        encoder: a text tower none of whose parameters train.
        budget_bytes: memory the cached tensors may take.
    """

    def __init__(self, encoder: TextEncoder, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        if any(p.requires_grad for p in encoder.parameters()):
            raise ValueError("FrozenTextCache needs a text tower with no trainable parameter")
        self.encoder = encoder
        self.budget_bytes = budget_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: dict[bytes, tuple[Tensor, Tensor, Tensor]] = {}  # key -> (tokens [n, D], cls [D], pooled [D])

    def __len__(self) -> int:
        return len(self._entries)

    @torch.no_grad()
    def __call__(self, input_ids: Tensor, attention_mask: Tensor) -> TextEncoderOutput:
        mask = attention_mask.to(torch.bool)
        lengths = mask.sum(1).tolist()
        keys = [input_ids[row][mask[row]].cpu().numpy().tobytes() for row in range(input_ids.shape[0])]
        missing = [row for row, key in enumerate(keys) if key not in self._entries]
        fresh: dict[int, tuple[Tensor, Tensor, Tensor]] = {}
        if missing:
            out = self.encoder(input_ids[missing], attention_mask[missing])
            for i, row in enumerate(missing):
                entry = (out.tokens[i, : lengths[row]].clone(), out.cls[i].clone(), out.pooled[i].clone())
                fresh[row] = entry
                size = sum(t.numel() * t.element_size() for t in entry)
                if keys[row] not in self._entries and self.bytes + size <= self.budget_bytes:
                    self._entries[keys[row]] = entry
                    self.bytes += size
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        rows = [fresh[row] if row in fresh else self._entries[key] for row, key in enumerate(keys)]
        tokens = rows[0][0].new_zeros(len(rows), input_ids.shape[1], rows[0][0].shape[-1])
        for row, (row_tokens, _, _) in enumerate(rows):
            tokens[row, : row_tokens.shape[0]] = row_tokens
        cls = torch.stack([entry[1] for entry in rows])
        pooled = torch.stack([entry[2] for entry in rows])
        return TextEncoderOutput(tokens=tokens, token_mask=mask, cls=cls, pooled=pooled)
