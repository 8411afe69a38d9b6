"""Repair systematic errors of the small English tagger on captions: verbs read as nouns, nouns as adjectives.

``en_core_web_sm`` 3.8 parses headline-like captions such as "a blue square chases a green triangle" or
"a red star spins" as one noun phrase ("a blue square chases", head "chases", tag NNS), so the caption has
no verb at all. Captions in video data sets (and in the synthetic benchmark) are mostly written this way.

A plural noun is read as a third-person verb only where the noun reading is ungrammatical:

* a singular determiner ("a", "every", ...) is attached to the plural noun ("a ... chases"): number
  disagreement, so the word before it is the real head of the subject;
* the parser already made the word before it the plural noun's subject ("a purple hexagon blinks");
* a determiner follows it directly ("... chases the triangle"): a plural noun does not take an object;
* an adverb stands between it and the word before ("the white triangle slowly twirls"): a noun's modifier
  is not separated from it by an adverb;
* it follows a relative pronoun ("a disc that glides"): "that" as a determiner would be singular.

Except after a relative pronoun, the word before (adverbs skipped) must be a singular noun or adjective
modifying it (the subject's head); always, the word must be a known verb (the lemmatizer's WordNet verb
list), so "kitchen
appliances", "a few dogs" and "a man's hands" are left alone. Captions with "the" and nothing after the verb
("the green circle shrinks") stay mis-tagged: there the noun reading ("the video game clips") is as
grammatical as the verb reading, unless the caller names the word in ``known_verbs`` (a data set whose action
vocabulary is known).

Also, a word tagged as an adjective or a base-form verb that the parser made a subject or object is read as a
noun ("the tiny white square moves down", "toward a cyan cross"): neither can head a noun phrase.

Not repaired: a gerund after a noun read as a compound noun ("a black square flickering under the stars" ->
"square flickering"), which cannot be told from "the apartment building in the city" by syntax alone.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import spacy
    from spacy.tokens import Doc, Token

_SINGULAR_DETERMINERS = frozenset({"a", "an", "another", "each", "every", "this"})
_OBJECT_DETERMINERS = frozenset({"a", "an", "the", "this", "that", "these", "those", "another", "each", "every"})
_SUBJECT_HEAD_TAGS = frozenset({"NN", "NNP", "JJ"})  # singular noun, proper noun, or a noun mis-read as adjective
_SUBJECT_HEAD_DEPS = frozenset({"compound", "amod", "nmod", "nsubj"})
_RELATIVE_PRONOUNS = frozenset({"that", "which", "who"})
_NOMINAL_DEPS = frozenset({"nsubj", "nsubjpass", "dobj", "pobj"})  # relations only a noun phrase's head can have
_NOT_NOMINAL_TAGS = frozenset({"JJ", "VB", "VBP"})  # adjective, base-form verb: tags that cannot head a noun phrase


def verb_lexicon(nlp: spacy.Language) -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
    """The base forms of known verbs and the suffix rules that map an inflected verb to them.

    Both come from the rule lemmatizer's lookup tables (``lemma_index`` and ``lemma_rules``); a pipeline
    without them gives an empty lexicon, which turns the repair off.
    """
    if "lemmatizer" not in nlp.pipe_names:
        return frozenset(), ()
    lookups = getattr(nlp.get_pipe("lemmatizer"), "lookups", None)
    if lookups is None or not lookups.has_table("lemma_index") or not lookups.has_table("lemma_rules"):
        return frozenset(), ()
    verbs = frozenset(lookups.get_table("lemma_index").get("verb", ()))
    rules = tuple((old, new) for old, new in lookups.get_table("lemma_rules").get("verb", ()))
    return verbs, rules


def is_known_verb(word: str, verbs: Collection[str], rules: tuple[tuple[str, str], ...]) -> bool:
    """Whether some suffix rule turns ``word`` into a base form in ``verbs`` ("chases" -> "chase")."""
    word = word.lower()
    if word in verbs:
        return True
    return any(word.endswith(old) and word[: len(word) - len(old)] + new in verbs for old, new in rules)


def repair_tags(
    doc: Doc, verbs: Collection[str], rules: tuple[tuple[str, str], ...], known_verbs: Collection[str] = frozenset()
) -> dict[int, str]:
    """Find plural nouns that are really verbs, and adjectives or verbs that are really nouns (module docstring).

    Args:
        doc: a tagged and parsed caption.
        verbs, rules: from :func:`verb_lexicon`.
        known_verbs: lower-case word forms ("slides") read as verbs wherever the word before them could be
            their subject, with no further evidence needed.

    Returns:
        A map from token index to the coarse tag it should have: ``"VERB"`` for a repaired verb, ``"NOUN"``
        for an adjective or base-form verb heading a subject or object, and for the word before a repaired
        verb where it was tagged as an adjective ("a blue square moves"). Empty when nothing needs repair.
    """
    overrides = {
        token.i: "NOUN"
        for token in doc
        # "each other" is a pronoun, not a noun, though tagged as an adjective object.
        if token.tag_ in _NOT_NOMINAL_TAGS and token.dep_ in _NOMINAL_DEPS and token.lower_ != "other"
    }
    for token in doc:
        if token.tag_ != "NNS":
            continue
        before = _previous_non_adverb(doc, token)
        if before is None:
            continue
        if before.tag_ in ("WDT", "WP") and before.lower_ in _RELATIVE_PRONOUNS:
            if token.lower_ in known_verbs or is_known_verb(token.text, verbs, rules):
                overrides[token.i] = "VERB"
            continue
        if before.head.i != token.i or before.tag_ not in _SUBJECT_HEAD_TAGS or before.dep_ not in _SUBJECT_HEAD_DEPS:
            continue
        if token.lower_ not in known_verbs and not (
            _verb_evidence(doc, token, before) and is_known_verb(token.text, verbs, rules)
        ):
            continue
        overrides[token.i] = "VERB"
        if before.pos_ == "ADJ":
            overrides[before.i] = "NOUN"
    return overrides


def _previous_non_adverb(doc: Doc, token: Token) -> Token | None:
    # The word before ``token``, skipping adverbs that modify it ("triangle slowly twirls" -> "triangle").
    i = token.i - 1
    while i >= 0 and doc[i].tag_ == "RB" and doc[i].dep_ == "advmod" and doc[i].head.i == token.i:
        i -= 1
    return doc[i] if i >= 0 else None


def _verb_evidence(doc: Doc, token: Token, before: Token) -> bool:
    # The grammatical evidence that the plural noun ``token`` is a verb: see the module docstring.
    singular_det = any(
        child.dep_ == "det" and child.i < before.i and child.lower_ in _SINGULAR_DETERMINERS for child in token.children
    )
    parsed_as_subject = before.dep_ == "nsubj"
    after = doc[token.i + 1] if token.i + 1 < len(doc) else None
    object_follows = after is not None and (after.lower_ in _OBJECT_DETERMINERS or after.tag_ == "PRP$")
    adverb_between = before.i < token.i - 1
    return singular_det or parsed_as_subject or object_follows or adverb_between
