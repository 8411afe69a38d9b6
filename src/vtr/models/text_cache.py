"""A memo of a frozen text tower's outputs, keyed by token ids.

When no parameter of the text tower trains (``model.text.freeze_layers: -1``, the tower in eval mode), a text
always gives the same output, and a training run sees the same captions every epoch: with the noun and verb
heads the tower reads five texts per caption per step. The cache runs the tower once per distinct text and
then answers from memory; only the projections and heads above it train.

Entries live in a few large tensors that grow by doubling, not in one small tensor each: thousands of small
long-lived allocations between each step's large short-lived ones fragment the C heap, and a training process
then grew by 30 MB a second (8 GiB in 10 epochs) while the cache itself held 250 MB.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vtr.models.outputs import TextEncoderOutput
from vtr.models.text_encoders import TextEncoder

DEFAULT_BUDGET_BYTES = 2 << 30  # past this, texts not yet cached are computed every time
_FIRST_CAPACITY = 1024


class _Rows:
    """A [capacity, D] tensor filled from the top, doubled when full."""

    def __init__(self) -> None:
        self.data: Tensor | None = None
        self.used = 0

    def append(self, rows: Tensor) -> int:
        """Store ``rows`` [n, D]; returns the index of the first."""
        if self.data is None:
            self.data = rows.new_empty(max(_FIRST_CAPACITY, rows.shape[0]), rows.shape[1])
        if self.used + rows.shape[0] > self.data.shape[0]:
            grown = self.data.new_empty(max(2 * self.data.shape[0], self.used + rows.shape[0]), self.data.shape[1])
            grown[: self.used] = self.data[: self.used]
            self.data = grown
        start = self.used
        self.data[start : start + rows.shape[0]] = rows
        self.used += rows.shape[0]
        return start

    @property
    def bytes(self) -> int:
        return 0 if self.data is None else self.data.numel() * self.data.element_size()


class FrozenTextCache:
    """Call like the tower: ``cache(input_ids, attention_mask) -> TextEncoderOutput``.

    Rows are keyed by their real (unmasked) token ids, so the same text padded to other lengths hits the same
    entry. Outputs carry no gradient (the tower is frozen).

    Args:
        encoder: a text tower none of whose parameters train.
        budget_bytes: once the cached tensors take this much, new texts are answered but not stored (storage
            grows by doubling, so it may end up to twice the size of what it holds).
    """

    def __init__(self, encoder: TextEncoder, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        if any(p.requires_grad for p in encoder.parameters()):
            raise ValueError("FrozenTextCache needs a text tower with no trainable parameter")
        self.encoder = encoder
        self.budget_bytes = budget_bytes
        self.hits = 0
        self.misses = 0
        self._tokens = _Rows()  # every entry's real tokens, one after another
        self._cls = _Rows()
        self._pooled = _Rows()
        self._entries: dict[bytes, tuple[int, int, int]] = {}  # key -> (entry, first token row, length)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Memory held by the cached tensors (their allocated capacity)."""
        return self._tokens.bytes + self._cls.bytes + self._pooled.bytes

    @torch.no_grad()
    def __call__(self, input_ids: Tensor, attention_mask: Tensor) -> TextEncoderOutput:
        mask = attention_mask.to(torch.bool)
        lengths = mask.sum(1).tolist()
        keys = [input_ids[row][mask[row]].cpu().numpy().tobytes() for row in range(input_ids.shape[0])]
        missing = sorted({row for row, key in enumerate(keys) if key not in self._entries})
        fresh = None
        if missing:
            # Kept for the whole run, and compared with float32 evaluation: never in an autocast dtype.
            with torch.autocast(device_type=input_ids.device.type, enabled=False):
                fresh = self.encoder(input_ids[missing], attention_mask[missing])
        fresh_row = {row: i for i, row in enumerate(missing)}
        if fresh is not None and self.bytes + _size(fresh) <= self.budget_bytes:
            for i, row in enumerate(missing):
                if keys[row] not in self._entries:  # the same text twice in one batch is stored once
                    start = self._tokens.append(fresh.tokens[i, : lengths[row]])
                    entry = self._cls.append(fresh.cls[i : i + 1])
                    self._pooled.append(fresh.pooled[i : i + 1])
                    self._entries[keys[row]] = (entry, start, lengths[row])
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)

        width = input_ids.shape[1]
        sample = fresh.tokens if fresh is not None else self._tokens.data
        assert sample is not None
        tokens = sample.new_zeros(len(keys), width, sample.shape[-1])
        cls = sample.new_empty(len(keys), sample.shape[-1])
        pooled = sample.new_empty(len(keys), sample.shape[-1])
        for row, key in enumerate(keys):
            if row in fresh_row and fresh is not None:
                i = fresh_row[row]
                tokens[row, : lengths[row]] = fresh.tokens[i, : lengths[row]]
                cls[row], pooled[row] = fresh.cls[i], fresh.pooled[i]
            else:
                entry, start, length = self._entries[key]
                assert self._tokens.data is not None and self._cls.data is not None and self._pooled.data is not None
                tokens[row, :length] = self._tokens.data[start : start + length]
                cls[row], pooled[row] = self._cls.data[entry], self._pooled.data[entry]
        return TextEncoderOutput(tokens=tokens, token_mask=mask, cls=cls, pooled=pooled)


def _size(output: TextEncoderOutput) -> int:
    return sum(t.numel() * t.element_size() for t in (output.tokens, output.cls, output.pooled))
