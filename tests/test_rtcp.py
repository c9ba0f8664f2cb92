"""RTCP: compound parsing (RFC 3550 section 6, RFC 5506), builders, reception reports.

Invented vectors are written out byte by byte with one comment per field, to be checked against
the RFC diagrams. Real RTCP comes from FFmpeg (the SRs in fixtures/vp8-opus/ffmpeg.pcap) and
from GStreamer's rtpbin (bytes captured once and embedded below). A live GStreamer sender
checks that it obeys the PLI and FIR we build.
"""

from __future__ import annotations

import select
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.capture import read_udp
from recorder.codecs.vp8 import descriptor_size
from recorder.errors import MalformedPacket
from recorder.rtcp import (
    Bye,
    Feedback,
    ReceiverReport,
    ReceptionReport,
    ReportBlock,
    RtcpError,
    SenderReport,
    SourceDescription,
    Unknown,
    bye,
    compound,
    feedback_compound,
    fir,
    fir_requests,
    ntp_middle,
    ntp_to_unix,
    parse_compound,
    pli,
    receiver_report,
    report_block,
    source_description,
    unix_to_ntp,
)
from recorder.rtp import RtpPacket, is_rtcp
from tests.fuzzing import FUZZ, first, mutations, seeded
from tests.judges import FIXTURES, require

# -- RFC 3550 section 6.4.1: SR (invented) ----------------------------------------------------

SR_ONE_BLOCK = bytes(
    [
        0x81, 0xC8, 0x00, 0x0C,  # V=2 P=0 RC=1, PT=200 SR, length 12 words (52 bytes)
        0x11, 0x22, 0x33, 0x44,  # SSRC of sender
        0xE8, 0x00, 0x00, 0x00,  # NTP seconds (2023-06-...)
        0x80, 0x00, 0x00, 0x00,  # NTP fraction: 0.5
        0x00, 0x01, 0xE2, 0x40,  # RTP timestamp 123456
        0x00, 0x00, 0x00, 0x64,  # sender's packet count 100
        0x00, 0x01, 0x86, 0xA0,  # sender's octet count 100000
        # report block 1
        0x55, 0x66, 0x77, 0x88,  # SSRC_1 (source being reported on)
        0x40,  # fraction lost 64/256
        0x00, 0x00, 0x0A,  # cumulative lost 10
        0x00, 0x01, 0xFF, 0xFE,  # extended highest sequence: 1 cycle, sequence 65534
        0x00, 0x00, 0x00, 0x2A,  # interarrival jitter 42
        0xE7, 0xFF, 0xC0, 0x00,  # LSR
        0x00, 0x01, 0x80, 0x00,  # DLSR 1.5 s in 1/65536 s
    ]
)  # fmt: skip

SR_NO_BLOCKS = bytes(
    [
        0x80, 0xC8, 0x00, 0x06,  # V=2 P=0 RC=0, PT=200 SR, length 6 (28 bytes)
        0xFF, 0xFF, 0xFF, 0xFF,  # SSRC of sender
        0xFF, 0xFF, 0xFF, 0xFF,  # NTP seconds
        0xFF, 0xFF, 0xFF, 0xFF,  # NTP fraction
        0xFF, 0xFF, 0xFF, 0xFF,  # RTP timestamp
        0xFF, 0xFF, 0xFF, 0xFF,  # packet count
        0xFF, 0xFF, 0xFF, 0xFF,  # octet count
    ]
)  # fmt: skip

# Section 6.4.1: "profile-specific extensions" may follow the report blocks; skipped.
SR_WITH_EXTENSION = bytes(
    [
        0x80, 0xC8, 0x00, 0x07,  # V=2 RC=0 SR, length 7 (32 bytes)
        0x00, 0x00, 0x00, 0x01,  # SSRC of sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  # NTP 0
        0x00, 0x00, 0x00, 0x00,  # RTP timestamp
        0x00, 0x00, 0x00, 0x00,  # packet count
        0x00, 0x00, 0x00, 0x00,  # octet count
        0xAB, 0xCD, 0xEF, 0x01,  # profile-specific extension
    ]
)  # fmt: skip

# -- section 6.4.2: RR (invented) -------------------------------------------------------------

RR_EMPTY = bytes(
    [
        0x80, 0xC9, 0x00, 0x01,  # V=2 P=0 RC=0, PT=201 RR, length 1 (8 bytes)
        0x0A, 0x0B, 0x0C, 0x0D,  # SSRC of packet sender
    ]
)  # fmt: skip

RR_TWO_BLOCKS = bytes(
    [
        0x82, 0xC9, 0x00, 0x0D,  # V=2 P=0 RC=2, PT=201 RR, length 13 (56 bytes)
        0x0A, 0x0B, 0x0C, 0x0D,  # SSRC of packet sender
        # block 1: duplicates made loss negative
        0x00, 0x00, 0x00, 0x01,  # SSRC_1
        0x00,  # fraction lost 0
        0xFF, 0xFF, 0xFF,  # cumulative lost -1
        0x00, 0x00, 0x00, 0x10,  # highest sequence 16
        0x00, 0x00, 0x00, 0x00,  # jitter 0
        0x00, 0x00, 0x00, 0x00,  # LSR: no SR received
        0x00, 0x00, 0x00, 0x00,  # DLSR
        # block 2: the extremes of the signed 24-bit field and the other fields
        0xFF, 0xFF, 0xFF, 0xFF,  # SSRC_2
        0xFF,  # fraction lost 255
        0x80, 0x00, 0x00,  # cumulative lost -8388608
        0xFF, 0xFF, 0xFF, 0xFF,  # highest sequence
        0xFF, 0xFF, 0xFF, 0xFF,  # jitter
        0xFF, 0xFF, 0xFF, 0xFF,  # LSR
        0xFF, 0xFF, 0xFF, 0xFF,  # DLSR
    ]
)  # fmt: skip

RR_MAX_LOSS = bytes(
    [
        0x81, 0xC9, 0x00, 0x07,  # V=2 RC=1 RR, length 7 (32 bytes)
        0x0A, 0x0B, 0x0C, 0x0D,  # SSRC of packet sender
        0x00, 0x00, 0x00, 0x01,  # SSRC_1
        0x00,  # fraction lost
        0x7F, 0xFF, 0xFF,  # cumulative lost 8388607, the largest positive value
        0x00, 0x00, 0x00, 0x00,  # highest sequence
        0x00, 0x00, 0x00, 0x00,  # jitter
        0x00, 0x00, 0x00, 0x00,  # LSR
        0x00, 0x00, 0x00, 0x00,  # DLSR
    ]
)  # fmt: skip

