"""VP8 over RTP: the RFC 7741 payload descriptor and the RFC 6386 frame header.

Invented descriptors cover every combination of the optional fields; the real frames are the
first keyframe and interframe of fixtures/vp8-opus/source.ivf (captured, libvpx output) and the
packets GStreamer and FFmpeg made of them.
"""

from __future__ import annotations

from itertools import pairwise

import pytest

from recorder.codecs.vp8 import Vp8Depacketizer, descriptor_size
from recorder.errors import DepacketizeError
from recorder.media import CodecConfig
from recorder.rtp import RtpPacket
from tests.vectors import CAPTURES, ivf_dimensions, ivf_frames, rtp_datagrams, vp8_packetize

CLOCK_RATE = 90000
# The payload size the captures were made with (fixtures/README.md: mtu=1200, 12-byte header).
PACKET_SIZE = 1188


def _view(data: bytes) -> memoryview:
    return memoryview(data)


def _depacketizer() -> Vp8Depacketizer:
    return Vp8Depacketizer(CLOCK_RATE)


def _keyframe(width: int, height: int, version: int = 0, body: bytes = b"\x00" * 4) -> bytes:
    """An invented RFC 6386 section 9.1 keyframe header: frame tag, start code, dimensions."""
    tag = (version << 1) | 0x10  # P=0 (keyframe), version, show_frame=1, first_part_size=0
    return (
        bytes([tag, 0x00, 0x00])
        + b"\x9d\x01\x2a"
        + width.to_bytes(2, "little")
        + height.to_bytes(2, "little")
        + body
    )


# -- RFC 7741 section 4.2: payload descriptor forms (invented) --------------------------------

DESCRIPTORS = [
    pytest.param(b"\x10", 1, id="S-only"),
    pytest.param(b"\x00", 1, id="continuation"),
    pytest.param(b"\x60", 1, id="R-and-N-ignored"),
    pytest.param(b"\x90\x00", 2, id="X-nothing-else"),
    pytest.param(b"\x90\x0f", 2, id="X-RSV-ignored"),
    pytest.param(b"\x90\x80\x12", 3, id="I-7-bit"),
    pytest.param(b"\x90\x80\x7f", 3, id="I-7-bit-max"),
    pytest.param(b"\x90\x80\x81\x23", 4, id="I-15-bit"),
    pytest.param(b"\x90\x80\xff\xff", 4, id="I-15-bit-max"),
    pytest.param(b"\x90\x40\x05", 3, id="L"),
    pytest.param(b"\x90\x20\xc0", 3, id="T"),
    pytest.param(b"\x90\x10\x05", 3, id="K"),
    pytest.param(b"\x90\x30\xe5", 3, id="T-and-K-share-a-byte"),
    pytest.param(b"\x90\xc0\x12\x05", 4, id="I-7-L"),
    pytest.param(b"\x90\xe0\x12\x05\x40", 5, id="I-7-L-T"),
    pytest.param(b"\x90\xa0\x81\x23\x40", 5, id="I-15-T"),
    pytest.param(b"\x90\x50\x05\x05", 4, id="L-K"),
    pytest.param(b"\x90\xf0\x81\x23\x05\xc5", 6, id="I-15-L-T-K-longest"),
]


@pytest.mark.parametrize(("descriptor", "size"), DESCRIPTORS)
def test_descriptor_size(descriptor: bytes, size: int) -> None:
    assert descriptor_size(_view(descriptor + b"\x31\x00\x00")) == size


# -- RFC 7741 section 4.2: "S=1 and PID=0" starts a frame (invented) --------------------------


@pytest.mark.parametrize(
    ("descriptor", "starts"),
    [
        pytest.param(b"\x10", True, id="S-PID-0"),
        pytest.param(b"\x30", True, id="S-non-reference"),
        pytest.param(b"\x90\x80\x81\x23", True, id="S-with-PictureID"),
        pytest.param(b"\x00", False, id="no-S"),
        pytest.param(b"\x11", False, id="S-PID-1-second-partition"),
        pytest.param(b"\x17", False, id="S-PID-7"),
        pytest.param(b"\x01", False, id="PID-1-continuation"),
        pytest.param(b"\x80\x80\x81\x23", False, id="no-S-with-PictureID"),
    ],
)
def test_starts_frame(descriptor: bytes, starts: bool) -> None:
    assert _depacketizer().starts_frame(_view(descriptor + b"\x31\x00\x00")) is starts


