"""The FastAPI app of the search engine: ``create_app(index_dir)`` builds it; nothing is loaded at import time.

Endpoints: ``/api/search``, ``/api/videos/{id}`` (+ ``/thumbnail``, ``/moments/{n}/thumbnail``, ``/stream``),
``/healthz``, the web page at ``/`` and its files under ``/static``; OpenAPI docs at ``/docs`` (Swagger UI) and
``/redoc``, whose scripts are served by the app itself (package ``fastapi-offline``): no CDN, so they work offline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from vtr import __version__
from vtr.errors import IndexStoreError, VtrError
from vtr.serve import files
from vtr.serve.schemas import HealthOut, MomentOut, SearchResponse, SearchResultOut, VideoOut
from vtr.serve.service import SearcherLike, SearcherUnavailable, SearchService, ServiceBusy

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
MAX_QUERY_CHARS = 1000
MAX_K = 100
# Ids are SQLite INTEGER keys; anything outside int64 cannot be one, and would overflow the driver.
_MAX_ID = 2**63 - 1

# The page loads nothing from elsewhere: no CDN, no inline script, no third-party media.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_FILE_HEADERS = {"X-Content-Type-Options": "nosniff"}


def create_app(
    index_dir: str | Path | None = None,
    *,
    searcher: SearcherLike | None = None,
    model: Any = None,
    collection_root: str | Path | None = None,
    open_on_startup: bool = True,
) -> FastAPI:
    """Build the search engine's HTTP app.

    Args:
        index_dir: the index folder (``vtr index`` output). The Searcher is opened from it once, at startup or
            on the first request; thumbnails are served only from inside it.
        searcher: an already built Searcher (or any object with ``search`` and ``video``) to use instead of
            opening ``index_dir``; thumbnails then come from ``index_dir`` or ``searcher.index_dir``.
        model: passed to ``vtr.Searcher(index_dir, model=model)`` (None: the model recorded in the index).
        collection_root: when given, a video's recorded path may be a symlink, streamed only if it resolves to a
            file inside this folder; without it, the recorded path must still be the file itself (no symlink).
        open_on_startup: open the Searcher when the server starts rather than on the first request.

    Returns:
        The app; ``app.state.search_service`` holds the :class:`SearchService` (``.open()`` opens it now).
    """
    if index_dir is None and searcher is None:
        raise ValueError("create_app needs an index folder or a searcher")
    if searcher is not None:
        service = SearchService.for_searcher(searcher)
    else:
        service = SearchService.for_index(index_dir, model=model)  # type: ignore[arg-type]
    thumb_root = Path(index_dir).expanduser().resolve() if index_dir is not None else _attr_path(searcher, "index_dir")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if open_on_startup:
            try:
                await service.call(lambda s: None)
            except SearcherUnavailable as error:
                logger.error("%s", error)  # the server stays up; /healthz and the API answer 503 with it
        yield
        service.close()

    app = FastAPIOffline(
        title="vtr search",
        version=__version__,
        description="Text-to-video search over one indexed video collection.",
        lifespan=lifespan,
    )
    app.state.search_service = service

    @app.exception_handler(SearcherUnavailable)
    @app.exception_handler(IndexStoreError)
    async def _unavailable(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503)

    @app.exception_handler(ServiceBusy)
    async def _busy(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(VtrError)
    async def _user_error(request: Request, error: Exception) -> JSONResponse:
        # Anything else the library raises as a VtrError was caused by the request (e.g. a query it rejects).
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.get("/healthz", response_model=HealthOut, tags=["service"])
    async def healthz() -> JSONResponse:
        """Ready once the index is open (waits for it on first call); 503 with the reason if it cannot be."""
        try:
            stats = await service.lookup(_stats)
        except SearcherUnavailable as error:
            return JSONResponse({"status": "error", "detail": str(error), "videos": None}, status_code=503)
        return JSONResponse({"status": "ok", "detail": None, "videos": stats.get("videos")})

    @app.get("/api/search", response_model=SearchResponse, tags=["search"])
    async def search(
        request: Request,
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="The text to search for.")],
        k: Annotated[int, Query(ge=1, le=MAX_K, description="How many results to return.")] = 10,
    ) -> SearchResponse:
        """The ``k`` videos (or moments) that best match the query, best first."""
        text = q.strip()
        if not text:
            raise HTTPException(status_code=422, detail="the query is empty")
        started = time.perf_counter()
        results = await service.search(text, k)
        took_ms = (time.perf_counter() - started) * 1000.0
        entries = await service.lookup(lambda s: _entries_of(s, results))
        prefix = request.scope.get("root_path", "")
        return SearchResponse(
            query=text,
            k=k,
            took_ms=round(took_ms, 3),
            results=[_result_out(result, entries.get(int(result.video_id)), prefix) for result in results],
        )

    @app.get("/api/videos/{video_id}", response_model=VideoOut, tags=["videos"])
    async def video(request: Request, video_id: int) -> VideoOut:
        """One indexed video: file, duration, size and its moments."""
        entry = await _entry(service, video_id)
        prefix = request.scope.get("root_path", "")
        base = f"{prefix}/api/videos/{video_id}"
        return VideoOut(
            id=video_id,
            path=str(entry.path),
            file_name=Path(str(entry.path)).name,
            duration=float(entry.duration),
            size_bytes=int(entry.size_bytes),
            thumbnail_url=f"{base}/thumbnail",
            stream_url=f"{base}/stream",
            moments=[
                MomentOut(index=i, start=start, end=end, thumbnail_url=f"{base}/moments/{i}/thumbnail")
                for i, (start, end, _) in enumerate(_moments(entry))
            ],
        )

    @app.get("/api/videos/{video_id}/thumbnail", response_class=FileResponse, tags=["videos"])
    async def thumbnail(video_id: int) -> FileResponse:
        """The video's thumbnail image (from the index folder)."""
        entry = await _entry(service, video_id)
        return _thumbnail_response(getattr(entry, "thumbnail", None), thumb_root)

    @app.get("/api/videos/{video_id}/moments/{moment}/thumbnail", response_class=FileResponse, tags=["videos"])
    async def moment_thumbnail(video_id: int, moment: int) -> FileResponse:
        """The thumbnail of one moment of the video (``moment`` indexes the video's moment list)."""
        entry = await _entry(service, video_id)
        moments = _moments(entry)
        if not 0 <= moment < len(moments):
            raise HTTPException(status_code=404, detail=f"video {video_id} has no moment {moment}")
        return _thumbnail_response(moments[moment][2], thumb_root)

    async def stream(video_id: int) -> FileResponse:
        """The video file itself; supports HTTP range requests (206, ``Content-Range``) so players can seek."""
        entry = await _entry(service, video_id)
        root = collection_root if collection_root is not None else _attr_path(entry, "collection_root")
        try:
            path, info = files.video_file(str(entry.path), root)
        except files.FileRefused as error:
            logger.warning("refused to stream video %d: %s", video_id, error)
            raise HTTPException(status_code=404, detail=f"the file of video {video_id} is no longer available")
        # Starlette's FileResponse answers Range requests itself (206 / 416, Accept-Ranges: bytes).
        return FileResponse(path, media_type=files.media_type(path), stat_result=info, headers=_FILE_HEADERS)

    stream_url = "/api/videos/{video_id}/stream"
    app.add_api_route(stream_url, stream, methods=["GET"], response_class=FileResponse, tags=["videos"])
    # HEAD lets a player learn the size without a body; one operation in the docs is enough.
    app.add_api_route(stream_url, stream, methods=["HEAD"], include_in_schema=False)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=_PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _stats(searcher: SearcherLike) -> dict[str, Any]:
    stats = getattr(searcher, "stats", None)
    return stats() if callable(stats) else {}


