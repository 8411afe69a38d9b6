"""Search an index by text: ``Searcher(index_dir).search("a dog catches a frisbee", k=10)``.

Ranking: every video has one embedding of the whole video and one per moment window. A video's score is the
best cosine similarity between the query and any of its embeddings (whole video or moment), so a long video
whose one scene matches ranks as high as a short clip of that scene. FAISS proposes candidates (exact or
HNSW); the candidates' embeddings are then scored exactly from SQLite, and the reported moment is the video's
best-scoring moment window (the whole video when it is no longer than one window).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import faiss
import numpy as np

from vtr.errors import IndexStoreError, VtrError
from vtr.index.encoders import VideoTextEncoder, load_encoder
from vtr.index.store import KIND_MOMENT, IndexStore, VectorRow, VideoRow

MAX_K = 100
# A query longer than this is not a search phrase; refusing it keeps a 10 MB request from reaching the
# tokenizer (which would truncate it anyway).
MAX_QUERY_CHARS = 1000
# FAISS is asked for this many vectors per wanted video at first: a video owns several vectors (its moments)
# and several of the best vectors usually belong to the same video.
_OVERFETCH = 8


class UnknownVideoError(IndexStoreError, LookupError):
    """No video with this id in the index."""


@dataclass(frozen=True)
class SearchResult:
    """One ranked video.

    Attributes:
        rank: 1 for the best match.
        score: cosine similarity of the query and the video's best embedding (whole video or moment).
        video_id: the video's id in the index.
        path: absolute path of the video file.
        start: start of the best-matching moment, seconds.
        end: end of the best-matching moment, seconds.
        thumbnail: absolute path of that moment's thumbnail (JPEG), or None.
    """

    rank: int
    score: float
    video_id: int
    path: str
    start: float
    end: float
    thumbnail: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return asdict(self)


@dataclass(frozen=True)
class VideoEntry:
    """One indexed video.

    Attributes:
        video_id: the video's id in the index.
        path: absolute path of the video file.
        duration: seconds.
        size_bytes: file size when indexed.
        moments: ``(start, end, thumbnail)`` of each moment window in time order (the whole video when it is
            no longer than one window); thumbnails are absolute paths or None.
        thumbnail: absolute path of the video's thumbnail, or None.
    """

    video_id: int
    path: str
    duration: float
    size_bytes: int
    moments: list[tuple[float, float, str | None]]
    thumbnail: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields (moments as objects)."""
        out = asdict(self)
        out["moments"] = [{"start": s, "end": e, "thumbnail": t} for s, e, t in self.moments]
        return out