# -- RFC 6386 section 9.1: a real keyframe and interframe (captured: source.ivf, libvpx) -------


def test_real_keyframe_in_one_payload() -> None:
    keyframe = ivf_frames()[0]
    depacketizer = _depacketizer()
    frame = depacketizer.build([_view(b"\x10" + keyframe)], 1234)
    assert frame.keyframe is True
    assert frame.data == keyframe
    assert frame.timestamp == 1234
    assert frame.duration == 0
    assert (frame.width, frame.height) == ivf_dimensions() == (320, 240)


def test_real_keyframe_sets_the_config() -> None:
    depacketizer = _depacketizer()
    assert depacketizer.config is None
    depacketizer.build([_view(b"\x10" + ivf_frames()[0])], 0)
    assert depacketizer.config == CodecConfig(
        codec="VP8",
        kind="video",
        clock_rate=CLOCK_RATE,
        width=320,
        height=240,
        profile=0,
        bit_depth=8,
        chroma_subsampling=1,
    )


def test_real_interframe() -> None:
    interframe = ivf_frames()[1]
    depacketizer = _depacketizer()
    frame = depacketizer.build([_view(b"\x10" + interframe)], 3000)
    assert frame.keyframe is False
    assert frame.data == interframe
    assert (frame.width, frame.height) == (0, 0)
    assert depacketizer.config is None, "an interframe says nothing about the picture"


def test_keyframes_of_source_ivf_are_every_30th() -> None:
    depacketizer = _depacketizer()
    keyframes = [
        index
        for index, data in enumerate(ivf_frames())
        if depacketizer.build([_view(b"\x10" + data)], index).keyframe
    ]
    assert keyframes == [0, 30, 60, 90]


# -- RFC 7741 section 4.4: frames split over several packets (invented from source.ivf) -------


@pytest.mark.parametrize(
    ("first", "rest"),
    [
        pytest.param(b"\x10", b"\x00", id="plain"),
        pytest.param(b"\x90\x80\x81\x23", b"\x80\x80\x81\x23", id="15-bit-PictureID"),
        pytest.param(b"\x90\xf0\x81\x23\x05\xc5", b"\x01", id="different-descriptor-sizes"),
    ],
)
def test_multi_packet_keyframe(first: bytes, rest: bytes) -> None:
    keyframe = ivf_frames()[0]
    payloads = vp8_packetize(keyframe, PACKET_SIZE, first, rest)
    assert len(payloads) == 7
    depacketizer = _depacketizer()
    assert depacketizer.starts_frame(_view(payloads[0])) is True
    assert not any(depacketizer.starts_frame(_view(p)) for p in payloads[1:])
    frame = depacketizer.build([_view(p) for p in payloads], 90000)
    assert frame.data == keyframe
    assert frame.keyframe is True
    assert (frame.width, frame.height) == (320, 240)


def test_keyframe_header_split_across_packets() -> None:
    # The 10-byte keyframe header may straddle packets; it is read from the joined frame.
    keyframe = ivf_frames()[0]
    payloads = vp8_packetize(keyframe, 4)
    frame = _depacketizer().build([_view(p) for p in payloads], 0)
    assert frame.data == keyframe
    assert (frame.width, frame.height) == (320, 240)


