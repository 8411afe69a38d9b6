"""Captions for a synthetic clip, written from its ground truth (``meta``) with varied templates and synonyms.

Templates keep the shape as the head noun of a noun phrase and the action as a finite verb or a gerund, so that
a part-of-speech tagger finds both (``tests/test_synth.py`` checks this with spaCy).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from vtr.data.synth.vocab import ACTION_PHRASES, RELATION_PHRASES, SCENE_PHRASES, SHAPE_NOUNS, SIZE_WORDS

# Single object. {np}: indefinite noun phrase, {the_np}: definite, {vp}: present form, {ving}: gerund,
# {adv}: a manner adverb, {where}: scene phrase (a template without it leaves the scene out).
# spaCy's small English model reads many present-tense forms right after a noun phrase as plural nouns
# ("a red circle spins" -> "spins"/NOUN), so a bare present form always follows an adverb or "that";
# the progressive and gerund forms are tagged right.
_ONE_OBJECT_TEMPLATES: tuple[str, ...] = (
    "{np} is {ving} {where}.",
    "{the_np} is {ving}.",
    "{Where}, {np} is {ving}.",
    "There is {np} {ving} {where}.",
    "A video of {np} {ving} {where}.",
    "{np} can be seen {ving} {where}.",
    "{np} {adv} {vp} {where}.",
    "{the_np} is {adv} {ving}.",
    "{Where}, {np} {adv} {vp}.",
    "We see {np} that {vp} {where}.",
    "In this clip, {np} is {ving} {where}.",
)

# Two objects related by a verb: {np}/{the_np} the subject, {np2}/{the_np2} the object.
_TWO_OBJECT_TEMPLATES: tuple[str, ...] = (
    "{np} is {ving} {np2} {where}.",
    "{the_np} is {ving} {the_np2}.",
    "{Where}, {np} is {ving} {np2}.",
    "There is {np} {ving} {the_np2} {where}.",
    "A video of {np} {ving} {np2} {where}.",
    "{np} can be seen {ving} {np2} {where}.",
    "{np} {adv} {vp} {np2} {where}.",
    "{Where}, {np} {adv} {vp} {the_np2}.",
    "We see {np} that {vp} {np2} {where}.",
    "In this clip, {np} is {ving} {the_np2}.",
)

_ADVERBS: tuple[str, ...] = ("slowly", "steadily", "smoothly", "gently", "gradually")

_MAX_TRIES_PER_CAPTION = 50


def _indefinite(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _noun_phrase_core(obj: Mapping[str, Any], rng: random.Random) -> str:
    """``"small red circle"`` or ``"red circle"``: colour and shape always, size half the time."""
    words = []
    if rng.random() < 0.5:
        words.append(rng.choice(SIZE_WORDS[obj["size"]]))
    words.append(obj["colour"])
    words.append(rng.choice(SHAPE_NOUNS[obj["shape"]]))
    return " ".join(words)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _one_caption(meta: Mapping[str, Any], rng: random.Random) -> str:
    objects = meta["objects"]
    relation = meta.get("relation")
    where = rng.choice(SCENE_PHRASES[meta["scene"]])
    if relation:
        subject, target = objects[relation["subject"]], objects[relation["object"]]
        phrase = rng.choice(RELATION_PHRASES[relation["type"]])
        template = rng.choice(_TWO_OBJECT_TEMPLATES)
        core, core2 = _noun_phrase_core(subject, rng), _noun_phrase_core(target, rng)
        fields = {"np2": _indefinite(core2), "the_np2": "the " + core2}
    else:
        subject = objects[0]
        phrase = rng.choice(ACTION_PHRASES[subject["action"]])
        template = rng.choice(_ONE_OBJECT_TEMPLATES)
        core = _noun_phrase_core(subject, rng)
        fields = {}
    fields.update(
        np=_indefinite(core),
        the_np="the " + core,
        vp=phrase.present,
        ving=phrase.gerund,
        adv=rng.choice(_ADVERBS),
        where=where,
        Where=where,
    )
    text = template.format(**fields)
    return _capitalise(text)


def captions_for(meta: Mapping[str, Any], rng: random.Random, n: int) -> list[str]:
    """Write ``n`` distinct captions for a clip from its ground truth.

    Args:
        meta: the clip's ``meta`` from ``annotations.jsonl`` (needs ``scene``, ``objects`` with ``shape``,
            ``colour``, ``size`` and ``action``, and ``relation`` or None).
        rng: the source of randomness; the same state gives the same captions.
        n: how many captions. Fewer come back only if the templates cannot make ``n`` distinct ones.

    Returns:
        The captions, each a sentence naming the colour and shape of every object and the action or relation.
    """
    captions: list[str] = []
    seen: set[str] = set()
    for _ in range(n * _MAX_TRIES_PER_CAPTION):
        if len(captions) == n:
            break
        text = _one_caption(meta, rng)
        if text not in seen:
            seen.add(text)
            captions.append(text)
    return captions
