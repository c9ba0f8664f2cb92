"""What flows between the layers: whole frames, and what a container needs to describe them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

MediaKind = Literal["audio", "video"]


def reduced(*terms: int) -> tuple[int, ...]:
    """The terms divided by their greatest common divisor.

    `(t * a + b) // c` is the same with the reduced (a, b, c): timestamps are converted per
    frame, and Python's arithmetic is cheaper on the smaller integers (one digit below 2**30).
    """
    divisor = math.gcd(*terms)
    return tuple(term // divisor for term in terms)


class Frame:
    """One access unit in container form, ready to become one MP4 sample / WebM block.

    `timestamp` is the extended (unwrapped) RTP timestamp; `duration` is in the same clock and 0
    when the payload does not say (video); `width`/`height` are 0 unless the frame carries them
    (a VP8 keyframe does).
    """

    __slots__ = ("data", "duration", "height", "keyframe", "timestamp", "width")

    def __init__(
        self,
        timestamp: int,
        data: bytes,
        keyframe: bool,
        duration: int = 0,
        width: int = 0,
        height: int = 0,
    ) -> None:
        self.timestamp = timestamp
        self.data = data
        self.keyframe = keyframe
        self.duration = duration
        self.width = width
        self.height = height

    def __repr__(self) -> str:
        key = " key" if self.keyframe else ""
        size = f" {self.width}x{self.height}" if self.width else ""
        return f"Frame(ts={self.timestamp}, {len(self.data)} bytes{key}{size})"


@dataclass(slots=True)
class CodecConfig:
    """What a sample entry (MP4) or a TrackEntry (WebM) needs to describe a track.

    Built by the depacketizer from the stream (and the SDP where the stream cannot say).
    """

    codec: str
    kind: MediaKind
    clock_rate: int
    width: int = 0
    height: int = 0
    channels: int = 0
    sample_rate: int = 0
    # Opus: samples the decoder must discard at the start (RFC 7845 section 5.1).
    pre_skip: int = 0
    # VP8/VP9 (vpcC): the codec profile, bit depth and chroma subsampling.
    profile: int = 0
    level: int = 0
    bit_depth: int = 8
    chroma_subsampling: int = 0
    full_range: bool = False
    # H.264/H.265/AV1: the decoder configuration record (the body of an avcC/hvcC/av1C box,
    # which is also the Matroska CodecPrivate), built from the stream's parameter sets.
    record: bytes = b""
