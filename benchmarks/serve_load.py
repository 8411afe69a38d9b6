"""Load test of ``vtr serve``: requests per second and latency under N concurrent clients.

Builds a real index (a synthetic set from ``vtr.data.synth`` encoded by the demo model of
``configs/synthetic-dual-align.yaml``, untrained unless ``--model`` names a trained run; optionally padded with
random-embedding entries to a larger collection), starts ``python -m vtr serve`` on 127.0.0.1 in its own process,
then runs N asyncio clients (httpx) for a fixed time and prints requests/s, p50/p90/p99 latency and errors.

Workloads: ``search`` (GET /api/search with captions of the synthetic set as queries, k=10) and ``page``
(what the web page does per query: one search, then the first result's thumbnail and a 64 KiB range of its video).

    python benchmarks/serve_load.py --clients 8 --duration 20
    python benchmarks/serve_load.py --workload page --random-videos 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per run (default 20)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring (default 2)")
    parser.add_argument("--workload", choices=["search", "page", "both"], default="both")
    parser.add_argument("--videos", type=int, default=48, help="synthetic videos to encode (default 48)")
    parser.add_argument(
        "--random-videos", type=int, default=0, help="extra entries with random embeddings, to scale the index"
    )
    parser.add_argument("--model", type=Path, help="a trained vtr run folder (default: untrained demo model)")
    parser.add_argument("--index", type=Path, help="serve this existing index instead of building one")
    parser.add_argument("--work-dir", type=Path, help="where to build (default: a temporary folder, removed)")
    parser.add_argument("--threads", type=int, help="passed to `vtr serve --threads` (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    return parser.parse_args()


# --- building the index ----------------------------------------------------------------------------------------


def build_index(work: Path, args: argparse.Namespace) -> tuple[Path, list[str]]:
    """Synthetic videos -> index; returns the index folder and the captions to use as queries."""
    from vtr.data.synth import generate_dataset
    from vtr.index.builder import IndexOptions
    from vtr.index.builder import build_index as build

    data = work / "synth"
    if not (data / "annotations.jsonl").is_file():
        generate_dataset(data, num_videos=args.videos, seed=0, progress=False)
    captions = [
        c for line in (data / "annotations.jsonl").read_text().splitlines() for c in json.loads(line)["captions"]
    ]
    model = args.model or demo_model(work / "run")
    index = work / "index"
    started = time.perf_counter()
    report = build(data / "videos", index, model, options=IndexOptions(workers=2), progress=False)
    print(
        f"indexed {len(report.indexed)} synthetic videos ({report.vectors} embeddings) in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    if args.random_videos:
        add_random_entries(index, args.random_videos, data / "videos")
    return index, captions


def demo_model(run_dir: Path) -> Path:
    """An untrained run of the demo config: its text tower is the pretrained MiniLM-L6, as in a trained run."""
    from vtr.config import load_config
    from vtr.models import build_model, save_model

    if not (run_dir / "best.safetensors").is_file():
        save_model(build_model(load_config(REPO / "configs" / "synthetic-dual-align.yaml")), run_dir, "best")
    return run_dir


def add_random_entries(index: Path, count: int, videos: Path) -> None:
    """Pad the index with ``count`` videos whose embeddings are random unit vectors (3 moments each).

    Each gets its own file, a hard link to a synthetic video (the store keys videos by path, and the server
    streams only canonical paths, not symlinks), and shares the thumbnail of a real entry.
    """
    from vtr.index.store import KIND_MOMENT, KIND_VIDEO, IndexStore

    files = sorted(p for p in videos.glob("*.mp4") if not p.name.startswith("random-"))
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    with IndexStore(index) as store:
        dim = store.settings().dim
        thumbnail = store.list_videos(limit=1)[0].thumbnail
        with store.transaction():
            for i in range(count):
                source = files[i % len(files)]
                alias = videos / f"random-{i:07d}.mp4"
                if not alias.exists():
                    os.link(source, alias)
                video_id = store.insert_video(alias, source.stat().st_size, 0, f"random-{i}", 2.0, thumbnail=thumbnail)
                emb = rng.standard_normal((4, dim)).astype(np.float32)  # [whole video + 3 moments, E]
                emb /= np.linalg.norm(emb, axis=1, keepdims=True)
                spans = [(0.0, 2.0), (0.0, 1.0), (0.5, 1.5), (1.0, 2.0)]
                store.insert_vectors(video_id, [KIND_VIDEO] + [KIND_MOMENT] * 3, spans, [thumbnail] * 4, emb)
        store.vector_index()  # build the FAISS file now rather than in the server's first request
    print(f"added {count} random-embedding videos in {time.perf_counter() - started:.1f} s", flush=True)


# --- the server ------------------------------------------------------------------------------------------------


class Server:
    """``python -m vtr serve --db INDEX --port 0`` in its own process."""

    def __init__(self, index: Path, threads: int | None) -> None:
        cmd = [sys.executable, "-m", "vtr", "serve", "--db", str(index), "--port", "0", "--log-level", "warning"]
        cmd += ["--threads", str(threads)] if threads else []
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.url = ""
        for line in self.process.stdout:  # type: ignore[union-attr]
            match = re.search(r"serving .* at (http://\S+/)", line)
            if match:
                self.url = match.group(1)
                break
        if not self.url:
            raise SystemExit(f"vtr serve did not start (exit {self.process.wait()})")
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()  # type: ignore[union-attr]
        while httpx.get(self.url + "healthz", timeout=60).status_code != 200:
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- the load --------------------------------------------------------------------------------------------------


async def one_page_view(http: httpx.AsyncClient, query: str, record) -> None:
    """What the web page does for one query: search, load the first thumbnail, start the first video."""
    results = await timed(http, "search", record, "api/search", params={"q": query, "k": 10})
    if results:
        first = results["results"][0] if results["results"] else None
        if first:
            await timed(http, "thumbnail", record, first["thumbnail_url"].lstrip("/"))
            await timed(http, "stream", record, first["stream_url"].lstrip("/"), headers={"Range": "bytes=0-65535"})


async def timed(http: httpx.AsyncClient, kind: str, record, url: str, **kwargs):
    started = time.perf_counter()
    try:
        response = await http.get(url, **kwargs)
        ok = response.status_code in (200, 206)
        body = response.json() if ok and kind == "search" else None
    except httpx.HTTPError:
        ok, body = False, None
    record(kind, time.perf_counter() - started, ok)
    return body


async def load(url: str, queries: list[str], workload: str, clients: int, warmup: float, duration: float) -> dict:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    measuring = False

    def record(kind: str, seconds: float, ok: bool) -> None:
        if measuring:
            latencies[kind].append(seconds)
            errors[kind] += 0 if ok else 1

    async def client(seed: int, stop_at: list[float]) -> None:
        rng = random.Random(seed)
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
            while time.perf_counter() < stop_at[0]:
                query = rng.choice(queries)
                if workload == "search":
                    await timed(http, "search", record, "api/search", params={"q": query, "k": 10})
                else:
                    await one_page_view(http, query, record)

    stop_at = [time.perf_counter() + warmup + duration]
    tasks = [asyncio.create_task(client(i, stop_at)) for i in range(clients)]
    await asyncio.sleep(warmup)
    measuring = True
    started = time.perf_counter()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    out = {"elapsed_s": round(elapsed, 2), "endpoints": {}}
    total = 0
    for kind, values in sorted(latencies.items()):
        ms = np.asarray(values) * 1000.0
        total += len(values)
        out["endpoints"][kind] = {
            "requests": len(values),
            "rps": round(len(values) / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p90_ms": round(float(np.percentile(ms, 90)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "errors": errors[kind],
        }
    out["requests"] = total
    out["rps"] = round(total / elapsed, 1)
    out["errors"] = sum(errors.values())
    return out


def main() -> None:
    args = parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="vtr-serve-load-"))
    try:
        if args.index:
            index, queries = args.index, ["a red circle moves left", "a small square rotates", "a ball bounces"]
        else:
            index, queries = build_index(work, args)
        server = Server(index, args.threads)
        try:
            health = httpx.get(server.url + "healthz").json()
            print(
                f"server {server.url} over {health['videos']} videos; {args.clients} clients, "
                f"{args.duration:.0f} s per workload (after {args.warmup:.0f} s warm-up)",
                flush=True,
            )
            runs = {}
            for workload in ["search", "page"] if args.workload == "both" else [args.workload]:
                result = asyncio.run(load(server.url, queries, workload, args.clients, args.warmup, args.duration))
                runs[workload] = result
                print(f"\nworkload {workload}: {result['rps']} requests/s, {result['errors']} errors")
                print(
                    f"  {'endpoint':<10} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>7}"
                )
                for kind, row in result["endpoints"].items():
                    print(
                        f"  {kind:<10} {row['requests']:>9} {row['rps']:>7} {row['p50_ms']:>8} {row['p90_ms']:>8}"
                        f" {row['p99_ms']:>8} {row['errors']:>7}"
                    )
        finally:
            server.stop()
        machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}"
        print(f"\nmachine: {machine}")
        if args.json:
            payload = {"machine": machine, "clients": args.clients, "threads": args.threads, "videos": health["videos"]}
            payload["runs"] = runs
            args.json.write_text(json.dumps(payload, indent=2) + "\n")
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