def _entries_of(searcher: SearcherLike, results: Sequence[Any]) -> dict[int, Any]:
    # The entries of the results' videos, to name each result's moment (and so its thumbnail URL).
    entries: dict[int, Any] = {}
    for result in results:
        video_id = int(result.video_id)
        if video_id not in entries:
            try:
                entries[video_id] = searcher.video(video_id)
            except LookupError:
                entries[video_id] = None  # deleted by an indexing run since the search
    return entries


def _result_out(result: Any, entry: Any, prefix: str) -> SearchResultOut:
    video_id = int(result.video_id)
    start, end = float(result.start), float(result.end)
    thumbnail = None if result.thumbnail is None else str(result.thumbnail)
    moment = _moment_index(entry, start, end, thumbnail)
    base = f"{prefix}/api/videos/{video_id}"
    return SearchResultOut(
        rank=int(result.rank),
        score=float(result.score),
        id=video_id,
        video_id=video_id,
        path=str(result.path),
        file_name=Path(str(result.path)).name,
        start=start,
        end=end,
        thumbnail=thumbnail,
        moment=moment,
        thumbnail_url=f"{base}/moments/{moment}/thumbnail" if moment is not None else f"{base}/thumbnail",
        stream_url=f"{base}/stream",
        video_url=base,
    )


def _moment_index(entry: Any, start: float, end: float, thumbnail: str | None) -> int | None:
    # SearchResult does not say which moment it is; the entry's moment list does, by thumbnail or by time.
    if entry is None:
        return None
    moments = _moments(entry)
    for i, (_, _, moment_thumb) in enumerate(moments):
        if thumbnail is not None and moment_thumb is not None and str(moment_thumb) == thumbnail:
            return i
    for i, (m_start, m_end, _) in enumerate(moments):
        if abs(m_start - start) < 1e-6 and abs(m_end - end) < 1e-6:
            return i
    return None


def _moments(entry: Any) -> list[tuple[float, float, str | None]]:
    out = []
    for moment in getattr(entry, "moments", None) or ():
        if hasattr(moment, "start"):
            start, end, thumb = moment.start, moment.end, getattr(moment, "thumbnail", None)
        else:
            start, end, thumb = moment
        out.append((float(start), float(end), None if thumb is None else str(thumb)))
    return out


async def _entry(service: SearchService, video_id: int) -> Any:
    if not 0 <= video_id <= _MAX_ID:
        raise HTTPException(status_code=404, detail=f"no video with id {video_id}")
    try:
        entry = await service.lookup(lambda s: s.video(video_id))
    except LookupError:
        entry = None
    if entry is None:
        raise HTTPException(status_code=404, detail=f"no video with id {video_id}")
    return entry


def _thumbnail_response(recorded: str | None, thumb_root: Path | None) -> FileResponse:
    try:
        path, info = files.thumbnail_file(recorded, thumb_root)
    except files.FileRefused as error:
        logger.debug("refused thumbnail: %s", error)
        raise HTTPException(status_code=404, detail="no thumbnail") from None
    return FileResponse(path, media_type=files.media_type(path), stat_result=info, headers=_FILE_HEADERS)


def _attr_path(obj: Any, name: str) -> Path | None:
    value = getattr(obj, name, None)
    return None if value is None else Path(value)
