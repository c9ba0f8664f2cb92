"""Every video codec from every real payloader fixture, into every container that may hold it.

The fixtures (`fixtures/video.json`, made by `fixtures/generate.py`) are captures of GStreamer,
FFmpeg and pion sending a stored clip; the clip's own decoded frames are the reference. The
`*-resize` sources switch picture size at keyframes, as WebRTC senders do.
"""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from recorder.mux import writer_class
from tests.av1_packetizer import packetize as av1_packetize
from tests.captures import write_capture
from tests.chromium import open_page
from tests.conftest import CONTAINERS, cli
from tests.judges import decode_errors, ffprobe, md5_column, mkvinfo, run
from tests.vectors import build_rtp
from tests.vp9_packetizer import LayerFrame, Vp9Packetizer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PLAY_PAGE = Path(__file__).parent / "browser" / "play.html"
MANIFEST = json.loads((FIXTURES / "video.json").read_text())
FFPROBE_NAMES = {"VP8": "vp8", "VP9": "vp9", "AV1": "av1", "H264": "h264", "H265": "hevc"}
SAMPLE_ENTRIES = {"VP8": b"vp08", "VP9": b"vp09", "AV1": b"av01", "H264": b"avc3", "H265": b"hev1"}
WEBM_CODEC_IDS = {"VP8": "V_VP8", "VP9": "V_VP9", "AV1": "V_AV1", "H264": "V_MPEG4/ISO/AVC"}


@dataclass(frozen=True)
class Case:
    source: dict[str, Any]  # the manifest entry
    capture: dict[str, Any]
    container: str

    @property
    def id(self) -> str:
        return f"{self.source['name']}-{self.capture['name']}-{self.container}"

    @property
    def directory(self) -> Path:
        return FIXTURES / self.source["dir"]


def _allowed(codec: str, container: str) -> bool:
    writer = writer_class(container)
    return codec in writer.codecs and codec not in writer.refusals


CASES = [
    Case(source, capture, container)
    for source in MANIFEST
    for capture in source["captures"]
    for container in CONTAINERS
    if _allowed(source["codec"], container)
]


class Recordings:
    """Each case converted by the CLI on first use, once per session."""

    def __init__(self, out: Path) -> None:
        self._out = out
        self._done: dict[str, tuple[Path, dict]] = {}

    def __getitem__(self, case: Case) -> tuple[Path, dict]:
        if case.id not in self._done:
            path = self._out / f"{case.id}.{case.container}"
            directory = case.directory
            done = cli("convert", directory / case.capture["pcap"],
                       "--sdp", directory / case.capture["sdp"], "-o", path)  # fmt: skip
            assert done.returncode == 0, f"{case.id}: {done.stderr}"
            self._done[case.id] = (path, json.loads(done.stdout))
        return self._done[case.id]


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Recordings:
    return Recordings(tmp_path_factory.mktemp("codecs"))


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


def _source_md5(case: Case) -> list[str]:
    # Frames are hashed at their own size (-autoscale 0): a resized stream would otherwise be
    # scaled to whatever size each file declares first, and the file declares the largest.
    result = run(
        "ffmpeg", "-v", "error", "-i", case.directory / case.source["source"],
        "-map", "0:v", "-autoscale", "0", "-f", "framemd5", "-",
    )  # fmt: skip
    return md5_column(result.stdout)


def _recorded_md5(path: Path) -> tuple[list[str], str]:
    result = run(
        "ffmpeg", "-v", "error", "-i", path, "-map", "0:v", "-autoscale", "0", "-f", "framemd5", "-"
    )
    return md5_column(result.stdout), result.stderr.strip()


@pytest.mark.parametrize("source", MANIFEST, ids=[source["name"] for source in MANIFEST])
def test_fixture_reference_is_the_source_decoded(source: dict[str, Any]) -> None:
    """The committed framemd5 is what FFmpeg decodes from the committed source."""
    directory = FIXTURES / source["dir"]
    reference = md5_column((directory / source["framemd5"]).read_text())
    result = run("ffmpeg", "-v", "error", "-i", directory / source["source"],
                 "-map", "0:v", "-f", "framemd5", "-")  # fmt: skip
    assert reference == md5_column(result.stdout)
    assert len(reference) == source["frames"]


def test_decodes_without_any_error(case: Case, converted: Recordings) -> None:
    path, _ = converted[case]
    assert decode_errors(path) == ""


def test_decoded_frames_equal_the_source(case: Case, converted: Recordings) -> None:
    path, _ = converted[case]
    decoded, errors = _recorded_md5(path)
    assert errors == ""
    assert decoded == _source_md5(case)


