"""Several models behind one index: each text and clip is embedded by every member and the parts joined.

A member's unit embedding scaled by ``1 / sqrt(n)`` and concatenated with the others' gives a unit vector whose
inner product with another joined vector is the *mean* of the members' cosine similarities. So an index of
joined embeddings ranks exactly as the average of the members' similarity matrices (``vtr metrics --sim A
--sim B``), with the same FAISS inner-product search as a single model.

Models that miss different queries partly make up for each other: on the synthetic demo, two training seeds of
the 128 px recipe together rank the right video first for 73.5% of the test captions against 66.9% and 70.7%
alone (benchmarks/RESULTS.md, "Two models").

Members must take the same number of frames per clip. Frames are decoded once at the largest member's size,
normalised with the first member's pixel statistics, and resized and normalised again for any member whose
size or statistics differ.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import torch

from vtr.errors import CheckpointError

ENSEMBLE_PREFIX = "ensemble:"


def join_embeddings(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate unit-row embeddings ``[N, E_i]`` of n models into unit rows ``[N, sum E_i]`` (each part / sqrt(n))."""
    if not parts:
        raise ValueError("nothing to join: no embeddings given")
    scale = np.float32(1.0 / math.sqrt(len(parts)))
    return (np.concatenate([np.asarray(p, dtype=np.float32) for p in parts], axis=1) * scale).astype(np.float32)


def ensemble_spec(specs: Sequence[str]) -> str:
    """The model spec of an ensemble as stored in an index: a JSON list of the members' specs."""
    return json.dumps(list(specs))


def parse_ensemble_spec(spec: str) -> list[str] | None:
    """The members' specs if ``spec`` names an ensemble (a JSON list of strings), else None."""
    if not spec.startswith("["):
        return None
    try:
        members = json.loads(spec)
    except ValueError:
        return None
    if isinstance(members, list) and members and all(isinstance(m, str) for m in members):
        return members
    return None


class EnsembleEncoder:
    """Two or more :class:`~vtr.index.encoders.VideoTextEncoder` models acting as one.

    Args:
        members: the loaded models, at least two, all with the same frames per clip.

    Raises:
        CheckpointError: fewer than two members, or members with different frames per clip.
    """

    def __init__(self, members: Sequence) -> None:
        if len(members) < 2:
            raise CheckpointError(f"an ensemble needs at least two models, got {len(members)}")
        frames = {int(m.num_frames) for m in members}
        if len(frames) > 1:
            listing = ", ".join(f"{m.model_spec} ({m.num_frames})" for m in members)
            raise CheckpointError(f"the models of an ensemble must take the same frames per clip: {listing}")
        self.members = list(members)
        first = self.members[0]
        self.model_id = ENSEMBLE_PREFIX + "+".join(m.model_id for m in self.members)
        self.model_spec = ensemble_spec([m.model_spec for m in self.members])
        self.dim = sum(int(m.dim) for m in self.members)
        self.num_frames = int(first.num_frames)
        self.image_size = max(int(m.image_size) for m in self.members)
        self.mean = tuple(first.mean)
        self.std = tuple(first.std)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with every member: float32 [N, sum E_i], unit rows."""
        return join_embeddings([m.embed_texts(texts) for m in self.members])

    def embed_clips(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> np.ndarray:
        """Embed clips [B, T, 3, S, S] (normalised as this ensemble says) with every member: float32 [B, sum E_i]."""
        return join_embeddings([m.embed_clips(self._frames_for(m, frames), frame_mask) for m in self.members])

    def _frames_for(self, member, frames: torch.Tensor) -> torch.Tensor:
        # The frames as the member would have decoded them: its size and its pixel statistics.
        size = int(member.image_size)
        same_stats = tuple(member.mean) == self.mean and tuple(member.std) == self.std
        if size == frames.shape[-1] and same_stats:
            return frames
        lead = frames.shape[:-3]
        out = frames.reshape(-1, *frames.shape[-3:])  # [B*T, 3, S, S]
        if not same_stats:
            out = _renormalise(out, self.mean, self.std, member.mean, member.std)
        if size != out.shape[-1]:
            out = torch.nn.functional.interpolate(out, size=(size, size), mode="bilinear", antialias=True)
        return out.reshape(*lead, 3, size, size)


def _renormalise(
    frames: torch.Tensor, mean: Sequence[float], std: Sequence[float], to_mean: Sequence[float], to_std: Sequence[float]
) -> torch.Tensor:
    # (x - mean) / std  ->  (x - to_mean) / to_std, per channel of [N, 3, S, S].
    def column(values: Sequence[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)

    pixels = frames * column(std) + column(mean)
    return (pixels - column(to_mean)) / column(to_std)