# -- section 6.5: SDES (invented) -------------------------------------------------------------

SDES_TWO_CHUNKS = bytes(
    [
        0x82, 0xCA, 0x00, 0x09,  # V=2 P=0 SC=2, PT=202 SDES, length 9 (40 bytes)
        # chunk 1
        0x11, 0x22, 0x33, 0x44,  # SSRC
        0x01, 0x05, *b"alice",  # CNAME "alice"
        0x02, 0x03, *b"Ali",  # NAME "Ali": the items end on a word boundary (16 bytes)
        0x00, 0x00, 0x00, 0x00,  # end of list, padding to the next boundary
        # chunk 2
        0x55, 0x66, 0x77, 0x88,  # SSRC
        0x08, 0x07, 0x03, *b"abc", *b"xyz",  # PRIV: prefix length 3, "abc", value "xyz"
        0x01, 0x00,  # CNAME of zero length (allowed by the item format)
        0x00,  # end of list: the chunk is 16 bytes (4 + 9 + 2 + 1)
    ]
)  # fmt: skip

# A list whose items end on a 32-bit boundary still needs a null octet: a whole extra word.
SDES_BOUNDARY = bytes(
    [
        0x81, 0xCA, 0x00, 0x03,  # V=2 SC=1 SDES, length 3 (16 bytes)
        0x00, 0x00, 0x00, 0x07,  # SSRC
        0x01, 0x02, *b"ab",  # CNAME "ab": the items end at a word boundary
        0x00, 0x00, 0x00, 0x00,  # end of list and padding
    ]
)  # fmt: skip

SDES_EMPTY = bytes([0x80, 0xCA, 0x00, 0x00])  # SC=0: nothing to describe

# -- section 6.6: BYE (invented) --------------------------------------------------------------

BYE_ONE = bytes(
    [
        0x81, 0xCB, 0x00, 0x01,  # V=2 SC=1, PT=203 BYE, length 1 (8 bytes)
        0xDE, 0xAD, 0xBE, 0xEF,  # SSRC
    ]
)  # fmt: skip

BYE_TWO_WITH_REASON = bytes(
    [
        0x82, 0xCB, 0x00, 0x04,  # V=2 SC=2 BYE, length 4 (20 bytes)
        0x00, 0x00, 0x00, 0x01,  # SSRC
        0x00, 0x00, 0x00, 0x02,  # CSRC
        0x06, *b"caf\xc3\xa9!",  # reason: length 6, "café!" in UTF-8
        0x00,  # padding to 32 bits
    ]
)  # fmt: skip

BYE_EMPTY_REASON = bytes(
    [
        0x81, 0xCB, 0x00, 0x02,  # V=2 SC=1 BYE, length 2 (12 bytes)
        0x00, 0x00, 0x00, 0x01,  # SSRC
        0x00, 0x00, 0x00, 0x00,  # reason of length 0, padding
    ]
)  # fmt: skip

# -- RFC 4585 section 6.1 / 6.3.1, RFC 5104 section 4.3.1: feedback (invented) ---------------

PLI = bytes(
    [
        0x81, 0xCE, 0x00, 0x02,  # V=2 P=0 FMT=1 PLI, PT=206 PSFB, length 2 (12 bytes)
        0x00, 0x00, 0x00, 0x01,  # SSRC of packet sender
        0x12, 0x34, 0x56, 0x78,  # SSRC of media source
    ]
)  # fmt: skip

FIR_TWO_ENTRIES = bytes(
    [
        0x84, 0xCE, 0x00, 0x06,  # V=2 FMT=4 FIR, PT=206 PSFB, length 6 (28 bytes)
        0x00, 0x00, 0x00, 0x01,  # SSRC of packet sender
        0x00, 0x00, 0x00, 0x00,  # SSRC of media source: unused, 0 (RFC 5104 4.3.1.2)
        0x12, 0x34, 0x56, 0x78,  # FCI 1: SSRC
        0x07, 0x00, 0x00, 0x00,  # FCI 1: command sequence number 7, reserved
        0x9A, 0xBC, 0xDE, 0xF0,  # FCI 2: SSRC
        0xFF, 0x00, 0x00, 0x00,  # FCI 2: command sequence number 255, reserved
    ]
)  # fmt: skip

NACK = bytes(
    [
        0x81, 0xCD, 0x00, 0x03,  # V=2 FMT=1 generic NACK, PT=205 RTPFB, length 3 (16 bytes)
        0x00, 0x00, 0x00, 0x01,  # SSRC of packet sender
        0x12, 0x34, 0x56, 0x78,  # SSRC of media source
        0x01, 0x00, 0x00, 0x05,  # FCI: PID 256, BLP 0b101
    ]
)  # fmt: skip

# -- APP (RFC 3550 section 6.7), XR (RFC 3611), unassigned types: kept as Unknown ------------

APP = bytes(
    [
        0x83, 0xCC, 0x00, 0x03,  # V=2 subtype 3, PT=204 APP, length 3 (16 bytes)
        0x00, 0x00, 0x00, 0x01,  # SSRC
        *b"TEST",  # name
        0xCA, 0xFE, 0xBA, 0xBE,  # application-dependent data
    ]
)  # fmt: skip

XR = bytes(
    [
        0x80, 0xCF, 0x00, 0x04,  # V=2, PT=207 XR, length 4 (20 bytes)
        0x00, 0x00, 0x00, 0x01,  # SSRC
        0x04, 0x00, 0x00, 0x02,  # block type 4 (receiver reference time), length 2
        0xE8, 0x00, 0x00, 0x00,  # NTP seconds
        0x00, 0x00, 0x00, 0x00,  # NTP fraction
    ]
)  # fmt: skip

TYPE_195 = bytes([0x80, 0xC3, 0x00, 0x00])  # V=2, PT=195 (RFC 5450 IJ), no body

# -- padding (section 6.4.1): on the last packet of a compound --------------------------------

RR_PADDED = bytes(
    [
        0xA0, 0xC9, 0x00, 0x02,  # V=2 P=1 RC=0, PT=201 RR, length 2 (12 bytes)
        0x0A, 0x0B, 0x0C, 0x0D,  # SSRC of packet sender
        0x00, 0x00, 0x00, 0x04,  # padding: 4 octets, the last one counts them
    ]
)  # fmt: skip

