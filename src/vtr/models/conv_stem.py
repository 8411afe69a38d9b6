"""A convolutional stem for TimeSformer: a few stride-2 convolutions in place of the linear patch embedding.

A linear patch embedding sees each patch once, through one matrix. Trained from scratch on little data, a
transformer on top of it learns shapes slowly: Xiao et al., "Early Convolutions Help Transformers See Better"
(NeurIPS 2021), replace it by a stack of 3x3 stride-2 convolutions and a 1x1 projection: the same token grid
for a few more parameters. On the synthetic benchmark it lifts test R@5 from 83 to 89-90% (benchmarks/RESULTS.md).

The ``conv3d`` variant makes the first convolution span three frames, so that every token starts with a local
motion cue (what changed since the previous frame) instead of having to find it by temporal attention;
measured, it did no better than ``conv``.

The stem's normalisation (``norm``) is GroupNorm (``group``), GroupNorm with one group (``layer``) or BatchNorm
(``batch``). GroupNorm normalises each image by its own statistics; with the demo's 8 channels in 8 groups it is
instance normalisation, which divides out an object's contrast against a plain background: a gray object in the
dark night sky (about halfway between the sky and white in every channel) makes nearly the same first-layer
features as a white one. BatchNorm normalises by the training batches' statistics and, in evaluation, by their
running averages: a fixed per-channel affine map, so a pixel's absolute colour reaches the transformer. Training
on several processes, its statistics are those of the global batch
(:class:`~vtr.models.synced_batch_norm.SyncedBatchNorm2d`). On the demo's data BatchNorm removed every night-sky
search miss over two seeds, but cost t2v R@1 (59 against 71 on average), so the demo keeps GroupNorm
(benchmarks/RESULTS.md, "Stem normalisation"). With one group, each image is normalised by one mean
and spread over all its channels: still per image, but the background's colour differs between channels, so an
object's contrast against it is kept. On the demo it did as BatchNorm did: the night-sky misses went, and R@1 fell
as far (62 against 71 on average over two seeds).

With ``colour``, each token also gets its patch's mean colour in absolute terms, through a linear map that
starts at zero (so training starts from the plain stem): what GroupNorm divides out reaches the transformer by
this side path while the convolutions keep their per-image normalisation. On the demo (one seed) it kept
GroupNorm's R@1 but not the gray objects.

The module is a drop-in for ``transformers``' ``TimesformerPatchEmbeddings``: frames ``[B, T, C, H, W]`` in,
``(tokens [B*T, P, D], T, patch grid width)`` out, so position and time embeddings and every layer after them
are TimeSformer's own.
"""

from __future__ import annotations

import itertools

from torch import Tensor, nn
from torch.nn import functional as F

from vtr.errors import ConfigError
from vtr.models.synced_batch_norm import SyncedBatchNorm2d

STEMS = ("patch", "conv", "conv3d")
STEM_NORMS = ("group", "layer", "batch")
_GROUPS = 8  # GroupNorm groups of the "group" norm


def _norm_act(channels: int, norm: str) -> list[nn.Module]:
    if norm == "batch":
        layer: nn.Module = SyncedBatchNorm2d(channels)
    else:  # "layer" is GroupNorm with one group: each image by one mean and spread over all its channels
        layer = nn.GroupNorm(min(_GROUPS, channels) if norm == "group" else 1, channels)
    return [layer, nn.ReLU(inplace=True)]


def stem_channels(patch_size: int, hidden_size: int) -> list[int]:
    """Channels after each stride-2 convolution: ``log2(patch_size)`` of them, doubling up to ``hidden_size / 2``.

    Raises:
        ConfigError: ``patch_size`` is not a power of two of at least 2.
    """
    steps = patch_size.bit_length() - 1
    if patch_size < 2 or 1 << steps != patch_size:
        raise ConfigError(f"a convolutional stem needs a power-of-two model.video.patch_size, got {patch_size}")
    return [max(hidden_size >> (steps - i), 8) for i in range(steps)]


