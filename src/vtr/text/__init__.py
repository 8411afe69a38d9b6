"""Caption text processing: spaCy part-of-speech tagging into nouns, verbs and noun phrases.

:class:`PartOfSpeechTagger` gives each caption's :class:`CaptionParts` (the words, and the caption with
them removed or masked) for the fine-grained alignment heads. Importing this package does not import spaCy.
"""

from __future__ import annotations

from vtr.text.parts import CaptionParts
from vtr.text.pipeline import load_spacy_pipeline
from vtr.text.tagger import PartOfSpeechTagger

__all__ = ["CaptionParts", "PartOfSpeechTagger", "load_spacy_pipeline"]
