"""Part-of-speech results for the training captions, computed once per data set and cached on disk.

The noun and verb heads need each caption's nouns and verbs (and the caption without them). Tagging is done once,
for every caption of the split, before the first step; the results are kept in ``<data root>/.vtr_cache/`` (or in
the run folder when the data folder is read-only) and reused by later runs on the same data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vtr.data import VideoRecord
from vtr.data.clip_cache import cache_folder
from vtr.errors import DataFormatError


def _cache_path(data_root: str | Path, run_dir: str | Path, mask_token: str) -> Path:
    # The mask token is part of the cached strings (masked_nouns, masked_verbs), so it keys the file.
    key = hashlib.sha1(mask_token.encode()).hexdigest()[:8]
    return cache_folder(data_root, run_dir, "") / f"pos-{key}.json"


class CaptionPartsLookup:
    """Maps captions to their :class:`vtr.text.CaptionParts`, tagging any caption not seen before.

    Args:
        tagger: a :class:`vtr.text.PartOfSpeechTagger`.
    """

    def __init__(self, tagger: Any) -> None:
        self.tagger = tagger

    @classmethod
    def for_dataset(
        cls,
        model: Any,
        records: Sequence[VideoRecord],
        data_root: str | Path,
        run_dir: str | Path,
        progress: bool = True,
    ) -> CaptionPartsLookup:
        """Tag every caption of ``records`` (through the on-disk cache) with the model tokenizer's mask token."""
        from vtr.text import PartOfSpeechTagger

        mask_token = getattr(model.tokenizer, "mask_token", None) or "[MASK]"
        tagger = PartOfSpeechTagger(mask_token=mask_token)
        cache = _cache_path(data_root, run_dir, mask_token)
        if cache.is_file():
            try:
                tagger.load_cache(cache)
            except DataFormatError:
                pass  # written by another pipeline or version: tag again and overwrite it
        captions = sorted({caption for record in records for caption in record.captions})
        tagger.parse(captions, progress=progress)
        tagger.save_cache(cache)
        return cls(tagger)

    def __call__(self, captions: Sequence[str]) -> list[Any]:
        return self.tagger.parse(list(captions))
