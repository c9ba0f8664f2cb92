"""Opus over RTP: RFC 6716 packet durations and validity, RFC 7587 depacketizing.

Invented packets are TOC byte + frame-count / length bytes + filler; the captured ones are the
packets of fixtures/vp8-opus/source.ogg (libopus) and their RTP payloads from the captures.
"""

from __future__ import annotations

import pytest

from recorder.codecs.opus import DEFAULT_PRE_SKIP, OpusDepacketizer, packet_samples
from recorder.errors import DepacketizeError
from recorder.media import CodecConfig
from recorder.rtp import RtpPacket
from recorder.sdp import load_sdp
from tests.vectors import CAPTURES, FIXTURES, ogg_packets, rtp_datagrams

CLOCK_RATE = 48000
STEREO = 0x04
CODE_1, CODE_2, CODE_3 = 1, 2, 3
# Code 3 frame count byte (RFC 6716 section 3.2.5): v=VBR, p=padding, M=count.
VBR, PADDED = 0x80, 0x40
# RFC 6716 section 3.1, table 2, written as the RFC does: frame sizes in ms per configuration.
TABLE_2_MS = (
    [10, 20, 40, 60] * 3  # 0-11 SILK-only NB, MB, WB
    + [10, 20] * 2  # 12-15 Hybrid SWB, FB
    + [2.5, 5, 10, 20] * 4  # 16-31 CELT-only NB, WB, SWB, FB
)
# The TOC of source.ogg's packets: config 31 (CELT-only FB 20 ms), stereo, code 0.
CELT_FB_20MS = 31 << 3
MAX_SAMPLES = 5760  # 120 ms


def _toc(config: int, code: int = 0, stereo: bool = False) -> int:
    return config << 3 | (STEREO if stereo else 0) | code


def _filler(size: int) -> bytes:
    return bytes(range(1, 256)) * (size // 255) + bytes(range(1, size % 255 + 1))


# -- RFC 6716 section 3.1 table 2 and section 3.2: every configuration, codes 0-3 (invented) --


@pytest.mark.parametrize("config", range(32))
def test_every_configuration_and_frame_count_code(config: int) -> None:
    samples = int(TABLE_2_MS[config] * 48)
    for stereo in (False, True):
        assert packet_samples(bytes([_toc(config, 0, stereo)]) + _filler(20)) == samples
        assert packet_samples(bytes([_toc(config, CODE_1, stereo)]) + _filler(20)) == 2 * samples
        assert packet_samples(bytes([_toc(config, CODE_2, stereo), 3]) + _filler(8)) == 2 * samples
        # Code 3 CBR up to the R5 limit of 120 ms, one byte per frame.
        most = MAX_SAMPLES // samples
        code_3 = bytes([_toc(config, CODE_3, stereo), most]) + _filler(most)
        assert packet_samples(code_3) == MAX_SAMPLES
        too_many = bytes([_toc(config, CODE_3, stereo), most + 1]) + _filler(most + 1)
        with pytest.raises(DepacketizeError) as raised:
            packet_samples(too_many)
        assert str(raised.value) == (
            f"Opus code 3 packet of {most + 1} frames exceeds 120 ms (RFC 6716 R5)"
        )


# -- RFC 6716 section 3.2: valid packets at the edges of each code (invented) ----------------

VALID = [
    # 3.2.2 code 0: one frame, its length implicit.
    pytest.param(bytes([CELT_FB_20MS]), 960, id="code-0-empty-frame"),
    pytest.param(bytes([CELT_FB_20MS]) + _filler(1275), 960, id="code-0-1275"),
    # 3.2.3 code 1: two frames of equal size.
    pytest.param(bytes([CELT_FB_20MS | CODE_1]), 1920, id="code-1-two-empty-frames"),
    pytest.param(bytes([CELT_FB_20MS | CODE_1]) + _filler(2550), 1920, id="code-1-2x1275"),
    # 3.2.4 code 2: two frames, the first length in one or two bytes.
    pytest.param(bytes([CELT_FB_20MS | CODE_2, 0]), 1920, id="code-2-two-empty-frames"),
    pytest.param(bytes([CELT_FB_20MS | CODE_2, 3]) + _filler(3), 1920, id="code-2-second-empty"),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_2, 251]) + _filler(251 + 7), 1920, id="code-2-one-byte-251"
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_2, 252, 0]) + _filler(252), 1920, id="code-2-two-byte-252"
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_2, 255, 255]) + _filler(1275 + 1275),
        1920,
        id="code-2-two-byte-1275-twice",
    ),
    # 3.2.5 code 3 CBR: M frames of (N - 2 - P) / M bytes.
    pytest.param(bytes([CELT_FB_20MS | CODE_3, 1]), 960, id="code-3-cbr-one-empty-frame"),
    pytest.param(bytes([CELT_FB_20MS | CODE_3, 2]) + _filler(6), 1920, id="code-3-cbr-2x3"),
    pytest.param(bytes([CELT_FB_20MS | CODE_3, 1]) + _filler(1275), 960, id="code-3-cbr-1275"),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, PADDED | 2, 3]) + _filler(4) + bytes(3),
        1920,
        id="code-3-cbr-padding-3",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, PADDED | 2, 0]) + _filler(4),
        1920,
        id="code-3-cbr-padding-0",
    ),
    # "The value 255 indicates that the size of the padding is 254 plus the next byte"
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, PADDED | 1, 255, 1]) + _filler(5) + bytes(255),
        960,
        id="code-3-cbr-padding-255-chain",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, PADDED | 1, 255, 255, 0]) + _filler(5) + bytes(508),
        960,
        id="code-3-cbr-padding-two-255s",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, PADDED | 1, 255, 0]) + bytes(254),
        960,
        id="code-3-cbr-padding-254-and-empty-frame",
    ),
    # 3.2.5 code 3 VBR: lengths of the first M - 1 frames, the last implicit.
    pytest.param(bytes([CELT_FB_20MS | CODE_3, VBR | 1]) + _filler(9), 960, id="code-3-vbr-1"),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, VBR | 3, 2, 3]) + _filler(2 + 3 + 4),
        2880,
        id="code-3-vbr-3",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, VBR | 2, 252, 1]) + _filler(256 + 10),
        1920,
        id="code-3-vbr-two-byte-length",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, VBR | 3, 0, 0]),
        2880,
        id="code-3-vbr-three-empty-frames",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, VBR | PADDED | 2, 2, 3]) + _filler(3 + 4) + bytes(2),
        1920,
        id="code-3-vbr-padding",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, VBR | 2, 0]) + _filler(1275),
        1920,
        id="code-3-vbr-last-1275",
    ),
    pytest.param(bytes([_toc(16, CODE_3), 48]) + bytes(48), 5760, id="code-3-48x2.5ms-is-120ms"),
    pytest.param(bytes([_toc(3, CODE_3), 2]), 5760, id="code-3-2x60ms-is-120ms"),
]


