"""The search engine's index: scan a folder of videos, embed whole videos and moment windows, store them
(SQLite + FAISS + thumbnails), and search them by text.

    >>> from vtr.index import build_index, Searcher
    >>> build_index("~/videos", "~/videos.vtr", model="runs/demo")  # doctest: +SKIP
    >>> Searcher("~/videos.vtr").search("a dog catches a frisbee", k=5)  # doctest: +SKIP

Parts: :mod:`~vtr.index.scan` (files and fingerprints), :mod:`~vtr.index.moments` (windows),
:mod:`~vtr.index.encoders` (the model protocol and its adapters), :mod:`~vtr.index.ensemble` (several models
as one), :mod:`~vtr.index.clip_decoder` (a video's clips and thumbnails),
:mod:`~vtr.index.builder` (the indexing pipeline), :mod:`~vtr.index.store` and :mod:`~vtr.index.vectors`
(SQLite and FAISS), :mod:`~vtr.index.searcher`.
"""

from __future__ import annotations

from vtr.index.builder import IndexOptions, IndexReport, build_index
from vtr.index.encoders import HFClipEncoder, HFXClipEncoder, VideoTextEncoder, VtrRunEncoder, load_encoder
from vtr.index.ensemble import EnsembleEncoder
from vtr.index.searcher import Searcher, SearchResult, UnknownVideoError, VideoEntry
from vtr.index.store import IndexSettings, IndexStore

__all__ = [
    "EnsembleEncoder",
    "HFClipEncoder",
    "HFXClipEncoder",
    "IndexOptions",
    "IndexReport",
    "IndexSettings",
    "IndexStore",
    "SearchResult",
    "Searcher",
    "UnknownVideoError",
    "VideoEntry",
    "VideoTextEncoder",
    "VtrRunEncoder",
    "build_index",
    "load_encoder",
]
