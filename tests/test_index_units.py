"""Unit tests of the index's parts: scanning, fingerprints, moment windows, the FAISS cache, the SQLite store."""

from __future__ import annotations

import os
import sqlite3
import threading

import numpy as np
import pytest

from vtr.errors import IndexStoreError, ModelMismatchError, VtrError
from vtr.index.moments import plan_moments
from vtr.index.scan import content_hash, scan_videos
from vtr.index.store import KIND_MOMENT, KIND_VIDEO, IndexSettings, IndexStore
from vtr.index.vectors import build_vector_index, index_kind, vector_file

SETTINGS = IndexSettings("model-a@123", "/models/a", 4, 8, 32, 4.0, 2.0)


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- scanning ---------------------------------------------------------------------------------------------


def test_scan_finds_video_extensions_recursively_sorted_and_skips_hidden(tmp_path):
    for name in ["b.MP4", "a/c.mkv", "a/deep/d.webm", "e.txt", ".hidden.mp4", ".cache/f.mp4", "g.ts", "h.3gp"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    os.symlink(tmp_path / "b.MP4", tmp_path / "link.mp4")  # a second name for b.MP4: one video
    found = [f.path.relative_to(tmp_path.resolve()).as_posix() for f in scan_videos(tmp_path)]
    assert found == ["a/c.mkv", "a/deep/d.webm", "b.MP4", "g.ts", "h.3gp"]


def test_scan_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(VtrError, match="does not exist"):
        scan_videos(tmp_path / "nope")


def test_content_hash_follows_content_not_name_or_mtime(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    a.write_bytes(b"\x00" * 3_000_000 + b"1")
    b.write_bytes(b"\x00" * 3_000_000 + b"1")
    assert content_hash(a) == content_hash(b)
    os.utime(a, ns=(1, 1))
    assert content_hash(a) == content_hash(b)
    b.write_bytes(b"\x00" * 1_500_000 + b"2" + b"\x00" * 1_499_999 + b"1")  # same size, one byte in the middle
    assert content_hash(a) != content_hash(b)


# -- moments ----------------------------------------------------------------------------------------------


def test_moment_windows_half_overlap_and_cover_the_tail():
    plan = plan_moments(8.5, window=4.0, stride=2.0)
    assert plan.segments == ((0, 2), (2, 4), (4, 6), (6, 8.5))  # the 0.5 s tail is merged: no sliver segment
    assert plan.windows == ((0, 4), (2, 6), (4, 8.5))
    assert [list(plan.window_segments(i)) for i in range(3)] == [[0, 1], [1, 2], [2, 3]]
    assert plan_moments(10.9).windows == ((0, 4), (2, 6), (4, 8), (6, 10.9))
    assert plan_moments(7.0).windows == ((0, 4), (2, 6), (4, 7.0))  # a tail of half a stride is its own segment


def test_short_videos_have_no_windows_and_bad_settings_raise():
    assert plan_moments(4.0).windows == ()  # one window long: the whole video is the moment
    assert plan_moments(4.9).windows == ()
    assert plan_moments(0.0).windows == ()
    assert plan_moments(float("nan")).windows == ()
    plan = plan_moments(10.0, window=3.0, stride=1.0)
    assert plan.windows[0] == (0, 3) and plan.windows[-1] == (7, 10.0) and len(plan.windows) == 8
    with pytest.raises(ValueError, match="multiple"):
        plan_moments(10.0, window=3.0, stride=2.0)
    with pytest.raises(ValueError, match="positive"):
        plan_moments(10.0, window=0.0, stride=2.0)


# -- FAISS ------------------------------------------------------------------------------------------------


def test_flat_index_is_exact_and_returns_sqlite_ids():
    rng = np.random.default_rng(0)
    x = _unit(rng, 200, 16)
    ids = np.arange(1000, 1200, dtype=np.int64)
    index = build_vector_index(x, ids, ann_threshold=1000)
    assert index_kind(index) == "flat"
    q = _unit(rng, 3, 16)
    scores, labels = index.search(q, 5)
    expected = np.argsort(-(q @ x.T), axis=1)[:, :5]
    np.testing.assert_array_equal(labels, ids[expected])
    np.testing.assert_allclose(scores, np.take_along_axis(q @ x.T, expected, 1), rtol=1e-5)


def test_hnsw_above_threshold_has_high_recall():
    rng = np.random.default_rng(1)
    x = _unit(rng, 3000, 32)
    index = build_vector_index(x, np.arange(3000), ann_threshold=1000)
    assert index_kind(index) == "hnsw"
    q = _unit(rng, 50, 32)
    _, labels = index.search(q, 10)
    exact = np.argsort(-(q @ x.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(labels, exact, strict=True)])
    assert recall >= 0.95


# -- the store --------------------------------------------------------------------------------------------


def _add(store: IndexStore, path: str, emb: np.ndarray, moments: int = 0) -> int:
    video_id = store.insert_video(path, 10, 1, "h" + path, duration=2.0 * (moments + 1))
    kinds = [KIND_VIDEO] + [KIND_MOMENT] * moments
    spans = [(0.0, 2.0 * (moments + 1))] + [(2.0 * i, 2.0 * i + 4) for i in range(moments)]
    store.insert_vectors(video_id, kinds, spans, [None] * len(kinds), emb[: len(kinds)])
    return video_id


def test_store_needs_create_and_rejects_non_index_files(tmp_path):
    with pytest.raises(IndexStoreError, match="no index"):
        IndexStore(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "index.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexStoreError, match="not a readable vtr index"):
        IndexStore(tmp_path / "junk")


def test_a_new_index_opens_while_another_process_holds_its_write_lock(tmp_path):
    # The switch to WAL journaling fails at once on a locked database instead of waiting on the busy timeout
    # (an indexing run opening a folder that a searcher or a second run has just created): the store waits.
    other = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, other.execute, ("ROLLBACK",))
    release.start()
    try:
        with IndexStore(tmp_path, create=True) as store:
            assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert store.list_videos() == []
    finally:
        release.join()
        other.close()


def test_transaction_rolls_back_everything_and_bumps_generation_on_commit(tmp_path):
    rng = np.random.default_rng(2)
    with IndexStore(tmp_path, create=True) as store:
        with store.transaction():
            store.set_settings(SETTINGS)
        assert store.generation() == 0  # settings alone do not touch the vectors
        with store.transaction():
            _add(store, "/v/a.mp4", _unit(rng, 3, 4), moments=2)
        assert store.generation() == 1
        with pytest.raises(KeyboardInterrupt), store.transaction():
            _add(store, "/v/b.mp4", _unit(rng, 1, 4))
            raise KeyboardInterrupt  # as a Ctrl-C in the middle of a batch
        assert [v.path for v in store.list_videos()] == ["/v/a.mp4"]
        assert store.count_vectors() == 3 and store.generation() == 1
        with store.transaction():
            b = _add(store, "/v/b.mp4", _unit(rng, 1, 4))
        assert b == 2  # the rolled-back insert gave its id back: ids do not depend on interruptions
        with pytest.raises(RuntimeError, match="inside IndexStore.transaction"):
            store.delete_video(b)


class _InterruptAfterCommit:
    """A connection that runs COMMIT, then raises KeyboardInterrupt, as a Ctrl-C landing just after it would."""

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql, *args):
        result = self._conn.execute(sql, *args)
        if sql == "COMMIT":
            raise KeyboardInterrupt
        return result

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_an_interrupt_just_after_commit_keeps_the_batch_and_reaches_the_caller(tmp_path):
    rng = np.random.default_rng(5)
    with IndexStore(tmp_path, create=True) as store:
        real = store._conn
        store._conn = _InterruptAfterCommit(real)
        with pytest.raises(KeyboardInterrupt), store.transaction():  # not "cannot rollback": the signal wins
            _add(store, "/v/a.mp4", _unit(rng, 2, 4))
        store._conn = real
        assert [v.path for v in store.list_videos()] == ["/v/a.mp4"]  # it was committed, so it stays


def test_vector_index_is_rebuilt_when_missing_stale_or_corrupt(tmp_path):
    rng = np.random.default_rng(3)
    emb = _unit(rng, 6, 4)
    with IndexStore(tmp_path, create=True) as store:
        with store.transaction():
            store.set_settings(SETTINGS)
            a = _add(store, "/v/a.mp4", emb[:3], moments=2)
        index, generation = store.vector_index()
        assert index.ntotal == 3 and vector_file(tmp_path, generation).is_file()
        with store.transaction():
            _add(store, "/v/b.mp4", emb[3:])
        index, new_generation = store.vector_index()  # the old file is stale: rebuilt, and the old file removed
        assert new_generation == generation + 1 and index.ntotal == 4
        assert not vector_file(tmp_path, generation).exists()
        vector_file(tmp_path, new_generation).write_bytes(b"garbage")  # a damaged cache is rebuilt, not trusted
        index, _ = store.vector_index()
        scores, labels = index.search(emb[:1], 1)
        owners = store.vector_owners(labels[0])
        assert owners[int(labels[0][0])] == a and scores[0][0] == pytest.approx(1.0, abs=1e-5)
        with store.transaction():
            store.delete_video(a)
        assert store.vector_index()[0].ntotal == 1


def test_check_model_refuses_another_model_or_dimension(tmp_path):
    with IndexStore(tmp_path, create=True) as store:
        store.check_model("anything")  # a new index accepts any model
        with store.transaction():
            store.set_settings(SETTINGS)
        store.check_model(SETTINGS.model_id, SETTINGS.dim)
        with pytest.raises(ModelMismatchError, match="built with model /models/a"):
            store.check_model("model-b@456")
        with pytest.raises(ModelMismatchError):
            store.check_model(SETTINGS.model_id, 8)


def test_store_refuses_a_newer_format(tmp_path):
    IndexStore(tmp_path, create=True).close()
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'format_version'")
    with pytest.raises(IndexStoreError, match="upgrade vtr"):
        IndexStore(tmp_path)