BYE_PADDED_WITH_REASON = bytes(
    [
        0xA1, 0xCB, 0x00, 0x04,  # V=2 P=1 SC=1 BYE, length 4 (20 bytes)
        0x00, 0x00, 0x00, 0x01,  # SSRC
        0x03, *b"bye",  # reason "bye"
        0x00, 0x00, 0x00, 0x00,  # padding
        0x00, 0x00, 0x00, 0x08,  # ... 8 octets of it
    ]
)  # fmt: skip

# Padding on a packet that is not the last breaks a MUST of section 6.4.1, but its length field
# still says where the next packet starts; accepted like libwebrtc and GStreamer do.
RR_PADDED_THEN_BYE = RR_PADDED + BYE_ONE

# -- compounds --------------------------------------------------------------------------------

SR_SDES = SR_ONE_BLOCK + SDES_BOUNDARY
RR_SDES_BYE = RR_TWO_BLOCKS + SDES_TWO_CHUNKS + BYE_TWO_WITH_REASON
RR_SDES_PLI = RR_EMPTY + SDES_BOUNDARY + PLI
EVERYTHING = SR_NO_BLOCKS + RR_EMPTY + SDES_EMPTY + APP + XR + NACK + FIR_TWO_ENTRIES + RR_PADDED

# -- real GStreamer rtpbin RTCP ---------------------------------------------------------------
# Made once with GStreamer 1.22 on loopback: a sender
#   videotestsrc is-live=true num-buffers=240 ! video/x-raw,width=320,height=240,framerate=30/1
#   ! vp8enc deadline=1 ! rtpvp8pay pt=96 ! rtpbin.send_rtp_sink_0  rtpbin name=rtpbin
#   rtpbin.send_rtp_src_0 ! udpsink port=6000  rtpbin.send_rtcp_src_0 ! udpsink port=6001
#   sync=false async=false
# and a receiver (rtpbin: udpsrc port=6000 → recv_rtp_sink_0, udpsrc port=6002 →
# recv_rtcp_sink_0, send_rtcp_src_0 → udpsink port=6003). A Python socket on 6001 kept the
# sender's RTCP and relayed it to 6002, so the receiver's RRs carry LSR / DLSR; one on 6003
# kept the receiver's RTCP. The sender's SRs come with SDES, and at EOS with a BYE.

GST_SR_SDES = bytes.fromhex(
    "80c80006 73fa986f eeac0d6f3a653868 977c277c 00000056 00013ccc"  # SR, no blocks
    "81ca000c 73fa986f"  # SDES, one chunk
    "011c 757365723334343436343039303140686f73742d3962656565633435"  # CNAME (28 bytes)
    "0609 4753747265616d6572"  # TOOL "GStreamer"
    "000000"  # end and padding
)
GST_SR_SDES_BYE = bytes.fromhex(
    "80c80006 73fa986f eeac0d74c7890d5a 9783c71f 0000010d 0003ebef"
    "81ca000c 73fa986f 011c 757365723334343436343039303140686f73742d3962656565633435"
    "0609 4753747265616d6572 000000"
    "81cb0001 73fa986f"  # BYE of the sender's SSRC, no reason
)
GST_RR_BEFORE_SR = bytes.fromhex(
    "81c90007 74679571"  # RR, one block
    "73fa986f 00ffffff 00004ccc 0000004d 00000000 00000000"  # lost -1, no SR yet
    "81ca000c 74679571"
    "011b 7573657237303837393036333340686f73742d3332316561333962"  # CNAME (27 bytes)
    "0609 4753747265616d6572 00000000"  # TOOL, then a whole word of end + padding
)
GST_RR_AFTER_SR = bytes.fromhex(
    "81c90007 74679571"
    "73fa986f 00ffffff 00004d7b 00000051 0d6f3a65 00046208"  # LSR of the first SR above
    "81ca000c 74679571 011b 7573657237303837393036333340686f73742d3332316561333962"
    "0609 4753747265616d6572 00000000"
)
GST_SENDER, GST_RECEIVER = 0x73FA986F, 0x74679571
GST_CAPTURE = [GST_SR_SDES, GST_SR_SDES_BYE, GST_RR_BEFORE_SR, GST_RR_AFTER_SR]


def _block(packet: SenderReport | ReceiverReport, index: int = 0) -> tuple[int, ...]:
    b = packet.reports[index]
    return (
        b.ssrc,
        b.fraction_lost,
        b.cumulative_lost,
        b.highest_sequence,
        b.jitter,
        b.last_sr,
        b.delay_since_last_sr,
    )


# -- single packets ---------------------------------------------------------------------------


def test_sender_report_with_a_block() -> None:
    (sr,) = parse_compound(SR_ONE_BLOCK)
    assert isinstance(sr, SenderReport)
    assert sr.ssrc == 0x11223344
    assert sr.ntp == 0xE8000000_80000000
    assert sr.rtp_timestamp == 123456
    assert (sr.packet_count, sr.octet_count) == (100, 100000)
    assert len(sr.reports) == 1
    assert _block(sr) == (0x55667788, 64, 10, 0x1FFFE, 42, 0xE7FFC000, 0x18000)


def test_sender_report_maximum_values_and_extension() -> None:
    (sr,) = parse_compound(SR_NO_BLOCKS)
    assert (sr.ssrc, sr.ntp, sr.rtp_timestamp) == (0xFFFFFFFF, 2**64 - 1, 0xFFFFFFFF)
    assert (sr.packet_count, sr.octet_count, sr.reports) == (0xFFFFFFFF, 0xFFFFFFFF, [])
    (sr,) = parse_compound(SR_WITH_EXTENSION)
    assert (sr.ssrc, sr.ntp, sr.reports) == (1, 0, [])


def test_receiver_reports_and_signed_cumulative_loss() -> None:
    (rr,) = parse_compound(RR_EMPTY)
    assert isinstance(rr, ReceiverReport)
    assert (rr.ssrc, rr.reports) == (0x0A0B0C0D, [])
    (rr,) = parse_compound(RR_TWO_BLOCKS)
    assert _block(rr, 0) == (1, 0, -1, 16, 0, 0, 0)
    assert _block(rr, 1) == (0xFFFFFFFF, 255, -0x800000, *[0xFFFFFFFF] * 4)
    (rr,) = parse_compound(RR_MAX_LOSS)
    assert rr.reports[0].cumulative_lost == 0x7FFFFF