def test_codec_dimensions_and_counts(case: Case, converted: Recordings) -> None:
    path, summary = converted[case]
    [stream] = ffprobe(path)["streams"]
    assert stream["codec_name"] == FFPROBE_NAMES[case.source["codec"]]
    # FFmpeg reports the size of the first parameter sets for H.264/H.265 and the container's
    # for the others; either way one of the source's sizes.
    assert [stream["width"], stream["height"]] in case.source["sizes"]
    [video] = summary["streams"]
    assert video["codec"] == case.source["codec"]
    assert video["frames"] == case.source["frames"]
    assert video["keyframes"] == case.source["keyframes"]
    assert video["lost"] == video["dropped_frames"] == video["malformed_packets"] == 0
    assert abs(summary["duration"] - case.source["frames"] / 30) <= 1 / 30


def test_container_declares_the_codec_and_largest_size(case: Case, converted: Recordings) -> None:
    path, _ = converted[case]
    codec = case.source["codec"]
    largest = (case.source["width"], case.source["height"])
    if case.container == "mp4":
        data = path.read_bytes()
        entry, record = _mp4_sample_entry(data)
        assert entry == SAMPLE_ENTRIES[codec]
        tkhd = data.index(b"tkhd")
        # tkhd version 1: width and height, 16.16 fixed point, end the box.
        size = struct.unpack_from(">I", data, tkhd - 4)[0]
        width, height = struct.unpack_from(">II", data, tkhd - 4 + size - 8)
        assert (width >> 16, height >> 16) == largest
        stsd = data.index(b"stsd")
        assert struct.unpack_from(">HH", data, stsd + 12 + 32) == largest
        if codec == "AV1":
            # av1C must carry the sequence header OBU (Chromium's MSE refuses it otherwise).
            assert len(record) > 4 and (record[4] >> 3) & 0x0F == 1
    else:
        info = mkvinfo(path)
        assert f"Codec ID: {WEBM_CODEC_IDS[codec]}" in info
        assert f"Pixel width: {largest[0]}\n" in info and f"Pixel height: {largest[1]}\n" in info
        if codec in ("AV1", "H264"):
            assert "Codec's private data" in info


def _mp4_sample_entry(data: bytes) -> tuple[bytes, bytes]:
    """The video sample entry's type and its configuration box body (vpcC/avcC/hvcC/av1C)."""
    stsd = data.index(b"stsd")
    entry_type = data[stsd + 16 : stsd + 20]
    entry_size = struct.unpack_from(">I", data, stsd + 12)[0]
    # Visual sample entry: 8-byte header + 78 bytes of fields, then child boxes.
    child = stsd + 12 + 8 + 78
    size = struct.unpack_from(">I", data, child)[0]
    assert child + size <= stsd + 12 + entry_size
    return entry_type, data[child + 8 : child + size]


def test_webm_refuses_h265_before_creating_a_file(tmp_path: Path) -> None:
    [source] = [s for s in MANIFEST if s["codec"] == "H265" and len(s["sizes"]) == 1]
    capture = source["captures"][0]
    directory = FIXTURES / source["dir"]
    output = tmp_path / "out.webm"
    done = cli("convert", directory / capture["pcap"], "--sdp", directory / capture["sdp"],
               "-o", output)  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "H265" in done.stderr and "MP4" in done.stderr
    assert list(tmp_path.iterdir()) == []


# -- playback in Chromium --------------------------------------------------------------------

# What web players feed Media Source Extensions. Chromium 156's MSE takes neither VP8 in MP4 nor
# H.264 in WebM (isTypeSupported is false), so those two play through a plain <video src>.
MSE_TYPES = {
    ("VP8", "webm"): 'video/webm; codecs="vp8"',
    ("VP8", "mp4"): "",
    ("VP9", "webm"): 'video/webm; codecs="vp9"',
    ("VP9", "mp4"): 'video/mp4; codecs="vp09.00.10.08"',
    ("AV1", "webm"): 'video/webm; codecs="av01.0.00M.08"',
    ("AV1", "mp4"): 'video/mp4; codecs="av01.0.00M.08"',
    ("H264", "webm"): "",
    ("H264", "mp4"): 'video/mp4; codecs="avc3.42E01E"',
}
# The first capture of each source, in each container; Chromium decodes no H.265.
BROWSER_CASES = [
    case
    for case in CASES
    if case.capture is case.source["captures"][0] and case.source["codec"] != "H265"
]


