"""InfoNCE over a batch (Eq. 3-6 of the dual-alignment paper), aware of several positives per row.

Positives are given as a boolean matrix, so a row may have more than one: two captions of the same video, or two
captions that lost the same noun ("dog" and "dog") must not push each other away as negatives. Every function here
works on logits that are already scaled by the temperature; gathering across processes is the caller's business.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

POSITIVE_MODES = ("each", "sum")


def group_positives(row_groups: Tensor, col_groups: Tensor | None = None) -> Tensor:
    """The positive matrix of two group-id vectors: ``positives[i, j] = row_groups[i] == col_groups[j]``.

    Args:
        row_groups: integer ids [N].
        col_groups: integer ids [M]; ``row_groups`` when omitted (a square, symmetric matrix).

    Returns:
        bool [N, M].
    """
    cols = row_groups if col_groups is None else col_groups
    return row_groups[:, None] == cols[None, :]  # [N, M]


def described_positives(video_concepts: Tensor, caption_concepts: Tensor) -> Tensor:
    """The positive matrix of videos and captions given as concept sets: ``positives[i, j]`` is True when every
    concept of caption j is one of video i's (the caption describes the video).

    Args:
        video_concepts: bool [N, V].
        caption_concepts: bool [M, V].

    Returns:
        bool [N, M]; not symmetric, even for N == M.
    """
    if video_concepts.shape[-1] != caption_concepts.shape[-1]:
        raise ValueError(
            f"video concepts {tuple(video_concepts.shape)} and caption concepts {tuple(caption_concepts.shape)} "
            "differ in width"
        )
    with torch.autocast(device_type=video_concepts.device.type, enabled=False):
        # How many of caption j's concepts video i lacks; exact in float32 for any realistic V.
        lacking = (~video_concepts.bool()).float() @ caption_concepts.bool().float().t()  # [N, M]
    return lacking == 0


def multi_positive_info_nce(logits: Tensor, positives: Tensor | None = None, mode: str = "each") -> Tensor:
    """InfoNCE of each row of ``logits`` against its positive columns, averaged over rows that have a positive.

    With one positive per row (``positives`` the identity, or None) both modes are Eq. 3:
    ``-log(exp(l_ii) / sum_j exp(l_ij))``.

    With several positives P(i):

    - ``"each"`` (default): every positive is scored against the negatives only,
      ``-1/|P(i)| sum_{p in P(i)} log(exp(l_ip) / (exp(l_ip) + sum_{n not in P(i)} exp(l_in)))``.
      Other positives are neither negatives nor extra votes: a row whose positive column appears twice (the same
      noun string encoded twice) gets the loss it would get with one copy.
    - ``"sum"`` (MIL-NCE): ``-log(sum_{p in P(i)} exp(l_ip) / sum_j exp(l_ij))``.

    Args:
        logits: similarity / temperature [N, M].
        positives: bool [N, M]; the diagonal (N == M) when None.
        mode: ``"each"`` or ``"sum"``.

    Returns:
        A scalar: the mean over rows with at least one positive (0 with a valid graph when no row has one).
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must be [N, M], got shape {tuple(logits.shape)}")
    n_rows, n_cols = logits.shape
    if positives is None:
        if n_rows != n_cols:
            raise ValueError("positives must be given when logits are not square")
        positives = torch.eye(n_rows, dtype=torch.bool, device=logits.device)
    positives = positives.to(device=logits.device, dtype=torch.bool)
    if positives.shape != logits.shape:
        raise ValueError(f"positives {tuple(positives.shape)} do not match logits {tuple(logits.shape)}")
    has_positive = positives.any(dim=1)  # [N]
    if not bool(has_positive.any()):
        return logits.sum() * 0.0
    logits = logits.float()
    # A finite stand-in for -inf: a row without negatives (or positives) then has finite values and gradients.
    fill = torch.finfo(logits.dtype).min
    if mode == "each":
        has_negative = (~positives).any(dim=1, keepdim=True)  # [N, 1]
        neg_lse = torch.logsumexp(logits.masked_fill(positives, fill), dim=1, keepdim=True)  # [N, 1]
        # -log(e^l_ip / (e^l_ip + sum_n e^l_in)) == softplus(lse_neg - l_ip); 0 when the row has no negative.
        per_pair = F.softplus(neg_lse - logits) * has_negative  # [N, M]
        per_pair = per_pair.masked_fill(~positives, 0.0)
        per_row = per_pair.sum(dim=1) / positives.sum(dim=1).clamp(min=1)  # [N]
    elif mode == "sum":
        pos_lse = torch.logsumexp(logits.masked_fill(~positives, fill), dim=1)  # [N]
        per_row = torch.logsumexp(logits, dim=1) - pos_lse  # [N]
    else:
        raise ValueError(f"unknown positive mode {mode!r}; choose one of {', '.join(POSITIVE_MODES)}")
    return per_row[has_positive].mean()


def contrastive_loss(
    a: Tensor,
    b: Tensor,
    logit_scale: Tensor | float,
    positives: Tensor | None = None,
    symmetric: bool = True,
    mode: str = "each",
) -> dict[str, Tensor]:
    """Cosine-similarity InfoNCE between two sets of embeddings (Eq. 1 and 4).

    Args:
        a: embeddings [N, E] (rows: the queries of Eq. 4, e.g. videos).
        b: embeddings [M, E] (columns, e.g. captions).
        logit_scale: 1 / temperature.
        positives: bool [N, M]; the diagonal when None.
        symmetric: also score every column against the rows (b -> a) and average both directions; Eq. 4 is the
            one-directional ``a -> b`` term.
        mode: how several positives of a row are scored (see :func:`multi_positive_info_nce`).

    Returns:
        ``{"loss", "a2b_loss", "b2a_loss"}``; ``b2a_loss`` only when symmetric.
    """
    if positives is None and a.shape[0] != b.shape[0]:
        raise ValueError("positives must be given when the two sets differ in size")
    # In float32 even inside a bfloat16 autocast region: logits of up to 1/tau need more than bf16's 8 bits.
    with torch.autocast(device_type=a.device.type, enabled=False):
        a = F.normalize(a.float(), dim=-1)
        b = F.normalize(b.float(), dim=-1)
        logits = logit_scale * a @ b.t()  # [N, M]
        a2b = multi_positive_info_nce(logits, positives, mode)
        out = {"a2b_loss": a2b}
        if symmetric:
            b2a = multi_positive_info_nce(logits.t(), None if positives is None else positives.t(), mode)
            out["b2a_loss"] = b2a
            out["loss"] = (a2b + b2a) / 2
        else:
            out["loss"] = a2b
    return out