class Searcher:
    """Text search over one index folder.

    Args:
        index_dir: the folder written by ``vtr index`` (:func:`vtr.index.build_index`).
        model: the query model: None (load the one recorded in the index), a run folder / hub id (a list of
            them for an index built with several), or an already loaded
            :class:`~vtr.index.encoders.VideoTextEncoder`. It must be the model, with the same weights, that built
            the index.
        device: torch device for a model loaded here.

    Raises:
        IndexStoreError: no index at ``index_dir``, or the index is empty of settings (never written).
        ModelMismatchError: ``model`` is not the model that built the index (or its weights changed since).
        CheckpointError: the model cannot be loaded.
    """

    def __init__(
        self,
        index_dir: str | Path,
        model: str | Path | Sequence[str | Path] | VideoTextEncoder | None = None,
        device: str = "cpu",
    ) -> None:
        self.store = IndexStore(index_dir)
        self.index_dir = self.store.index_dir
        settings = self.store.settings()
        if settings is None:
            raise IndexStoreError(f"index {self.index_dir} is empty: no indexing run has written to it yet")
        self.settings = settings
        if model is None:
            model = settings.model_spec
        self.encoder: VideoTextEncoder = (
            load_encoder(model, device=device, num_frames=settings.num_frames)
            if isinstance(model, (str, Path, list, tuple))
            else model
        )
        self.store.check_model(self.encoder.model_id, self.encoder.dim)
        self._lock = threading.Lock()
        self._index, self._generation = self.store.vector_index()

    def close(self) -> None:
        """Release the database connection."""
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self) -> bool:
        """Reload the vector index if an indexing run has committed changes since; returns whether it did."""
        with self._lock:
            if self.store.generation() == self._generation:
                return False
            self._index, self._generation = self.store.vector_index()
            return True

    def search(self, text: str, k: int = 10) -> list[SearchResult]:
        """The ``k`` videos that best match ``text``, best first (fewer when the index holds fewer).

        Raises:
            VtrError: empty or overlong query, or ``k`` outside [1, 100].
        """
        query = validate_query(text, k)
        self.refresh()
        embedding = self.encoder.embed_texts([query])  # [1, E]
        return self.search_embedding(embedding[0], k)

    def search_embedding(self, embedding: np.ndarray, k: int = 10) -> list[SearchResult]:
        """Like :meth:`search` for an already embedded query, float32 [E] of unit length.

        Raises:
            VtrError: ``k`` outside [1, 100].
        """
        validate_k(k)
        query = np.ascontiguousarray(embedding, dtype=np.float32).reshape(1, -1)  # [1, E]
        with self._lock:
            index = self._index
        total = index.ntotal
        if total == 0:
            return []
        fetch = min(total, max(k * _OVERFETCH, 64))
        while True:
            scores, labels = _search_one(index, query, fetch)  # [1, fetch] each
            owners = self.store.vector_owners(int(i) for i in labels[0] if i >= 0)
            candidates: dict[int, float] = {}
            for score, label in zip(scores[0], labels[0], strict=True):
                video_id = owners.get(int(label))
                if video_id is not None and video_id not in candidates:
                    candidates[video_id] = float(score)
            if len(candidates) >= k or fetch >= total:
                break
            fetch = min(total, fetch * 4)
        # Exact scores over every embedding of the candidate videos: HNSW may have missed a video's best vector.
        # Re-scoring k plus a margin of candidates keeps a near-tie just outside the first k from being lost.
        shortlist = sorted(candidates, key=lambda v: (-candidates[v], v))[: k + k // 2 + 1]
        by_video: dict[int, list[VectorRow]] = {}
        for row in self.store.vectors_of(shortlist):
            by_video.setdefault(row.video_id, []).append(row)
        ranked = []
        for video_id, rows in by_video.items():
            sims = np.stack([r.embedding for r in rows]) @ query[0]  # [n_vectors of this video]
            best = float(sims.max())
            moments = [i for i, r in enumerate(rows) if r.kind == KIND_MOMENT]
            pick = max(moments, key=lambda i: sims[i]) if moments else int(np.argmax(sims))
            ranked.append((best, video_id, rows[pick]))
        ranked.sort(key=lambda item: (-item[0], item[1]))
        results = []
        for rank, (score, video_id, moment) in enumerate(ranked[:k], start=1):
            video = self.store.video(video_id)
            if video is None:
                continue  # deleted by a concurrent indexing run since the candidates were drawn
            results.append(
                SearchResult(
                    rank=len(results) + 1,
                    score=score,
                    video_id=video_id,
                    path=video.path,
                    start=float(moment.start),
                    end=float(moment.end),
                    thumbnail=self._abs(moment.thumbnail),
                )
            )
        return results

    def video(self, video_id: int) -> VideoEntry:
        """The entry of one video, with its moments.

        Raises:
            UnknownVideoError: no video with this id (a LookupError).
        """
        row = self.store.video(int(video_id))
        if row is None:
            raise UnknownVideoError(f"no video with id {video_id} in index {self.index_dir}")
        return self._entry(row, self.store.vectors_of([row.id]))

    def videos(self, offset: int = 0, limit: int | None = None) -> list[VideoEntry]:
        """Entries of the indexed videos in id order (``limit`` None: all from ``offset``)."""
        rows = self.store.list_videos(offset, limit)
        vectors: dict[int, list[VectorRow]] = {row.id: [] for row in rows}
        for vector in self.store.vectors_of(vectors):
            vectors[vector.video_id].append(vector)
        return [self._entry(row, vectors[row.id]) for row in rows]

    def stats(self) -> dict[str, Any]:
        """Counts and settings of the index (for a health or status page)."""
        with self._lock:
            index = self._index
        from vtr.index.vectors import index_kind

        return {
            "index_dir": str(self.index_dir),
            "videos": self.store.count_videos(),
            "vectors": self.store.count_vectors(),
            "failed": len(self.store.failures()),
            "model": self.settings.model_spec,
            "model_id": self.settings.model_id,
            "dim": self.settings.dim,
            "num_frames": self.settings.num_frames,
            "window": self.settings.window,
            "stride": self.settings.stride,
            "index_type": index_kind(index),
            "generation": self._generation,
        }

    def _entry(self, row: VideoRow, vectors: list[VectorRow]) -> VideoEntry:
        moments = sorted((v.start, v.end, self._abs(v.thumbnail)) for v in vectors if v.kind == KIND_MOMENT)
        if not moments:
            # No moment windows (a short video): the whole video is its one moment.
            moments = [(0.0, float(row.duration), self._abs(row.thumbnail))]
        return VideoEntry(
            video_id=row.id,
            path=row.path,
            duration=float(row.duration),
            size_bytes=int(row.size),
            moments=[(float(s), float(e), t) for s, e, t in moments],
            thumbnail=self._abs(row.thumbnail),
        )

    def _abs(self, relative: str | None) -> str | None:
        return None if relative is None else str(self.index_dir / relative)


def _search_one(index: faiss.Index, query: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS search of one query on the calling thread alone.

    FAISS parallelises over queries, so one query gains nothing from its OpenMP team; and FAISS and torch each
    ship their own OpenMP runtime, whose spinning workers starve each other when a text encoding (torch) and a
    search (FAISS) alternate on few cores: measured on 2 cores, 8 ms FAISS calls and 500 ms searches instead of
    0.1 ms and 15 ms. The thread count is per calling thread in OpenMP, so it is restored and nothing else changes.
    """
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(query, fetch)
    finally:
        faiss.omp_set_num_threads(previous)


def validate_query(text: str, k: int) -> str:
    """The stripped query text, after checking it and ``k``.

    Raises:
        VtrError: ``text`` empty or longer than :data:`MAX_QUERY_CHARS`, or ``k`` outside [1, :data:`MAX_K`].
    """
    if not isinstance(text, str) or not text.strip():
        raise VtrError("the search query is empty: give a few words describing the video")
    if len(text) > MAX_QUERY_CHARS:
        raise VtrError(f"the search query is {len(text)} characters long; at most {MAX_QUERY_CHARS} are accepted")
    validate_k(k)
    return text.strip()


def validate_k(k: int) -> None:
    """Raise VtrError unless ``k`` is an integer in [1, :data:`MAX_K`]."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise VtrError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
