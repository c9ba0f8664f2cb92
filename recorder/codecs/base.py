"""The interface every codec module implements.

Frame assembly (`recorder.stream`) is codec-agnostic: it hands a depacketizer the payloads of
one frame, in sequence order, once they are all there. The depacketizer only answers two
questions: can this payload begin a frame, and what are these payloads as one frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from recorder.media import CodecConfig, Frame, MediaKind


class Depacketizer:
    """Turns the RTP payloads of one frame into a `Frame`; keeps the stream's `CodecConfig`.

    Subclasses set `codec`, `kind`, `single_packet_frames` and implement `starts_frame` and
    `build`. Both raise `DepacketizeError` (and nothing else) on malformed payloads.
    """

    codec: ClassVar[str]
    kind: ClassVar[MediaKind]
    # True when every packet carries exactly one whole frame (RFC 7587 for Opus), so the
    # assembler need not group packets by timestamp or look at the marker bit.
    single_packet_frames: ClassVar[bool] = False

    __slots__ = ("channels", "clock_rate", "config", "fmtp")

    def __init__(
        self, clock_rate: int, channels: int | None = None, fmtp: Mapping[str, str] | None = None
    ) -> None:
        self.clock_rate = clock_rate
        self.channels = channels
        self.fmtp: Mapping[str, str] = fmtp or {}
        # Set once the stream has told us enough to describe the track (first keyframe for
        # video, first packet for audio); the archive waits for it before writing headers.
        self.config: CodecConfig | None = None

    def starts_frame(self, payload: memoryview) -> bool:
        """Whether this payload can be the first packet of a frame."""
        raise NotImplementedError

    def build(self, payloads: Sequence[memoryview], timestamp: int) -> Frame:
        """Assemble the payloads of one frame (in sequence order) into a `Frame`."""
        raise NotImplementedError
