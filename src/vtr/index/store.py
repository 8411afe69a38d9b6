"""The index store: one folder holding SQLite (metadata and embeddings, the source of truth), a FAISS file
(a rebuildable cache of the embeddings) and thumbnails.

Layout of an index folder::

    index.sqlite          videos, their vectors (whole video and moments) with embeddings, failures, meta
    vectors-g<N>.faiss    FAISS index of generation N (see :mod:`vtr.index.vectors`)
    thumbs/<id>/*.jpg     thumbnails of video <id> and of its moments

Every change is made inside :meth:`IndexStore.transaction`, which commits or rolls back as a whole; WAL
journaling keeps the database consistent when a process is killed at any instant and lets searchers read
while an indexing run writes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import faiss
import numpy as np

from vtr.errors import IndexStoreError, ModelMismatchError
from vtr.index.vectors import ANN_THRESHOLD, build_vector_index, read_vector_index, write_vector_index

FORMAT_VERSION = 1
DB_NAME = "index.sqlite"
KIND_VIDEO = 0  # the embedding of the whole video
KIND_MOMENT = 1  # the embedding of one moment window

_BUSY_TIMEOUT = 60.0  # seconds a connection waits for another process's write lock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL,
    duration REAL NOT NULL,
    fps REAL,
    width INTEGER,
    height INTEGER,
    codec TEXT,
    thumbnail TEXT,
    indexed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS videos_hash ON videos(hash);
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    kind INTEGER NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    thumbnail TEXT,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS vectors_video ON vectors(video_id);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    error TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class IndexSettings:
    """What made an index; fixed for its lifetime (change any of it with a rebuild).

    Attributes:
        model_id: names the model and its weights (:attr:`VideoTextEncoder.model_id`).
        model_spec: how to load that model again (run folder or hub id).
        dim: embedding size.
        num_frames: frames per clip.
        image_size: frame side in pixels.
        window: moment window length in seconds.
        stride: seconds between moment starts.
    """

    model_id: str
    model_spec: str
    dim: int
    num_frames: int
    image_size: int
    window: float
    stride: float


@dataclass(frozen=True)
class VideoRow:
    """One indexed video as stored."""

    id: int
    path: str
    size: int
    mtime_ns: int
    hash: str
    duration: float
    fps: float | None
    width: int | None
    height: int | None
    codec: str | None
    thumbnail: str | None
    indexed_at: float


@dataclass(frozen=True)
class VectorRow:
    """One stored embedding: of a whole video (``kind`` 0) or of one moment (``kind`` 1)."""

    id: int
    video_id: int
    kind: int
    start: float
    end: float
    thumbnail: str | None
    embedding: np.ndarray  # float32 [E]


@dataclass(frozen=True)
class FailureRow:
    """A file that could not be indexed, with the size and mtime it had then."""

    path: str
    size: int
    mtime_ns: int
    error: str


_VIDEO_COLUMNS = "id, path, size, mtime_ns, hash, duration, fps, width, height, codec, thumbnail, indexed_at"


def _use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch the database to WAL journaling, waiting up to ``timeout`` seconds for other connections.

    Unlike other statements, the switch does not wait on SQLite's busy handler: while another process holds a
    lock on a database not yet in WAL mode (an indexing run starting as a searcher opens the same new folder)
    it fails at once with "database is locked". It is retried here instead.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(2 * delay, 0.1)


class IndexStore:
    """SQLite + FAISS store of one index folder.

    Safe to share between threads (one connection behind a lock); several processes may open the same
    folder (SQLite serialises writers; readers see committed data only).

    Args:
        index_dir: the index folder.
        create: create the folder and an empty database when missing; otherwise a missing index raises.

    Raises:
        IndexStoreError: no index there (``create=False``), not a vtr index, or written by a newer version.
    """

    def __init__(self, index_dir: str | Path, *, create: bool = False) -> None:
        self.index_dir = Path(index_dir).expanduser().resolve()
        self.db_path = self.index_dir / DB_NAME
        if not self.db_path.is_file():
            if not create:
                raise IndexStoreError(
                    f"no index at {self.index_dir} (missing {DB_NAME}); build one with "
                    f"`vtr index VIDEO_DIR --model MODEL --db {index_dir}`"
                )
            self.index_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            # Autocommit mode: transactions are opened explicitly by transaction().
            self._conn = sqlite3.connect(
                self.db_path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            _use_wal(self._conn, _BUSY_TIMEOUT)
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
            version = self._meta("format_version")
            if version is None:
                self._set_meta("format_version", str(FORMAT_VERSION))
            elif int(version) > FORMAT_VERSION:
                raise IndexStoreError(
                    f"index {self.index_dir} has format version {version}; this vtr reads up to {FORMAT_VERSION}:"
                    " upgrade vtr"
                )
        except sqlite3.DatabaseError as error:
            raise IndexStoreError(f"{self.db_path} is not a readable vtr index: {error}") from None
        self._in_transaction = False
        self._vectors_changed = False

    # -- lifecycle ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group changes: all are committed together at the end of the block, or none (on any exception).

        A transaction that changed vectors also bumps the generation, so every FAISS file written before it is
        known to be stale.
        """
        with self._lock:
            if self._in_transaction:
                raise RuntimeError("transactions do not nest")
            self._conn.execute("BEGIN IMMEDIATE")
            self._in_transaction = True
            self._vectors_changed = False
            try:
                yield
                if self._vectors_changed:
                    self._set_meta("generation", str(self.generation() + 1))
                self._conn.execute("COMMIT")
            except BaseException:
                # A signal can land after COMMIT went through: then there is nothing to roll back, and the
                # KeyboardInterrupt must reach the caller rather than a "no transaction is active" error.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            finally:
                self._in_transaction = False

    # -- meta and settings -------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def generation(self) -> int:
        """A counter bumped by every committed change to the vectors."""
        with self._lock:
            return int(self._meta("generation") or 0)

    def settings(self) -> IndexSettings | None:
        """The settings that made this index, or None for an index that has never been written to."""
        with self._lock:
            model_id = self._meta("model_id")
            if model_id is None:
                return None
            return IndexSettings(
                model_id=model_id,
                model_spec=self._meta("model_spec") or "",
                dim=int(self._meta("dim") or 0),
                num_frames=int(self._meta("num_frames") or 0),
                image_size=int(self._meta("image_size") or 0),
                window=float(self._meta("window") or 0.0),
                stride=float(self._meta("stride") or 0.0),
            )

    def set_settings(self, settings: IndexSettings) -> None:
        """Record what makes this index (on creation, after a rebuild, or to update the model's location)."""
        with self._lock:
            for key, value in vars(settings).items():
                self._set_meta(key, str(value))

    def check_model(self, model_id: str, dim: int | None = None) -> None:
        """Raise :class:`ModelMismatchError` unless ``model_id`` (and ``dim``) are the ones that made the index."""
        settings = self.settings()
        if settings is None:
            return
        if model_id != settings.model_id or (dim is not None and dim != settings.dim):
            raise ModelMismatchError(
                f"index {self.index_dir} was built with model {settings.model_spec} ({settings.model_id}, "
                f"{settings.dim}-d), not {model_id}"
                + (f" ({dim}-d)" if dim is not None else "")
                + ": use the same model (same weights), or rebuild the index with `vtr index ... --rebuild`"
            )

    def clear(self) -> None:
        """Remove every video, vector, failure and the settings (for a rebuild); inside a transaction."""
        self._require_transaction()
        self._conn.execute("DELETE FROM vectors")
        self._conn.execute("DELETE FROM videos")
        self._conn.execute("DELETE FROM failures")
        self._conn.execute("DELETE FROM meta WHERE key NOT IN ('format_version', 'generation')")
        self._vectors_changed = True

    # -- videos ------------------------------------------------------------------------------------------

    def _require_transaction(self) -> None:
        if not self._in_transaction:
            raise RuntimeError("changes to the index must be made inside IndexStore.transaction()")

    def video(self, video_id: int) -> VideoRow | None:
        """The stored video with this id, or None."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_VIDEO_COLUMNS} FROM videos WHERE id = ?", (video_id,)).fetchone()
        return None if row is None else VideoRow(*row)

    def video_by_path(self, path: str | Path) -> VideoRow | None:
        """The stored video at this absolute path, or None."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_VIDEO_COLUMNS} FROM videos WHERE path = ?", (str(path),)).fetchone()
        return None if row is None else VideoRow(*row)

    def videos_with_hash(self, content_hash: str) -> list[VideoRow]:
        """Stored videos whose content hash is ``content_hash``."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_VIDEO_COLUMNS} FROM videos WHERE hash = ? ORDER BY id", (content_hash,)
            ).fetchall()
        return [VideoRow(*row) for row in rows]

    def list_videos(self, offset: int = 0, limit: int | None = None) -> list[VideoRow]:
        """Stored videos in id order."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_VIDEO_COLUMNS} FROM videos ORDER BY id LIMIT ? OFFSET ?",
                (-1 if limit is None else int(limit), int(offset)),
            ).fetchall()
        return [VideoRow(*row) for row in rows]

    def count_videos(self) -> int:
        """Number of stored videos."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM videos").fetchone()[0])

    def insert_video(
        self,
        path: str | Path,
        size: int,
        mtime_ns: int,
        content_hash: str,
        duration: float,
        fps: float | None = None,
        width: int | None = None,
        height: int | None = None,
        codec: str | None = None,
        thumbnail: str | None = None,
    ) -> int:
        """Add a video (inside a transaction); returns its id."""
        self._require_transaction()
        cursor = self._conn.execute(
            "INSERT INTO videos (path, size, mtime_ns, hash, duration, fps, width, height, codec, thumbnail,"
            " indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (str(path), size, mtime_ns, content_hash, duration, fps, width, height, codec, thumbnail, time.time()),
        )
        return int(cursor.lastrowid)

    def set_video_thumbnail(self, video_id: int, thumbnail: str | None) -> None:
        """Set the thumbnail path (relative to the index folder) of a video, inside a transaction."""
        self._require_transaction()
        self._conn.execute("UPDATE videos SET thumbnail = ? WHERE id = ?", (thumbnail, video_id))

    def update_video_file(self, video_id: int, path: str | Path, size: int, mtime_ns: int) -> None:
        """Point a video at a new path / size / mtime with the same content (a touch or a rename)."""
        self._require_transaction()
        self._conn.execute(
            "UPDATE videos SET path = ?, size = ?, mtime_ns = ? WHERE id = ?", (str(path), size, mtime_ns, video_id)
        )

    def delete_video(self, video_id: int) -> None:
        """Delete a video and its vectors, inside a transaction (the caller removes its thumbnails)."""
        self._require_transaction()
        self._conn.execute("DELETE FROM vectors WHERE video_id = ?", (video_id,))
        self._conn.execute("DELETE FROM videos WHERE id = ?", (video_id,))
        self._vectors_changed = True

    # -- vectors -----------------------------------------------------------------------------------------

    def insert_vectors(
        self,
        video_id: int,
        kinds: Sequence[int],
        spans: Sequence[tuple[float, float]],
        thumbnails: Sequence[str | None],
        embeddings: np.ndarray,
    ) -> None:
        """Add the embeddings float32 [N, E] of one video, with kind, (start, end) and thumbnail of each."""
        self._require_transaction()
        dim = self._meta("dim")
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if dim is not None and embeddings.shape[1] != int(dim):
            raise IndexStoreError(f"embedding size {embeddings.shape[1]} does not match the index's {dim}")
        self._conn.executemany(
            "INSERT INTO vectors (video_id, kind, start_s, end_s, thumbnail, embedding) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (video_id, int(kind), float(start), float(end), thumb, emb.tobytes())
                for kind, (start, end), thumb, emb in zip(kinds, spans, thumbnails, embeddings, strict=True)
            ],
        )
        self._vectors_changed = True

    def count_vectors(self) -> int:
        """Number of stored vectors (whole videos and moments)."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def vector_owners(self, vector_ids: Iterable[int]) -> dict[int, int]:
        """Map vector id -> video id for the given vectors (unknown ids are left out)."""
        ids = [int(i) for i in vector_ids]
        out: dict[int, int] = {}
        with self._lock:
            for chunk in _chunks(ids, 500):  # SQLite caps the number of bound parameters
                marks = ",".join("?" * len(chunk))
                out.update(self._conn.execute(f"SELECT id, video_id FROM vectors WHERE id IN ({marks})", chunk))
        return out

    def vectors_of(self, video_ids: Iterable[int]) -> list[VectorRow]:
        """Every vector of the given videos, in id order."""
        ids = [int(i) for i in video_ids]
        rows = []
        with self._lock:
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                rows += self._conn.execute(
                    "SELECT id, video_id, kind, start_s, end_s, thumbnail, embedding FROM vectors"
                    f" WHERE video_id IN ({marks}) ORDER BY id",
                    chunk,
                ).fetchall()
        return [VectorRow(*row[:6], np.frombuffer(row[6], dtype=np.float32)) for row in rows]

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every stored vector: ids int64 [N] and embeddings float32 [N, E], in id order."""
        with self._lock:
            rows = self._conn.execute("SELECT id, embedding FROM vectors ORDER BY id").fetchall()
            dim = int(self._meta("dim") or 0)
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        embeddings = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(len(rows), dim)
        return ids, embeddings

    def vector_index(self, ann_threshold: int = ANN_THRESHOLD, write: bool = True) -> tuple[faiss.Index, int]:
        """The FAISS index of the current generation: read from its file, or rebuilt from SQLite.

        A rebuilt index is written back (atomically) when ``write`` is set and the folder is writable.

        Returns:
            The index and the generation it reflects.
        """
        with self._lock:
            # Read the generation and the vectors in one read transaction so they agree with each other.
            self._conn.execute("BEGIN")
            try:
                generation = self.generation()
                index = read_vector_index(self.index_dir, generation)
                if index is not None and index.ntotal != self.count_vectors():
                    index = None  # a file that disagrees with SQLite is not trusted
                if index is None:
                    ids, embeddings = self.all_vectors()
            finally:
                self._conn.execute("COMMIT")
        if index is None:
            index = build_vector_index(embeddings, ids, ann_threshold)
            if write:
                try:
                    write_vector_index(index, self.index_dir, generation)
                except OSError:
                    pass  # a read-only index folder: search from memory, rebuild again next time
        return index, generation

    # -- failures ----------------------------------------------------------------------------------------

    def failure(self, path: str | Path) -> FailureRow | None:
        """The recorded failure of the file at ``path``, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT path, size, mtime_ns, error FROM failures WHERE path = ?", (str(path),)
            ).fetchone()
        return None if row is None else FailureRow(*row)

    def failures(self) -> list[FailureRow]:
        """Every recorded failure, by path."""
        with self._lock:
            rows = self._conn.execute("SELECT path, size, mtime_ns, error FROM failures ORDER BY path").fetchall()
        return [FailureRow(*row) for row in rows]

    def record_failure(self, path: str | Path, size: int, mtime_ns: int, error: str) -> None:
        """Record (or replace) the failure of a file, inside a transaction."""
        self._require_transaction()
        self._conn.execute(
            "INSERT OR REPLACE INTO failures (path, size, mtime_ns, error, failed_at) VALUES (?, ?, ?, ?, ?)",
            (str(path), size, mtime_ns, error, time.time()),
        )

    def clear_failure(self, path: str | Path) -> None:
        """Forget the failure of a file, inside a transaction."""
        self._require_transaction()
        self._conn.execute("DELETE FROM failures WHERE path = ?", (str(path),))


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