def test_source_description_items() -> None:
    (sdes,) = parse_compound(SDES_TWO_CHUNKS)
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks == {
        0x11223344: {1: b"alice", 2: b"Ali"},
        0x55667788: {8: b"\x03abcxyz", 1: b""},
    }
    assert sdes.cname(0x11223344) == b"alice"
    assert sdes.cname(0x55667788) == b""
    assert sdes.cname(0x99) is None
    (sdes,) = parse_compound(SDES_BOUNDARY)
    assert sdes.chunks == {7: {1: b"ab"}}
    (sdes,) = parse_compound(SDES_EMPTY)
    assert sdes.chunks == {}


def test_bye() -> None:
    (packet,) = parse_compound(BYE_ONE)
    assert isinstance(packet, Bye)
    assert (packet.ssrcs, packet.reason) == ([0xDEADBEEF], None)
    (packet,) = parse_compound(BYE_TWO_WITH_REASON)
    assert (packet.ssrcs, packet.reason) == ([1, 2], "café!")
    (packet,) = parse_compound(BYE_EMPTY_REASON)
    assert (packet.ssrcs, packet.reason) == ([1], "")


def test_feedback() -> None:
    (packet,) = parse_compound(PLI)
    assert isinstance(packet, Feedback)
    assert (packet.packet_type, packet.fmt, packet.sender_ssrc, packet.media_ssrc) == (
        206,
        1,
        1,
        0x12345678,
    )
    assert packet.fci == b""
    (packet,) = parse_compound(FIR_TWO_ENTRIES)
    assert (packet.packet_type, packet.fmt, packet.media_ssrc) == (206, 4, 0)
    assert fir_requests(packet) == [(0x12345678, 7), (0x9ABCDEF0, 255)]
    (packet,) = parse_compound(NACK)
    assert (packet.packet_type, packet.fmt, packet.fci) == (205, 1, b"\x01\x00\x00\x05")


@pytest.mark.parametrize(
    ("data", "packet_type", "count", "body"),
    [
        pytest.param(APP, 204, 3, APP[4:], id="APP"),
        pytest.param(XR, 207, 0, XR[4:], id="XR"),
        pytest.param(TYPE_195, 195, 0, b"", id="195"),
    ],
)
def test_other_types_are_kept(data: bytes, packet_type: int, count: int, body: bytes) -> None:
    (packet,) = parse_compound(data)
    assert isinstance(packet, Unknown)
    assert (packet.packet_type, packet.count, packet.data) == (packet_type, count, body)


def test_padding_is_removed() -> None:
    (rr,) = parse_compound(RR_PADDED)
    assert (rr.ssrc, rr.reports) == (0x0A0B0C0D, [])
    (packet,) = parse_compound(BYE_PADDED_WITH_REASON)
    assert (packet.ssrcs, packet.reason) == ([1], "bye")
    rr, packet = parse_compound(RR_PADDED_THEN_BYE)
    assert (rr.ssrc, packet.ssrcs) == (0x0A0B0C0D, [0xDEADBEEF])


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_input_kinds(kind: type) -> None:
    assert len(parse_compound(kind(RR_SDES_BYE))) == 3


# -- compounds --------------------------------------------------------------------------------


def test_compounds_keep_packet_order() -> None:
    sr, sdes = parse_compound(SR_SDES)
    assert (type(sr), type(sdes)) == (SenderReport, SourceDescription)
    rr, sdes, packet = parse_compound(RR_SDES_BYE)
    assert (rr.ssrc, list(sdes.chunks), packet.ssrcs) == (
        0x0A0B0C0D,
        [0x11223344, 0x55667788],
        [1, 2],
    )
    types = [type(p).__name__ for p in parse_compound(EVERYTHING)]
    assert types == [
        "SenderReport",
        "ReceiverReport",
        "SourceDescription",
        "Unknown",
        "Unknown",
        "Feedback",
        "Feedback",
        "ReceiverReport",
    ]


def test_reduced_size_feedback_alone() -> None:
    # RFC 5506 section 3.4.2: feedback without the leading RR / SR.
    (packet,) = parse_compound(PLI)
    assert isinstance(packet, Feedback)
    assert [type(p) for p in parse_compound(BYE_ONE + PLI)] == [Bye, Feedback]


# -- malformed (every packet is checked; one bad packet refuses the datagram) ------------------


