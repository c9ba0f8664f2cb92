"""Readers for the captured fixtures and builders for invented packets, shared by the tests.

Captured vectors come from `fixtures/vp8-opus/` (see its README): SSRCs, sequence numbers and
timestamps change whenever the fixtures are regenerated, so nothing here returns them as
constants; tests read them from the packets.
"""

from __future__ import annotations

import struct
from functools import cache
from pathlib import Path

from recorder.capture import read_udp
from recorder.rtp import is_rtcp
from recorder.sdp import load_sdp

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vp8-opus"
# The two RTP captures of the same sources (fixtures/README.md).
CAPTURES = ("gst", "ffmpeg")
VIDEO_PT = 96
AUDIO_PT = 111

# IVF: a 32-byte file header whose bytes 6-7 give its length, then per frame a 12-byte header
# (4-byte little-endian frame size, 8-byte timestamp) and the frame.
_IVF_FRAME_HEADER = struct.Struct("<IQ")
# RFC 3533 section 6: the fixed part of an Ogg page header, up to the segment count.
OGG_PAGE_HEADER_SIZE = 27


@cache
def ivf_frames(name: str = "source.ivf") -> tuple[bytes, ...]:
    """Every frame of an IVF file in the fixtures."""
    data = (FIXTURES / name).read_bytes()
    assert data[:4] == b"DKIF", f"{name} is not IVF"
    offset = struct.unpack_from("<H", data, 6)[0]
    frames = []
    while offset < len(data):
        size, _ = _IVF_FRAME_HEADER.unpack_from(data, offset)
        offset += _IVF_FRAME_HEADER.size
        frames.append(data[offset : offset + size])
        offset += size
    return tuple(frames)


@cache
def ogg_packets(name: str = "source.ogg") -> tuple[bytes, ...]:
    """Every packet of a single-stream Ogg file, OpusHead and OpusTags included."""
    data = (FIXTURES / name).read_bytes()
    packets = []
    pending = b""
    offset = 0
    while offset < len(data):
        assert data[offset : offset + 4] == b"OggS", f"{name}: no page at byte {offset}"
        segments = data[offset + OGG_PAGE_HEADER_SIZE - 1]
        lacing = data[offset + OGG_PAGE_HEADER_SIZE : offset + OGG_PAGE_HEADER_SIZE + segments]
        body = offset + OGG_PAGE_HEADER_SIZE + segments
        for value in lacing:
            pending += data[body : body + value]
            body += value
            if value < 255:  # RFC 3533 section 5: a lacing value below 255 ends a packet
                packets.append(pending)
                pending = b""
        offset = body
    return tuple(packets)


@cache
def media_port(capture: str, kind: str) -> int:
    """The RTP port of the `kind` ("audio" / "video") section of the capture's SDP."""
    (section,) = [m for m in load_sdp(FIXTURES / f"{capture}.sdp").media if m.kind == kind]
    return section.port


@cache
def datagrams(capture: str, port: int) -> tuple[bytes, ...]:
    """UDP payloads sent to `port` in the capture, in capture order."""
    return tuple(
        payload
        for _, _, _, destination, payload in read_udp(FIXTURES / f"{capture}.pcap")
        if destination == port
    )


def rtp_datagrams(capture: str, kind: str, count: int | None = None) -> list[bytes]:
    """The first `count` (all if None) RTP datagrams of the capture's audio or video flow."""
    flow = [data for data in datagrams(capture, media_port(capture, kind)) if not is_rtcp(data)]
    return flow if count is None else flow[:count]


def build_rtp(
    *,
    sequence: int,
    timestamp: int,
    payload: bytes,
    marker: bool = False,
    payload_type: int = VIDEO_PT,
    ssrc: int = 0x01020304,
) -> bytes:
    """A plain RFC 3550 packet: no CSRC, extension or padding."""
    second = (0x80 if marker else 0) | payload_type
    return struct.pack("!BBHII", 0x80, second, sequence, timestamp, ssrc) + payload


def ivf_dimensions(name: str = "source.ivf") -> tuple[int, int]:
    """Width and height from the IVF file header (bytes 12-15, little-endian)."""
    data = (FIXTURES / name).read_bytes()
    width, height = struct.unpack_from("<HH", data, 12)
    return width, height


def vp8_packetize(
    frame: bytes, size: int, first: bytes = b"\x10", rest: bytes = b"\x00"
) -> list[bytes]:
    """RFC 7741 payloads of one frame: `first` / `rest` descriptors, `size` frame bytes each."""
    chunks = [frame[i : i + size] for i in range(0, len(frame), size)]
    return [(rest if i else first) + chunk for i, chunk in enumerate(chunks)]
