"""RTP packets: RFC 3550 fixed header, CSRCs and padding; RFC 8285 header extensions.

Invented vectors are written out byte by byte, one comment per field, so a reader can check
them against the RFC diagrams without running anything. Captured vectors come from the real
GStreamer and FFmpeg captures in fixtures/vp8-opus/ and are only checked for what holds on
every regeneration of the fixtures.
"""

from __future__ import annotations

from itertools import pairwise

import pytest

from recorder.codecs.opus import packet_samples
from recorder.codecs.vp8 import descriptor_size
from recorder.errors import MalformedPacket, RtpError
from recorder.rtp import RtpPacket, is_rtcp
from tests.vectors import AUDIO_PT, CAPTURES, VIDEO_PT, datagrams, media_port, rtp_datagrams

# Packets per flow read from each capture: the first VP8 keyframe and some interframes.
CAPTURED_COUNT = 40

# -- RFC 3550 section 5.1: fixed header (invented) -------------------------------------------

MINIMAL = bytes(
    [
        0x80,  # V=2 P=0 X=0 CC=0
        0xE0,  # M=1 PT=96
        0x12, 0x34,  # sequence number 4660
        0x00, 0x01, 0xE2, 0x40,  # timestamp 123456
        0xDE, 0xAD, 0xBE, 0xEF,  # SSRC
        0x01, 0x02, 0x03,  # payload
    ]
)  # fmt: skip

ALL_ONES = bytes(
    [
        0x80,  # V=2 P=0 X=0 CC=0
        0x7F,  # M=0 PT=127
        0xFF, 0xFF,  # sequence number 65535
        0xFF, 0xFF, 0xFF, 0xFF,  # timestamp 2^32 - 1
        0xFF, 0xFF, 0xFF, 0xFF,  # SSRC
    ]
)  # fmt: skip


def test_fixed_header_fields() -> None:
    packet = RtpPacket.parse(MINIMAL)
    assert packet.marker is True
    assert packet.payload_type == 96
    assert packet.sequence == 0x1234
    assert packet.timestamp == 123456
    assert packet.ssrc == 0xDEADBEEF
    assert packet.csrc_count == 0
    assert packet.csrcs == ()
    assert packet.extension_profile is None
    assert packet.extension_data is None
    assert packet.extensions() == {}
    assert bytes(packet.payload) == b"\x01\x02\x03"
    assert bytes(packet.raw) == MINIMAL


def test_fixed_header_maximum_values_and_empty_payload() -> None:
    packet = RtpPacket.parse(ALL_ONES)
    assert packet.marker is False
    assert packet.payload_type == 127
    assert packet.sequence == 0xFFFF
    assert packet.timestamp == 0xFFFFFFFF
    assert packet.ssrc == 0xFFFFFFFF
    assert bytes(packet.payload) == b""


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_payload_is_a_view_into_the_input(kind: type) -> None:
    data = kind(MINIMAL)
    packet = RtpPacket.parse(data)
    assert isinstance(packet.payload, memoryview)
    assert packet.payload.obj is (data.obj if isinstance(data, memoryview) else data)


def test_repr_names_the_header_fields() -> None:
    assert repr(RtpPacket.parse(MINIMAL)) == (
        "RtpPacket(pt=96, seq=4660, ts=123456, ssrc=0xdeadbeef, marker=True, payload=3 bytes)"
    )


# -- RFC 3550 section 5.1: CSRC list (invented) ----------------------------------------------

TWO_CSRCS = bytes(
    [
        0x82,  # V=2 P=0 X=0 CC=2
        0x60,  # M=0 PT=96
        0x00, 0x07,  # sequence number 7
        0x00, 0x00, 0x00, 0x09,  # timestamp 9
        0x00, 0x00, 0x00, 0x01,  # SSRC 1
        0x11, 0x11, 0x11, 0x11,  # CSRC 1
        0x22, 0x22, 0x22, 0x22,  # CSRC 2
        0xAB,  # payload
    ]
)  # fmt: skip


def test_csrc_list() -> None:
    packet = RtpPacket.parse(TWO_CSRCS)
    assert packet.csrc_count == 2
    assert packet.csrcs == (0x11111111, 0x22222222)
    assert packet.ssrc == 1
    assert bytes(packet.payload) == b"\xab"