def _with(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + bytes([value]) + data[at + 1 :]


MALFORMED = [
    pytest.param(b"", "RTCP compound packet is empty", id="empty"),
    pytest.param(
        b"\x80\xc9\x00",
        "RTCP packet at byte 0 truncated: 3 bytes, the header needs 4",
        id="short-header",
    ),
    pytest.param(
        RR_EMPTY + b"\x81\xcb",
        "RTCP packet at byte 8 truncated: 2 bytes, the header needs 4",
        id="trailing-bytes",
    ),
    pytest.param(
        _with(RR_EMPTY, 0, 0x40), "RTCP version is 1, expected 2 (packet at byte 0)", id="version-1"
    ),
    pytest.param(
        SR_SDES + _with(BYE_ONE, 0, 0xC1),
        "RTCP version is 3, expected 2 (packet at byte 68)",
        id="version-3-in-third-packet",
    ),
    pytest.param(
        RR_EMPTY + b"\x80\x60\x00\x00",
        "RTCP packet type 96 is outside 192-223 (packet at byte 8)",
        id="rtp-type-in-compound",
    ),
    pytest.param(
        _with(RR_EMPTY, 1, 224),
        "RTCP packet type 224 is outside 192-223 (packet at byte 0)",
        id="type-224",
    ),
    pytest.param(
        _with(RR_EMPTY, 3, 2),
        "RTCP RR of 12 bytes overruns the datagram: 8 bytes left (packet at byte 0)",
        id="length-overrun",
    ),
    pytest.param(
        RR_EMPTY + _with(PLI, 3, 0xFF),
        "RTCP PSFB of 1024 bytes overruns the datagram: 12 bytes left (packet at byte 8)",
        id="length-overrun-second",
    ),
    pytest.param(
        _with(RR_PADDED, 11, 0),
        "RTCP RR padding length is zero (packet at byte 0)",
        id="padding-zero",
    ),
    pytest.param(
        _with(RR_PADDED, 11, 9),
        "RTCP RR padding of 9 bytes overruns its 8-byte body (packet at byte 0)",
        id="padding-overrun",
    ),
    pytest.param(
        bytes([0xA0, 0xC3, 0x00, 0x00]),
        "RTCP packet type 195 has padding but no body (packet at byte 0)",
        id="padding-no-body",
    ),
    pytest.param(
        _with(RR_PADDED, 11, 8),
        "RTCP RR truncated: 4 bytes, the sender SSRC needs 8 (packet at byte 0)",
        id="padding-eats-rr",
    ),
    pytest.param(
        _with(SR_NO_BLOCKS, 3, 5)[:24],
        "RTCP SR truncated: 24 bytes, the sender info needs 28 (packet at byte 0)",
        id="sr-short",
    ),
    pytest.param(
        _with(SR_NO_BLOCKS, 0, 0x81),
        "RTCP SR truncated: 1 report blocks need 52 bytes, the packet has 28 (packet at byte 0)",
        id="sr-count-overrun",
    ),
    pytest.param(
        _with(RR_TWO_BLOCKS, 0, 0x83),
        "RTCP RR truncated: 3 report blocks need 80 bytes, the packet has 56 (packet at byte 0)",
        id="rr-count-overrun",
    ),
    pytest.param(
        bytes([0x80, 0xC9, 0x00, 0x00]),
        "RTCP RR truncated: 4 bytes, the sender SSRC needs 8 (packet at byte 0)",
        id="rr-no-ssrc",
    ),
    pytest.param(
        _with(SDES_BOUNDARY, 0, 0x82),
        "RTCP SDES chunk 2 of 2 truncated: no room for its SSRC (packet at byte 0)",
        id="sdes-count-overrun",
    ),
    pytest.param(
        bytes([0x81, 0xCA, 0x00, 0x02, 0, 0, 0, 7, 0x01, 0x02, *b"ab"]),
        "RTCP SDES chunk 1 of 1 has no end of its item list (packet at byte 0)",
        id="sdes-no-end",
    ),
    pytest.param(
        bytes([0x81, 0xCA, 0x00, 0x02, 0, 0, 0, 7, 0x01, 0x01, *b"a", 0x02]),
        "RTCP SDES item 2 in chunk 1 has no length (packet at byte 0)",
        id="sdes-item-no-length",
    ),
    pytest.param(
        bytes([0x81, 0xCA, 0x00, 0x02, 0, 0, 0, 7, 0x01, 0x09, *b"ab"]),
        "RTCP SDES item 1 of 9 bytes in chunk 1 overruns the packet (packet at byte 0)",
        id="sdes-item-overrun",
    ),
    pytest.param(
        # Padding of 2 leaves 10 bytes of body: the chunk's boundary at 12 lies beyond.
        bytes([0xA1, 0xCA, 0x00, 0x03, 0, 0, 0, 7, 0x01, 0x03, *b"abc", 0, 0, 2]),
        "RTCP SDES chunk 1 of 1 is not padded to 32 bits (packet at byte 0)",
        id="sdes-chunk-cut-by-padding",
    ),
    pytest.param(
        _with(BYE_ONE, 0, 0x83),
        "RTCP BYE truncated: 3 SSRCs need 16 bytes, the packet has 8 (packet at byte 0)",
        id="bye-count-overrun",
    ),
    pytest.param(
        _with(BYE_TWO_WITH_REASON, 12, 8),
        "RTCP BYE reason of 8 bytes overruns the packet (packet at byte 0)",
        id="bye-reason-overrun",
    ),
    pytest.param(
        bytes([0x81, 0xCE, 0x00, 0x01, 0, 0, 0, 1]),
        "RTCP PSFB truncated: 8 bytes, the feedback header needs 12 (packet at byte 0)",
        id="feedback-short",
    ),
    pytest.param(
        RR_EMPTY + bytes([0x8F, 0xCD, 0x00, 0x00]),
        "RTCP RTPFB truncated: 4 bytes, the feedback header needs 12 (packet at byte 8)",
        id="rtpfb-empty",
    ),
    pytest.param(
        _with(FIR_TWO_ENTRIES, 3, 3)[:16],
        "RTCP FIR has 4 bytes of FCI, not a whole number of 8-byte entries (packet at byte 0)",
        id="fir-half-entry",
    ),
    pytest.param(
        _with(PLI, 0, 0x84),
        "RTCP FIR has 0 bytes of FCI, not a whole number of 8-byte entries (packet at byte 0)",
        id="fir-no-entry",
    ),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED)
def test_malformed(data: bytes, message: str) -> None:
    with pytest.raises(RtcpError) as raised:
        parse_compound(data)
    assert str(raised.value) == message
    assert isinstance(raised.value, MalformedPacket)
    assert isinstance(raised.value, ValueError)


# -- NTP timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ntp", "unix"),
    [
        pytest.param(2_208_988_800 << 32, 0.0, id="unix-epoch"),
        pytest.param((2_208_988_800 << 32) | 0x80000000, 0.5, id="half-second"),
        pytest.param(0xE8000000_80000000, 0xE8000000 - 2_208_988_800 + 0.5, id="2023"),
        pytest.param(0xFFFFFFFF << 32, 0xFFFFFFFF - 2_208_988_800, id="era-0-end"),
        # RFC 4330 section 3: top bit clear means era 1, from 2036-02-07T06:28:16Z.
        pytest.param(0, 2**32 - 2_208_988_800, id="era-1-start"),
        pytest.param(0x7FFFFFFF << 32, 2**32 + 0x7FFFFFFF - 2_208_988_800, id="era-1-2104"),
    ],
)
def test_ntp_to_unix(ntp: int, unix: float) -> None:
    assert ntp_to_unix(ntp) == unix


@given(st.floats(min_value=-2_208_988_800 + 2**31, max_value=2**32 + 2**31 - 2_208_988_801))
def test_unix_to_ntp_round_trip(unix: float) -> None:
    # Within a few float ulps of a 2^31-second value.
    assert abs(ntp_to_unix(unix_to_ntp(unix)) - unix) < 1e-6


def test_ntp_middle() -> None:
    # RFC 3550 section 6.4.1: "the middle 32 bits out of 64 in the NTP timestamp".
    assert ntp_middle(0x0123456789ABCDEF) == 0x456789AB
    assert ntp_middle(0xEEAC0D6F3A653868) == 0x0D6F3A65


