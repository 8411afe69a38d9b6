"""The one place the HTTP app touches the Searcher: opened lazily, once; searches batched on one thread.

Searches run on one dedicated thread. Encoding a query is CPU-bound torch work that already spreads over the
cores through intra-op threads; running several at once only oversubscribes them. Instead, the queries that
arrive while one is being encoded are encoded together in one batch on the next turn: a batch of 8 short
queries costs little more than one, so throughput grows with load (measured in benchmarks/serve_load.py).
Lookups of a video entry (SQLite reads, well under a millisecond) run on a small separate pool so that a
thumbnail or a seek in the player never waits behind queued searches. Neither blocks the event loop.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from vtr.errors import VtrError

T = TypeVar("T")

# Queries encoded in one model call at most: large enough to absorb a burst, small enough that the first
# query of a batch does not wait long for the last.
MAX_BATCH = 32
# Searches allowed to wait at once; past this the server is overloaded and says so at once rather than letting
# every request time out.
MAX_PENDING = 1024


class SearcherLike(Protocol):
    """What the app needs from :class:`vtr.Searcher` (a test may pass any object with these two methods).

    ``search`` is only ever called from one thread at a time; ``video`` may be called from other threads while a
    search runs (:class:`vtr.Searcher` allows this: its store is shared between threads behind a lock). A
    searcher that also has ``encoder.embed_texts``, ``search_embedding`` and ``refresh`` (as
    :class:`vtr.Searcher` has) gets its concurrent queries encoded in batches.
    """

    def search(self, text: str, k: int = 10) -> Sequence[Any]:
        """The ``k`` best results for ``text``, best first."""
        ...

    def video(self, video_id: int) -> Any:
        """One video's entry (path, duration, size, moments, thumbnail)."""
        ...


class SearcherUnavailable(VtrError):
    """The Searcher could not be opened (missing or corrupt index, missing model); the app answers 503."""


class ServiceBusy(VtrError):
    """Too many searches are waiting already; the app answers 503 with Retry-After."""


