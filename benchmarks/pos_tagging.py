"""Benchmark part-of-speech tagging: captions per second, and how often the tagger finds the right words.

Makes N distinct captions in the style of the synthetic benchmark (shape nouns with colour and size,
action verbs, scenes, two-object relations), with the words that should be found, then times
``nlp.pipe`` alone and :class:`vtr.text.PartOfSpeechTagger` (tagging plus edits), and reports noun and
verb recall with and without the verb repair.

Run: ``python benchmarks/pos_tagging.py [--num 10000] [--batch-size 256] [--seed 0]``
"""

from __future__ import annotations

import argparse
import platform
import random
import time

from vtr.text import PartOfSpeechTagger, load_spacy_pipeline

SIZES = ("", "small ", "large ", "tiny ", "big ")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
SHAPES = ("circle", "square", "triangle", "star", "hexagon", "diamond", "pentagon", "cross")
SCENES = (
    "",
    " on a grassy field",
    " in a desert",
    " on a sandy beach",
    " in a snowy forest",
    " against a blue sky",
    " in a dark room",
    " on a wooden floor",
)
# (third person, progressive, complement)
ACTIONS = (
    ("slides", "sliding", " to the left"),
    ("slides", "sliding", " to the right"),
    ("moves", "moving", " up"),
    ("moves", "moving", " down"),
    ("rotates", "rotating", ""),
    ("spins", "spinning", ""),
    ("grows", "growing", ""),
    ("shrinks", "shrinking", ""),
    ("bounces", "bouncing", ""),
    ("blinks", "blinking", ""),
    ("falls", "falling", ""),
    ("stays", "staying", " still"),
)
RELATIONS = (
    ("chases", "chasing", ""),
    ("approaches", "approaching", ""),
    ("follows", "following", ""),
    ("moves", "moving", " away from"),
)


def noun_phrase(rng: random.Random) -> tuple[str, str]:
    shape = rng.choice(SHAPES)
    return f"{rng.choice(('a', 'the'))} {rng.choice(SIZES)}{rng.choice(COLOURS)} {shape}", shape


def make_caption(rng: random.Random) -> tuple[str, tuple[str, ...], str]:
    """One caption, the shape nouns it names, and the verb it uses."""
    subject, shape = noun_phrase(rng)
    progressive = rng.random() < 0.3
    if rng.random() < 0.3:
        obj, other = noun_phrase(rng)
        third, ing, comp = rng.choice(RELATIONS)
        verb = f"is {ing}" if progressive else third
        return f"{subject} {verb}{comp} {obj}{rng.choice(SCENES)}", (shape, other), ing if progressive else third
    third, ing, comp = rng.choice(ACTIONS)
    verb = f"is {ing}" if progressive else third
    return f"{subject} {verb}{comp}{rng.choice(SCENES)}", (shape,), ing if progressive else third


def make_captions(num: int, seed: int) -> list[tuple[str, tuple[str, ...], str]]:
    rng = random.Random(seed)
    found: dict[str, tuple[str, tuple[str, ...], str]] = {}
    while len(found) < num:
        caption, nouns, verb = make_caption(rng)
        found.setdefault(caption, (caption, nouns, verb))
    return list(found.values())


def recall(tagger: PartOfSpeechTagger, data: list[tuple[str, tuple[str, ...], str]]) -> tuple[float, float]:
    parts = tagger.parse([caption for caption, _, _ in data])
    nouns_ok = sum(all(n in p.nouns for n in nouns) for p, (_, nouns, _) in zip(parts, data, strict=True))
    verbs_ok = sum(verb in p.verbs for p, (_, _, verb) in zip(parts, data, strict=True))
    return nouns_ok / len(data), verbs_ok / len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=10_000, help="distinct captions")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    nlp = load_spacy_pipeline()
    load_s = time.perf_counter() - start
    data = make_captions(args.num, args.seed)
    captions = [caption for caption, _, _ in data]
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"pipeline: {nlp.meta['name']} {nlp.meta['version']} components {nlp.pipe_names}, load {load_s:.2f} s")
    print(f"captions: {len(captions)} distinct, mean {sum(len(c.split()) for c in captions) / len(captions):.1f} words")

    list(nlp.pipe(captions[:200], batch_size=args.batch_size))  # warm-up
    start = time.perf_counter()
    for _ in nlp.pipe(captions, batch_size=args.batch_size):
        pass
    pipe_s = time.perf_counter() - start
    print(f"nlp.pipe alone:            {len(captions) / pipe_s:8.0f} captions/s ({pipe_s:.2f} s)")

    tagger = PartOfSpeechTagger(nlp, batch_size=args.batch_size)
    start = time.perf_counter()
    tagger.parse(captions)
    tag_s = time.perf_counter() - start
    print(f"PartOfSpeechTagger.parse:  {len(captions) / tag_s:8.0f} captions/s ({tag_s:.2f} s)")
    start = time.perf_counter()
    tagger.parse(captions)
    print(f"parse again (all cached):  {len(captions) / (time.perf_counter() - start):8.0f} captions/s")

    vocabulary = {third for third, _, _ in ACTIONS + RELATIONS}
    for name, kwargs in (
        ("no repair", {"repair": False}),
        ("repair", {}),
        ("repair + known_verbs", {"known_verbs": vocabulary}),
    ):
        nouns, verbs = recall(PartOfSpeechTagger(nlp, batch_size=args.batch_size, **kwargs), data)
        print(f"{name:21}: shape nouns found in {nouns:6.1%} of captions, the action verb in {verbs:6.1%}")


if __name__ == "__main__":
    main()
