"""Decoded-clip cache: sampling kept frames gives exactly what sampling the file gives; entries are safe to reuse."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from videos_util import make_video, mdat_range

from vtr.data import TrainClipDataset, read_annotations
from vtr.data.clip_cache import DecodedClipCache, cache_folder
from vtr.errors import VideoDecodeError
from vtr.video import sample_frames
from vtr.video.decoded import DecodedVideo, decode_video, sample_decoded

UNLIMITED = {"max_frames": 10**6, "max_bytes": 1 << 40}


def _truncated(tmp_path: Path) -> Path:
    """An MP4 whose index says 4 s while its frames stop near 2 s (the decoder pads the missing end)."""
    path = make_video(tmp_path / "whole.mp4", 100, size=(64, 48), container_options={"movflags": "faststart"})
    data = path.read_bytes()
    begin, end = mdat_range(data)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: (begin + end) // 2])
    return cut


def _videos(tmp_path: Path, sample_videos: dict[str, Path]) -> list[Path]:
    return [
        make_video(tmp_path / "coded.mp4", 100),  # B-frames, a key frame every 10
        make_video(tmp_path / "short.mp4", 5, gop=5),  # fewer frames than asked for: padding
        make_video(tmp_path / "vfr.mp4", 6, pts_ms=[0, 40, 400, 440, 1200, 1960]),  # bursts and holds
        make_video(tmp_path / "clip.webm", 60, fps=10, gop=25, size=(16, 16), codec="libvpx-vp9"),
        sample_videos["bikes"],
    ]


def _same(a, b) -> bool:
    return (
        torch.equal(a.frames, b.frames)
        and torch.equal(a.mask, b.mask)
        and a.timestamps == pytest.approx(b.timestamps, abs=0)
    )


def test_sampling_kept_frames_equals_sampling_the_file(tmp_path: Path, sample_videos: dict[str, Path]) -> None:
    checked = 0
    for path in _videos(tmp_path, sample_videos):
        video = decode_video(path, **UNLIMITED)
        assert video is not None, path
        for num in (1, 4, 8, 16, 120):  # seeking to each target, and the whole-window path
            for mode in ("middle", "random"):
                for window in ((None, None), (0.15 * video.duration, 0.85 * video.duration)):
                    for pad in ("repeat", "zero"):
                        kwargs = {"mode": mode, "start": window[0], "end": window[1], "pad": pad}
                        from_file = sample_frames(path, num, rng=random.Random(num), **kwargs)
                        kept = sample_decoded(video, num, rng=random.Random(num), **kwargs)
                        assert _same(kept, from_file), (path.name, num, kwargs)
                        checked += 1
    assert checked == 5 * 5 * 2 * 2 * 2


def test_only_short_clean_videos_are_kept(tmp_path: Path) -> None:
    path = make_video(tmp_path / "coded.mp4", 100)
    assert decode_video(path, max_frames=99, max_bytes=1 << 30) is None  # too many frames, by the metadata
    assert decode_video(path, max_frames=100, max_bytes=100 * 48 * 32 * 3 - 1) is None  # too many bytes
    kept = decode_video(path, max_frames=100, max_bytes=100 * 48 * 32 * 3)
    assert kept is not None and kept.frames.shape == (100, 32, 48, 3) and kept.nbytes == 100 * 48 * 32 * 3

    damaged = tmp_path / "damaged.mp4"
    data = bytearray(path.read_bytes())
    begin, end = mdat_range(data)
    middle = (begin + end) // 2
    data[middle : middle + 300] = np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes()
    damaged.write_bytes(bytes(data))
    assert decode_video(damaged, **UNLIMITED) is None  # corrupt packets: sampled from the file instead
    assert decode_video(_truncated(tmp_path), **UNLIMITED) is None  # its data stops before its index does

    with pytest.raises(VideoDecodeError):
        decode_video(tmp_path / "missing.mp4", **UNLIMITED)


def test_the_cache_keeps_an_entry_and_reads_it_back(tmp_path: Path) -> None:
    path = make_video(tmp_path / "coded.mp4", 40)
    cache = DecodedClipCache(tmp_path / "cache")
    first = cache.sample(path, 8, mode="random", rng=random.Random(3))
    assert _same(first, sample_frames(path, 8, mode="random", rng=random.Random(3)))
    entries = list((tmp_path / "cache").glob("*.npz"))
    assert len(entries) == 1
    assert not list((tmp_path / "cache").glob(".*.tmp"))  # written through a temporary file, renamed

    # The entry is what later reads use: blank its pixels and the next sample is blank.
    kept = DecodedVideo.load(entries[0])
    blank = DecodedVideo(np.zeros_like(kept.frames), *[getattr(kept, f) for f in list(kept.__dataclass_fields__)[1:]])
    blank.save(entries[0])
    assert int(cache.sample(path, 8).frames.sum()) == 0


def test_a_changed_file_gets_a_new_entry(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", 40)
    cache = DecodedClipCache(tmp_path / "cache")
    before = cache.sample(path, 4)
    make_video(tmp_path / "clip.mp4", 30, size=(32, 32))  # rewritten: another size and length
    after = cache.sample(path, 4)
    assert after.frames.shape[-2:] == (32, 32) and before.frames.shape[-2:] == (32, 48)
    assert _same(after, sample_frames(path, 4))
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_a_long_video_is_marked_and_sampled_from_the_file(tmp_path: Path) -> None:
    path = make_video(tmp_path / "coded.mp4", 100)
    cache = DecodedClipCache(tmp_path / "cache", max_frames=50)
    for _ in range(2):
        assert _same(cache.sample(path, 8), sample_frames(path, 8))
    assert not list((tmp_path / "cache").glob("*.npz"))
    assert len(list((tmp_path / "cache").glob("*.skip"))) == 1


def test_a_damaged_entry_is_decoded_again_and_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = make_video(tmp_path / "coded.mp4", 40)
    cache = DecodedClipCache(tmp_path / "cache")
    cache.sample(path, 8)
    entry = next((tmp_path / "cache").glob("*.npz"))
    whole = entry.read_bytes()
    for damage in (b"not an npz file", whole[: len(whole) // 2]):  # not a zip; a zip cut short
        entry.write_bytes(damage)
        caplog.clear()
        assert _same(cache.sample(path, 8), sample_frames(path, 8))
        assert "damaged decoded-clip entry" in caplog.text
        assert DecodedVideo.load(entry).frames.shape == (40, 32, 48, 3)


def test_an_undecodable_file_raises_and_keeps_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n" * 20)
    cache = DecodedClipCache(tmp_path / "cache")
    with pytest.raises(VideoDecodeError):
        cache.sample(bad, 4)
    with pytest.raises(OSError):
        cache.sample(tmp_path / "missing.mp4", 4)
    assert not list((tmp_path / "cache").iterdir())


def test_cache_folder_falls_back_to_the_run_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    assert cache_folder(data, tmp_path / "run", "decoded") == data / ".vtr_cache" / "decoded"
    assert cache_folder(data, tmp_path / "run", "") == data / ".vtr_cache"
    # A data root that cannot hold the cache (here: a file, not a folder) sends it to the run folder.
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    assert cache_folder(not_a_folder, tmp_path / "run", "decoded") == tmp_path / "run" / "decoded"


def test_training_items_are_the_same_through_the_cache(tmp_path: Path) -> None:
    from vtr.data.synth import generate_dataset

    generate_dataset(tmp_path / "d", num_videos=12, seed=1, num_frames=16, fps=8, size=32, workers=1, progress=False)
    records = read_annotations(tmp_path / "d", split="train")
    plain = TrainClipDataset(records, 8, 32, seed=5)
    cached = TrainClipDataset(records, 8, 32, seed=5, cache=DecodedClipCache(tmp_path / "cache"))
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for item in range(len(plain)):
            a, b = plain[item], cached[item]
            assert torch.equal(a["frames"], b["frames"]) and a["caption"] == b["caption"]
    assert len(list((tmp_path / "cache").glob("*.npz"))) == len(records)
