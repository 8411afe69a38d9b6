"""The FAISS side of the store: inner product over unit vectors, exact below a size threshold, HNSW above it.

The FAISS file is a cache of the embeddings held in SQLite (the source of truth). Its name carries the store's
generation (``vectors-g<N>.faiss``), which SQLite bumps in the same transaction as any change to the vectors,
so a file that is missing or from an older generation is detected on open and rebuilt.
"""

from __future__ import annotations

import re
from pathlib import Path

import faiss
import numpy as np

from vtr.fileio import atomic_write

# Above this many stored vectors the index is HNSW, below it exact (IndexFlatIP). From
# benchmarks/search_latency.py on 2 CPU cores, 256-d: exact search takes 0.1 ms a query at 10^4 vectors and 4 ms
# at 10^5 (linear: about 10 ms at 2.5 x 10^5, as long as the text encoding it follows), while HNSW answers in
# 0.4 ms at recall@10 0.99 on embedding-like data but costs minutes to build and loses a little recall. So: exact
# up to the size where its latency matches the query's text encoding, HNSW beyond.
ANN_THRESHOLD = 250_000
# HNSW graph degree and beam widths: M=32 with efSearch=128 gave recall@10 0.993 at 10^5 low-rank 256-d
# vectors (1.0 at efSearch 256, for 2x the time); efConstruction=80 keeps the build to ~30 s per 10^5 on 2 cores.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128

_FILE_RE = re.compile(r"^vectors-g(\d+)\.faiss$")


def build_vector_index(
    embeddings: np.ndarray, ids: np.ndarray, ann_threshold: int = ANN_THRESHOLD
) -> faiss.IndexIDMap2:
    """A FAISS index over ``embeddings`` float32 [N, E] (unit rows) labelled by ``ids`` int64 [N].

    Args:
        embeddings: the vectors, float32 [N, E].
        ids: the label of each vector (the SQLite row id), int64 [N].
        ann_threshold: N above which the index is HNSW rather than exact.

    Returns:
        An ``IndexIDMap2`` whose inner index is ``IndexFlatIP`` or ``IndexHNSWFlat`` (inner product).
    """
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    dim = embeddings.shape[1]
    if len(embeddings) > ann_threshold:
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        inner = faiss.IndexFlatIP(dim)
    index = faiss.IndexIDMap2(inner)
    if len(embeddings):
        index.add_with_ids(embeddings, np.ascontiguousarray(ids, dtype=np.int64))
    return index


def index_kind(index: faiss.Index) -> str:
    """``"hnsw"`` or ``"flat"``: which search the index does."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"


def vector_file(index_dir: str | Path, generation: int) -> Path:
    """Path of the FAISS file of one store generation."""
    return Path(index_dir) / f"vectors-g{generation}.faiss"


def write_vector_index(index: faiss.Index, index_dir: str | Path, generation: int) -> Path:
    """Write the FAISS file of ``generation`` atomically (temporary file, fsync, rename); drop older ones."""
    path = atomic_write(vector_file(index_dir, generation), lambda tmp: faiss.write_index(index, str(tmp)))
    for other in Path(index_dir).iterdir():
        match = _FILE_RE.match(other.name)
        if match and int(match.group(1)) != generation:
            other.unlink(missing_ok=True)
    return path


def read_vector_index(index_dir: str | Path, generation: int) -> faiss.Index | None:
    """The FAISS index of ``generation``, or None when its file is missing or unreadable."""
    path = vector_file(index_dir, generation)
    if not path.is_file():
        return None
    try:
        index = faiss.read_index(str(path))
    except RuntimeError:
        return None  # truncated or foreign file: the caller rebuilds it from SQLite
    if index_kind(index) == "hnsw":
        faiss.downcast_index(index.index).hnsw.efSearch = HNSW_EF_SEARCH
    return index