def test_fifteen_csrcs_the_most_cc_can_say() -> None:
    csrcs = b"".join(bytes([0, 0, 0, n]) for n in range(1, 16))
    data = bytes([0x8F, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2]) + csrcs + b"\xcc"
    packet = RtpPacket.parse(data)
    assert packet.csrc_count == 15
    assert packet.csrcs == tuple(range(1, 16))
    assert bytes(packet.payload) == b"\xcc"


# -- RFC 3550 section 5.1: padding, the last octet counts itself (invented) ------------------

PADDED = bytes(
    [
        0xA0,  # V=2 P=1 X=0 CC=0
        0x60,  # M=0 PT=96
        0x00, 0x01,  # sequence number 1
        0x00, 0x00, 0x00, 0x02,  # timestamp 2
        0x00, 0x00, 0x00, 0x03,  # SSRC 3
        0xAA, 0xBB,  # payload
        0x00, 0x00, 0x03,  # 3 octets of padding, the count included
    ]
)  # fmt: skip

PADDING_ONLY = bytes(
    [
        0xA0,  # V=2 P=1 X=0 CC=0
        0x60,  # M=0 PT=96
        0x00, 0x01,  # sequence number 1
        0x00, 0x00, 0x00, 0x02,  # timestamp 2
        0x00, 0x00, 0x00, 0x03,  # SSRC 3
        0x00, 0x00, 0x00, 0x04,  # 4 octets of padding and no payload (a bandwidth probe)
    ]
)  # fmt: skip


def test_padding_is_not_payload() -> None:
    packet = RtpPacket.parse(PADDED)
    assert bytes(packet.payload) == b"\xaa\xbb"


def test_one_octet_of_padding_is_the_count_alone() -> None:
    packet = RtpPacket.parse(bytes([0xA0]) + MINIMAL[1:12] + b"\xaa\x01")
    assert bytes(packet.payload) == b"\xaa"


def test_padding_only_packet_has_an_empty_payload() -> None:
    packet = RtpPacket.parse(PADDING_ONLY)
    assert bytes(packet.payload) == b""


# -- RFC 3550 section 5.3.1: a header extension of another profile (invented) ----------------

OTHER_PROFILE = bytes(
    [
        0x90,  # V=2 P=0 X=1 CC=0
        0x60,  # M=0 PT=96
        0x00, 0x01,  # sequence number 1
        0x00, 0x00, 0x00, 0x02,  # timestamp 2
        0x00, 0x00, 0x00, 0x03,  # SSRC 3
        0x12, 0x34,  # defined by profile: 0x1234, neither RFC 8285 form
        0x00, 0x01,  # length: 1 word
        0x01, 0x02, 0x03, 0x04,  # extension data
        0xEE,  # payload
    ]
)  # fmt: skip


def test_extension_of_another_profile_is_kept_but_has_no_elements() -> None:
    packet = RtpPacket.parse(OTHER_PROFILE)
    assert packet.extension_profile == 0x1234
    assert packet.extension_data is not None
    assert bytes(packet.extension_data) == b"\x01\x02\x03\x04"
    assert packet.extensions() == {}
    assert bytes(packet.payload) == b"\xee"


# -- RFC 8285 section 4.2: one-byte header form, profile 0xBEDE (invented) -------------------

ONE_BYTE = bytes(
    [
        0x90,  # V=2 P=0 X=1 CC=0
        0x60,  # M=0 PT=96
        0x00, 0x01,  # sequence number 1
        0x00, 0x00, 0x00, 0x02,  # timestamp 2
        0x00, 0x00, 0x00, 0x03,  # SSRC 3
        0xBE, 0xDE,  # defined by profile: one-byte form
        0x00, 0x03,  # length: 3 words
        0x10, 0xAA,  # ID=1 L=0: 1 byte
        0x21, 0xBB, 0xCC,  # ID=2 L=1: 2 bytes
        0x00, 0x00,  # padding between elements
        0x33, 0x01, 0x02, 0x03, 0x04,  # ID=3 L=3: 4 bytes
        0xEE,  # payload
    ]
)  # fmt: skip

ONE_BYTE_STOP = bytes(
    [
        0x90,  # V=2 P=0 X=1 CC=0
        0x60,  # M=0 PT=96
        0x00, 0x01,  # sequence number 1
        0x00, 0x00, 0x00, 0x02,  # timestamp 2
        0x00, 0x00, 0x00, 0x03,  # SSRC 3
        0xBE, 0xDE,  # defined by profile: one-byte form
        0x00, 0x02,  # length: 2 words
        0x10, 0xAA,  # ID=1 L=0: 1 byte
        0xFF,  # ID=15: stop; its length (16) would overrun but MUST be ignored
        0x2F, 0x00, 0x00, 0x00, 0x00,  # never read
        0xEE,  # payload
    ]
)  # fmt: skip

