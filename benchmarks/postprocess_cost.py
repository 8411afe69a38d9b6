"""Time and memory of the test-time post-processing methods (:mod:`vtr.evaluate.postprocess`) on a large matrix.

For each method: seconds for one call, the extra memory it allocates (tracemalloc peak; numpy reports its buffers
to tracemalloc) and the process's peak RSS so far, which includes the input matrix and the bank. The matrix is
random with a signal on each caption's own video, as in ``metrics_memory.py``; QB-Norm gets a bank of random
queries of the same kind.

    python benchmarks/postprocess_cost.py                          # 10,000 x 10,000, a bank of 10,000
    python benchmarks/postprocess_cost.py --n-queries 20000 --n-videos 20000 --sinkhorn-iters 20
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from vtr.evaluate.postprocess import dual_softmax, dynamic_inverted_softmax, sinkhorn_knopp

MIB = 1024**2


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux: ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_similarities(n_queries: int, n_videos: int, rng: np.random.Generator) -> np.ndarray:
    """Cosine-like scores in [-1, 1]: noise, plus a signal on caption i's video i % n_videos."""
    sim = np.empty((n_queries, n_videos), dtype=np.float32)
    for start in range(0, n_queries, 1000):
        rows = min(1000, n_queries - start)
        sim[start : start + rows] = 0.1 * rng.standard_normal((rows, n_videos), dtype=np.float32)
    sim[np.arange(n_queries), np.arange(n_queries) % n_videos] += 0.3
    np.clip(sim, -1.0, 1.0, out=sim)
    return sim


def measure(call: Callable[[], np.ndarray]) -> tuple[float, float]:
    """Seconds of one call, and the extra MiB a second call allocates at its peak."""
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    call()
    _, extra = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, extra / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-queries", type=int, default=10_000)
    parser.add_argument("--n-videos", type=int, default=10_000)
    parser.add_argument("--n-bank", type=int, default=10_000, help="QB-Norm bank queries")
    parser.add_argument("--sinkhorn-iters", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    sim = random_similarities(args.n_queries, args.n_videos, rng)
    bank = random_similarities(args.n_bank, args.n_videos, rng)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, numpy {np.__version__}"
    )
    print(
        f"matrix {args.n_queries} x {args.n_videos} float32 = {sim.nbytes / MIB:.0f} MiB; bank {args.n_bank} queries; "
        f"peak RSS before: {peak_rss_mib():.0f} MiB"
    )
    methods = {
        "dsl (t2v)": lambda: dual_softmax(sim, direction="t2v"),
        "qbnorm (dynamic IS)": lambda: dynamic_inverted_softmax(sim, bank),
        f"sinkhorn ({args.sinkhorn_iters} it)": lambda: sinkhorn_knopp(sim, max_iter=args.sinkhorn_iters, tol=0.0),
    }
    for name, call in methods.items():
        seconds, extra = measure(call)
        print(f"{name:<22} {seconds:7.2f} s   extra allocated {extra:7.0f} MiB   peak RSS {peak_rss_mib():6.0f} MiB")


if __name__ == "__main__":
    main()
