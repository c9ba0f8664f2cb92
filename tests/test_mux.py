"""Writers on invented frames: chunking policy, largest picture size, idempotent close.

The frames are not decodable pictures, so the checks read the containers' structure (mkvinfo,
box walks), not decoded output; decoding is covered by the end-to-end tests.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from recorder.media import CodecConfig, Frame
from recorder.mux import TrackSpec, writer_class
from recorder.mux.base import MAX_CHUNK_US, VIDEO_STALL_US, Chunker
from recorder.mux.ebml import vint, vint8, void
from tests.crash import JournalFile, complete_chunks
from tests.judges import mkvinfo

VIDEO = CodecConfig("VP8", "video", 90000, width=320, height=240, chroma_subsampling=1)
AUDIO = CodecConfig("OPUS", "audio", 48000, channels=2, sample_rate=48000, pre_skip=312)
FRAME_TICKS = 3000  # 30 fps at 90 kHz
OPUS_TICKS = 960


def _write(container: str, frames: list[tuple[int, int, Frame]], audio: bool = True) -> bytes:
    file = JournalFile()
    writer = writer_class(container)(file)
    specs = [TrackSpec(1, VIDEO)] + ([TrackSpec(2, AUDIO)] if audio else [])
    writer.start(specs)
    for track, pts, frame in frames:
        writer.write(track, pts, frame)
    first = writer.close()
    size = len(file.getvalue())
    assert writer.close() is first  # a second close changes nothing
    assert len(file.getvalue()) == size
    return file.getvalue()


def _av(seconds: int, keyframe_every: int) -> list[tuple[int, int, Frame]]:
    """Video at 30 fps and Opus at 50 packets/s, interleaved in time order."""
    events = []
    for n in range(seconds * 30):
        key = n % keyframe_every == 0
        events.append((n * FRAME_TICKS / 90000, 1, n * FRAME_TICKS, Frame(0, b"v" * 50, key)))
    for n in range(seconds * 50):
        events.append((n * OPUS_TICKS / 48000, 2, n * OPUS_TICKS, Frame(0, b"\xfc", True, 960)))
    events.sort(key=lambda event: (event[0], event[1]))
    return [(track, pts, frame) for _, track, pts, frame in events]


@pytest.mark.parametrize("container", ["webm", "mp4"])
def test_long_gop_still_gives_a_chunk_every_second(container: str) -> None:
    """WebRTC senders often send a keyframe only on request; the file must not wait for one."""
    data = _write(container, _av(seconds=10, keyframe_every=300))
    chunks = complete_chunks(data, container)
    assert chunks.frames == {1: 300, 2: 500}
    if container == "webm":
        info = mkvinfo_bytes(data)
        assert info.count("\n|+ Cluster\n") == 10
        assert info.count("+ Cue point") == 1  # only the one keyframe is a random access point
    else:
        assert _top_level(data).count(b"moof") == 10


@pytest.mark.parametrize("container", ["webm", "mp4"])
def test_declared_picture_size_is_the_largest_seen(container: str) -> None:
    frames = [
        (1, 0, Frame(0, b"k", True, width=320, height=240)),
        (1, 3000, Frame(0, b"p", False)),
        (1, 6000, Frame(0, b"K", True, width=1280, height=720)),
        (1, 9000, Frame(0, b"k", True, width=640, height=360)),
    ]
    data = _write(container, frames, audio=False)
    if container == "webm":
        info = mkvinfo_bytes(data)
        assert "Pixel width: 1280" in info and "Pixel height: 720" in info
    else:
        assert _tkhd_size(data) == (1280, 720)


def test_mp4_durations_and_edit_list_are_patched() -> None:
    data = _write("mp4", _av(seconds=2, keyframe_every=30))
    mvhd = data.index(b"mvhd")
    assert struct.unpack_from(">Q", data, mvhd + 4 + 4 + 8 + 8 + 4)[0] == 2000  # ms
    elst = data.index(b"elst")
    count = struct.unpack_from(">I", data, elst + 8)[0]
    duration, media_time = struct.unpack_from(">Qq", data, elst + 12)
    # Audio starts with the file: one edit, trimming the 312-sample pre-skip.
    assert (count, media_time) == (1, 312)
    assert duration == (100 * 960 - 312) * 1000 // 48000


def test_mp4_late_track_gets_an_empty_edit_first() -> None:
    file = JournalFile()
    writer = writer_class("mp4")(file)
    writer.start([TrackSpec(1, VIDEO), TrackSpec(2, AUDIO, start=4800)])  # audio 100 ms late
    writer.write(1, 0, Frame(0, b"k", True, width=320, height=240))
    writer.write(2, 4800, Frame(0, b"\xfc", True, 960))
    writer.close()
    data = file.getvalue()
    elst = data.index(b"elst")
    count = struct.unpack_from(">I", data, elst + 8)[0]
    entries = [struct.unpack_from(">Qq", data, elst + 12 + 20 * i) for i in range(count)]
    assert entries[0] == (100, -1)  # 100 ms of nothing
    assert entries[1][1] == 4800 + 312


def test_chunker_keyframe_after_audio_only_does_not_cut() -> None:
    chunker = Chunker(has_video=True)
    assert not chunker.cut_before(False, True, 0)  # audio opens the first chunk
    assert not chunker.cut_before(True, True, 300)  # the first keyframe joins it
    assert not chunker.cut_before(True, False, 33_000)
    assert chunker.cut_before(True, True, 66_000)  # the next keyframe opens a chunk


def test_chunker_time_limits() -> None:
    chunker = Chunker(has_video=True)
    chunker.cut_before(True, True, 0)
    assert not chunker.cut_before(False, True, MAX_CHUNK_US)  # audio waits for video...
    assert chunker.cut_before(True, False, MAX_CHUNK_US)  # ...which cuts at the limit
    assert chunker.cut_before(False, True, 2 * MAX_CHUNK_US + VIDEO_STALL_US)  # video stalled
    audio_only = Chunker(has_video=False)
    audio_only.cut_before(False, True, 0)
    assert not audio_only.cut_before(False, True, MAX_CHUNK_US - 1)
    assert audio_only.cut_before(False, True, MAX_CHUNK_US)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x80"),
        (126, b"\xfe"),
        (127, b"\x40\x7f"),  # 0xff would mean "unknown size" (RFC 8794 section 6.2)
        (16382, b"\x7f\xfe"),
        (16383, b"\x20\x3f\xff"),
    ],
)
def test_vint_never_uses_the_reserved_all_ones(value: int, encoded: bytes) -> None:
    assert vint(value) == encoded


def test_vint8_and_void_sizes() -> None:
    assert vint8(5) == b"\x01\x00\x00\x00\x00\x00\x00\x05"
    for size in (2, 3, 128, 129, 130, 200):
        assert len(void(size)) == size
    with pytest.raises(ValueError):
        void(1)


def mkvinfo_bytes(data: bytes) -> str:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".webm") as file:
        file.write(data)
        file.flush()
        return mkvinfo(Path(file.name))


def _top_level(data: bytes) -> list[bytes]:
    types, position = [], 0
    while position + 8 <= len(data):
        size, box_type = struct.unpack_from(">I4s", data, position)
        types.append(box_type)
        position += size
    return types


def _tkhd_size(data: bytes) -> tuple[int, int]:
    tkhd = data.index(b"tkhd") - 4
    width, height = struct.unpack_from(">II", data, tkhd + 96)
    return width >> 16, height >> 16