ONE_BYTE_LONGEST = bytes(
    [
        0x90,  # V=2 P=0 X=1 CC=0
        0x60,  # M=0 PT=96
        0x00, 0x01,  # sequence number 1
        0x00, 0x00, 0x00, 0x02,  # timestamp 2
        0x00, 0x00, 0x00, 0x03,  # SSRC 3
        0xBE, 0xDE,  # defined by profile: one-byte form
        0x00, 0x05,  # length: 5 words
        0xEF, *range(16),  # ID=14 L=15: 16 bytes, the longest element
        0x00, 0x00, 0x00,  # trailing padding
    ]
)  # fmt: skip


def test_one_byte_elements_with_padding_between_them() -> None:
    packet = RtpPacket.parse(ONE_BYTE)
    assert packet.extension_profile == 0xBEDE
    assert packet.extension_data is not None
    assert len(packet.extension_data) == 12
    assert packet.extensions() == {1: b"\xaa", 2: b"\xbb\xcc", 3: b"\x01\x02\x03\x04"}
    assert bytes(packet.payload) == b"\xee"


def test_one_byte_id_15_stops_parsing() -> None:
    packet = RtpPacket.parse(ONE_BYTE_STOP)
    assert packet.extensions() == {1: b"\xaa"}
    assert bytes(packet.payload) == b"\xee"


def test_one_byte_longest_element_and_empty_payload() -> None:
    packet = RtpPacket.parse(ONE_BYTE_LONGEST)
    assert packet.extensions() == {14: bytes(range(16))}
    assert bytes(packet.payload) == b""


def test_one_byte_extension_of_zero_words() -> None:
    data = bytes([0x90]) + MINIMAL[1:12] + b"\xbe\xde\x00\x00" + b"\xee"
    packet = RtpPacket.parse(data)
    assert packet.extension_profile == 0xBEDE
    assert packet.extension_data is not None
    assert bytes(packet.extension_data) == b""
    assert packet.extensions() == {}
    assert bytes(packet.payload) == b"\xee"


# RFC 8285 section 4.1.2: "An extension element with an ID value equal to 0 MUST NOT have an
# associated length field greater than 0. If such an extension element is encountered, its
# length field MUST be ignored, processing of the entire extension MUST terminate at that
# point". (invented)
ONE_BYTE_ID_0_WITH_LENGTH = bytes(
    [
        0x90,  # V=2 P=0 X=1 CC=0
        0x60,  # M=0 PT=96
        0x00, 0x01,  # sequence number 1
        0x00, 0x00, 0x00, 0x02,  # timestamp 2
        0x00, 0x00, 0x00, 0x03,  # SSRC 3
        0xBE, 0xDE,  # defined by profile: one-byte form
        0x00, 0x02,  # length: 2 words
        0x10, 0xAA,  # ID=1 L=0: 1 byte
        0x02, 0x01, 0x02, 0x03,  # ID=0 L=2: not padding, processing terminates here
        0x20, 0xBB,  # ID=2 L=0: after the stop, not an element
        0xEE,  # payload
    ]
)  # fmt: skip


def test_one_byte_id_0_with_a_length_stops_parsing() -> None:
    packet = RtpPacket.parse(ONE_BYTE_ID_0_WITH_LENGTH)
    assert packet.extensions() == {1: b"\xaa"}


# -- RFC 8285 section 4.3: two-byte header form, profile 0x100X (invented) -------------------

TWO_BYTE = bytes(
    [
        0x90,  # V=2 P=0 X=1 CC=0
        0x60,  # M=0 PT=96
        0x00, 0x01,  # sequence number 1
        0x00, 0x00, 0x00, 0x02,  # timestamp 2
        0x00, 0x00, 0x00, 0x03,  # SSRC 3
        0x10, 0x0A,  # defined by profile: 0x100, appbits 0xA
        0x00, 0x03,  # length: 3 words
        0x01, 0x00,  # ID=1 length 0: no data
        0x02, 0x01, 0xBB,  # ID=2 length 1
        0x00,  # padding between elements
        0xC8, 0x04, 0x01, 0x02, 0x03, 0x04,  # ID=200 length 4
        0xEE,  # payload
    ]
)  # fmt: skip

