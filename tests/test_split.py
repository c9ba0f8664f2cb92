"""`SplitWriter`: a recording as a series of files cut at keyframes, each playable alone."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pytest

from recorder.convert import replay
from recorder.ingest import recorded_sections
from recorder.mux import writer_class
from recorder.mux.split import Piece, SplitWriter
from recorder.sdp import load_sdp
from tests.judges import CAPTURES, decode_errors, ffprobe, framemd5, source_md5


def _split(tmp_path: Path, container: str, split_us: int) -> tuple[list[Piece], list[Path]]:
    pcap, sdp = CAPTURES["gst"]
    pieces: list[Piece] = []
    paths: list[Path] = []

    def open_piece(index: int) -> BinaryIO:
        path = tmp_path / f"piece_{index:04d}.{container}"
        paths.append(path)
        return open(path, "w+b")  # closed in on_piece

    def on_piece(piece: Piece) -> None:
        piece.file.close()
        pieces.append(piece)

    writer = SplitWriter(writer_class(container), split_us, open_piece, on_piece)
    replay(pcap, recorded_sections(load_sdp(sdp).media), [writer])
    return pieces, paths


@pytest.mark.parametrize("container", ["webm", "mp4"])
def test_pieces_start_at_keyframes_and_together_hold_every_frame(
    tmp_path: Path, container: str
) -> None:
    # The source has a keyframe every second: 1.5 s pieces are cut at 2 s, then at the end.
    pieces, paths = _split(tmp_path, container, 1_500_000)
    assert [piece.index for piece in pieces] == [1, 2]
    # (GStreamer's timestamps step 2999/3000/3001 ticks, so keyframes sit a little off 1 s.)
    assert [piece.start_us for piece in pieces] == pytest.approx([0, 2_000_000], abs=1000)
    assert pieces[0].end_us == pieces[1].start_us
    decoded = []
    for path, piece in zip(paths, pieces, strict=True):
        assert decode_errors(path) == ""
        assert piece.result.size == path.stat().st_size
        duration = float(ffprobe(path)["format"]["duration"])
        assert duration == pytest.approx(2.0, abs=0.05)
        frames, errors = framemd5(path, "video")
        assert errors == ""
        decoded += frames
    # Every video frame of the source, each in exactly one piece, in order.
    assert decoded == source_md5("video")


def test_a_split_shorter_than_the_gop_cuts_at_every_keyframe(tmp_path: Path) -> None:
    pieces, paths = _split(tmp_path, "webm", 100_000)
    starts = [piece.start_us for piece in pieces]
    assert starts == pytest.approx([0, 1_000_000, 2_000_000, 3_000_000], abs=1000)
    assert all(decode_errors(path) == "" for path in paths)
