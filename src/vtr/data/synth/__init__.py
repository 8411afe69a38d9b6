"""The synthetic benchmark: real H.264 clips of coloured shapes acting on textured scenes, with captions.

Deterministic from a seed, small enough to train on two CPU cores, and built so that fine-grained noun and
verb alignment can be tested: every clip has hard negatives in the data set that differ from it only in the
action or only in one object, and direction verbs cannot be told apart from a mean-pooled frame.

    >>> from vtr.data.synth import generate_dataset
    >>> summary = generate_dataset("data/synth", num_videos=1000, seed=0)  # doctest: +SKIP

``vtr data synth --out DIR`` is the same from the shell.
"""

from __future__ import annotations

from vtr.data.synth.captions import captions_for
from vtr.data.synth.generate import SynthSummary, generate_dataset
from vtr.data.synth.render import render_clip
from vtr.data.synth.vocab import (
    ACTION_PHRASES,
    ACTIONS,
    COLOURS,
    RELATION_PHRASES,
    RELATIONS,
    SCENE_PHRASES,
    SCENES,
    SHAPE_NOUNS,
    SHAPES,
    SIZES,
)

__all__ = [
    "ACTIONS",
    "ACTION_PHRASES",
    "COLOURS",
    "RELATIONS",
    "RELATION_PHRASES",
    "SCENES",
    "SCENE_PHRASES",
    "SHAPES",
    "SHAPE_NOUNS",
    "SIZES",
    "SynthSummary",
    "captions_for",
    "generate_dataset",
    "render_clip",
]
