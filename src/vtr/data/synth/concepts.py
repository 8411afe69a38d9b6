"""What a synthetic clip shows and what a caption says, as sets of concepts, so that one can tell which clips a
caption describes.

A caption of the synthetic benchmark always names the colour and shape of each object and the action (or the
relation between two objects); it may leave out the size and the scene. "A white disc is bouncing." therefore
describes every clip of a bouncing white circle, large or small, on any scene: a caption describes a clip when
its concepts are a subset of the clip's. Concepts carry the object's role (``subject:colour:white``,
``object:shape:circle``), so "a red circle chases a blue square" does not describe a blue circle chasing a red
square.

Captions are read back with the vocabulary tables of :mod:`vtr.data.synth.vocab`, so this works on any data set
the generator wrote, without a field in the annotations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vtr.data.synth import vocab
from vtr.errors import DataFormatError

_ROLES = ("subject", "object")

# Every concept a clip or a caption can have, in a fixed order (the positions of a concept vector).
CONCEPTS: tuple[str, ...] = (
    *(f"scene:{scene}" for scene in vocab.SCENES),
    *(f"verb:{verb}" for verb in (*vocab.ACTIONS, *vocab.RELATIONS)),
    *(
        f"{role}:{kind}:{value}"
        for role in _ROLES
        for kind, values in (("colour", vocab.COLOURS), ("shape", vocab.SHAPES), ("size", vocab.SIZES))
        for value in values
    ),
)


def _phrase_table(table: Mapping[str, Any], forms: Any) -> list[tuple[str, str]]:
    """``(phrase, name)`` pairs, longest phrase first (so that "falls down" wins over "falls")."""
    pairs = {(phrase.lower(), name) for name, values in table.items() for value in values for phrase in forms(value)}
    return sorted(pairs, key=lambda pair: (-len(pair[0]), pair[0]))


_SCENES = _phrase_table(vocab.SCENE_PHRASES, lambda phrase: (phrase,))
_VERBS = _phrase_table({**vocab.ACTION_PHRASES, **vocab.RELATION_PHRASES}, lambda vp: (vp.present, vp.gerund))
_WORDS: dict[str, str] = {colour: f"colour:{colour}" for colour in vocab.COLOURS}
_WORDS.update({noun: f"shape:{shape}" for shape, nouns in vocab.SHAPE_NOUNS.items() for noun in nouns})
_WORDS.update({word: f"size:{size}" for size, words in vocab.SIZE_WORDS.items() for word in words})


def _find(text: str, phrases: list[tuple[str, str]]) -> tuple[str, str, int] | None:
    """The first phrase of ``phrases`` found as whole words in ``text``: ``(phrase, name, position)``."""
    for phrase, name in phrases:
        match = re.search(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", text)
        if match:
            return phrase, name, match.start()
    return None


def video_concepts(meta: Mapping[str, Any]) -> frozenset[str]:
    """The concepts of a synthetic clip from its ``meta``: scene, verb, and colour, shape and size of each role.

    Raises:
        DataFormatError: ``meta`` is not that of a synthetic clip (no ``scene`` or ``objects``).
    """
    try:
        objects, relation = meta["objects"], meta.get("relation")
        if relation:
            roles = {"subject": objects[relation["subject"]], "object": objects[relation["object"]]}
            verb = relation["type"]
        else:
            roles, verb = {"subject": objects[0]}, objects[0]["action"]
        concepts = {f"scene:{meta['scene']}", f"verb:{verb}"}
        for role, obj in roles.items():
            concepts |= {f"{role}:colour:{obj['colour']}", f"{role}:shape:{obj['shape']}", f"{role}:size:{obj['size']}"}
    except (KeyError, IndexError, TypeError) as error:
        raise DataFormatError(f"not the meta of a synthetic clip (missing {error}): {dict(meta)!r:.200}") from None
    return frozenset(concepts)


def caption_concepts(caption: str) -> frozenset[str]:
    """The concepts a synthetic caption names: the scene if it says one, the verb, and per role the colour and
    shape (and the size when given). Words outside the vocabulary are ignored.

    Raises:
        DataFormatError: the caption names no action or relation of the vocabulary.
    """
    text = caption.lower().strip().rstrip(".")
    concepts: set[str] = set()
    scene = _find(text, _SCENES)
    if scene is not None:  # removed first: "a wall of red bricks", "the white snow" are not objects' colours
        phrase, name, _ = scene
        concepts.add(f"scene:{name}")
        text = text.replace(phrase, " ")
    verb = _find(text, _VERBS)
    if verb is None:
        raise DataFormatError(f"caption names no action or relation of the synthetic vocabulary: {caption!r}")
    phrase, name, start = verb
    concepts.add(f"verb:{name}")
    parts = (text[:start], text[start + len(phrase) :])
    for role, part in zip(_ROLES, parts):
        for word in re.findall(r"[a-z]+", part):
            if word in _WORDS:
                concepts.add(f"{role}:{_WORDS[word]}")
    return frozenset(concepts)


def describes(caption: frozenset[str], video: frozenset[str]) -> bool:
    """Whether a caption with concepts ``caption`` describes a clip with concepts ``video``."""
    return caption <= video
