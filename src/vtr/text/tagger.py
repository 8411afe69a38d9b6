"""Part-of-speech tagging of captions: nouns, verbs and noun phrases, and the caption without them.

The fine-grained alignment heads remove or mask a caption's nouns and verbs and ask the model to recover
them from the video. Tagging is done once per distinct caption of a data set: results are cached in
memory and can be saved to / loaded from a JSON file, so a training run does not re-run spaCy each epoch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from vtr.errors import DataFormatError
from vtr.fileio import atomic_write_json
from vtr.text.parts import CaptionParts, delete_tokens, mask_tokens
from vtr.text.pipeline import load_spacy_pipeline, pipeline_id
from vtr.text.repair import repair_tags, verb_lexicon

if TYPE_CHECKING:  # pragma: no cover
    import spacy
    from spacy.tokens import Doc

_CACHE_FORMAT = "vtr.pos-cache"
_CACHE_VERSION = 1
_NOUN_POS = frozenset({"NOUN", "PROPN"})
_POSSESSIVE_TAG = "POS"  # the "'s" of "the dog's ball"


class PartOfSpeechTagger:
    """Tags captions with spaCy and splits out their nouns, verbs and noun phrases.

    Args:
        nlp: a loaded spaCy pipeline with tagger and parser; ``None`` loads :func:`load_spacy_pipeline`
            on first use (constructing a tagger is free).
        mask_token: the text encoder tokenizer's mask token, written in place of masked words.
        batch_size: captions per ``nlp.pipe`` batch.
        repair: apply :func:`vtr.text.repair.repair_tags`, which fixes the small English model reading
            "a blue square chases ..." as a noun phrase with no verb, and "square" as an adjective.
        known_verbs: word forms (e.g. a synthetic data set's "slides", "shrinks") that the repair reads as verbs
            whenever the tagger calls them plural nouns after a possible subject; used only with ``repair``.

    Example:
        >>> tagger = PartOfSpeechTagger(mask_token="[MASK]")
        >>> tagger.parse(["a man is playing a guitar on stage"])[0].masked_nouns
        'a [MASK] is playing a [MASK] on [MASK]'
    """

    def __init__(
        self,
        nlp: spacy.Language | None = None,
        mask_token: str = "[MASK]",
        batch_size: int = 256,
        *,
        repair: bool = True,
        known_verbs: Iterable[str] = (),
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.mask_token = mask_token
        self.batch_size = batch_size
        self.repair = repair
        self.known_verbs = frozenset(word.lower() for word in known_verbs)
        self._nlp = nlp
        self._lexicon: tuple[frozenset[str], tuple[tuple[str, str], ...]] | None = None
        self._cache: dict[str, CaptionParts] = {}
        self.tagged_count = 0  # captions run through spaCy by this tagger (cache hits not counted)

    @property
    def nlp(self) -> spacy.Language:
        """The spaCy pipeline, loaded on first use."""
        if self._nlp is None:
            self._nlp = load_spacy_pipeline()
        return self._nlp

    @property
    def cache_size(self) -> int:
        """Number of distinct captions whose parts are cached."""
        return len(self._cache)

    def parse(self, captions: Sequence[str], *, progress: bool = False) -> list[CaptionParts]:
        """The parts of every caption, in the order given (duplicates answered from the cache).

        Each distinct caption not yet cached is tagged once, in batches of ``batch_size`` with ``nlp.pipe``.
        Empty or whitespace-only captions are not tagged: they get :meth:`CaptionParts.empty`.

        Args:
            captions: the captions.
            progress: show a progress bar while tagging.

        Raises:
            TypeError: a caption is not a string.
        """
        for position, caption in enumerate(captions):
            if not isinstance(caption, str):
                raise TypeError(f"caption {position} is {type(caption).__name__}, not str")
        todo = list(dict.fromkeys(c for c in captions if c not in self._cache and c.strip()))
        for caption in captions:
            if not caption.strip() and caption not in self._cache:
                self._cache[caption] = CaptionParts.empty(caption)
        if todo:
            self._tag(todo, progress)
        return [self._cache[caption] for caption in captions]

    def _tag(self, captions: list[str], progress: bool) -> None:
        # Runs of whitespace (newlines, double spaces) would become spaCy SPACE tokens and untidy edits.
        texts = (" ".join(caption.split()) for caption in captions)
        docs = self.nlp.pipe(texts, batch_size=self.batch_size)
        bar = tqdm(total=len(captions), desc="tagging captions", unit="caption", disable=not progress)
        with bar:
            # Each result is cached as soon as it is made, so an interrupted run keeps what it finished.
            for caption, doc in zip(captions, docs, strict=True):
                self._cache[caption] = self._analyse(caption, doc)
                self.tagged_count += 1
                bar.update()

    def _analyse(self, caption: str, doc: Doc) -> CaptionParts:
        overrides = repair_tags(doc, *self._verb_lexicon(), self.known_verbs) if self.repair else {}
        pos = [overrides.get(token.i, token.pos_) for token in doc]
        noun_ids = [token.i for token in doc if pos[token.i] in _NOUN_POS]
        # Forms of "be" tagged VERB ("there is a dog") name no action; the copula and auxiliary are AUX anyway.
        verb_ids = [token.i for token in doc if pos[token.i] == "VERB" and token.lemma_ != "be"]
        words = [token.text for token in doc]
        spaces = [token.whitespace_ for token in doc]
        # Deleting "dog" from "the dog's ball" would leave a stray "'s"; it goes with its noun.
        deleted_nouns = set(noun_ids)
        for i in noun_ids:
            if i + 1 < len(doc) and doc[i + 1].tag_ == _POSSESSIVE_TAG:
                deleted_nouns.add(i + 1)
        return CaptionParts.build(
            caption=caption,
            nouns=[words[i] for i in noun_ids],
            verbs=[words[i] for i in verb_ids],
            noun_phrases=_noun_phrases(doc, pos),
            without_nouns=delete_tokens(words, spaces, deleted_nouns),
            without_verbs=delete_tokens(words, spaces, set(verb_ids)),
            masked_nouns=mask_tokens(words, spaces, set(noun_ids), self.mask_token),
            masked_verbs=mask_tokens(words, spaces, set(verb_ids), self.mask_token),
        )

    def _verb_lexicon(self) -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
        if self._lexicon is None:
            self._lexicon = verb_lexicon(self.nlp)
        return self._lexicon

    def _settings(self) -> dict[str, Any]:
        # Everything that changes the stored strings: a cache made under other settings must not be mixed in.
        return {
            "pipeline": pipeline_id(self.nlp),
            "mask_token": self.mask_token,
            "repair": self.repair,
            "known_verbs": sorted(self.known_verbs) if self.repair else [],
        }

    def save_cache(self, path: str | Path) -> Path:
        """Write every cached caption's parts to a JSON file, atomically.

        Returns:
            The path written.
        """
        payload = {
            "format": _CACHE_FORMAT,
            "version": _CACHE_VERSION,
            **self._settings(),
            "captions": {caption: parts.to_json() for caption, parts in self._cache.items()},
        }
        return atomic_write_json(path, payload, indent=None)

    def load_cache(self, path: str | Path, *, missing_ok: bool = False) -> int:
        """Add the captions of a file written by :meth:`save_cache` to the in-memory cache.

        Args:
            path: the JSON file.
            missing_ok: return 0 instead of raising when the file does not exist.

        Returns:
            The number of captions read.

        Raises:
            DataFormatError: the file is missing, is not a tagger cache, or was written with another spaCy
                pipeline, mask token or repair setting (delete it to tag again).
        """
        path = Path(path)
        if not path.exists():
            if missing_ok:
                return 0
            raise DataFormatError(f"no part-of-speech cache at {path}")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataFormatError(f"part-of-speech cache {path} is not readable JSON: {exc}") from exc
        if not isinstance(payload, dict) or payload.get("format") != _CACHE_FORMAT:
            raise DataFormatError(f'{path} is not a vtr part-of-speech cache (no "format": "{_CACHE_FORMAT}")')
        if payload.get("version") != _CACHE_VERSION:
            raise DataFormatError(
                f"part-of-speech cache {path} has version {payload.get('version')!r}, this vtr reads version "
                f"{_CACHE_VERSION}; delete it to tag the captions again"
            )
        expected = self._settings()
        found = {key: payload.get(key) for key in expected}
        if found != expected:
            raise DataFormatError(
                f"part-of-speech cache {path} was made with {_describe(found)}, this tagger uses "
                f"{_describe(expected)}; delete the file to tag the captions again"
            )
        captions = payload.get("captions")
        if not isinstance(captions, dict):
            raise DataFormatError(f'part-of-speech cache {path} has no "captions" object')
        loaded: dict[str, CaptionParts] = {}
        for caption, data in captions.items():
            try:
                loaded[caption] = CaptionParts.from_json(caption, data)
            except (KeyError, TypeError) as exc:
                raise DataFormatError(f"part-of-speech cache {path}: bad entry for caption {caption!r}: {exc}") from exc
        self._cache.update(loaded)
        return len(loaded)


def _noun_phrases(doc: Doc, pos: list[str]) -> list[str]:
    phrases = []
    for chunk in doc.noun_chunks:
        # A repaired verb ends the chunk it was wrongly part of ("a blue square chases" -> "a blue square").
        end = next((i for i in range(chunk.start, chunk.end) if pos[i] == "VERB"), chunk.end)
        span = doc[chunk.start : end]
        if any(pos[token.i] in _NOUN_POS for token in span):
            phrases.append(span.text)
    return phrases


def _describe(settings: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in settings.items())