# -- builders ---------------------------------------------------------------------------------


def test_report_block_bytes() -> None:
    assert report_block(0x55667788, 64, 10, 0x1FFFE, 42, 0xE7FFC000, 0x18000) == SR_ONE_BLOCK[28:]
    assert report_block(1, 0, -1, 16, 0, 0, 0) == RR_TWO_BLOCKS[8:32]
    assert report_block(0xFFFFFFFF, 255, -0x800000, *[0xFFFFFFFF] * 4) == RR_TWO_BLOCKS[32:]


@pytest.mark.parametrize(
    ("fraction", "lost", "message"),
    [
        (256, 0, "fraction lost 256 is outside 0-255"),
        (-1, 0, "fraction lost -1 is outside 0-255"),
        (0, 0x800000, "cumulative lost 8388608 does not fit 24 signed bits"),
        (0, -0x800001, "cumulative lost -8388609 does not fit 24 signed bits"),
    ],
)
def test_report_block_ranges(fraction: int, lost: int, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        report_block(1, fraction, lost, 0, 0, 0, 0)
    assert str(raised.value) == message


def test_receiver_report_bytes() -> None:
    assert receiver_report(0x0A0B0C0D) == RR_EMPTY
    assert receiver_report(0x0A0B0C0D, []) == RR_EMPTY
    blocks = [RR_TWO_BLOCKS[8:32], RR_TWO_BLOCKS[32:]]
    assert receiver_report(0x0A0B0C0D, blocks) == RR_TWO_BLOCKS
    assert len(parse_compound(receiver_report(1, [RR_MAX_LOSS[8:]] * 31))[0].reports) == 31
    with pytest.raises(ValueError, match="32 report blocks do not fit one RR"):
        receiver_report(1, [RR_MAX_LOSS[8:]] * 32)


def test_source_description_bytes() -> None:
    assert source_description(7, "ab") == SDES_BOUNDARY
    assert source_description(7, b"ab") == SDES_BOUNDARY
    for size in range(1, 12):  # every remainder modulo 4, always at least one null octet
        data = source_description(0x11223344, "x" * size)
        assert len(data) % 4 == 0
        assert data[4 + 4 + 2 + size] == 0
        (sdes,) = parse_compound(data)
        assert sdes.chunks == {0x11223344: {1: b"x" * size}}
    (sdes,) = parse_compound(source_description(1, "é" * 127))
    assert sdes.cname(1) == "é".encode() * 127
    for bad in ("", "x" * 256):
        with pytest.raises(ValueError, match="CNAME of"):
            source_description(1, bad)


def test_bye_bytes() -> None:
    assert bye(0xDEADBEEF) == BYE_ONE
    data = bye(1, "café!")
    assert data == bytes([0x81, 0xCB, 0x00, 0x03, 0, 0, 0, 1, 6, *b"caf\xc3\xa9!", 0])
    (packet,) = parse_compound(data)
    assert (packet.ssrcs, packet.reason) == ([1], "café!")
    for reason in ("", "abc", "abcd", "x" * 255):
        (packet,) = parse_compound(bye(5, reason))
        assert packet.reason == reason
    with pytest.raises(ValueError, match="BYE reason of 256 bytes"):
        bye(1, "x" * 256)


def test_pli_bytes() -> None:
    assert pli(1, 0x12345678) == PLI


def test_fir_bytes() -> None:
    # The first entry of FIR_TWO_ENTRIES alone: length 4 words.
    assert fir(1, 0x12345678, 7) == _with(FIR_TWO_ENTRIES, 3, 4)[:20]
    (packet,) = parse_compound(fir(0xAABBCCDD, 0x11223344, 256 + 9))
    assert (packet.packet_type, packet.fmt, packet.sender_ssrc, packet.media_ssrc) == (
        206,
        4,
        0xAABBCCDD,
        0,
    )
    assert fir_requests(packet) == [(0x11223344, 9)]  # the sequence number is modulo 256


def test_compound_and_feedback_compound() -> None:
    assert compound(RR_EMPTY, SDES_BOUNDARY, PLI) == RR_SDES_PLI
    assert compound() == b""
    assert feedback_compound(0x0A0B0C0D, "ab", [], pli(1, 0x12345678))[:8] == RR_EMPTY
    block = report_block(0x12345678, 0, 3, 100, 5, 0, 0)
    data = feedback_compound(
        0x99, "recorder@host", [block], pli(0x99, 0x12345678), fir(0x99, 0x12345678, 1)
    )
    assert is_rtcp(data)
    rr, sdes, request, full = parse_compound(data)
    assert (rr.ssrc, _block(rr)) == (0x99, (0x12345678, 0, 3, 100, 5, 0, 0))
    assert sdes.chunks == {0x99: {1: b"recorder@host"}}
    assert (request.fmt, request.sender_ssrc, request.media_ssrc) == (1, 0x99, 0x12345678)
    assert (full.fmt, fir_requests(full)) == (4, [(0x12345678, 1)])


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 255),
    st.integers(-0x800000, 0x7FFFFF),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)
def test_report_block_round_trip(
    ssrc: int, fraction: int, lost: int, highest: int, jitter: int, lsr: int, dlsr: int
) -> None:
    fields = (ssrc, fraction, lost, highest, jitter, lsr, dlsr)
    (rr,) = parse_compound(receiver_report(1, [report_block(*fields)]))
    assert _block(rr) == fields


# -- RFC 3550 A.3: reception reports ----------------------------------------------------------


def _fields(data: bytes) -> tuple[int, ...]:
    (rr,) = parse_compound(receiver_report(1, [data]))
    return _block(rr)


def test_reception_report_loss() -> None:
    report = ReceptionReport(0x12345678)
    # Sequence numbers 1000-1099 expected, 100 received: no loss, no SR yet.
    assert _fields(report.block(1000, 1099, 100, 12.4, 5.0)) == (0x12345678, 0, 0, 1099, 12, 0, 0)
    # 100 more expected, 75 received: 25 % lost in this interval, 25 in all.
    assert _fields(report.block(1000, 1199, 175, 12.6, 6.0))[1:4] == (64, 25, 1199)
    # Nothing new: the fraction is about the interval, the cumulative count stays.
    assert _fields(report.block(1000, 1199, 175, 0, 7.0))[1:3] == (0, 25)
    # Retransmissions recover some: received grows faster than expected, fraction 0.
    assert _fields(report.block(1000, 1209, 195, 0, 8.0))[1:3] == (0, 15)


