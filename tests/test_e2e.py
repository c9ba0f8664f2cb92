"""Real captures → both containers, judged by FFmpeg, ffprobe, mkvinfo, pymp4 and GStreamer."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import pytest
from pymp4.parser import Box

from tests.conftest import CONTAINERS
from tests.judges import (
    CAPTURES,
    SOURCE_DURATION,
    SOURCE_FPS,
    SOURCE_HEIGHT,
    SOURCE_WIDTH,
    decode_errors,
    ffprobe,
    framemd5,
    gstreamer_buffers,
    gstreamer_video_md5,
    mkvinfo,
    source_md5,
)

CASES = [(sender, container) for sender in CAPTURES for container in CONTAINERS]
FRAME = 1 / SOURCE_FPS


@pytest.fixture(params=CASES, ids=[f"{s}-{c}" for s, c in CASES])
def recording(request: pytest.FixtureRequest, recordings: dict) -> tuple[Path, dict[str, Any]]:
    return recordings[request.param]


def test_decodes_without_any_error(recording: tuple[Path, dict]) -> None:
    path, _ = recording
    assert decode_errors(path) == ""


def test_streams_codecs_dimensions_and_duration(recording: tuple[Path, dict]) -> None:
    path, summary = recording
    probe = ffprobe(path)
    streams = {stream["codec_type"]: stream for stream in probe["streams"]}
    assert streams["video"]["codec_name"] == "vp8"
    assert (streams["video"]["width"], streams["video"]["height"]) == (SOURCE_WIDTH, SOURCE_HEIGHT)
    assert streams["audio"]["codec_name"] == "opus"
    assert streams["audio"]["channels"] == 2
    assert int(streams["audio"]["sample_rate"]) == 48000
    duration = float(probe["format"]["duration"])
    assert abs(duration - SOURCE_DURATION) <= FRAME, duration
    assert abs(summary["duration"] - SOURCE_DURATION) <= FRAME


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_decoded_frames_equal_the_source(recording: tuple[Path, dict], kind: str) -> None:
    path, _ = recording
    decoded, errors = framemd5(path, kind)
    assert errors == ""
    assert decoded == source_md5(kind)


def test_summary_counts_every_packet_and_frame(recording: tuple[Path, dict]) -> None:
    path, summary = recording
    assert summary["size"] == path.stat().st_size
    video, audio = summary["streams"]
    assert (video["media"], video["codec"]) == ("video", "VP8")
    assert (audio["media"], audio["codec"]) == ("audio", "OPUS")
    for stream in (video, audio):
        assert stream["lost"] == stream["duplicates"] == stream["dropped_frames"] == 0
        assert stream["malformed_packets"] == 0
    assert video["frames"] == len(source_md5("video"))
    assert video["keyframes"] == 4  # one a second in the 4 s source
    assert audio["frames"] == audio["packets"] == len(source_md5("audio"))


def test_gstreamer_plays_every_frame(recording: tuple[Path, dict]) -> None:
    path, _ = recording
    assert gstreamer_buffers(path, "video") == len(source_md5("video"))
    assert gstreamer_buffers(path, "audio") == len(source_md5("audio"))
    assert gstreamer_video_md5(path, SOURCE_WIDTH, SOURCE_HEIGHT) == source_md5("video")


@pytest.mark.parametrize("sender", CAPTURES)
def test_webm_has_cues_for_every_keyframe(recordings: dict, sender: str) -> None:
    path, _ = recordings[sender, "webm"]
    info = mkvinfo(path)
    assert "+ Cues" in info
    assert info.count("+ Cue point") == 4
    assert "Duration: 00:00:04" in info
    # One cluster per second of the source, each opened by its keyframe.
    assert info.count("\n|+ Cluster\n") == 4


def _boxes(path: Path) -> list[Any]:
    data = path.read_bytes()
    stream = io.BytesIO(data)
    boxes = []
    while stream.tell() < len(data):
        boxes.append(Box.parse_stream(stream))
    return boxes


@pytest.mark.parametrize("sender", CAPTURES)
def test_mp4_box_layout_and_mfra(recordings: dict, sender: str) -> None:
    path, _ = recordings[sender, "mp4"]
    boxes = _boxes(path)
    types = [box.type for box in boxes]
    assert types[:2] == [b"ftyp", b"moov"]
    assert types[-1] == b"mfra"
    assert types[2:-1] == [b"moof", b"mdat"] * 4  # a fragment per keyframe
    moov = boxes[1]
    assert [child.type for child in moov.children][:2] == [b"mvhd", b"mvex"]
    assert moov.children[0].duration == pytest.approx(4000, abs=34)
    mfra = boxes[-1]
    tfras, mfro_size = _mfra_index(mfra.data)
    assert mfro_size == mfra.end - mfra.offset
    assert sorted(tfras) == [1, 2]
    # The video index lists each keyframe: at time 0, 1, 2, 3 s, in its fragment's moof.
    moof_offsets = [box.offset for box in boxes if box.type == b"moof"]
    video = tfras[1]
    assert [offset for _, offset, _ in video] == moof_offsets
    assert [round(time / 90000) for time, _, _ in video] == [0, 1, 2, 3]
    assert all(sample == 1 for _, _, sample in video)


def _mfra_index(data: bytes) -> tuple[dict[int, list[tuple[int, int, int]]], int]:
    """tfra entries (time, moof offset, sample number) per track, and mfro's size field.

    pymp4 walks the top level but does not decode tfra / mfro, so they are read here
    (ISO 14496-12 8.8.10 and 8.8.11; version 1, 4-byte traf/trun/sample numbers).
    """
    tfras: dict[int, list[tuple[int, int, int]]] = {}
    mfro_size = -1
    position = 0
    while position < len(data):
        size, box_type = struct.unpack_from(">I4s", data, position)
        if box_type == b"tfra":
            version, track, sizes, count = struct.unpack_from(">BxxxIII", data, position + 8)
            assert (version, sizes) == (1, 0x3F)
            entries = struct.iter_unpack(">QQIII", data[position + 24 : position + size])
            tfras[track] = [(time, offset, sample) for time, offset, _, _, sample in entries]
            assert len(tfras[track]) == count
        elif box_type == b"mfro":
            mfro_size = struct.unpack_from(">I", data, position + 12)[0]
        position += size
    return tfras, mfro_size