@pytest.fixture(scope="module")
def played(converted: Recordings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("play")
    shutil.copy(PLAY_PAGE, root / "play.html")
    query = []
    for case in BROWSER_CASES:
        name = f"{case.id}.{case.container}"
        shutil.copy(converted[case][0], root / name)
        mime = MSE_TYPES[case.source["codec"], case.container]
        query.append(f"file={quote(name)}&type={quote(mime)}")
    results = open_page(root, "play.html?" + "&".join(query))
    return {Path(result["src"]).stem: result for result in results}


@pytest.mark.parametrize("case", BROWSER_CASES, ids=[case.id for case in BROWSER_CASES])
def test_chromium_plays_every_frame(case: Case, played: dict) -> None:
    result = played[case.id]
    if result["type"]:
        assert result["supported"], result
        assert result["append"] == "updateend", result
        [(start, end)] = result["buffered"]
        assert start == pytest.approx(0, abs=0.001)
        assert end == pytest.approx(case.source["frames"] / 30, abs=1 / 30)
    assert result["played"] is True and result["ended"] == "ended", result
    assert result["error"] is None
    assert (result["width"], result["height"]) in [tuple(size) for size in case.source["sizes"]]
    assert result["decoded"] == case.source["frames"]


# -- senders we have no capture of: packetizers written from the specs ----------------------

SPEC_PORT = 5004


def _ivf_frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    offset = struct.unpack_from("<H", data, 6)[0]
    frames = []
    while offset < len(data):
        size = struct.unpack_from("<I", data, offset)[0]
        frames.append(data[offset + 12 : offset + 12 + size])
        offset += 12 + size
    return frames


def _vp9_flexible(frames: list[bytes]) -> list[list[tuple[bytes, bool]]]:
    """Chrome's way: flexible mode, 15-bit picture IDs, layer indices, one reference each."""
    packetizer = Vp9Packetizer(1200, flexible=True, resolutions=[(320, 240)])
    pictures = []
    for number, frame in enumerate(frames):
        key = number % 30 == 0
        layer = LayerFrame(frame, inter_picture=not key, p_diffs=() if key else (1,))
        pictures.append(packetizer.picture([layer], keyframe=key))
    return pictures


def _av1_spec(frames: list[bytes]) -> list[list[tuple[bytes, bool]]]:
    """What browsers send: no size fields or temporal delimiters, W = 1..3, N on keyframes."""
    pictures = []
    for frame in frames:
        payloads = av1_packetize(frame, 1200)
        pictures.append([(payload, last) for last, payload in _mark_last(payloads)])
    return pictures


def _mark_last(items: list[bytes]) -> list[tuple[bool, bytes]]:
    return [(number == len(items) - 1, item) for number, item in enumerate(items)]


SPEC_SENDERS = {
    "vp9-flexible": ("VP9", "vp9", _vp9_flexible),
    "av1-spec": ("AV1", "av1", _av1_spec),
}


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("sender", SPEC_SENDERS)
def test_spec_packetized_streams_record_bit_exactly(
    sender: str, container: str, tmp_path: Path
) -> None:
    codec, directory, packetize = SPEC_SENDERS[sender]
    [source] = [s for s in MANIFEST if s["name"] == directory]
    frames = _ivf_frames(FIXTURES / directory / source["source"])
    datagrams = []
    sequence = 0xFFF0  # sequence numbers and timestamps both wrap during the clip
    for number, packets in enumerate(packetize(frames)):
        for payload, marker in packets:
            timestamp = (0xFFFF0000 + number * 3000) & 0xFFFFFFFF
            rtp = build_rtp(
                sequence=sequence & 0xFFFF,
                timestamp=timestamp,
                payload=payload,
                marker=marker,
                payload_type=98,
            )
            datagrams.append((1000.0 + number / 30, b"\x7f\0\0\1", 40000, SPEC_PORT, rtp))
            sequence += 1
    pcap = write_capture(tmp_path / "spec.pcap", datagrams)
    sdp = tmp_path / "spec.sdp"
    sdp.write_text(f"v=0\r\nm=video {SPEC_PORT} RTP/AVP 98\r\na=rtpmap:98 {codec}/90000\r\n")
    output = tmp_path / f"out.{container}"
    done = cli("convert", pcap, "--sdp", sdp, "-o", output)
    assert done.returncode == 0, done.stderr
    [video] = json.loads(done.stdout)["streams"]
    assert video["frames"] == source["frames"] and video["dropped_frames"] == 0
    decoded, errors = _recorded_md5(output)
    assert errors == ""
    reference = md5_column((FIXTURES / directory / source["framemd5"]).read_text())
    assert decoded == reference