@pytest.mark.parametrize("capture", CAPTURES)
def test_captured_first_frame_reassembles_to_the_source_keyframe(capture: str) -> None:
    # Captured: GStreamer and FFmpeg packets of source.ivf's frame 0, up to the first marker.
    payloads = []
    for data in rtp_datagrams(capture, "video", 20):
        packet = RtpPacket.parse(data)
        payloads.append(packet.payload)
        if packet.marker:
            break
    depacketizer = _depacketizer()
    assert depacketizer.starts_frame(payloads[0]) is True
    frame = depacketizer.build(payloads, 0)
    assert frame.data == ivf_frames()[0]
    assert frame.keyframe is True
    assert depacketizer.config is not None
    assert (depacketizer.config.width, depacketizer.config.height) == (320, 240)


@pytest.mark.parametrize("capture", CAPTURES)
def test_captured_picture_id_is_15_bit_and_counts_frames(capture: str) -> None:
    # RFC 7741 section 4.2: PictureID, M=1 for 15 bits, +1 per frame, wrapping at 2^15.
    packets = [RtpPacket.parse(data) for data in rtp_datagrams(capture, "video", 40)]
    starts = [packets[0]] + [after for before, after in pairwise(packets) if before.marker]
    picture_ids = []
    for packet in starts:
        payload = packet.payload
        assert descriptor_size(payload) == 4
        assert payload[1] & 0x80 and payload[2] & 0x80
        picture_ids.append((payload[2] & 0x7F) << 8 | payload[3])
    steps = {(b - a) % (1 << 15) for a, b in pairwise(picture_ids)}
    assert steps == {1}


# -- RFC 6386 section 9.1: frame tag and keyframe header fields (invented) --------------------


def test_upscaling_bits_are_not_part_of_the_dimensions() -> None:
    # Two bits of horizontal / vertical scale above the 14 bits of size.
    header = _keyframe(320 | 0xC000, 240 | 0x4000)
    frame = _depacketizer().build([_view(b"\x10" + header)], 0)
    assert (frame.width, frame.height) == (320, 240)


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_version_is_the_profile(version: int) -> None:
    depacketizer = _depacketizer()
    depacketizer.build([_view(b"\x10" + _keyframe(16, 16, version))], 0)
    assert depacketizer.config is not None
    assert depacketizer.config.profile == version


def test_largest_dimensions() -> None:
    frame = _depacketizer().build([_view(b"\x10" + _keyframe(0x3FFF, 0x3FFF))], 0)
    assert (frame.width, frame.height) == (16383, 16383)


def test_config_is_kept_while_keyframes_agree_and_replaced_when_they_change() -> None:
    depacketizer = _depacketizer()
    depacketizer.build([_view(b"\x10" + _keyframe(320, 240))], 0)
    first = depacketizer.config
    depacketizer.build([_view(b"\x10" + _keyframe(320, 240))], 3000)
    assert depacketizer.config is first
    depacketizer.build([_view(b"\x10\x11\x00\x00")], 6000)  # interframe, empty partition
    assert depacketizer.config is first
    depacketizer.build([_view(b"\x10" + _keyframe(640, 480))], 9000)
    assert depacketizer.config is not first
    assert depacketizer.config is not None
    assert (depacketizer.config.width, depacketizer.config.height) == (640, 480)
    depacketizer.build([_view(b"\x10" + _keyframe(640, 480, version=1))], 12000)
    assert depacketizer.config.profile == 1


# -- RFC 7741 section 4.2 and RFC 6386 section 9.1: malformed payloads, exact reasons ---------
# (invented)