class ConvPatchEmbeddings(nn.Module):
    """Stride-2 3x3 convolutions (each with a normalisation and ReLU), then a 1x1 projection to ``hidden_size``.

    Args:
        num_channels: channels of a frame (3).
        hidden_size: the transformer width.
        patch_size: the token grid's stride in pixels; the stem has ``log2(patch_size)`` stride-2 convolutions.
        temporal: the first convolution spans three frames (zero padded at both ends of the clip).
        norm: ``"group"`` (GroupNorm, each image and group of channels by its own statistics), ``"layer"``
            (GroupNorm with one group) or ``"batch"`` (BatchNorm).
        colour: add each patch's mean colour, through a linear map initialised to zero, to its token.

    Raises:
        ConfigError: an unknown ``norm``, or a patch size the stem cannot make.
    """

    def __init__(
        self,
        num_channels: int,
        hidden_size: int,
        patch_size: int,
        temporal: bool = False,
        norm: str = "group",
        colour: bool = False,
    ) -> None:
        super().__init__()
        check_stem_norm(norm)
        channels = stem_channels(patch_size, hidden_size)
        self.temporal = temporal
        self.patch_size = patch_size
        first = channels[0]
        if temporal:
            self.first = nn.Conv3d(num_channels, first, (3, 3, 3), stride=(1, 2, 2), padding=1, bias=False)
        else:
            self.first = nn.Conv2d(num_channels, first, 3, stride=2, padding=1, bias=False)
        layers: list[nn.Module] = _norm_act(first, norm)
        for c_in, c_out in itertools.pairwise(channels):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), *_norm_act(c_out, norm)]
        layers.append(nn.Conv2d(channels[-1], hidden_size, 1))
        self.rest = nn.Sequential(*layers)
        self.colour: nn.Conv2d | None = None
        if colour:  # a patch's mean colour -> its token, from zero
            self.colour = nn.Conv2d(num_channels, hidden_size, 1)
            nn.init.zeros_(self.colour.weight)
            nn.init.zeros_(self.colour.bias)

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, int, int]:
        batch, num_frames, channels, height, width = pixel_values.shape
        frames = pixel_values.reshape(batch * num_frames, channels, height, width)
        if self.temporal:
            x = self.first(pixel_values.transpose(1, 2))  # [B, C', T, H/2, W/2]
            x = x.transpose(1, 2).flatten(0, 1)  # [B*T, C', H/2, W/2]
        else:
            x = self.first(frames)
        x = self.rest(x)  # [B*T, D, H/p, W/p]
        if self.colour is not None:
            x = x + self.colour(F.avg_pool2d(frames, self.patch_size))
        grid_width = x.size(-1)
        return x.flatten(2).transpose(1, 2), num_frames, grid_width


def check_stem(stem: str) -> None:
    """Raise ConfigError unless ``stem`` is one of :data:`STEMS`."""
    if stem not in STEMS:
        raise ConfigError(f"model.video.stem must be one of {', '.join(STEMS)}, got {stem!r}")


def check_stem_norm(norm: str) -> None:
    """Raise ConfigError unless ``norm`` is one of :data:`STEM_NORMS`."""
    if norm not in STEM_NORMS:
        raise ConfigError(f"model.video.stem_norm must be one of {', '.join(STEM_NORMS)}, got {norm!r}")


def install_stem(model: nn.Module, stem: str, norm: str = "group", colour: bool = False) -> None:
    """Replace a ``TimesformerModel``'s patch embedding by the stem named ``stem`` (``"patch"`` keeps it).

    Raises:
        ConfigError: an unknown stem or norm, or a patch size the stem cannot make.
    """
    check_stem(stem)
    if stem == "patch":
        return
    cfg = model.config
    model.embeddings.patch_embeddings = ConvPatchEmbeddings(
        cfg.num_channels, cfg.hidden_size, cfg.patch_size, temporal=stem == "conv3d", norm=norm, colour=colour
    )