def test_reception_report_extended_sequence_and_clamps() -> None:
    report = ReceptionReport(1)
    # A.3: the extended highest sequence goes out whole (cycles in the high 16 bits).
    assert _fields(report.block(65530, 65536 * 3 + 4, 65536 * 2 + 11, 0, 0))[2:4] == (
        0,
        (65536 * 3 + 4) & 0xFFFFFFFF,
    )
    # Duplicates counted as received: negative loss, clamped at the field's bottom.
    assert _fields(ReceptionReport(1).block(0, 9, 11, 0, 0))[1:3] == (0, -1)
    assert _fields(ReceptionReport(1).block(0, 0, 10_000_000, 0, 0))[2] == -0x800000
    # Huge loss clamps at the top; nothing received gives 255, not an 8-bit overflow to 0.
    assert _fields(ReceptionReport(1).block(0, 9_999_999, 0, 0, 0))[1:3] == (255, 0x7FFFFF)
    # Past 2^32 the extended sequence wraps in the 32-bit field; jitter saturates.
    assert _fields(ReceptionReport(1).block(2**32, 2**32 + 5, 6, 2**40, 0))[3:5] == (
        5,
        0xFFFFFFFF,
    )


def test_reception_report_lsr_and_dlsr() -> None:
    report = ReceptionReport(GST_SENDER)
    report.on_sender_report(0xEEAC0D6F3A653868, 100.0)
    # DLSR is in 1/65536 s since the SR arrived; LSR its middle 32 bits.
    assert _fields(report.block(0, 9, 10, 0, 100 + 287_240 / 65536))[5:] == (0x0D6F3A65, 287_240)
    report.on_sender_report(0xEEAC0D74C7890D5A, 110.0)
    assert _fields(report.block(0, 9, 10, 0, 110.0))[5:] == (0x0D74C789, 0)
    # A clock that went backwards does not make DLSR negative.
    assert _fields(report.block(0, 9, 10, 0, 109.0))[5:] == (0x0D74C789, 0)


@given(
    st.integers(0, 2**48),
    st.integers(-(2**48), 2**48),
    st.integers(-(2**48), 2**48),
    st.floats(0, 2**64, allow_nan=False),
    st.floats(-(2**40), 2**40, allow_nan=False),
    st.booleans(),
)
def test_reception_report_never_raises(
    base: int, span: int, received: int, jitter: float, now: float, with_sr: bool
) -> None:
    report = ReceptionReport(1)
    if with_sr:
        report.on_sender_report(2**64 - 1, 0.0)
    for _ in range(2):
        ssrc, fraction, *_ = _fields(report.block(base, base + span, received, jitter, now))
        assert ssrc == 1 and 0 <= fraction <= 255


# -- real senders -----------------------------------------------------------------------------


@cache
def _ffmpeg_flows() -> dict[int, list[tuple[float, bytes]]]:
    flows: dict[int, list[tuple[float, bytes]]] = {5008: [], 5009: [], 5010: [], 5011: []}
    for time_, _, _, port, data in read_udp(FIXTURES / "ffmpeg.pcap"):
        if port in flows:
            flows[port].append((time_, data))
    return flows


def test_ffmpeg_sender_reports() -> None:
    # FFmpeg sends an SR per stream to the RTP port + 1 (5009 video, 5011 audio); the NTP time
    # is the wall clock at sending, i.e. within a second of the capture's timestamp.
    flows = _ffmpeg_flows()
    for rtp_port in (5008, 5010):
        ssrc = RtpPacket.parse(flows[rtp_port][0][1]).ssrc
        reports = flows[rtp_port + 1]
        assert reports
        for captured, data in reports:
            packets = parse_compound(data)
            assert all(isinstance(p, SenderReport) for p in packets)
            sr = packets[0]
            assert sr.ssrc == ssrc and sr.reports == []
            assert abs(ntp_to_unix(sr.ntp) - captured) < 1.0


def test_gstreamer_rtpbin_sender() -> None:
    sr, sdes = parse_compound(GST_SR_SDES)
    assert (sr.ssrc, sr.ntp, sr.rtp_timestamp) == (GST_SENDER, 0xEEAC0D6F3A653868, 0x977C277C)
    assert (sr.packet_count, sr.octet_count, sr.reports) == (86, 81100, [])
    assert sdes.chunks == {
        GST_SENDER: {1: b"user3444640901@host-9beeec45", 6: b"GStreamer"}  # CNAME, TOOL
    }
    sr, sdes, packet = parse_compound(GST_SR_SDES_BYE)
    assert (sr.packet_count, sr.octet_count) == (269, 257007)
    # 5.55 s of NTP time between the two SRs, and of the 90 kHz RTP clock.
    assert ntp_to_unix(sr.ntp) - ntp_to_unix(0xEEAC0D6F3A653868) == pytest.approx(5.5, abs=0.1)
    assert (sr.rtp_timestamp - 0x977C277C) / 90000 == pytest.approx(5.5, abs=0.1)
    assert (packet.ssrcs, packet.reason) == ([GST_SENDER], None)


def test_gstreamer_rtpbin_receiver() -> None:
    rr, sdes = parse_compound(GST_RR_BEFORE_SR)
    # GStreamer reports a loss of -1 at first (it counts the packet that started probation).
    assert (rr.ssrc, _block(rr)) == (GST_RECEIVER, (GST_SENDER, 0, -1, 0x4CCC, 0x4D, 0, 0))
    assert sdes.cname(GST_RECEIVER) == b"user708790633@host-321ea39b"
    rr, _ = parse_compound(GST_RR_AFTER_SR)
    block = rr.reports[0]
    assert block.last_sr == ntp_middle(parse_compound(GST_SR_SDES)[0].ntp)
    assert block.delay_since_last_sr / 65536 == pytest.approx(4.383, abs=0.001)


# -- a live GStreamer sender obeys our PLI and FIR --------------------------------------------

