"""The contract between the archive and the container writers.

Writers know containers, not RTP. The archive calls `start` once with every track, then
`write` for each frame in global time order (per track strictly non-decreasing), then `close`.
Media bytes are written once, in one pass; `close` only appends indexes and patches header
fields in place (durations, the largest picture size, sizes that were unknown).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, ClassVar

from recorder.errors import UnsupportedError
from recorder.media import CodecConfig, Frame, MediaKind

# Fragments (MP4) and clusters (WebM) start at video keyframes and are at most this long, so
# that a file cut at any byte (crash, kill, full disk) loses at most about a second.
MAX_CHUNK_US = 1_000_000
VIDEO_STALL_US = 500_000


@dataclass(slots=True)
class TrackSpec:
    """One track of the output: its 1-based number, codec and the pts of its first frame.

    Timestamps are in the track's timescale, the RTP clock rate; the archive places every track
    on one timeline starting at 0, so `start` > 0 means the track begins after the file does.
    """

    number: int
    config: CodecConfig
    start: int = 0

    @property
    def kind(self) -> MediaKind:
        return self.config.kind

    @property
    def codec(self) -> str:
        return self.config.codec

    @property
    def timescale(self) -> int:
        return self.config.clock_rate


@dataclass(slots=True)
class WriterResult:
    duration: float  # seconds, from 0 to the end of the last frame
    size: int  # bytes


class Writer(ABC):
    """Writes one container file to a seekable binary file it does not own."""

    extension: ClassVar[str]
    codecs: ClassVar[frozenset[str]]
    # Codecs refused on purpose, with the reason the user is told.
    refusals: ClassVar[dict[str, str]] = {}

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    @classmethod
    def check_codecs(cls, codecs: Sequence[str]) -> None:
        """Raise `UnsupportedError` before any file exists if a codec cannot go in."""
        for codec in codecs:
            if codec in cls.refusals:
                raise UnsupportedError(
                    f"{codec} cannot be written to {cls.extension.upper()}: {cls.refusals[codec]}"
                )
            if codec not in cls.codecs:
                raise UnsupportedError(
                    f"{codec} cannot be written to {cls.extension.upper()} "
                    f"(supported: {', '.join(sorted(cls.codecs))})"
                )

    @abstractmethod
    def start(self, tracks: Sequence[TrackSpec]) -> None:
        """Write the file header describing `tracks`."""

    @abstractmethod
    def write(self, track: int, pts: int, frame: Frame) -> None:
        """Add one frame of track number `track` at `pts` (in that track's timescale)."""

    @abstractmethod
    def close(self) -> WriterResult:
        """Write what is buffered, the indexes and the patched headers. Safe to call twice."""


class Chunker:
    """Decides which frames open a new fragment (MP4) or cluster (WebM).

    With a video track, chunks are cut by video frames: at a keyframe (unless the chunk has no
    video yet, so audio that arrives just before the first keyframe shares its chunk), or at
    the time limit for long GOPs. Audio cuts alone only when video stalls (a muted camera) for
    half a chunk more; an audio-only file is cut every `MAX_CHUNK_US`.
    """

    __slots__ = ("_has_video", "_start_us", "_video_seen")

    def __init__(self, has_video: bool) -> None:
        self._has_video = has_video
        self._start_us: int | None = None
        self._video_seen = False

    def cut_before(self, is_video: bool, keyframe: bool, time_us: int) -> bool:
        """Called once per frame, in order: whether this frame opens a new chunk."""
        start = self._start_us
        if start is None:
            self._start_us = time_us
            self._video_seen = is_video
            return False
        span = time_us - start
        if not self._has_video:
            cut = span >= MAX_CHUNK_US
        elif is_video:
            cut = (keyframe and self._video_seen) or span >= MAX_CHUNK_US
        else:
            cut = span >= MAX_CHUNK_US + VIDEO_STALL_US
        if cut:
            self.restart(is_video, time_us)
        elif is_video:
            self._video_seen = True
        return cut

    def restart(self, is_video: bool, time_us: int) -> None:
        """A chunk was opened at this frame (by the policy or by a container limit)."""
        self._start_us = time_us
        self._video_seen = is_video
