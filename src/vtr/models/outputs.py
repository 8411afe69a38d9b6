"""What the towers and the retrieval model return: token sequences, their masks, and pooled embeddings."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class VideoEncoderOutput:
    """The output of a video tower (any entry of the video-encoder registry).

    Attributes:
        tokens: video tokens [B, L, D]: what the cross-modal encoders attend to (keys and values of Eq. 2).
        token_mask: bool [B, L], True where a token comes from a real (not padded) frame.
        frame_features: one feature per frame [B, T, D] (mean pooling of Sec. III.C.1 runs over these).
        cls: the [CLS] token [B, D], or None for encoders without one.
    """

    tokens: Tensor
    token_mask: Tensor
    frame_features: Tensor
    cls: Tensor | None = None


@dataclass
class TextEncoderOutput:
    """The output of a text tower: tokens [B, L, D], their mask bool [B, L], the first ([CLS]) token [B, D], and
    the sentence representation [B, D] that embeddings are made from (``model.text.pooling``: the [CLS] token, or
    the mean of the real tokens)."""

    tokens: Tensor
    token_mask: Tensor
    cls: Tensor
    pooled: Tensor


@dataclass
class EncodedVideo:
    """A batch of videos as the retrieval model sees them.

    Attributes:
        tokens: video tokens of the tower [B, L, D_video] (not projected).
        token_mask: bool [B, L].
        pooled: the global embedding [B, E], L2-normalised (the one used for retrieval).
        frame_features: per-frame features of the tower [B, T, D_video].
        frame_mask: bool [B, T], True for real frames.
    """

    tokens: Tensor
    token_mask: Tensor
    pooled: Tensor
    frame_features: Tensor | None = None
    frame_mask: Tensor | None = None


@dataclass
class EncodedText:
    """A batch of texts: tokens of the tower [B, L, D_text], bool mask [B, L], global embedding [B, E] (L2-normalised)."""

    tokens: Tensor
    token_mask: Tensor
    pooled: Tensor