# No keyframe of its own for 10 s after the first one, so any other keyframe was requested.
KEYFRAME_MAX_DIST = 300
FPS = 30
# How soon after a request the keyframe must leave the sender.
KEYFRAME_DELAY = 1.0
RECORDER_SSRC = 0x5EC0DE25
CNAME = "recorder@test"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _gstreamer_sender(rtp_port: int, rtcp_port: int, feedback_port: int) -> Iterator[None]:
    # udpsink bind-port makes rtpbin send its RTCP from the port it receives RTCP on, as a
    # recorder that answers the RTCP source address expects (symmetric RTCP). udpsrc binds
    # 127.0.0.1 rather than 0.0.0.0 so the kernel gives it, not the udpsink's socket on the
    # same port, the datagrams sent there.
    pipeline = (
        "rtpbin name=rtpbin "
        f"videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate={FPS}/1 ! "
        f"vp8enc deadline=1 keyframe-max-dist={KEYFRAME_MAX_DIST} ! rtpvp8pay pt=96 ! "
        "rtpbin.send_rtp_sink_0 "
        f"rtpbin.send_rtp_src_0 ! udpsink host=127.0.0.1 port={rtp_port} "
        f"rtpbin.send_rtcp_src_0 ! udpsink host=127.0.0.1 port={rtcp_port} "
        f"bind-port={feedback_port} sync=false async=false "
        f"udpsrc address=127.0.0.1 port={feedback_port} ! rtpbin.recv_rtcp_sink_0"
    )
    process = subprocess.Popen(
        [require("gst-launch-1.0"), "-q", *pipeline.split()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
        assert process.returncode in (0, -15), stderr


def _is_keyframe(data: bytes) -> bool:
    payload = RtpPacket.parse(data).payload
    start = payload[0] & 0x17 == 0x10  # RFC 7741 4.2: S=1, PID=0
    return start and not payload[descriptor_size(payload)] & 0x01  # RFC 6386 9.1: P=0


def test_gstreamer_obeys_pli_and_fir() -> None:
    requests: list[tuple[str, Callable[[int], bytes]]] = [
        # RFC 5506 reduced size: GStreamer finds the requester by the media SSRC.
        ("PLI alone", lambda media: pli(RECORDER_SSRC, media)),
        # GStreamer ignores a FIR from a requester no RR / SR / SDES has introduced.
        ("FIR after RR + SDES", lambda media: feedback_compound(
            RECORDER_SSRC, CNAME, [], fir(RECORDER_SSRC, media, 1))),
        # What the recorder sends: the compound RFC 4585 section 3.1 asks for.
        ("PLI after RR + SDES", lambda media: feedback_compound(
            RECORDER_SSRC, CNAME, [], pli(RECORDER_SSRC, media))),
    ]  # fmt: skip
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    rtcp.bind(("127.0.0.1", 0))
    feedback_port = _free_port()
    sent: list[float] = []
    keyframes: list[float] = []
    rtcp_sources: set[tuple[str, int]] = set()
    media_ssrc = None
    # Done before the encoder's own next keyframe, 10 s after its first.
    deadline = time.monotonic() + 20
    with rtp, rtcp, _gstreamer_sender(rtp.getsockname()[1], rtcp.getsockname()[1], feedback_port):
        while time.monotonic() < deadline:
            ready, _, _ = select.select([rtp, rtcp], [], [], 0.02)
            now = time.monotonic()
            for sock in ready:
                data, source = sock.recvfrom(2048)
                if sock is rtcp:
                    parse_compound(data)  # whatever rtpbin sends parses
                    rtcp_sources.add(source)
                else:
                    media_ssrc = RtpPacket.parse(data).ssrc
                    if _is_keyframe(data):
                        if not keyframes:
                            deadline = min(deadline, now + KEYFRAME_MAX_DIST / FPS - 0.5)
                        keyframes.append(now)
            if sent and now - sent[-1] < KEYFRAME_DELAY + 0.3:
                continue
            if len(sent) == len(requests):
                break
            # Like the recorder: answer the address the sender's RTCP comes from.
            if media_ssrc is not None and rtcp_sources:
                rtp.sendto(requests[len(sent)][1](media_ssrc), min(rtcp_sources))
                sent.append(now)
    assert rtcp_sources == {("127.0.0.1", feedback_port)}, "symmetric RTCP"
    assert len(sent) == len(requests), "the sender's RTCP came too late"
    assert keyframes and keyframes[0] < sent[0], "the stream starts with a keyframe"
    for (name, _), at in zip(requests, sent, strict=True):
        assert any(0 < k - at < KEYFRAME_DELAY for k in keyframes), f"no keyframe after {name}"
    assert len(keyframes) == 1 + len(requests), "a keyframe per request, no other"


# -- fuzz: only RtcpError escapes ------------------------------------------------------------

SEEDS = [
    SR_ONE_BLOCK,
    SR_NO_BLOCKS,
    SR_WITH_EXTENSION,
    RR_EMPTY,
    RR_TWO_BLOCKS,
    RR_MAX_LOSS,
    SDES_TWO_CHUNKS,
    SDES_BOUNDARY,
    SDES_EMPTY,
    BYE_ONE,
    BYE_TWO_WITH_REASON,
    BYE_EMPTY_REASON,
    PLI,
    FIR_TWO_ENTRIES,
    NACK,
    APP,
    XR,
    TYPE_195,
    RR_PADDED,
    BYE_PADDED_WITH_REASON,
    RR_PADDED_THEN_BYE,
    SR_SDES,
    RR_SDES_BYE,
    RR_SDES_PLI,
    EVERYTHING,
    *GST_CAPTURE,
    *(data for port in (5009, 5011) for _, data in _ffmpeg_flows()[port][:1]),
    *first(MALFORMED),
]


def _parse_or_refuse(data: bytes) -> None:
    try:
        packets = parse_compound(data)
    except RtcpError as error:
        assert str(error).startswith("RTCP ")
        return
    assert packets
    for packet in packets:
        if isinstance(packet, SenderReport | ReceiverReport):
            assert all(isinstance(b, ReportBlock) for b in packet.reports)
            assert all(-0x800000 <= b.cumulative_lost <= 0x7FFFFF for b in packet.reports)
        elif isinstance(packet, Feedback) and packet.fmt == 4 and packet.packet_type == 206:
            assert fir_requests(packet)


@FUZZ
@given(mutations(SEEDS, head=32))
@seeded(*SEEDS)
def test_fuzz_mutated_compounds(data: bytes) -> None:
    _parse_or_refuse(data)


@FUZZ
@given(st.binary(max_size=128))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _parse_or_refuse(data)


@FUZZ
@given(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=4), st.integers(0, 3))
def test_fuzz_joined_compounds(parts: list[bytes], cut: int) -> None:
    data = b"".join(parts)
    _parse_or_refuse(data[: len(data) - cut])