@pytest.mark.parametrize(("packet", "samples"), VALID)
def test_valid_packet(packet: bytes, samples: int) -> None:
    assert packet_samples(packet) == samples
    assert packet_samples(memoryview(packet)) == samples


# -- RFC 6716 section 3.4: rules R1-R7, one violation each, exact reasons (invented) ----------

INVALID = [
    # [R1] Packets are at least one byte.
    pytest.param(b"", "Opus packet is empty (RFC 6716 R1)", id="R1-empty"),
    # [R2] No implicit frame length is larger than 1275 bytes.
    pytest.param(
        bytes([CELT_FB_20MS]) + _filler(1276),
        "Opus frame of 1276 bytes exceeds 1275 (RFC 6716 R2)",
        id="R2-code-0",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_1]) + _filler(2552),
        "Opus code 1 frame exceeds 1275 bytes (RFC 6716 R2)",
        id="R2-code-1",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_2, 0]) + _filler(1276),
        "Opus code 2 second frame exceeds 1275 bytes (RFC 6716 R2)",
        id="R2-code-2-second",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, 1]) + _filler(1276),
        "Opus code 3 frame exceeds 1275 bytes (RFC 6716 R2)",
        id="R2-code-3-cbr",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, VBR | 2, 0]) + _filler(1276),
        "Opus code 3 last frame exceeds 1275 bytes (RFC 6716 R2)",
        id="R2-code-3-vbr-last",
    ),
    # [R3] Code 1 packets have an odd total length.
    pytest.param(
        bytes([CELT_FB_20MS | CODE_1]) + _filler(3),
        "Opus code 1 packet has an odd payload length (RFC 6716 R3)",
        id="R3-code-1-odd",
    ),
    # [R4] Code 2 packets have enough bytes after the TOC for a valid frame length, and that
    # length is no larger than the number of bytes remaining in the packet.
    pytest.param(
        bytes([CELT_FB_20MS | CODE_2]),
        "Opus code 2 packet truncated in a frame length",
        id="R4-no-length",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_2, 252]),
        "Opus code 2 packet truncated in a two-byte frame length",
        id="R4-two-byte-length-cut",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_2, 5]) + _filler(4),
        "Opus code 2 first frame overruns the packet (RFC 6716 R4)",
        id="R4-first-frame-overrun",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_2, 252, 1]) + _filler(255),
        "Opus code 2 first frame overruns the packet (RFC 6716 R4)",
        id="R4-two-byte-first-frame-overrun",
    ),
    # [R5] Code 3 packets contain at least one frame, but no more than 120 ms of audio total.
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, 0]),
        "Opus code 3 packet declares zero frames (RFC 6716 R5)",
        id="R5-zero-frames",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, 7]) + bytes(7),
        "Opus code 3 packet of 7 frames exceeds 120 ms (RFC 6716 R5)",
        id="R5-7x20ms",
    ),
    pytest.param(
        bytes([_toc(16, CODE_3), 63]) + bytes(63),
        "Opus code 3 packet of 63 frames exceeds 120 ms (RFC 6716 R5)",
        id="R5-63x2.5ms",
    ),
    # [R6] A CBR code 3 packet is at least two bytes, its padding P is no more than N - 2, and
    # N - 2 - P is a multiple of the frame count M.
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3]),
        "Opus code 3 packet has no frame count byte (RFC 6716 R6)",
        id="R6-one-byte",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, PADDED | 1]),
        "Opus code 3 packet truncated in its padding length",
        id="R6-padding-length-missing",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, PADDED | 1, 255]),
        "Opus code 3 packet truncated in its padding length",
        id="R6-padding-255-chain-cut",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, PADDED | 1, 5]) + bytes(4),
        "Opus code 3 padding overruns the packet (RFC 6716 R6/R7)",
        id="R6-padding-overrun",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, PADDED | 1, 255, 0]) + bytes(253),
        "Opus code 3 padding overruns the packet (RFC 6716 R6/R7)",
        id="R6-padding-255-chain-overrun",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, 2]) + _filler(5),
        "Opus code 3 CBR payload does not split into equal frames (RFC 6716 R6)",
        id="R6-cbr-unequal",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, PADDED | 2, 1]) + _filler(4),
        "Opus code 3 CBR payload does not split into equal frames (RFC 6716 R6)",
        id="R6-cbr-unequal-after-padding",
    ),
    # [R7] A VBR code 3 packet holds all header bytes, the first M - 1 frames and the padding.
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, VBR | 2]),
        "Opus code 3 packet truncated in a frame length",
        id="R7-length-missing",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, VBR | 2, 253]),
        "Opus code 3 packet truncated in a two-byte frame length",
        id="R7-two-byte-length-cut",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, VBR | 2, 10]) + _filler(3),
        "Opus code 3 frame lengths overrun the packet (RFC 6716 R7)",
        id="R7-lengths-overrun",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, VBR | PADDED | 2, 4, 3]) + _filler(3) + bytes(2),
        "Opus code 3 frame lengths overrun the packet (RFC 6716 R7)",
        id="R7-lengths-overrun-into-padding",
    ),
    pytest.param(
        bytes([CELT_FB_20MS | CODE_3, VBR | PADDED | 2, 9]) + bytes(2),
        "Opus code 3 padding overruns the packet (RFC 6716 R6/R7)",
        id="R7-padding-overrun",
    ),
]


