"""Decoding the frames shown at increasing timestamps of one video stream, seeking only where it saves work.

A frame is "shown" at time t when it is the last frame whose presentation timestamp (pts) is at or before t.
To reach a target the reader either decodes forward from where it is, or seeks back to the key frame at or
before the target and decodes forward from there. It seeks only when a key frame lies between its position
and the target (known from the container's index, e.g. MP4's sample table, or from key frames already
decoded), because seeking to a key frame at or before the current position would decode the same frames
again; a file without an index falls back to seeking when the target is more than a few seconds ahead.

Corrupt packets are counted and skipped: the decoder goes on, and a target whose own frame was lost gets
the last frame that decoded before it (what a player would show). Frames decoded after a lost reference
frame may still show concealment artefacts when the decoder does not flag them; nothing can tell them apart.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from typing import NamedTuple

import av.container
import av.index
import av.packet
import av.video.frame
import av.video.stream
import numpy as np

from vtr.video.container import AV_ERRORS
from vtr.video.probe import StreamClock

# FFmpeg's container-level time unit (AV_TIME_BASE): microseconds.
_AV_TIME_BASE = 1_000_000
# Without an index, seek when the next target is further ahead than this: about half of a typical 2-5 s
# group of pictures, the expected cost of decoding from the key frame a seek lands on.
FALLBACK_SEEK_GAP_S = 2.0
# A seek that lands after its target (no index, a corrupt key frame) is retried this many times, each time
# further back (1 s, 2 s, 4 s), and finally from the start of the stream.
SEEK_RETRIES = 3
# Demuxing stops (as at the end of the file) after this many read errors in a row.
MAX_CONSECUTIVE_READ_ERRORS = 32
# A target more than this many frame intervals after the last decodable frame lies past the end of the data
# (a truncated file): it gets no frame.
END_TOLERANCE_FRAMES = 2


class Frame(NamedTuple):
    """A decoded frame and its presentation timestamp (in the stream's time base)."""

    pts: int
    frame: av.video.frame.VideoFrame

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.frame.width, self.frame.height

    def pixels(self, width: int, height: int) -> np.ndarray:
        """RGB uint8 [height, width, 3], scaled to that size."""
        return self.frame.to_ndarray(format="rgb24", width=width, height=height)


class FrameReader:
    """Decodes the frames of one open video stream shown at non-decreasing timestamps.

    Args:
        container: the open input container.
        stream: the video stream to decode.
        clock: the stream's clock (time base and first pts).
        fps: the average frame rate, used to estimate the pts step between frames.

    Attributes:
        decoded_frames: frames the decoder produced so far.
        corrupt_packets: packets that could not be read or decoded, that the demuxer flagged as corrupt, or
            whose frame the decoder flagged as damaged (such frames are dropped).
    """

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        clock: StreamClock,
        fps: float,
    ) -> None:
        self.container = container
        self.stream = stream
        self.clock = clock
        self.decoded_frames = 0
        self.corrupt_packets = 0
        self._step = max(1, round(1 / (fps * clock.time_base)))  # pts per frame, on average
        self._fallback_gap = round(FALLBACK_SEEK_GAP_S / clock.time_base)
        self._one_second = max(1, round(1 / clock.time_base))  # pts
        self._index, self._index_delay, self._dense_index = self._read_index()
        self._keyframes: list[int] = []  # key frames seen while decoding, when the index may miss them
        # A stream without a start time (a raw H.264 file) has no timestamps to seek by, and a failed seek
        # may leave the demuxer at the end of the file: decode such streams forward only.
        self._can_seek = stream.start_time is not None
        self._frames: Iterator[Frame] | None = None
        self._prev: Frame | None = None  # last frame pulled with pts <= the last target
        self._ahead: Frame | None = None  # first frame pulled with pts > the last target
        self._eof = False
        self._pos = clock.start_pts  # pts of the decoder's position before any frame is pulled
        self._keyframe_cache: dict[int, Frame] = {}

    # ---------------------------------------------------------------- public

    def frame_at(self, target: int) -> Frame | None:
        """The frame shown at pts ``target`` (not before the previous target); None past the end of the data.

        A target before the first decodable frame gets that first frame.
        """
        if self._ahead is not None and target < self._ahead.pts:
            return self._prev if self._prev is not None else self._ahead
        if self._should_seek(target):
            self._seek_before(target)
        return self._decode_until(target)

    def frames_between(self, begin: int, end: int) -> list[Frame]:
        """Every frame shown in the pts interval ``[begin, end)``: the one shown at ``begin``, then each after it."""
        shown = self.frame_at(begin)
        frames = [shown] if shown is not None and shown is self._prev else []
        while True:
            if self._ahead is None:
                self._ahead = self._next_frame()
                if self._ahead is None:
                    break
            if self._ahead.pts >= end:
                break
            frames.append(self._ahead)
            self._prev, self._ahead = self._ahead, None
        return frames

    def keyframe_at(self, target: int) -> Frame | None:
        """The key frame at or before pts ``target``, decoded alone (no frame after it is decoded).

        After a seek, packets are read (not decoded) up to the target to find its last key frame: seeking in
        a file without an index (MPEG-TS) may land anywhere before it. Where the container cannot seek, or
        the key frame is broken, the exact frame is decoded instead, as :meth:`frame_at` does.
        """
        for at_start in self._seek_attempts(target):
            packet = self._last_keyframe_packet(target)
            if packet is None or (_packet_pts(packet) > target and not at_start):
                continue  # nothing, or only a key frame after the target: seek further back
            found = self._decode_keyframe(packet)
            if found is not None:
                return found
            break  # a broken key frame: decode forward from an earlier one, as frame_at does
        if self._can_seek:
            self._seek_before(target)
        return self._decode_until(target)

    # ---------------------------------------------------------------- seeking

    def _read_index(self) -> tuple[av.index.IndexEntries | None, int, bool]:
        """The container's index (None if empty), its offset to presentation timestamps, whether it is dense."""
        try:
            entries = self.stream.index_entries
            if not len(entries):
                return None, 0, False
            first = entries[0].timestamp
        except AV_ERRORS:
            return None, 0, False
        # MP4 indexes decode timestamps; with B-frames these run behind the presentation timestamps by a
        # constant delay, which the first entry shows (it decodes first and is shown at the stream start).
        delay = max(0, self.clock.start_pts - first)
        # An index with an entry per frame (MP4) lists every key frame; a sparse one (Matroska cues) does not.
        dense = self.stream.frames > 0 and len(entries) >= self.stream.frames
        return entries, delay, dense

    def _last_keyframe(self, target: int) -> int | None:
        """The pts of the last key frame known to be at or before ``target`` (index or decoded), or None."""
        best = None
        if self._index is not None:
            try:
                found = self._index.search_timestamp(target - self._index_delay, backward=True)
                if found >= 0:
                    best = self._index[found].timestamp + self._index_delay
            except AV_ERRORS:
                pass
        learned = bisect.bisect_right(self._keyframes, target) - 1
        if learned >= 0 and (best is None or self._keyframes[learned] > best):
            best = self._keyframes[learned]
        return best

    def _position(self) -> int:
        for frame in (self._ahead, self._prev):
            if frame is not None:
                return frame.pts
        return self._pos

    def _should_seek(self, target: int) -> bool:
        if not self._can_seek or self._eof:
            return False
        position = self._position()
        if target <= position:
            return False
        keyframe = self._last_keyframe(target)
        # Seeking costs a flush and re-reading the key frame: worth it only past a couple of frames.
        if keyframe is not None and keyframe > position + 2 * self._step:
            return True
        if self._dense_index:
            return False
        return target - position > self._fallback_gap

    def _seek(self, target: int | None) -> bool:
        """Seek to the key frame at or before pts ``target`` (None: the very start of the file); False (and no
        more seeking) if the container cannot."""
        if not self._can_seek:
            return False
        try:
            if target is None:
                # In microseconds over all streams: lands on the first packet even where the demuxer seeks by
                # decode timestamps (MPEG-TS), which start before the first presentation timestamp.
                start_us = math.floor(self.clock.start_pts * self.clock.time_base * _AV_TIME_BASE)
                self.container.seek(min(0, start_us) - _AV_TIME_BASE, backward=True)
            else:
                self.container.seek(target, stream=self.stream, backward=True)
        except AV_ERRORS:
            self._can_seek = False
            return False
        self._frames = None
        self._prev = self._ahead = None
        self._eof = False
        self._pos = self.clock.start_pts if target is None else target
        return True

    def _seek_attempts(self, target: int) -> Iterator[bool]:
        """Seek before ``target``, then further back (1 s, 2 s, 4 s), then to the start, one seek per step the
        caller takes; yields whether the seek went to the start. Stops early if the container cannot seek."""
        back = 0
        for _ in range(SEEK_RETRIES + 1):
            if target - back <= self.clock.start_pts:
                break
            if not self._seek(target - back):
                return
            yield False
            back = max(2 * back, self._one_second)
        if self._seek(None):
            yield True

    def _seek_before(self, target: int) -> None:
        """Seek so that the first frame decoded is at or before ``target``, backing off while a seek overshoots
        (a missing index, or a demuxer that lands after the key frame, as MPEG-TS does)."""
        for at_start in self._seek_attempts(target):
            self._ahead = self._next_frame()
            if (self._ahead is not None and self._ahead.pts <= target) or at_start:
                return

    # ---------------------------------------------------------------- decoding

    def _decode_until(self, target: int) -> Frame | None:
        if self._ahead is not None and self._ahead.pts <= target:
            self._prev, self._ahead = self._ahead, None
        while self._ahead is None:
            frame = self._next_frame()
            if frame is None:
                break
            if frame.pts <= target:
                self._prev = frame
            else:
                self._ahead = frame
        if self._prev is None:
            return self._ahead  # the first decodable frame comes after the target
        if self._ahead is None and self.past_end(self._prev, target):
            return None
        return self._prev

    @property
    def exhausted(self) -> bool:
        """Whether every frame up to the end of the data has been pulled."""
        return self._eof and self._ahead is None

    def past_end(self, last: Frame, target: int) -> bool:
        """Whether ``target`` lies past the end of the data, ``last`` being the last frame that decoded."""
        return target > last.pts + END_TOLERANCE_FRAMES * (last.frame.duration or self._step)

    def _next_frame(self) -> Frame | None:
        if self._eof:
            return None
        if self._frames is None:
            self._frames = self._decode()
        frame = next(self._frames, None)
        if frame is None:
            self._eof = True
        return frame

    def _decode(self) -> Iterator[Frame]:
        last_pts = None
        for packet in self._packets():
            try:
                frames = packet.decode()
            except AV_ERRORS:
                self.corrupt_packets += 1
                continue
            for frame in frames:
                if frame.is_corrupt:  # the decoder itself flags it as damaged: treat it as lost
                    self.corrupt_packets += 1
                    continue
                last_pts = self._register(frame, last_pts)
                yield Frame(last_pts, frame)

    def _register(self, frame: av.video.frame.VideoFrame, last_pts: int | None) -> int:
        """Count a decoded frame, remember it if it is a key frame, and return its pts (estimated if missing)."""
        self.decoded_frames += 1
        pts = frame.pts
        if pts is None:
            pts = frame.dts if frame.dts is not None else (self._pos if last_pts is None else last_pts + self._step)
        if frame.key_frame:
            self._learn_keyframe(pts)
        return pts

    def _learn_keyframe(self, pts: int) -> None:
        if self._dense_index:
            return  # the index already lists every key frame
        index = bisect.bisect_left(self._keyframes, pts)
        if index == len(self._keyframes) or self._keyframes[index] != pts:
            self._keyframes.insert(index, pts)

    def _packets(self) -> Iterator[av.packet.Packet]:
        """The stream's packets from the current position, skipping read errors (a generator that raised is
        finished, so demuxing restarts from where the demuxer stopped)."""
        errors = 0
        while errors <= MAX_CONSECUTIVE_READ_ERRORS:
            try:
                for packet in self.container.demux(self.stream):
                    errors = 0
                    if packet.is_corrupt:
                        self.corrupt_packets += 1
                    yield packet
                return
            except AV_ERRORS:
                self.corrupt_packets += 1
                errors += 1

    def _last_keyframe_packet(self, target: int) -> av.packet.Packet | None:
        """From the current position, the last key-frame packet shown at or before ``target`` (demuxing only),
        or failing that the first key-frame packet after it."""
        best = None
        for packet in self._packets():
            if packet.size == 0:
                continue
            # Packets come in decode order and a frame is shown no earlier than it is decoded (pts >= dts):
            # once decode timestamps pass the target, no later packet is shown at or before it.
            if best is not None and packet.dts is not None and packet.dts > target:
                break
            if not packet.is_keyframe or _packet_pts(packet) is None:
                continue
            if _packet_pts(packet) > target:
                return best if best is not None else packet
            best = packet
        return best

    def _decode_keyframe(self, packet: av.packet.Packet) -> Frame | None:
        """Decode one key-frame packet alone (reusing an earlier decode of it); None if it is broken."""
        key = _packet_pts(packet)
        if key in self._keyframe_cache:
            return self._keyframe_cache[key]
        context = self.stream.codec_context
        try:
            # Draining with None makes the decoder give up the frame now instead of after its reorder delay.
            frames = list(packet.decode()) + list(context.decode(None))
        except AV_ERRORS:
            frames = []
        context.flush_buffers()
        self.decoded_frames += len(frames)
        if not frames or frames[0].is_corrupt:
            self.corrupt_packets += 1
            return None
        frame = frames[0]
        pts = frame.pts if frame.pts is not None else key
        if frame.key_frame:
            self._learn_keyframe(pts)
        found = self._keyframe_cache[key] = Frame(pts, frame)
        return found


def _packet_pts(packet: av.packet.Packet) -> int | None:
    return packet.pts if packet.pts is not None else packet.dts
