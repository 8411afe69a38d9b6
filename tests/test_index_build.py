"""Building and updating an index with a tiny vtr model: incremental runs, pruning, bad files, interruptions.

The model is a randomly initialised vtr run saved with ``vtr.models.save_model``: what is checked here is the
index's bookkeeping and that it stores what the model computes, not the quality of the model.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_configs import TINY_MODEL as TINY
from videos_util import make_video, mdat_range, write_solid_video

from vtr.cli import main
from vtr.config import load_config
from vtr.errors import ConfigError, IndexStoreError, ModelMismatchError
from vtr.index.builder import IndexOptions, build_index
from vtr.index.encoders import VtrRunEncoder
from vtr.index.searcher import Searcher
from vtr.index.store import KIND_MOMENT, KIND_VIDEO, IndexStore

COLOURS = [(230, 30, 30), (30, 230, 30), (30, 30, 230), (230, 230, 30), (30, 230, 230), (230, 30, 230)]


def save_tiny_run(folder: Path, seed: int) -> Path:
    """A randomly initialised tiny vtr model, saved as a run folder."""
    from vtr.models import build_model, save_model

    torch.manual_seed(seed)
    save_model(build_model(load_config(None, TINY)), folder, "best")
    return folder


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return save_tiny_run(tmp_path_factory.mktemp("run"), seed=0)


@pytest.fixture(scope="module")
def encoder(tiny_run) -> VtrRunEncoder:
    return VtrRunEncoder(tiny_run)


def make_videos(folder: Path, count: int, seconds: float = 2.0, fps: int = 8, size: int = 32) -> list[Path]:
    frames = int(seconds * fps)
    return [
        write_solid_video(folder / f"clip{i:02d}.mp4", num_frames=frames, fps=fps, size=size, colour=COLOURS[i % 6])
        for i in range(count)
    ]


def snapshot(index: Path) -> dict:
    """Everything an index holds, for comparing two indexes (embeddings as arrays)."""
    with sqlite3.connect(index / "index.sqlite") as conn:
        videos = conn.execute("SELECT id, path, size, mtime_ns, hash, duration, thumbnail FROM videos ORDER BY id")
        vectors = conn.execute(
            "SELECT id, video_id, kind, start_s, end_s, thumbnail, embedding FROM vectors ORDER BY id"
        ).fetchall()
        return {
            "videos": videos.fetchall(),
            "vectors": [row[:6] for row in vectors],
            "embeddings": np.stack([np.frombuffer(row[6], dtype=np.float32) for row in vectors]),
            "failures": conn.execute("SELECT path, error FROM failures ORDER BY path").fetchall(),
        }


@pytest.mark.parametrize(
    ("window", "spans"),
    [
        (4.0, [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]),  # 4 frames over 2 segments: segments shared
        (6.0, [(0.0, 6.0), (2.0, 8.0), (4.0, 10.0)]),  # 4 frames over 3 segments: each window sampled whole
    ],
)
def test_stored_embeddings_are_the_models_and_thumbnails_exist(encoder, tmp_path, window, spans):
    from vtr.video import load_clip

    long_video = write_solid_video(
        tmp_path / "videos" / "long.mp4", num_frames=80, fps=8, size=48, colour=[COLOURS[i // 16] for i in range(80)]
    )
    options = IndexOptions(window=window, stride=2.0)
    report = build_index(tmp_path / "videos", tmp_path / "index", encoder, options=options, progress=False)
    assert report.indexed == [str(long_video.resolve())] and report.vectors == 1 + len(spans)  # 10 s
    store = IndexStore(tmp_path / "index")
    rows = store.vectors_of([1])
    assert [r.kind for r in rows] == [KIND_VIDEO] + [KIND_MOMENT] * len(spans)
    assert [(r.start, r.end) for r in rows] == [(0.0, 10.0), *spans]
    model = encoder.model
    for row in rows:
        window = {} if row.kind == KIND_VIDEO else {"start": row.start, "end": row.end}
        frames, mask = load_clip(long_video, 4, 32, model.config.data.mean, model.config.data.std, **window)
        direct = torch.nn.functional.normalize(model.embed_videos(frames[None], mask[None]), dim=-1)[0]
        np.testing.assert_allclose(row.embedding, direct.numpy(), atol=1e-5)
        assert (tmp_path / "index" / row.thumbnail).stat().st_size > 100
    store.close()


def test_second_run_encodes_nothing_touch_updates_and_change_reencodes(encoder, tmp_path):
    videos = make_videos(tmp_path / "videos", 3)
    first = build_index(tmp_path / "videos", tmp_path / "index", encoder, progress=False)
    assert len(first.indexed) == 3 and first.videos == 3
    before = snapshot(tmp_path / "index")

    second = build_index(tmp_path / "videos", tmp_path / "index", encoder, progress=False)
    assert second.indexed == [] and second.unchanged == 3 and second.timings["encode"] == 0.0
    assert snapshot(tmp_path / "index")["vectors"] == before["vectors"]

    os.utime(videos[0], ns=(time.time_ns(), time.time_ns() + 10**9))  # new mtime, same bytes: no re-encode
    touched = build_index(tmp_path / "videos", tmp_path / "index", encoder, progress=False)
    assert touched.indexed == [] and touched.updated == 1

    old_id = Searcher(tmp_path / "index", model=encoder).store.video_by_path(videos[1].resolve()).id
    write_solid_video(videos[1], num_frames=24, fps=8, size=32, colour=(128, 128, 128))  # new content
    changed = build_index(tmp_path / "videos", tmp_path / "index", encoder, progress=False)
    assert changed.indexed == [str(videos[1].resolve())] and changed.videos == 3
    after = snapshot(tmp_path / "index")
    row = next(r for r in after["videos"] if r[1] == str(videos[1].resolve()))
    assert row[0] > old_id and row[5] == pytest.approx(3.0)  # a new entry replaced the old one
    assert not (tmp_path / "index" / "thumbs" / str(old_id)).exists()
    assert (tmp_path / "index" / row[6]).is_file()


def test_deleted_files_are_listed_then_pruned_and_moved_files_keep_their_entry(encoder, tmp_path):
    videos = make_videos(tmp_path / "videos", 3)
    build_index(tmp_path / "videos", tmp_path / "index", encoder, progress=False)
    ids = {row[1]: row[0] for row in snapshot(tmp_path / "index")["videos"]}

    moved = tmp_path / "videos" / "sub" / "moved.mp4"
    moved.parent.mkdir()
    shutil.move(videos[0], moved)
    videos[2].unlink()
    report = build_index(tmp_path / "videos", tmp_path / "index", encoder, progress=False)
    assert report.indexed == [] and report.renamed == [(str(videos[0].resolve()), str(moved.resolve()))]
    assert report.missing == [str(videos[2].resolve())] and report.videos == 3  # listed, not removed
    assert {row[1]: row[0] for row in snapshot(tmp_path / "index")["videos"]}[str(moved.resolve())] == ids[
        str(videos[0].resolve())
    ]

    pruned = build_index(tmp_path / "videos", tmp_path / "index", encoder, prune=True, progress=False)
    assert pruned.pruned == [str(videos[2].resolve())] and pruned.videos == 2 and pruned.missing == []
    searcher = Searcher(tmp_path / "index", model=encoder)
    assert {e.path for e in searcher.videos()} == {str(moved.resolve()), str(videos[1].resolve())}
    assert all(Path(r.path).exists() for r in searcher.search("a red square", k=10))
    assert not (tmp_path / "index" / "thumbs" / str(ids[str(videos[2].resolve())])).exists()


def test_bad_files_are_recorded_and_listed_and_never_stop_the_run(encoder, tmp_path, sample_videos, capsys):
    folder = tmp_path / "videos"
    make_videos(folder, 2)
    (folder / "garbage.mp4").write_bytes(os.urandom(5000))
    (folder / "empty.mkv").write_bytes(b"")
    data = sample_videos["bigbuckbunny"].read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 50])
    (folder / "notes.txt").write_text("not a video, not scanned")
    assert main(["index", str(folder), "--model", str(encoder.run_dir), "--db", str(tmp_path / "index")]) == 0
    out = capsys.readouterr().out
    assert "3 failed" in out and "3 files could not be indexed:" in out
    for name in ("garbage.mp4", "empty.mkv", "truncated.mp4"):
        line = next(line for line in out.splitlines() if line.strip().startswith(str((folder / name).resolve())))
        assert len(line.split(": ", 1)[1]) > 5  # the cause, in words
    store = IndexStore(tmp_path / "index")
    assert store.count_videos() == 2 and len(store.failures()) == 3

    again = build_index(folder, tmp_path / "index", encoder, progress=False)
    assert again.failed == [] and len(again.skipped_failed) == 3  # unchanged bad files are not retried
    retried = build_index(folder, tmp_path / "index", encoder, retry_failed=True, progress=False)
    assert len(retried.failed) == 3
    (folder / "garbage.mp4").unlink()
    write_solid_video(folder / "empty.mkv", num_frames=16, fps=8, size=32)  # repaired: indexed next time
    repaired = build_index(folder, tmp_path / "index", encoder, progress=False)
    assert repaired.indexed == [str((folder / "empty.mkv").resolve())]
    assert [f.path for f in store.failures()] == [str((folder / "truncated.mp4").resolve())]
    store.close()


def test_a_truncated_video_keeps_its_whole_clip_and_the_moments_before_the_cut(encoder, tmp_path):
    # A half-downloaded file whose index sits at the front: it says 10 s, but the frames stop near 5 s. The
    # windows past the cut have nothing to decode; the rest of the video is still indexed.
    video = make_video(tmp_path / "whole.mp4", 250, size=(48, 32), container_options={"movflags": "faststart"})
    data = video.read_bytes()
    begin, end = mdat_range(data)
    (tmp_path / "videos").mkdir()
    cut = tmp_path / "videos" / "cut.mp4"
    cut.write_bytes(data[: (begin + end) // 2])
    report = build_index(tmp_path / "videos", tmp_path / "index", encoder, progress=False)
    assert report.failed == [] and report.indexed == [str(cut.resolve())]
    with IndexStore(tmp_path / "index") as store:
        rows = store.vectors_of([1])
    spans = [(r.start, r.end) for r in rows if r.kind == KIND_MOMENT]
    assert rows[0].kind == KIND_VIDEO and (rows[0].start, rows[0].end) == (0.0, 10.0)
    assert spans[:2] == [(0.0, 4.0), (2.0, 6.0)] and (6.0, 10.0) not in spans


def test_another_model_or_other_settings_are_refused_unless_rebuilt(encoder, tmp_path):
    make_videos(tmp_path / "videos", 2)
    build_index(tmp_path / "videos", tmp_path / "index", encoder, progress=False)
    other = VtrRunEncoder(save_tiny_run(tmp_path / "other-run", seed=1))
    with pytest.raises(ModelMismatchError, match="was built with model"):
        build_index(tmp_path / "videos", tmp_path / "index", other, progress=False)
    with pytest.raises(ModelMismatchError):
        Searcher(tmp_path / "index", model=other)
    with pytest.raises(IndexStoreError, match="window 4.0 -> 6.0"):
        build_index(tmp_path / "videos", tmp_path / "index", encoder, options=IndexOptions(window=6.0, stride=3.0))
    with pytest.raises(ConfigError, match="whole multiple"):
        build_index(tmp_path / "videos", tmp_path / "index", encoder, options=IndexOptions(window=3.0, stride=2.0))
    rebuilt = build_index(tmp_path / "videos", tmp_path / "index", other, rebuild=True, progress=False)
    assert len(rebuilt.indexed) == 2 and rebuilt.videos == 2
    assert Searcher(tmp_path / "index").settings.model_id == other.model_id  # the model recorded in the index
    with pytest.raises(ModelMismatchError):
        Searcher(tmp_path / "index", model=encoder)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_run_resumes_to_the_same_index(encoder, tmp_path, how):
    folder = tmp_path / "videos"
    total = 12
    for i in range(total):  # 8 s each: a whole-video clip and 3 moments, so each file takes a while to decode
        write_solid_video(folder / f"v{i:02d}.mp4", num_frames=64, fps=8, size=48, colour=COLOURS[i % 6])
    reference = build_index(folder, tmp_path / "reference", encoder, options=IndexOptions(batch_size=2), progress=False)
    assert len(reference.indexed) == total

    index = tmp_path / "index"
    command = [sys.executable, "-m", "vtr", "index", str(folder), "--model", str(encoder.run_dir)]
    command += ["--db", str(index), "--batch-size", "2", "--no-progress"]
    # A shell without job control starts background commands with SIGINT ignored, and a child inherits that. While
    # the run starts, this process handles SIGINT (a handler, unlike "ignored", is reset by exec), so the run starts
    # as from a terminal and Python turns the signal into KeyboardInterrupt.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    finally:
        signal.signal(signal.SIGINT, previous)
    # Once a first batch is committed, the test takes the database's write lock and holds it while the signal is
    # sent: the run cannot commit another batch before the signal lands, so on however fast a machine it is
    # stopped midway (decoding, encoding or waiting to commit).
    lock = None
    committed = 0
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
        if not (index / "index.sqlite").is_file():
            continue
        lock = lock or sqlite3.connect(index / "index.sqlite", timeout=0.1, isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            continue  # the run is writing
        try:
            committed = lock.execute("SELECT COUNT(*) FROM videos").fetchone()[0]
        except sqlite3.OperationalError:
            committed = 0  # its tables are not made yet
        if committed:
            break
        lock.execute("ROLLBACK")
    if not committed:
        process.kill()
        _, err = process.communicate(timeout=60)
        pytest.fail(f"the run committed no batch before it ended (exit code {process.returncode}):\n{err.decode()}")
    process.send_signal(how)
    time.sleep(0.2)
    lock.execute("ROLLBACK")  # a run waiting for the lock gets it now, and then meets the signal
    lock.close()
    process.wait(timeout=60)
    assert process.returncode == (130 if how == signal.SIGINT else -signal.SIGKILL), process.stderr.read()
    with sqlite3.connect(index / "index.sqlite") as conn:
        interrupted_at = conn.execute("SELECT COUNT(*) FROM videos").fetchone()[0]
    assert 0 < interrupted_at < total  # it really was stopped midway

    resumed = build_index(folder, index, encoder, options=IndexOptions(batch_size=2), progress=False)
    assert resumed.unchanged == interrupted_at and len(resumed.indexed) == total - interrupted_at
    got, want = snapshot(index), snapshot(tmp_path / "reference")
    assert [row[:3] + row[4:] for row in got["videos"]] == [row[:3] + row[4:] for row in want["videos"]]
    assert got["vectors"] == want["vectors"]
    np.testing.assert_allclose(got["embeddings"], want["embeddings"], atol=1e-6)
    thumbs = sorted(p.relative_to(index).as_posix() for p in (index / "thumbs").rglob("*.jpg"))
    assert thumbs == sorted(
        p.relative_to(tmp_path / "reference").as_posix() for p in (tmp_path / "reference" / "thumbs").rglob("*.jpg")
    )
    assert not list(index.rglob(".*.tmp"))  # no half-written files left behind
