"""Search latency of an index: p50 / p99 of one query, text encoding included, exact vs HNSW, and HNSW recall@10.

For each collection size N (stored embeddings, 256-d unless --dim), the script fills a real index folder
(SQLite, as ``vtr index`` writes it: one whole-video and four moment embeddings per video) with random unit
vectors, then times ``Searcher.search(text, k=10)`` end to end with a real text tower (the MiniLM-L6 of the
demo config, random projection): text encoding, FAISS, and the SQLite look-ups and exact re-scoring of the
candidates. Recall@10 of HNSW is measured against exact search on the same vectors, at the vector level.

Kinds of vectors: ``uniform`` (i.i.d. on the sphere: the worst case for a graph index, every neighbour about
as far as any other), ``clustered`` (a mixture around 1,000 centres) and ``lowrank`` (a random 32-d latent
mapped to 256-d plus a little noise: like learnt embeddings, whose intrinsic dimension is far below their size).
HNSW is timed at several ``efSearch`` values (the index's default is marked with *).

    python benchmarks/search_latency.py --sizes 10000 100000 1000000 --queries 200

Prints one table row per (N, data, index). Numbers depend on the machine: record them with its name.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import torch

from vtr.config import load_config
from vtr.index.encoders import VtrRunEncoder
from vtr.index.searcher import Searcher
from vtr.index.store import KIND_MOMENT, KIND_VIDEO, IndexSettings, IndexStore
from vtr.index.vectors import HNSW_EF_SEARCH, build_vector_index, index_kind, write_vector_index

VECTORS_PER_VIDEO = 5  # a whole-video embedding and four moments (a 10 s video with 4 s windows every 2 s)
EF_SEARCH_SWEEP = (32, 64, 128, 256, 512)
QUERIES = [
    "a red circle moves to the left on a beach",
    "two squares chase each other",
    "a small blue triangle grows",
    "a man rides a bike down a hill",
    "the cat jumps onto the table",
]


def random_vectors(n: int, dim: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """float32 [n, dim] unit vectors: i.i.d. on the sphere, or clustered around 1,000 random centres."""
    if kind == "uniform":
        x = rng.standard_normal((n, dim), dtype=np.float32)
    elif kind == "lowrank":
        basis = np.random.default_rng(1234).standard_normal((32, dim), dtype=np.float32)  # shared by data and queries
        x = rng.standard_normal((n, 32), dtype=np.float32) @ basis
        x += (
            0.1
            * np.linalg.norm(x, axis=1, keepdims=True)
            / np.sqrt(dim)
            * rng.standard_normal((n, dim), dtype=np.float32)
        )
    else:
        centres = rng.standard_normal((1000, dim), dtype=np.float32)
        x = centres[rng.integers(0, 1000, n)] + 0.6 * rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def fill_store(index_dir: Path, vectors: np.ndarray, settings: IndexSettings) -> None:
    """Write ``vectors`` into a new index folder as videos of VECTORS_PER_VIDEO embeddings each."""
    store = IndexStore(index_dir, create=True)
    with store.transaction():
        store.set_settings(settings)
    kinds = [KIND_VIDEO] + [KIND_MOMENT] * (VECTORS_PER_VIDEO - 1)
    spans = [(0.0, 10.0)] + [(2.0 * i, 2.0 * i + 4.0) for i in range(VECTORS_PER_VIDEO - 1)]
    per_tx = 20_000 // VECTORS_PER_VIDEO
    for first in range(0, len(vectors) // VECTORS_PER_VIDEO, per_tx):
        with store.transaction():
            for v in range(first, min(first + per_tx, len(vectors) // VECTORS_PER_VIDEO)):
                video_id = store.insert_video(f"/videos/{v:07d}.mp4", 1000, 0, f"{v:032x}", 10.0)
                rows = vectors[v * VECTORS_PER_VIDEO : (v + 1) * VECTORS_PER_VIDEO]
                store.insert_vectors(video_id, kinds, spans, [None] * VECTORS_PER_VIDEO, rows)
    store.close()


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ms = np.asarray(samples) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200, help="timed queries per configuration")
    parser.add_argument(
        "--data", nargs="+", default=["uniform", "lowrank"], choices=["uniform", "clustered", "lowrank"]
    )
    parser.add_argument("--workdir", type=Path, help="where to put the index folders (default: a temp folder)")
    args = parser.parse_args()

    print(
        f"# {platform.node()} {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
        f"faiss threads {faiss.omp_get_max_threads()}, {time.strftime('%Y-%m-%d')}"
    )
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="vtr-search-bench-"))
    run_dir = workdir / "model"
    if not run_dir.is_dir():
        from vtr.models import build_model, save_model

        config = load_config("synthetic-dual-align", [f"model.embed_dim={args.dim}"])
        save_model(build_model(config), run_dir, "best")
    encoder = VtrRunEncoder(run_dir)
    for text in QUERIES * 4:  # warm-up: first calls allocate
        encoder.embed_texts([text])
    text_times = []
    for i in range(args.queries):
        started = time.perf_counter()
        encoder.embed_texts([QUERIES[i % len(QUERIES)] + f" {i}"])
        text_times.append(time.perf_counter() - started)
    p50, p99 = percentiles(text_times)
    print(f"text encoding alone (MiniLM-L6): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    header = f"{'N':>9} {'data':>9} {'index':>7} {'build s':>8} {'faiss p50':>9} {'p99':>7} {'search p50':>10} {'p99':>7} {'recall@10':>9}"
    print(header)
    rng = np.random.default_rng(0)
    settings = IndexSettings(encoder.model_id, encoder.model_spec, args.dim, 8, 32, 4.0, 2.0)
    for n in args.sizes:
        for data in args.data:
            vectors = random_vectors(n, args.dim, data, rng)
            queries = random_vectors(args.queries, args.dim, data, rng)
            index_dir = workdir / f"index-{n}-{data}"
            shutil.rmtree(index_dir, ignore_errors=True)
            fill_store(index_dir, vectors, settings)
            ids = np.arange(1, n + 1, dtype=np.int64)  # SQLite row ids of the vectors, in insertion order
            exact_labels = None
            for threshold in (n, 0):  # n: exact; 0: HNSW
                started = time.perf_counter()
                index = build_vector_index(vectors, ids, ann_threshold=threshold)
                build_seconds = time.perf_counter() - started
                with IndexStore(index_dir) as store:
                    write_vector_index(index, index_dir, store.generation())
                kind = index_kind(index)
                for ef in [None] if kind == "flat" else EF_SEARCH_SWEEP:
                    if ef is not None:
                        faiss.downcast_index(index.index).hnsw.efSearch = ef
                    faiss_times = []
                    labels = []
                    threads = faiss.omp_get_max_threads()
                    faiss.omp_set_num_threads(1)  # one query at a time, as Searcher runs it (see its _search_one)
                    for q in queries:
                        started = time.perf_counter()
                        _, found = index.search(q[None], 10)
                        faiss_times.append(time.perf_counter() - started)
                        labels.append(found[0])
                    faiss.omp_set_num_threads(threads)
                    if exact_labels is None:
                        exact_labels, recall = labels, 1.0
                    else:
                        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(labels, exact_labels)]))
                    f50, f99 = percentiles(faiss_times)
                    if ef is not None and ef != HNSW_EF_SEARCH:
                        name = f"ef{ef}"
                        print(
                            f"{n:>9} {data:>9} {name:>7} {'':>8} {f50:>9.2f} {f99:>7.2f} {'':>10} {'':>7} {recall:>9.3f}"
                        )
                    elif ef is not None:
                        faiss_default = (f50, f99, recall)
                if kind == "hnsw":
                    faiss.downcast_index(index.index).hnsw.efSearch = HNSW_EF_SEARCH
                    f50, f99, recall = faiss_default
                searcher = Searcher(index_dir, model=encoder)
                assert index_kind(searcher._index) == index_kind(index)
                for text in QUERIES:
                    searcher.search(text, k=10)
                search_times = []
                for i in range(args.queries):
                    started = time.perf_counter()
                    searcher.search(QUERIES[i % len(QUERIES)] + f" {i}", k=10)
                    search_times.append(time.perf_counter() - started)
                searcher.close()
                s50, s99 = percentiles(search_times)
                name = "flat" if kind == "flat" else f"hnsw{HNSW_EF_SEARCH}*"
                print(
                    f"{n:>9} {data:>9} {name:>7} {build_seconds:>8.1f} {f50:>9.2f} {f99:>7.2f} "
                    f"{s50:>10.2f} {s99:>7.2f} {recall:>9.3f}",
                    flush=True,
                )
                del index
            shutil.rmtree(index_dir, ignore_errors=True)
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