TWO_BYTE_LONG = bytes(
    [
        0x90,  # V=2 P=0 X=1 CC=0
        0x60,  # M=0 PT=96
        0x00, 0x01,  # sequence number 1
        0x00, 0x00, 0x00, 0x02,  # timestamp 2
        0x00, 0x00, 0x00, 0x03,  # SSRC 3
        0x10, 0x00,  # defined by profile: 0x100, appbits 0
        0x00, 0x05,  # length: 5 words
        0x0F, 0x11, *range(17),  # ID=15 (no stop in this form) length 17: too long for one-byte
        0x00,  # trailing padding
        0xEE,  # payload
    ]
)  # fmt: skip


def test_two_byte_elements_with_appbits_zero_length_and_padding() -> None:
    packet = RtpPacket.parse(TWO_BYTE)
    assert packet.extension_profile == 0x100A
    assert packet.extensions() == {1: b"", 2: b"\xbb", 200: b"\x01\x02\x03\x04"}
    assert bytes(packet.payload) == b"\xee"


def test_two_byte_id_15_is_an_ordinary_element() -> None:
    packet = RtpPacket.parse(TWO_BYTE_LONG)
    assert packet.extensions() == {15: bytes(range(17))}
    assert bytes(packet.payload) == b"\xee"


@pytest.mark.parametrize("profile", [0x1010, 0x0100, 0xBEDF, 0xBEDD])
def test_profiles_next_to_the_rfc_8285_ones_have_no_elements(profile: int) -> None:
    data = bytearray(TWO_BYTE)
    data[12:14] = profile.to_bytes(2, "big")
    assert RtpPacket.parse(data).extensions() == {}


# -- RFC 3550 sections 5.1 and 5.3.1: CSRCs, extension and padding together (invented) -------

EVERYTHING = bytes(
    [
        0xB1,  # V=2 P=1 X=1 CC=1
        0xEF,  # M=1 PT=111
        0xFF, 0xFE,  # sequence number 65534
        0x80, 0x00, 0x00, 0x00,  # timestamp 2^31
        0x0A, 0x0B, 0x0C, 0x0D,  # SSRC
        0xCA, 0xFE, 0xBA, 0xBE,  # CSRC
        0xBE, 0xDE,  # defined by profile: one-byte form
        0x00, 0x01,  # length: 1 word
        0x50, 0x07,  # ID=5 L=0: 1 byte
        0x00, 0x00,  # trailing padding
        0xF8, 0xFF, 0xFE,  # payload: an Opus CELT FB 20 ms TOC and two bytes
        0x00, 0x02,  # 2 octets of padding
    ]
)  # fmt: skip


def test_csrc_extension_and_padding_together() -> None:
    packet = RtpPacket.parse(EVERYTHING)
    assert (packet.marker, packet.payload_type) == (True, 111)
    assert (packet.sequence, packet.timestamp, packet.ssrc) == (65534, 1 << 31, 0x0A0B0C0D)
    assert packet.csrcs == (0xCAFEBABE,)
    assert packet.extension_profile == 0xBEDE
    assert packet.extensions() == {5: b"\x07"}
    assert bytes(packet.payload) == b"\xf8\xff\xfe"


# -- RFC 3550 section 5.1 and appendix A.1: malformed headers, exact reasons (invented) -------

HEADER = MINIMAL[:12]