MALFORMED_DESCRIPTORS = [
    pytest.param(b"", "VP8 payload is empty", id="empty"),
    pytest.param(b"\x90", "VP8 payload descriptor has X set but no extension byte", id="X"),
    pytest.param(b"\x90\x80", "VP8 payload descriptor has truncated PictureID", id="I-missing"),
    pytest.param(
        b"\x90\x80\x81", "VP8 payload descriptor has truncated PictureID", id="I-15-bit-cut"
    ),
    pytest.param(
        b"\x90\x40", "VP8 payload descriptor truncated: 3 bytes declared, 2 present", id="L"
    ),
    pytest.param(
        b"\x90\x20", "VP8 payload descriptor truncated: 3 bytes declared, 2 present", id="T"
    ),
    pytest.param(
        b"\x90\x10", "VP8 payload descriptor truncated: 3 bytes declared, 2 present", id="K"
    ),
    pytest.param(
        b"\x90\xc0\x12",
        "VP8 payload descriptor truncated: 4 bytes declared, 3 present",
        id="I-7-L",
    ),
    pytest.param(
        b"\x90\xf0\x81\x23\x05",
        "VP8 payload descriptor truncated: 6 bytes declared, 5 present",
        id="I-15-L-TK",
    ),
    pytest.param(b"\x10", "VP8 payload has no data after its 1-byte descriptor", id="1-only"),
    pytest.param(b"\x90\x00", "VP8 payload has no data after its 2-byte descriptor", id="2-only"),
    pytest.param(
        b"\x90\xf0\x81\x23\x05\xc5",
        "VP8 payload has no data after its 6-byte descriptor",
        id="6-only",
    ),
]


@pytest.mark.parametrize(("payload", "message"), MALFORMED_DESCRIPTORS)
def test_malformed_descriptor(payload: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        descriptor_size(_view(payload))
    assert str(raised.value) == message


@pytest.mark.parametrize(("payload", "message"), MALFORMED_DESCRIPTORS)
def test_malformed_descriptor_in_starts_frame(payload: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        _depacketizer().starts_frame(_view(payload))
    assert str(raised.value) == message


MALFORMED_FRAMES = [
    pytest.param([], "VP8 frame truncated: 0 bytes, frame tag needs 3", id="no-payloads"),
    pytest.param(
        [b"\x10\x31\x00"], "VP8 frame truncated: 2 bytes, frame tag needs 3", id="tag-cut"
    ),
    pytest.param(
        [b"\x10\x31", b"\x00\x00"],
        "VP8 frame truncated: 2 bytes, frame tag needs 3",
        id="tag-cut-over-two-packets",
    ),
    pytest.param(
        [b"\x10\x09\x00\x00"], "VP8 frame header has version 4, expected 0-3", id="version-4"
    ),
    pytest.param(
        [b"\x10\x0e\x00\x00"], "VP8 frame header has version 7, expected 0-3", id="version-7"
    ),
    pytest.param(
        [b"\x10" + _keyframe(320, 240)[:9]],
        "VP8 keyframe truncated: 9 bytes, keyframe header needs 10",
        id="keyframe-cut",
    ),
    pytest.param(
        [b"\x10\x10\x00\x00\x9d\x01\x2b\x40\x01\xf0\x00"],
        "VP8 keyframe start code is 9d012b, expected 9d012a",
        id="start-code",
    ),
    pytest.param(
        [b"\x10" + _keyframe(0, 240)], "VP8 keyframe declares a 0x240 picture", id="width-0"
    ),
    pytest.param(
        [b"\x10" + _keyframe(320, 0xC000)],
        "VP8 keyframe declares a 320x0 picture",
        id="height-0-with-scale-bits",
    ),
    pytest.param(
        [b"\x10\x10\x00\x00\x9d", b"\x90"],
        "VP8 payload descriptor has X set but no extension byte",
        id="bad-descriptor-in-second-packet",
    ),
]


@pytest.mark.parametrize(("payloads", "message"), MALFORMED_FRAMES)
def test_malformed_frame(payloads: list[bytes], message: str) -> None:
    depacketizer = _depacketizer()
    with pytest.raises(DepacketizeError) as raised:
        depacketizer.build([_view(p) for p in payloads], 0)
    assert str(raised.value) == message
    assert depacketizer.config is None


# RFC 6386 section 9.1: first_part_size counts the bytes after the uncompressed header; a frame
# too short for it lost data on the way (invented).
def test_first_partition_overrunning_the_frame() -> None:
    tag = (0x01 | 0x10 | 100 << 5).to_bytes(3, "little")  # interframe, shown, 100-byte partition
    with pytest.raises(DepacketizeError) as raised:
        _depacketizer().build([_view(b"\x10" + tag + bytes(10))], 0)
    assert str(raised.value) == "VP8 first partition of 100 bytes overruns the 13-byte frame"