@pytest.mark.parametrize(("packet", "message"), INVALID)
def test_invalid_packet(packet: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        packet_samples(packet)
    assert str(raised.value) == message


@pytest.mark.parametrize(("packet", "message"), INVALID)
def test_invalid_packet_in_build_leaves_no_config(packet: bytes, message: str) -> None:
    depacketizer = OpusDepacketizer(CLOCK_RATE, 2)
    with pytest.raises(DepacketizeError) as raised:
        depacketizer.build([memoryview(packet)], 0)
    assert str(raised.value) == message
    assert depacketizer.config is None


# -- RFC 6716 section 3 on real packets (captured: source.ogg, libopus) -----------------------


def test_captured_ogg_packets_are_20ms_and_pre_skip_is_libopus_312() -> None:
    # RFC 7845 section 5.1: OpusHead = magic, version, channel count, pre-skip (LE16), ...
    head, tags, *audio = ogg_packets()
    assert head[:8] == b"OpusHead" and tags[:8] == b"OpusTags"
    assert head[9] == 2
    assert int.from_bytes(head[10:12], "little") == DEFAULT_PRE_SKIP == 312
    assert len(audio) == 200
    assert {packet_samples(packet) for packet in audio} == {960}


@pytest.mark.parametrize("capture", CAPTURES)
def test_captured_rtp_payloads_are_the_ogg_packets(capture: str) -> None:
    # RFC 7587 section 4.2: the RTP payload is exactly one Opus packet.
    payloads = [bytes(RtpPacket.parse(d).payload) for d in rtp_datagrams(capture, "audio", 20)]
    assert payloads == list(ogg_packets()[2:22])


# -- RFC 7587 sections 6.1, 7.1: channels from sprop-stereo or the TOC (invented) ----


@pytest.mark.parametrize(
    ("fmtp", "stereo_toc", "channels"),
    [
        pytest.param({"sprop-stereo": "1"}, False, 2, id="sprop-stereo-1-beats-mono-toc"),
        pytest.param({"sprop-stereo": "0"}, True, 1, id="sprop-stereo-0-beats-stereo-toc"),
        # "stereo" is the receiver's preference, not what the sender produces: the TOC decides.
        pytest.param({"stereo": "1"}, False, 1, id="stereo-1-is-not-the-senders-word"),
        pytest.param({"stereo": "0"}, True, 2, id="stereo-0-is-not-the-senders-word"),
        pytest.param({"sprop-stereo": "0", "stereo": "1"}, True, 1, id="sprop-stereo-first"),
        pytest.param({}, True, 2, id="toc-stereo"),
        pytest.param({}, False, 1, id="toc-mono"),
        pytest.param({"minptime": "10", "useinbandfec": "1"}, True, 2, id="unrelated-fmtp"),
        pytest.param({"sprop-stereo": "yes"}, True, 2, id="sprop-stereo-not-0-or-1-toc"),
        pytest.param({"sprop-stereo": "yes"}, False, 1, id="sprop-stereo-not-0-or-1-toc-mono"),
    ],
)
def test_channels(fmtp: dict[str, str], stereo_toc: bool, channels: int) -> None:
    depacketizer = OpusDepacketizer(CLOCK_RATE, 2, fmtp)
    packet = bytes([_toc(31, 0, stereo_toc)]) + _filler(10)
    depacketizer.build([memoryview(packet)], 0)
    assert depacketizer.config == CodecConfig(
        codec="OPUS",
        kind="audio",
        clock_rate=48000,
        channels=channels,
        sample_rate=48000,
        pre_skip=312,
    )


def test_config_comes_from_the_first_packet_only() -> None:
    depacketizer = OpusDepacketizer(CLOCK_RATE)
    depacketizer.build([memoryview(bytes([_toc(31, 0, True)]))], 0)
    config = depacketizer.config
    depacketizer.build([memoryview(bytes([_toc(31, 0, False)]))], 960)
    assert depacketizer.config is config
    assert config is not None and config.channels == 2


@pytest.mark.parametrize("capture", CAPTURES)
def test_captured_config_from_the_fixture_sdp(capture: str) -> None:
    (section,) = [m for m in load_sdp(FIXTURES / f"{capture}.sdp").media if m.kind == "audio"]
    rtp_format = section.formats[111]
    depacketizer = OpusDepacketizer(rtp_format.clock_rate, rtp_format.channels, rtp_format.fmtp)
    packet = RtpPacket.parse(rtp_datagrams(capture, "audio", 1)[0])
    frame = depacketizer.build([packet.payload], packet.timestamp)
    assert frame.duration == 960
    assert depacketizer.config is not None
    assert (depacketizer.config.channels, depacketizer.config.pre_skip) == (2, 312)


# -- RFC 7587 section 4.2: one packet is one frame (invented) ---------------------------------


def test_build_returns_a_whole_frame() -> None:
    depacketizer = OpusDepacketizer(CLOCK_RATE)
    packet = bytes([CELT_FB_20MS | CODE_1]) + _filler(6)
    frame = depacketizer.build([memoryview(packet)], 123456)
    assert type(frame.data) is bytes
    assert frame.data == packet
    assert frame.timestamp == 123456
    assert frame.duration == 1920
    assert frame.keyframe is True
    assert (frame.width, frame.height) == (0, 0)


def test_every_packet_starts_a_frame() -> None:
    depacketizer = OpusDepacketizer(CLOCK_RATE)
    assert OpusDepacketizer.single_packet_frames is True
    assert depacketizer.starts_frame(memoryview(b"")) is True
    assert depacketizer.starts_frame(memoryview(bytes([CELT_FB_20MS]))) is True


@pytest.mark.parametrize("count", [0, 2, 3])
def test_build_with_other_than_one_payload(count: int) -> None:
    depacketizer = OpusDepacketizer(CLOCK_RATE)
    payloads = [memoryview(bytes([CELT_FB_20MS]))] * count
    with pytest.raises(DepacketizeError) as raised:
        depacketizer.build(payloads, 0)
    assert str(raised.value) == f"Opus frame from {count} packets, expected 1"
    assert depacketizer.config is None