MALFORMED_HEADERS = [
    pytest.param(b"", "RTP packet truncated: 0 bytes, the fixed header needs 12", id="empty"),
    pytest.param(
        HEADER[:11], "RTP packet truncated: 11 bytes, the fixed header needs 12", id="11-bytes"
    ),
    pytest.param(bytes([0x00]) + HEADER[1:], "RTP version is 0, expected 2", id="version-0"),
    pytest.param(bytes([0x40]) + HEADER[1:], "RTP version is 1, expected 2", id="version-1"),
    pytest.param(bytes([0xC0]) + HEADER[1:], "RTP version is 3, expected 2", id="version-3"),
    pytest.param(
        bytes([0x82]) + HEADER[1:] + b"\x00\x00\x00\x01",
        "RTP packet truncated: 16 bytes, 2 CSRCs need 20",
        id="csrc-list-cut",
    ),
    pytest.param(
        bytes([0x8F]) + HEADER[1:],
        "RTP packet truncated: 12 bytes, 15 CSRCs need 72",
        id="csrc-list-missing",
    ),
    pytest.param(
        bytes([0xA0]) + HEADER[1:] + b"\xaa\x00", "RTP padding length is zero", id="padding-0"
    ),
    pytest.param(
        bytes([0xA0]) + HEADER[1:] + b"\xaa\x03",
        "RTP padding of 3 bytes overruns the payload",
        id="padding-past-payload",
    ),
    pytest.param(
        bytes([0xA0]) + HEADER[1:] + b"\x20\x20",
        "RTP padding of 32 bytes overruns the payload",
        id="padding-past-packet",
    ),
    pytest.param(
        bytes([0x90]) + HEADER[1:] + b"\xbe\xde\x00",
        "RTP header extension truncated: no room for its 4-byte header",
        id="extension-header-cut",
    ),
    pytest.param(
        bytes([0x90]) + HEADER[1:] + b"\xbe\xde\x00\x02\x10\xaa\x00\x00",
        "RTP header extension of 8 bytes overruns the packet",
        id="extension-longer-than-packet",
    ),
    # The padding (3 octets) reaches back into a well-formed extension; the reason given
    # names the extension, which is checked against the end of the payload.
    pytest.param(
        bytes([0xB0]) + HEADER[1:] + b"\xbe\xde\x00\x01\x10\xaa\x00\x00\x00\x03",
        "RTP header extension of 4 bytes overruns the packet",
        id="padding-into-extension",
    ),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED_HEADERS)
def test_malformed_header(data: bytes, message: str) -> None:
    with pytest.raises(RtpError) as raised:
        RtpPacket.parse(data)
    assert str(raised.value) == message


def test_rtp_error_is_a_malformed_packet_and_a_value_error() -> None:
    with pytest.raises(RtpError) as raised:
        RtpPacket.parse(b"")
    assert isinstance(raised.value, MalformedPacket)
    assert isinstance(raised.value, ValueError)


# -- RFC 8285 sections 4.2 and 4.3: malformed extension elements, exact reasons (invented) ----


def _with_extension(profile: int, elements: bytes) -> bytes:
    """MINIMAL's header with X=1 and `elements` (a multiple of 4 bytes) as its extension."""
    assert len(elements) % 4 == 0
    words = len(elements) // 4
    return (
        bytes([0x90])
        + MINIMAL[1:12]
        + profile.to_bytes(2, "big")
        + words.to_bytes(2, "big")
        + elements
    )


MALFORMED_EXTENSIONS = [
    pytest.param(
        _with_extension(0xBEDE, b"\x10\xaa\x23\x01"),
        "RTP one-byte header extension element 2 of 4 bytes overruns the extension",
        id="one-byte-overrun",
    ),
    pytest.param(
        _with_extension(0xBEDE, b"\x00\x00\x00\xe0"),
        "RTP one-byte header extension element 14 of 1 bytes overruns the extension",
        id="one-byte-header-last",
    ),
    pytest.param(
        _with_extension(0x1000, b"\x01\x00\x00\x07"),
        "RTP two-byte header extension element 7 has no length byte",
        id="two-byte-no-length",
    ),
    pytest.param(
        _with_extension(0x100F, b"\x07\x09\x01\x02"),
        "RTP two-byte header extension element 7 of 9 bytes overruns the extension",
        id="two-byte-overrun",
    ),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED_EXTENSIONS)
def test_malformed_extension(data: bytes, message: str) -> None:
    packet = RtpPacket.parse(data)  # the header itself is fine; elements are parsed lazily
    with pytest.raises(RtpError) as raised:
        packet.extensions()
    assert str(raised.value) == message


# -- RFC 5761 section 4: RTCP packet types 192-223 in the second octet (invented) ------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"", False, id="empty"),
        pytest.param(b"\x80", False, id="one-byte"),
        pytest.param(b"\x80\xc8", True, id="SR-200"),
        pytest.param(b"\x81\xc9\x00\x07", True, id="RR-201"),
        pytest.param(b"\x80\xc0", True, id="192-first"),
        pytest.param(b"\x80\xdf", True, id="223-last"),
        pytest.param(b"\x80\xbf", False, id="191-PT-63-marker"),
        pytest.param(b"\x80\xe0", False, id="224-PT-96-marker"),
        pytest.param(b"\x80\x60", False, id="PT-96"),
        pytest.param(b"\x80\xef", False, id="PT-111-marker"),
        pytest.param(memoryview(b"\x80\xcb"), True, id="BYE-203-memoryview"),
    ],
)
def test_is_rtcp(data: bytes, expected: bool) -> None:
    assert is_rtcp(data) is expected