class SearchService:
    """Opens a Searcher on first use, once; runs searches (batched) on one thread and lookups on a small pool.

    Args:
        opener: builds the Searcher; called at most once, on the search thread.
        lookup_threads: threads for :meth:`lookup` calls.
        max_batch: most queries encoded in one model call.
        max_pending: most searches waiting at once; :meth:`search` raises :class:`ServiceBusy` beyond.
    """

    def __init__(
        self,
        opener: Callable[[], SearcherLike],
        lookup_threads: int = 4,
        max_batch: int = MAX_BATCH,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._opener = opener
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vtr-search")
        self._lookups = ThreadPoolExecutor(max_workers=lookup_threads, thread_name_prefix="vtr-lookup")
        self._pending: queue.SimpleQueue[tuple[str, int, Future]] = queue.SimpleQueue()
        self._searcher: SearcherLike | None = None
        self._open_error: SearcherUnavailable | None = None
        self._opened = threading.Event()
        self._closed = False
        self.batch_sizes: list[int] = []  # size of every batch encoded, for tests and benchmarks

    @classmethod
    def for_index(cls, index_dir: str | Path, model: Any = None) -> SearchService:
        """A service over ``vtr.Searcher(index_dir, model=model)``."""

        def opener() -> SearcherLike:
            from vtr.index.searcher import Searcher  # heavy (FAISS, torch): imported when first needed

            return Searcher(index_dir, model=model)

        return cls(opener)

    @classmethod
    def for_searcher(cls, searcher: SearcherLike) -> SearchService:
        """A service over a Searcher (or stand-in) already built by the caller."""
        return cls(lambda: searcher)

    @property
    def is_open(self) -> bool:
        """True once the Searcher was opened successfully."""
        return self._opened.is_set() and self._open_error is None

    @property
    def open_error(self) -> SearcherUnavailable | None:
        """Why opening failed, or None."""
        return self._open_error

    def _get(self) -> SearcherLike:
        # Runs on the search thread only, so no lock is needed around the once-only open.
        if self._open_error is not None:
            raise self._open_error
        if self._searcher is None:
            try:
                self._searcher = self._opener()
            except Exception as error:  # any failure to open is reported the same way, as 503 + message
                message = str(error) if isinstance(error, VtrError) else f"{type(error).__name__}: {error}"
                self._open_error = SearcherUnavailable(f"cannot open the search index: {message}")
                self._opened.set()
                raise self._open_error from error
            self._opened.set()
        return self._searcher

    def open(self) -> None:
        """Open the Searcher now (blocking); raises :class:`SearcherUnavailable` if it cannot be opened."""
        self._executor.submit(self._get).result()

    def call_sync(self, fn: Callable[[SearcherLike], T]) -> T:
        """Run ``fn(searcher)`` on the search thread and wait for it."""
        return self._executor.submit(lambda: fn(self._get())).result()

    async def call(self, fn: Callable[[SearcherLike], T]) -> T:
        """Run ``fn(searcher)`` on the search thread without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._get()))

    async def search(self, text: str, k: int) -> list[Any]:
        """``searcher.search(text, k)``, batched with the other queries waiting at the time.

        Raises:
            ServiceBusy: ``max_pending`` searches are waiting already.
        """
        if self._pending.qsize() >= self._max_pending:
            raise ServiceBusy(f"the server is busy ({self._max_pending} searches waiting); try again shortly")
        done: Future = Future()
        self._pending.put((text, k, done))
        # One turn per query; a turn that finds its query already taken by an earlier batch has nothing to do.
        self._executor.submit(self._search_turn)
        return await asyncio.wrap_future(done)

    async def lookup(self, fn: Callable[[SearcherLike], T]) -> T:
        """Run ``fn(searcher)`` on the lookup pool (for quick reads such as ``video``), opening it first if needed."""
        if not self._opened.is_set() or self._open_error is not None:
            await self.call(lambda s: None)  # opens on the search thread, or raises why it cannot
        searcher = self._searcher
        assert searcher is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._lookups, lambda: fn(searcher))

    def _search_turn(self) -> None:
        batch: list[tuple[str, int, Future]] = []
        while len(batch) < self._max_batch:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                break
            if item[2].set_running_or_notify_cancel():
                batch.append(item)
        if not batch:
            return
        try:
            searcher = self._get()
            answers = _search_batch(searcher, [(text, k) for text, k, _ in batch])
        except Exception as error:  # noqa: BLE001 - handed to every waiting request, which raises it
            answers = [error] * len(batch)
        self.batch_sizes.append(len(batch))
        for (_, _, done), answer in zip(batch, answers, strict=True):
            if isinstance(answer, Exception):
                done.set_exception(answer)
            else:
                done.set_result(answer)

    def close(self) -> None:
        """Close the Searcher (if it has ``close``) on its own thread, then stop the threads; idempotent."""

        def close_searcher() -> None:
            close = getattr(self._searcher, "close", None)
            if callable(close):
                close()

        if self._closed:
            return
        self._closed = True
        self._lookups.shutdown(wait=True, cancel_futures=True)
        try:
            self._executor.submit(close_searcher).result()
        finally:
            self._executor.shutdown(wait=True, cancel_futures=True)


def _search_batch(searcher: SearcherLike, queries: list[tuple[str, int]]) -> list[Any]:
    """Answers (a result list, or the exception raised for that query) to each ``(text, k)``, in order."""
    encoder = getattr(searcher, "encoder", None)
    by_embedding = getattr(searcher, "search_embedding", None)
    if len(queries) == 1 or encoder is None or not callable(by_embedding):
        answers: list[Any] = []
        for text, k in queries:
            try:
                answers.append(searcher.search(text, k=k))
            except Exception as error:  # noqa: BLE001 - one query's error is raised in its own request only
                answers.append(error)
        return answers
    # The same steps as Searcher.search, with one model call for every valid text: validate, refresh, embed, look up.
    from vtr.index.searcher import validate_query

    answers: list[Any] = []
    valid: list[tuple[int, str, int]] = []  # (position in queries, cleaned text, k)
    for position, (text, k) in enumerate(queries):
        try:
            valid.append((position, validate_query(text, k), k))
            answers.append(None)
        except Exception as error:  # noqa: BLE001 - one query's error is raised in its own request only
            answers.append(error)
    if not valid:
        return answers
    refresh = getattr(searcher, "refresh", None)
    if callable(refresh):
        refresh()
    embeddings = encoder.embed_texts([text for _, text, _ in valid])  # [B, E]
    for row, (position, _, k) in enumerate(valid):
        try:
            answers[position] = by_embedding(embeddings[row], k)
        except Exception as error:  # noqa: BLE001 - one query's error is raised in its own request only
            answers[position] = error
    return answers
