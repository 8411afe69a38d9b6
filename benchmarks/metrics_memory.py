"""Peak memory and time of :func:`vtr.evaluate.metrics.retrieval_metrics` on a large float32 matrix.

Prints, for each video-to-text convention: seconds, the extra memory the call allocates (tracemalloc peak; numpy
reports its buffers to tracemalloc) and the process's peak RSS, which includes the matrix itself. The goal is a
20,000 x 20,000 float32 matrix (1.6 GB) evaluated in under 2 GB of peak RSS.

    python benchmarks/metrics_memory.py                      # 20,000 x 20,000
    python benchmarks/metrics_memory.py --n-queries 100000 --n-videos 20000 --shuffle  # 5 captions a video
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
import tracemalloc

import numpy as np

from vtr.evaluate.metrics import DEFAULT_CHUNK_SIZE, V2T_MODES, retrieval_metrics

MIB = 1024**2


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-queries", type=int, default=20_000)
    parser.add_argument("--n-videos", type=int, default=20_000)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shuffle", action="store_true", help="captions not sorted by video (v2t maxpool then copies each chunk)"
    )
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    n_q, n_v = args.n_queries, args.n_videos
    # Caption i belongs to video i % n_v, so every video has n_q / n_v captions (at least one when n_q >= n_v).
    query_video = np.arange(n_q) % n_v
    if args.shuffle:
        rng.shuffle(query_video)
    sim = np.empty((n_q, n_v), dtype=np.float32)
    for start in range(0, n_q, 1000):  # filled in slabs so that generating the data stays within the matrix
        sim[start : start + 1000] = rng.standard_normal((min(1000, n_q - start), n_v), dtype=np.float32)
    sim[np.arange(n_q), query_video] += 3.0  # a signal, so that ranks are not all uniform
    baseline = peak_rss_mib()

    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}, numpy {np.__version__}")
    print(
        f"matrix {n_q} x {n_v} float32 = {sim.nbytes / MIB:.0f} MiB; chunk_size {args.chunk_size}; shuffled {args.shuffle}"
    )
    print(f"peak RSS before evaluating: {baseline:.0f} MiB")
    for mode in V2T_MODES:
        start = time.perf_counter()
        metrics = retrieval_metrics(sim, query_video, v2t=mode, chunk_size=args.chunk_size)
        seconds = time.perf_counter() - start
        tracemalloc.start()
        retrieval_metrics(sim, query_video, v2t=mode, chunk_size=args.chunk_size)
        _, extra = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"v2t={mode:<8} {seconds:6.2f} s   extra allocated {extra / MIB:6.1f} MiB   "
            f"peak RSS {peak_rss_mib():6.0f} MiB   t2v R@1 {metrics['t2v']['R@1']:.2f}  v2t R@1 {metrics['v2t']['R@1']:.2f}"
        )


if __name__ == "__main__":
    main()