# -- RFC 3550 section 5.1: captured GStreamer and FFmpeg packets ------------------------------

FLOWS = [
    pytest.param(capture, kind, payload_type, id=f"{capture}-{kind}")
    for capture in CAPTURES
    for kind, payload_type in (("video", VIDEO_PT), ("audio", AUDIO_PT))
]


@pytest.mark.parametrize(("capture", "kind", "payload_type"), FLOWS)
def test_captured_flow_header_invariants(capture: str, kind: str, payload_type: int) -> None:
    packets = [RtpPacket.parse(data) for data in rtp_datagrams(capture, kind, CAPTURED_COUNT)]
    assert len(packets) == CAPTURED_COUNT
    first = packets[0]
    for packet in packets:
        assert packet.raw[0] >> 6 == 2
        assert packet.payload_type == payload_type
        assert packet.ssrc == first.ssrc
        assert packet.csrc_count == 0
        assert packet.extension_profile is None
        assert len(packet.payload) > 0
        assert not is_rtcp(packet.raw)
    for before, after in pairwise(packets):
        assert after.sequence == (before.sequence + 1) & 0xFFFF


@pytest.mark.parametrize("capture", CAPTURES)
def test_captured_video_frames_start_with_s_and_end_with_marker(capture: str) -> None:
    # RFC 7741 section 4.2: S=1 and PID=0 on the first packet of a frame; section 4.1: the
    # marker on its last. The timestamp is the frame's, so it changes only after a marker.
    packets = [RtpPacket.parse(data) for data in rtp_datagrams(capture, "video", CAPTURED_COUNT)]
    frame_starts = [0] + [i + 1 for i, p in enumerate(packets[:-1]) if p.marker]
    assert len(frame_starts) > 2, "the first packets hold a keyframe and some interframes"
    for index, packet in enumerate(packets):
        # S=1 with PID=0 exactly on frame starts; S=1 with PID>0 (a later partition starting
        # at a packet boundary) only on the packets after it.
        starts = index in frame_starts
        assert (packet.payload[0] & 0x17 == 0x10) is starts, f"S and PID of packet {index}"
        if not starts:
            assert packet.timestamp == packets[index - 1].timestamp
        assert descriptor_size(packet.payload) < len(packet.payload)
    for start in frame_starts[1:]:
        assert packets[start].timestamp != packets[start - 1].timestamp


@pytest.mark.parametrize("capture", CAPTURES)
def test_captured_audio_is_one_opus_packet_per_rtp_packet(capture: str) -> None:
    # RFC 7587 section 4.2: one Opus packet per RTP packet; the source has 20 ms packets, so
    # after the first (see fixtures/README.md on GStreamer's pre-skip step) the RTP timestamp
    # advances by 960 at 48 kHz.
    packets = [RtpPacket.parse(data) for data in rtp_datagrams(capture, "audio", CAPTURED_COUNT)]
    assert packets[0].marker, "RFC 3551 section 4.1: marker on the first packet of a talkspurt"
    for packet in packets:
        assert packet_samples(packet.payload) == 960
    steps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in pairwise(packets)]
    assert set(steps[1:]) == {960}


def test_captured_ffmpeg_sender_reports_are_rtcp() -> None:
    # RFC 3550 section 11: without a=rtcp, RTCP goes to the RTP port + 1; FFmpeg sends an SR
    # (packet type 200) per stream there, carrying the media SSRC.
    for kind in ("video", "audio"):
        rtp = RtpPacket.parse(rtp_datagrams("ffmpeg", kind, 1)[0])
        reports = datagrams("ffmpeg", media_port("ffmpeg", kind) + 1)
        assert reports and all(is_rtcp(report) for report in reports)
        assert reports[0][1] == 200
        assert int.from_bytes(reports[0][4:8], "big") == rtp.ssrc


def test_captured_mpegts_is_not_rtp() -> None:
    # fixtures/README.md: MPEG-TS sync byte 0x47 reads as RTP version 1.
    data = datagrams("mpegts", 5004)[0]
    assert data[0] == 0x47
    assert not is_rtcp(data)
    with pytest.raises(RtpError) as raised:
        RtpPacket.parse(data)
    assert str(raised.value) == "RTP version is 1, expected 2"
