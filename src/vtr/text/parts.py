"""What part-of-speech tagging yields for one caption, and the string edits that remove or mask words.

The edits work on a caption already split into tokens (text plus the whitespace that followed each token,
as spaCy gives them), so they are pure functions that can be tested without a tagger.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The fields a cache file stores per caption; the flags are derived from them on load.
_STORED_FIELDS = (
    "nouns",
    "verbs",
    "noun_phrases",
    "without_nouns",
    "without_verbs",
    "masked_nouns",
    "masked_verbs",
)


@dataclass(frozen=True)
class CaptionParts:
    """The nouns, verbs and noun phrases of a caption, and the caption with them removed or masked.

    Word lists hold one entry per token, in caption order, spelled as in the caption (duplicates kept, so
    that the i-th mask of ``masked_nouns`` stands for ``nouns[i]``).

    Attributes:
        caption: the caption exactly as given to the tagger.
        nouns: tokens tagged NOUN or PROPN.
        verbs: tokens tagged VERB (auxiliaries such as the "is" of "is playing" are not verbs).
        noun_phrases: base noun phrases ("a small red circle"), pronoun-only phrases left out.
        without_nouns: the caption with every noun token deleted, whitespace kept tidy.
        without_verbs: the caption with every verb token deleted.
        masked_nouns: the caption with every noun token replaced by the mask token.
        masked_verbs: the caption with every verb token replaced by the mask token.
        has_nouns: at least one noun was found.
        has_verbs: at least one verb was found.
        is_empty: the caption is empty or only whitespace.
    """

    caption: str
    nouns: tuple[str, ...]
    verbs: tuple[str, ...]
    noun_phrases: tuple[str, ...]
    without_nouns: str
    without_verbs: str
    masked_nouns: str
    masked_verbs: str
    has_nouns: bool
    has_verbs: bool
    is_empty: bool

    @classmethod
    def build(
        cls,
        caption: str,
        nouns: Sequence[str],
        verbs: Sequence[str],
        noun_phrases: Sequence[str],
        without_nouns: str,
        without_verbs: str,
        masked_nouns: str,
        masked_verbs: str,
    ) -> CaptionParts:
        """Make a :class:`CaptionParts`, deriving the three flags so that they cannot disagree with the lists."""
        return cls(
            caption=caption,
            nouns=tuple(nouns),
            verbs=tuple(verbs),
            noun_phrases=tuple(noun_phrases),
            without_nouns=without_nouns,
            without_verbs=without_verbs,
            masked_nouns=masked_nouns,
            masked_verbs=masked_verbs,
            has_nouns=bool(nouns),
            has_verbs=bool(verbs),
            is_empty=not caption.strip(),
        )

    @classmethod
    def empty(cls, caption: str) -> CaptionParts:
        """The parts of an empty (or whitespace-only) caption: no words, every edited form empty."""
        return cls.build(caption, (), (), (), "", "", "", "")

    def to_json(self) -> dict[str, Any]:
        """The stored fields as a JSON-ready dict (the caption itself is the cache key, so it is left out)."""
        data: dict[str, Any] = {}
        for name in _STORED_FIELDS:
            value = getattr(self, name)
            data[name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_json(cls, caption: str, data: Mapping[str, Any]) -> CaptionParts:
        """Rebuild from :meth:`to_json` output.

        Raises:
            KeyError, TypeError: ``data`` lacks a field or holds a value of the wrong type.
        """
        values = {name: data[name] for name in _STORED_FIELDS}
        for name in ("nouns", "verbs", "noun_phrases"):
            if not isinstance(values[name], list) or not all(isinstance(w, str) for w in values[name]):
                raise TypeError(f"{name} must be a list of strings")
        for name in ("without_nouns", "without_verbs", "masked_nouns", "masked_verbs"):
            if not isinstance(values[name], str):
                raise TypeError(f"{name} must be a string")
        return cls.build(caption, **values)


def delete_tokens(words: Sequence[str], spaces: Sequence[str], drop: Collection[int]) -> str:
    """Join ``words`` back into text without the tokens at the indices in ``drop``.

    Args:
        words: token texts.
        spaces: the whitespace that followed each token in the original text ("" or " ").
        drop: indices of the tokens to delete.

    Returns:
        The text with those tokens gone. Where a run of tokens is deleted, the kept token before it takes the
        whitespace that followed the run, so "a man, playing" loses "man" as "a, playing" (no space before
        the comma) and "a man is" loses it as "a is" (no double space).
    """
    kept: list[list[str]] = []  # [text, trailing whitespace] of each kept token
    for i, (word, space) in enumerate(zip(words, spaces, strict=True)):
        if i in drop:
            if kept:
                kept[-1][1] = space
            continue
        kept.append([word, space])
    return "".join(word + space for word, space in kept).strip()


def mask_tokens(words: Sequence[str], spaces: Sequence[str], masked: Collection[int], mask_token: str) -> str:
    """Join ``words`` back into text with the tokens at the indices in ``masked`` replaced by ``mask_token``.

    Every token is masked on its own, so a three-word name becomes three masks: the text encoder is asked to
    recover each word, not the phrase.
    """
    pieces = [
        (mask_token if i in masked else word) + space for i, (word, space) in enumerate(zip(words, spaces, strict=True))
    ]
    return "".join(pieces).strip()
