"""Split output: one recording as a series of files, each cut at a keyframe.

`SplitWriter` is a `Writer` that the archive feeds like any other; it opens a new piece at the
first video keyframe (any frame, without video) at least `split_duration` after the current
piece began, so every piece starts decodable. Each piece is a complete file of the inner
container whose timeline starts at 0; the owner opens the files and learns of each finished
piece through callbacks (the lifecycle moves it into place and announces it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from recorder.media import Frame
from recorder.mux.base import TrackSpec, Writer, WriterResult

# The series numbers its pieces from 1 (split-archive-<cid>_0001).
FIRST_INDEX = 1


@dataclass(slots=True)
class Piece:
    """One finished file of the series; times in microseconds on the archive's timeline."""

    index: int
    file: BinaryIO
    start_us: int
    end_us: int
    result: WriterResult


class SplitWriter(Writer):
    """Cuts the archive into pieces of at least `split_us` microseconds, at keyframes."""

    codecs = frozenset()  # checked through the inner writer class

    def __init__(
        self,
        writer_cls: type[Writer],
        split_us: int,
        open_piece: Callable[[int], BinaryIO],
        on_piece: Callable[[Piece], None],
    ) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        if split_us <= 0:
            raise ValueError("split duration must be positive")
        self.extension = writer_cls.extension
        self._writer_cls = writer_cls
        self._split_us = split_us
        self._open_piece = open_piece
        self._on_piece = on_piece
        self._specs: list[TrackSpec] = []
        self._timescales: dict[int, int] = {}
        self._has_video = False
        self._video_tracks: set[int] = set()
        self._index = FIRST_INDEX - 1
        self._writer: Writer | None = None
        self._file: BinaryIO | None = None  # type: ignore[assignment]
        self._piece_start_us = 0
        self._last_us = 0
        self._offsets: dict[int, int] = {}
        self.pieces = 0

    @property
    def next_cut_us(self) -> int:
        """The earliest time the current piece may end (keyframe requests aim just before)."""
        return self._piece_start_us + self._split_us

    def start(self, tracks: Sequence[TrackSpec]) -> None:
        self._specs = list(tracks)
        self._timescales = {spec.number: spec.timescale for spec in tracks}
        self._video_tracks = {spec.number for spec in tracks if spec.kind == "video"}
        self._has_video = bool(self._video_tracks)
        self._open(0, first=True)

    def write(self, track: int, pts: int, frame: Frame) -> None:
        time_us = pts * 1_000_000 // self._timescales[track]
        opens_piece = frame.keyframe and (not self._has_video or track in self._video_tracks)
        if opens_piece and time_us - self._piece_start_us >= self._split_us:
            self._finish(time_us)
            self._open(time_us, first=False)
        writer = self._writer
        assert writer is not None
        offset = self._offsets[track]
        # Frames of another track from just before the cut keep their place at 0.
        writer.write(track, max(0, pts - offset), frame)
        self._last_us = max(self._last_us, time_us)

    def close(self) -> WriterResult:
        if self._writer is None:
            return WriterResult(0.0, 0)
        result = self._finish(None)
        return result

    def _open(self, start_us: int, first: bool) -> None:
        self._index += 1
        self._file = self._open_piece(self._index)
        self._writer = self._writer_cls(self._file)
        self._piece_start_us = start_us
        self._offsets = {
            number: start_us * timescale // 1_000_000
            for number, timescale in self._timescales.items()
        }
        specs = self._specs
        if not first:
            # Every track of a later piece starts with the piece.
            specs = [TrackSpec(spec.number, spec.config, 0) for spec in specs]
        self._writer.start(specs)

    def _finish(self, end_us: int | None) -> WriterResult:
        writer, file = self._writer, self._file
        assert writer is not None and file is not None
        result = writer.close()
        self._writer = None
        self.pieces += 1
        end = self._last_us if end_us is None else end_us
        self._on_piece(Piece(self._index, file, self._piece_start_us, end, result))
        return result
