"""Video decoding for vtr (PyAV): probing, seek-based uniform frame sampling, and frame preprocessing in torch.

Every file that cannot be read raises :class:`vtr.errors.VideoDecodeError`, naming the file and the cause.
"""

from __future__ import annotations

from vtr.errors import VideoDecodeError
from vtr.video.clip import load_clip
from vtr.video.probe import VideoInfo, probe
from vtr.video.sampling import SampledFrames, sample_frames, sample_windows, segment_times
from vtr.video.transform import FrameTransform

__all__ = [
    "FrameTransform",
    "SampledFrames",
    "VideoDecodeError",
    "VideoInfo",
    "load_clip",
    "probe",
    "sample_frames",
    "sample_windows",
    "segment_times",
]
