"""Build or update an index: scan a folder, decode clips with seeking, encode them in batches, commit per batch.

Stages (each a function or class, each testable alone):

1. *plan*: scan the folder and sort files into unchanged (same path, size, mtime), touched or renamed (same
   content hash: the row is updated, nothing is encoded), and to encode (new, or changed content);
2. *decode* (:class:`~vtr.index.clip_decoder.ClipDecoder` on a pool of threads; PyAV releases the GIL): per
   video, the whole-video clip and the moment windows, in jobs of at most ``batch_size`` clips so that memory
   stays bounded however long the video is;
3. *encode* (the calling thread): clips of several videos batched together through the model;
4. *write*: every video whose clips are all encoded is committed in one SQLite transaction per batch, with its
   thumbnails written just before. A run killed at any instant loses at most the uncommitted batch, and the
   next run redoes exactly that (ids are handed out again in the same order, so the result is the same as an
   uninterrupted run).

A file that cannot be decoded is recorded with its error and skipped; it is retried when it changes, or with
``retry_failed``. SQLite is the source of truth; the FAISS file is rebuilt from it at the end of the run.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vtr.errors import ConfigError, IndexStoreError, VideoDecodeError
from vtr.index.clip_decoder import ClipDecoder, DecodedClips, DecodeJob
from vtr.index.encoders import VideoTextEncoder, load_encoder
from vtr.index.moments import MomentPlan, plan_moments
from vtr.index.scan import FileStat, content_hash, scan_videos
from vtr.index.store import KIND_VIDEO, IndexSettings, IndexStore
from vtr.index.thumbnails import (
    THUMBNAIL_SIZE,
    remove_orphan_thumbnails,
    remove_thumbnails,
    thumbnail_name,
    write_thumbnail,
)
from vtr.index.vectors import ANN_THRESHOLD

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 4.0
DEFAULT_STRIDE = 2.0
# What the job generator yields for a file that needs no decoding.
_SETTLED = "settled"  # its content is already indexed (touched or moved)
_FAILED = "failed"  # unreadable or unprobeable: queued as a failure


@dataclass
class IndexOptions:
    """How to index.

    Attributes:
        window: moment window in seconds; None: the index's setting, or 4 s for a new index.
        stride: seconds between moment starts; None: the index's setting, or 2 s (half-overlapping windows).
        moments: embed moment windows besides the whole video (off: one embedding per video).
        batch_size: clips per call of the model; also the number of clips one decoding job returns.
        workers: decoding threads.
        num_frames: frames per clip for Hugging Face models (a vtr run fixes its own); None: 8.
        ann_threshold: number of stored vectors above which the FAISS index is HNSW instead of exact.
        thumbnail_size: longest side of thumbnails in pixels.
    """

    window: float | None = None
    stride: float | None = None
    moments: bool = True
    batch_size: int = 16
    workers: int = 2
    num_frames: int | None = None
    ann_threshold: int = ANN_THRESHOLD
    thumbnail_size: int = THUMBNAIL_SIZE


@dataclass
class IndexReport:
    """What one indexing run did.

    Attributes:
        index_dir: the index folder.
        scanned: video files found.
        indexed: paths encoded and committed in this run.
        unchanged: files skipped because path, size and mtime matched.
        updated: files whose mtime changed but content hash did not (row updated, nothing encoded).
        renamed: ``(old, new)`` paths of moved files recognised by content hash (nothing encoded).
        failed: ``(path, error)`` of files that failed in this run.
        skipped_failed: ``(path, error)`` of files that failed before and are unchanged (not retried).
        pruned: paths removed from the index because their files are gone (with ``prune``).
        missing: paths still in the index whose files are gone (without ``prune``).
        videos: videos in the index after the run.
        vectors: embeddings in the index after the run (whole videos and moments).
        timings: seconds spent per stage: ``hash``, ``probe``, ``decode`` (summed over threads), ``encode``,
            ``write``, ``wait`` (the encoder idle, waiting for decoded clips), ``faiss`` and ``total`` (wall).
    """

    index_dir: Path
    scanned: int = 0
    indexed: list[str] = field(default_factory=list)
    unchanged: int = 0
    updated: int = 0
    renamed: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped_failed: list[tuple[str, str]] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    videos: int = 0
    vectors: int = 0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Video:
    """A video being encoded: what is known of it and what has been computed so far."""

    stat: FileStat
    hash: str
    replaces: int | None  # id of the stored row of an older version of this file
    info: object = None  # vtr.video.VideoInfo
    jobs: int = 0  # decoding jobs submitted
    done_jobs: int = 0  # jobs whose clips have been encoded
    kinds: list[int] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)
    moments: list[int] = field(default_factory=list)  # moment index of each clip (-1: whole video)
    thumbs: list[bytes | None] = field(default_factory=list)
    embeddings: list[np.ndarray] = field(default_factory=list)
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.done_jobs == self.jobs


def build_index(
    video_dir: str | Path,
    index_dir: str | Path,
    model: str | Path | Sequence[str | Path] | VideoTextEncoder | None = None,
    *,
    options: IndexOptions | None = None,
    prune: bool = False,
    rebuild: bool = False,
    retry_failed: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> IndexReport:
    """Index the videos under ``video_dir`` into ``index_dir`` (created if missing, updated if not).

    Args:
        video_dir: folder scanned recursively for video files (or one video file).
        index_dir: the index folder.
        model: vtr run folder, Hugging Face CLIP / X-CLIP id or folder, a list of them (one index of their joined
            embeddings: :mod:`vtr.index.ensemble`), or a loaded encoder; None: the model recorded in an existing
            index.
        options: moment windows, batch size, threads; defaults when None.
        prune: remove entries whose files no longer exist.
        rebuild: empty the index first (to change model or moment settings).
        retry_failed: retry files that failed before even if they have not changed.
        device: torch device for a model loaded here.
        progress: show a progress bar (rate and ETA) on stderr.

    Returns:
        The :class:`IndexReport` of the run.

    Raises:
        ModelMismatchError: the index was built with another model (use ``rebuild``).
        IndexStoreError: the index was built with other frame or moment settings (use ``rebuild``).
        ConfigError: the moment window is not a positive whole multiple of the stride.
        CheckpointError: the model cannot be loaded.
        VtrError: ``video_dir`` does not exist.
    """
    options = options or IndexOptions()
    run_started = time.perf_counter()
    files = scan_videos(video_dir)  # first: a wrong folder must not leave an empty index behind
    num_frames = options.num_frames
    if model is None:
        with IndexStore(index_dir) as existing_store:  # no index and no model: nothing to build with
            existing = existing_store.settings()
        if existing is None:
            raise IndexStoreError(f"index {index_dir} is empty: say which model to build it with (--model)")
        model = existing.model_spec
        num_frames = num_frames or existing.num_frames
    encoder = (
        load_encoder(model, device=device, num_frames=num_frames)
        if isinstance(model, (str, Path, list, tuple))
        else model
    )
    store = IndexStore(index_dir, create=True)
    try:
        existing = store.settings()
        settings = _settle(store, encoder, options, existing, rebuild)
        report = IndexReport(index_dir=store.index_dir)
        remove_orphan_thumbnails(store.index_dir, {row.id for row in store.list_videos()})
        report.scanned = len(files)
        timings = {key: 0.0 for key in ("hash", "probe", "decode", "encode", "write", "wait", "faiss")}
        todo = _plan(store, files, report, retry_failed)
        _run(store, encoder, settings, options, todo, files, report, timings, progress)
        _forget_gone(store, {str(f.path) for f in files}, prune, report)
        faiss_started = time.perf_counter()
        store.vector_index(ann_threshold=options.ann_threshold)
        timings["faiss"] = time.perf_counter() - faiss_started
        report.videos = store.count_videos()
        report.vectors = store.count_vectors()
        timings["total"] = time.perf_counter() - run_started
        report.timings = timings
        return report
    finally:
        store.close()


def _settle(
    store: IndexStore,
    encoder: VideoTextEncoder,
    options: IndexOptions,
    existing: IndexSettings | None,
    rebuild: bool,
) -> IndexSettings:
    # The settings of this run: those of the index when it has some (checked against the model and options),
    # else new ones from the model and options.
    window = options.window if options.window is not None else (existing.window if existing else DEFAULT_WINDOW)
    stride = options.stride if options.stride is not None else (existing.stride if existing else DEFAULT_STRIDE)
    try:
        plan_moments(window * 2, window, stride)  # validates window and stride before anything is changed
    except ValueError as error:
        raise ConfigError(str(error)) from None
    settings = IndexSettings(
        model_id=encoder.model_id,
        model_spec=encoder.model_spec,
        dim=int(encoder.dim),
        num_frames=int(encoder.num_frames),
        image_size=int(encoder.image_size),
        window=float(window),
        stride=float(stride),
    )
    if rebuild and existing is not None:
        with store.transaction():
            store.clear()
            store.set_settings(settings)
        remove_orphan_thumbnails(store.index_dir, set())
        return settings
    if existing is None:
        with store.transaction():
            store.set_settings(settings)
        return settings
    store.check_model(settings.model_id, settings.dim)
    changed = [
        f"{name} {getattr(existing, name)} -> {getattr(settings, name)}"
        for name in ("num_frames", "image_size", "window", "stride")
        if abs(float(getattr(existing, name)) - float(getattr(settings, name))) > 1e-9
    ]
    if changed:
        raise IndexStoreError(
            f"index {store.index_dir} was built with other settings ({'; '.join(changed)}): keep them, or "
            "rebuild the index with --rebuild"
        )
    if existing.model_spec != settings.model_spec:
        with store.transaction():  # same weights, new location (a moved run folder): remember where it is now
            store.set_settings(settings)
    return settings


def _plan(
    store: IndexStore, files: list[FileStat], report: IndexReport, retry_failed: bool
) -> list[tuple[FileStat, int | None]]:
    """The files that may need encoding, ``(stat, id of the stored row or None)``; counts the rest in ``report``.

    Only what costs nothing is looked at here (path, size, mtime, recorded failures); content hashes are read
    later, file by file, while earlier files are being decoded.
    """
    todo = []
    for stat in files:
        row = store.video_by_path(stat.path)
        if row is not None and row.size == stat.size and row.mtime_ns == stat.mtime_ns:
            report.unchanged += 1
            continue
        failure = store.failure(stat.path) if row is None else None
        if failure and not retry_failed and (failure.size, failure.mtime_ns) == (stat.size, stat.mtime_ns):
            report.skipped_failed.append((failure.path, failure.error))
            continue
        todo.append((stat, None if row is None else row.id))
    return todo


def _run(
    store: IndexStore,
    encoder: VideoTextEncoder,
    settings: IndexSettings,
    options: IndexOptions,
    todo: list[tuple[FileStat, int | None]],
    files: list[FileStat],
    report: IndexReport,
    timings: dict[str, float],
    progress: bool,
) -> None:
    """Decode, encode and commit every file of ``todo``, in order."""
    if not todo:
        return
    decoder = ClipDecoder(settings.num_frames, settings.image_size, encoder.mean, encoder.std, options.thumbnail_size)
    bar = tqdm(total=len(todo), unit="video", desc="indexing", disable=not progress, dynamic_ncols=True)
    videos: deque[_Video] = deque()  # in scan order; committed from the left when complete
    buffer: list[DecodedClips] = []  # decoded clips waiting for the model
    buffered = 0
    pending: deque[Future[DecodedClips]] = deque()
    max_pending = max(2, 2 * options.workers)
    pool = ThreadPoolExecutor(max_workers=max(1, options.workers), thread_name_prefix="vtr-decode")

    def flush() -> None:
        nonlocal buffered
        live = [d for d in buffer if d.job.owner.error is None and d.frames is not None]
        if live:
            started = time.perf_counter()
            frames = torch.cat([d.frames for d in live])  # [B, T, 3, S, S]
            mask = torch.cat([d.mask for d in live])  # [B, T]
            embeddings = encoder.embed_clips(frames, mask)  # [B, E]
            timings["encode"] += time.perf_counter() - started
            offset = 0
            for d in live:
                count = len(d.kinds)
                v = d.job.owner
                v.embeddings.append(embeddings[offset : offset + count])
                v.kinds += d.kinds
                v.spans += d.spans
                v.moments += d.moments
                v.thumbs += d.thumbs
                offset += count
        for d in buffer:
            d.job.owner.done_jobs += 1
        buffer.clear()
        buffered = 0
        commit_ready()

    def commit_ready() -> None:
        ready = []
        while videos and (videos[0].error is not None or videos[0].complete):
            ready.append(videos.popleft())
        if not ready:
            return
        started = time.perf_counter()
        replaced = []
        with store.transaction():
            for v in ready:
                if v.error is None and not v.kinds:
                    v.error = "no frame could be decoded"
                if v.error is not None:
                    store.record_failure(v.stat.path, v.stat.size, v.stat.mtime_ns, v.error)
                    report.failed.append((str(v.stat.path), v.error))
                    continue
                if v.replaces is not None:
                    store.delete_video(v.replaces)
                    replaced.append(v.replaces)
                _write_video(store, v)
                report.indexed.append(str(v.stat.path))
        timings["write"] += time.perf_counter() - started
        for video_id in replaced:  # after the commit: until then the old entry is still the live one
            remove_thumbnails(store.index_dir, video_id)
        bar.update(len(ready))
        bar.set_postfix(failed=len(report.failed), refresh=False)

    def take(result: DecodedClips) -> None:
        nonlocal buffered
        timings["decode"] += result.seconds
        v = result.job.owner
        if result.error is not None and v.error is None:
            v.error = result.error
        buffer.append(result)
        buffered += len(result.kinds)
        if buffered >= options.batch_size:
            flush()

    try:
        present = {str(f.path) for f in files}
        for job in _jobs(store, todo, present, options, settings, videos, report, timings):
            if job is _SETTLED:  # already indexed under another mtime or path: nothing to encode
                bar.update(1)
                continue
            if job is _FAILED:  # failed before decoding: it may complete the head of the queue
                commit_ready()
                continue
            pending.append(pool.submit(decoder, job))
            while len(pending) >= max_pending:
                started = time.perf_counter()
                result = pending.popleft().result()
                timings["wait"] += time.perf_counter() - started
                take(result)
        while pending:
            started = time.perf_counter()
            result = pending.popleft().result()
            timings["wait"] += time.perf_counter() - started
            take(result)
        flush()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


def _jobs(
    store: IndexStore,
    todo: list[tuple[FileStat, int | None]],
    present: set[str],
    options: IndexOptions,
    settings: IndexSettings,
    videos: deque[_Video],
    report: IndexReport,
    timings: dict[str, float],
) -> Iterator[DecodeJob | str]:
    """Hash and probe each file and cut its clips into jobs of at most ``batch_size`` clips.

    A file whose content is already indexed (touched, or moved from a path that is gone) is settled here with a
    small transaction of its own (yields ``_SETTLED``); a file that cannot be read or probed is queued as failed
    (yields ``_FAILED``).
    """
    from vtr.video import probe

    chunk = max(1, options.batch_size)
    for stat, row_id in todo:
        started = time.perf_counter()
        try:
            digest = content_hash(stat.path)
        except OSError as error:
            digest = ""
            failure = f"cannot read the file: {error.strerror or error}"
        else:
            failure = None
        timings["hash"] += time.perf_counter() - started
        if failure is None and _settled_by_hash(store, stat, digest, row_id, present, report):
            yield _SETTLED
            continue
        video = _Video(stat, digest, row_id, error=failure)
        videos.append(video)
        if video.error is None:
            started = time.perf_counter()
            try:
                video.info = probe(stat.path)
            except VideoDecodeError as error:
                video.error = error.cause
            except Exception as error:  # one bad file must never stop the job
                logger.warning("unexpected error probing %s", stat.path, exc_info=True)
                video.error = f"{type(error).__name__}: {error}"
            timings["probe"] += time.perf_counter() - started
        if video.error is not None:
            yield _FAILED
            continue
        duration = float(video.info.duration or 0.0)
        plan = plan_moments(duration, settings.window, settings.stride) if options.moments else MomentPlan((), (), 1)
        windows = list(range(len(plan.windows)))
        # The first job carries the whole-video clip and fills up with windows; the rest hold windows only.
        groups = [windows[: chunk - 1]] + [windows[i : i + chunk] for i in range(chunk - 1, len(windows), chunk)]
        video.jobs = len(groups)
        for i, group in enumerate(groups):
            yield DecodeJob(stat.path, duration, whole=i == 0, windows=group, plan=plan, owner=video)


def _settled_by_hash(
    store: IndexStore,
    stat: FileStat,
    digest: str,
    row_id: int | None,
    present: set[str],
    report: IndexReport,
) -> bool:
    """Update the row of a file whose content is already indexed (touched, or moved); whether it was."""
    if row_id is not None:
        row = store.video(row_id)
        if row is not None and row.hash == digest:
            with store.transaction():
                store.update_video_file(row.id, stat.path, stat.size, stat.mtime_ns)
            report.updated += 1
            return True
        return False
    # A moved file: same content as an entry whose file is gone and was not found by this scan.
    for old in store.videos_with_hash(digest):
        if old.path not in present and not Path(old.path).exists():
            with store.transaction():
                store.update_video_file(old.id, stat.path, stat.size, stat.mtime_ns)
                store.clear_failure(stat.path)
            report.renamed.append((old.path, str(stat.path)))
            return True
    return False


def _write_video(store: IndexStore, v: _Video) -> None:
    """Insert one video, its vectors and its thumbnails (inside the caller's transaction)."""
    info = v.info
    video_id = store.insert_video(
        v.stat.path,
        v.stat.size,
        v.stat.mtime_ns,
        v.hash,
        duration=float(getattr(info, "duration", 0.0) or 0.0),
        fps=_opt_float(getattr(info, "fps", None)),
        width=_opt_int(getattr(info, "width", None)),
        height=_opt_int(getattr(info, "height", None)),
        codec=getattr(info, "codec", None),
    )
    names: list[str | None] = []
    for moment, jpeg in zip(v.moments, v.thumbs, strict=True):
        if jpeg is None:
            names.append(None)
            continue
        name = thumbnail_name(video_id, None if moment < 0 else moment)
        write_thumbnail(store.index_dir, name, jpeg)
        names.append(name)
    if v.kinds and v.kinds[0] == KIND_VIDEO:
        store.set_video_thumbnail(video_id, names[0])
    store.insert_vectors(video_id, v.kinds, v.spans, names, np.concatenate(v.embeddings))
    store.clear_failure(v.stat.path)


def _forget_gone(store: IndexStore, present: set[str], prune: bool, report: IndexReport) -> None:
    """Entries whose files no longer exist: removed with ``prune``, else listed in ``report.missing``."""
    gone = [row for row in store.list_videos() if row.path not in present and not Path(row.path).exists()]
    stale_failures = [f for f in store.failures() if f.path not in present and not Path(f.path).exists()]
    with store.transaction():
        for failure in stale_failures:  # failures are not entries: forget them once their file is gone
            store.clear_failure(failure.path)
        if prune:
            for row in gone:
                store.delete_video(row.id)
    if prune:
        for row in gone:
            remove_thumbnails(store.index_dir, row.id)
        report.pruned = [row.path for row in gone]
    else:
        report.missing = [row.path for row in gone]


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _opt_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[arg-type]
