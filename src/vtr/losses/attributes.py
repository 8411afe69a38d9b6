"""Losses on attribute predictions (multi-label, over a vocabulary): focal binary cross-entropy and the KL term
that ties the attribute distributions predicted from the two modalities together (MCSAN, papers/mcsan-abstract.txt).

Both are pure functions of logits; they run in float32 even inside a bfloat16 autocast region.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def focal_binary_cross_entropy(
    logits: Tensor, targets: Tensor, gamma: float = 2.0, alpha: float | None = 0.25
) -> Tensor:
    """Focal binary cross-entropy (FBCE) of multi-label logits, for attribute vocabularies where a few words are
    frequent and most are rare: easy entries (mostly absent words) are down-weighted by ``(1 - p_t) ** gamma``.

    ``FBCE = -a_t (1 - p_t)^gamma log(p_t)`` per entry, with ``p_t = p`` where the label is 1 and ``1 - p`` where it is
    0, ``a_t = alpha`` or ``1 - alpha`` likewise (RetinaNet's form). The sum over entries is divided by the number of
    positive labels (at least 1), so that the loss does not shrink as the vocabulary grows.

    Args:
        logits: [N, V] scores before the sigmoid.
        targets: [N, V] labels in {0, 1} (float or bool).
        gamma: focusing exponent; 0 gives (alpha-weighted) binary cross-entropy.
        alpha: weight of the positive entries, or None for no class weighting.

    Returns:
        A scalar.
    """
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits, targets = logits.float(), targets.float()
        # log p_t without overflow: logsigmoid(x) where the label is 1, logsigmoid(-x) where it is 0.
        log_pt = F.logsigmoid(torch.where(targets > 0.5, logits, -logits))  # [N, V]
        loss = -((1.0 - log_pt.exp()) ** gamma) * log_pt
        if alpha is not None:
            loss = loss * torch.where(targets > 0.5, alpha, 1.0 - alpha)
        return loss.sum() / targets.sum().clamp(min=1.0)


def attribute_kl(video_logits: Tensor, text_logits: Tensor) -> Tensor:
    """Symmetric KL divergence between the attribute distributions (softmax over the vocabulary) predicted from the
    video and from the text, averaged over rows: ``(KL(p_t || p_v) + KL(p_v || p_t)) / 2``.

    It asks both modalities to spread their belief over the same words, beyond the per-word labels of
    :func:`focal_binary_cross_entropy` (MCSAN's "statistical constraint" between modalities).

    Args:
        video_logits: [N, V].
        text_logits: [N, V].

    Returns:
        A scalar (0 for N == 0).
    """
    if video_logits.shape != text_logits.shape:
        raise ValueError(f"logits differ in shape: {tuple(video_logits.shape)} vs {tuple(text_logits.shape)}")
    if video_logits.shape[0] == 0:
        return video_logits.sum() * 0.0
    with torch.autocast(device_type=video_logits.device.type, enabled=False):
        log_v = F.log_softmax(video_logits.float(), dim=-1)
        log_t = F.log_softmax(text_logits.float(), dim=-1)
        t_from_v = F.kl_div(log_v, log_t, log_target=True, reduction="batchmean")  # KL(p_t || p_v)
        v_from_t = F.kl_div(log_t, log_v, log_target=True, reduction="batchmean")  # KL(p_v || p_t)
        return (t_from_v + v_from_t) / 2
