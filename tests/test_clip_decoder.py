"""The index's clip decoder: which frames each clip holds, its spans and thumbnails, and bad files reported."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from videos_util import colour, frame_code, make_video

from vtr.index.clip_decoder import ClipDecoder, DecodeJob
from vtr.index.moments import plan_moments
from vtr.index.store import KIND_MOMENT, KIND_VIDEO
from vtr.index.thumbnails import jpeg_thumbnail, thumbnail_name, write_thumbnail

# Identity normalisation: the model's frames are the decoded pixels / 255, so frame codes can be read back.
DECODER = {"num_frames": 4, "image_size": 32, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def _codes(clip: torch.Tensor) -> list[int]:
    """The frame index painted on each frame of a float clip [T, 3, S, S] in [0, 1]."""
    return [frame_code((frame * 255).round().to(torch.uint8)) for frame in clip]


def _jpeg_code(jpeg: bytes) -> tuple[int, tuple[int, int]]:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    return frame_code(np.asarray(image.convert("RGB"))), image.size


def test_whole_video_and_windows_hold_the_middle_frame_of_each_segment(tmp_path):
    path = make_video(tmp_path / "v.mp4", 24, fps=4)  # 6 s: segments of 2 s, windows (0, 4) and (2, 6)
    plan = plan_moments(6.0, window=4.0, stride=2.0)
    assert plan.windows == ((0, 4), (2, 6))
    out = ClipDecoder(**DECODER, thumbnail_size=16)(DecodeJob(path, 6.0, whole=True, windows=[0, 1], plan=plan))
    assert out.error is None
    assert out.frames.shape == (3, 4, 3, 32, 32) and out.mask.all()
    assert out.kinds == [KIND_VIDEO, KIND_MOMENT, KIND_MOMENT]
    assert out.spans == [(0.0, 6.0), (0, 4), (2, 6)]
    assert out.moments == [-1, 0, 1]
    # Whole video: middles of four 1.5 s segments (0.75, 2.25, 3.75, 5.25 s). Windows: two frames from each of
    # their 2 s segments (shared between the windows), at 0.5 and 1.5 s into the segment.
    assert [_codes(clip) for clip in out.frames] == [[3, 9, 15, 21], [2, 6, 10, 14], [10, 14, 18, 22]]
    # Each thumbnail is the real frame nearest the clip's middle (the second of four), at most 16 px a side.
    thumbs = [_jpeg_code(jpeg) for jpeg in out.thumbs]
    assert [code for code, _ in thumbs] == [9, 6, 14]
    assert all(max(size) == 16 for _, size in thumbs)


def test_a_job_of_windows_only_and_the_owner_comes_back(tmp_path):
    path = make_video(tmp_path / "v.mp4", 24, fps=4)
    owner = object()
    job = DecodeJob(path, 6.0, whole=False, windows=[1], plan=plan_moments(6.0), owner=owner)
    out = ClipDecoder(**DECODER)(job)
    assert out.job.owner is owner and out.error is None
    assert out.kinds == [KIND_MOMENT] and out.moments == [1]
    assert [_codes(clip) for clip in out.frames] == [[10, 14, 18, 22]]


def test_an_undecodable_file_is_reported_not_raised(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    out = ClipDecoder(**DECODER)(DecodeJob(path, 1.0, whole=True, windows=[], plan=plan_moments(1.0)))
    assert out.error and out.frames is None and out.kinds == [] and out.thumbs == []
    assert out.seconds >= 0


def test_thumbnail_bytes_are_written_under_their_name(tmp_path):
    frame = torch.tensor(colour(5), dtype=torch.uint8)[:, None, None].expand(3, 90, 160)  # [3, H, W]
    jpeg = jpeg_thumbnail(frame, max_side=64)
    assert _jpeg_code(jpeg) == (5, (64, 36))
    path = write_thumbnail(tmp_path, thumbnail_name(7, 3), jpeg)
    assert path == tmp_path / "thumbs" / "7" / "m00003.jpg"
    assert path.read_bytes() == jpeg
    assert [p.name for p in path.parent.iterdir()] == ["m00003.jpg"]  # no temporary file left behind
