"""H.264 over RTP (RFC 6184) and the H.264 parameter sets we read (H.264 7.3.2.1.1, 7.3.2.2).

Real vectors were made once on Debian 12 with FFmpeg 5.1 (libx264 core 164) and GStreamer 1.22:
- TINY_*: `ffmpeg -f lavfi -i testsrc2=size=40x30:rate=30 -frames:v 3 -c:v libx264
  -profile:v baseline -tune zerolatency -g 30 -bf 0 tiny.h264`, x264's 607-byte SEI removed
  (the stream decodes to the same framemd5 without it): SPS, PPS, one IDR slice, two P slices.
- GST_ZERO_LATENCY / GST_DEFAULT / FFMPEG: the RTP payloads that `rtph264pay mtu=300
  config-interval=-1 [aggregate-mode=zero-latency]` and `ffmpeg -re -i tiny.h264 -c copy -f rtp
  "rtp://127.0.0.1:P?pkt_size=300"` sent over loopback, written as the header bytes each
  payload starts with plus the part of a TINY NAL unit it carries (checked equal to the capture).
- REAL_SPS: SPS/PPS of libx264 at the sizes and pix_fmts named; `avcc` is the avcC box body of
  `ffmpeg -i x.h264 -c copy x.mp4`. OPENH264 is GStreamer's openh264enc (WebRTC's encoder).
Invented vectors follow RFC 6184 sections 5.6-5.8 and H.264 7.3.2.1.1; `sps_nal` writes an SPS
from its fields (a writer independent of the parser) for the property tests.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from recorder.codecs.h264 import (
    H264Depacketizer,
    Sps,
    avcc_record,
    nal_units,
    parse_pps_ids,
    parse_slice_start,
    parse_sprop_parameter_sets,
    parse_sps,
)
from recorder.errors import DepacketizeError
from recorder.media import CodecConfig
from recorder.sdp import parse_sdp
from tests.fuzzing import FUZZ, mutations

CLOCK_RATE = 90000

# -- real vectors -------------------------------------------------------------------------------

TINY_SPS = bytes.fromhex("6742c00ad90d796b0110000003001000000303c8f1226480")
TINY_PPS = bytes.fromhex("68cb83cb20")
TINY_IDR = bytes.fromhex(
    "65888437c4222ac0c085f80853220001009ad4186000f178ce8c68e817ddffe03880808c8212363895abf932"
    "261778bf1b54c6f909971ca4eff13ec9659b1f23999ffd820697152c1b489fefae350c4e4f96a3d5ea571834"
    "651b757a81d666d1c1fe3fbe587151755048adfef820003801810f844000400c0c180027ccc2acc740845f5a"
    "e751c01be0a3246dc40737ffed3815cc4d6234800dd71455636f172f8a27c9a953bd602118ffefca036bcf45"
    "9bab4e8d4047f76a70c1a4000408d90052c93155b7cc1e0740808ca004c5e32a3123a0feefff52e8c123a8f9"
    "abc0d5a61290e4390f57a406a2268a1f5fdffae10cca429c883a807eb3c48d1cb3eda29e682a14d866ff9c10"
    "cf98a2720eaa0d2e2a4134a8fed82010042c01c12375d242af02c2a5f301ab3682696f20228a893250052d05"
    "bbb03d9ddfa07a9967efa7a1fa6237db14e0ea476c1d61b8d1ec1db09fbe93a4ac1415efbc88a8088485bfc2"
    "126239ab507fc26446157bfd272bc6f9091f0bacfff6324770d431b93e6e1eaf5d5c606cca13cf57b01f4489"
    "250b105fdfd40e3b2eae099bfdf3abf08029c384080148005e14e0a34b286a22002a092dc002e82115308d22"
    "00008724be29088c564206749651000046802cbb41b6a7c78b9bb88000278f2e001f087d82c39e006c089071"
    "01001a20001e0007908107b8f0017874083dc3800bc4414190004b7074140a80025b8331e000580031c00253"
    "028ca000200c0c082a2c080ac0b2c0e040560f2c01970360bc781b1187ffd02b3910c883f89000e200012000"
    "1051b15732957320021845cc3804308b9c"
)
TINY_P1 = bytes.fromhex("419a381ae780")
TINY_P2 = bytes.fromhex("419a540539e0")
# What FFmpeg writes for tiny.h264 in an mp4 (and what we must build from TINY_SPS/TINY_PPS).
TINY_AVCC = bytes.fromhex(
    "0142c00affe100186742c00ad90d796b0110000003001000000303c8f122648001000568cb83cb20"
)
# FFmpeg's SDP for tiny.h264 (-sdp_file); its PPS keeps the extradata's trailing zero byte.
FFMPEG_SDP = """v=0
o=- 0 0 IN IP4 127.0.0.1
s=No Name
c=IN IP4 127.0.0.1
t=0 0
a=tool:libavformat LIBAVFORMAT_VERSION
m=video 5008 RTP/AVP 102
a=rtpmap:102 H264/90000
a=fmtp:102 packetization-mode=1; sprop-parameter-sets=Z0LACtkNeWsBEAAAAwAQAAADA8jxImSA,aMuDyyAA; \
profile-level-id=42C00A
"""

# Captured payloads, one list per frame. GStreamer sends SPS and PPS twice (once from the
# stream, once from config-interval): in one STAP-A (NRI 3) in zero-latency mode, as single NAL
# units by default. FFmpeg's STAP-A has NRI 0. FU-As carry 286 bytes each at mtu 300.
_FU = (TINY_IDR[1:287], TINY_IDR[287:573], TINY_IDR[573:])
_IDR_FU_A = [b"\x7c\x85" + _FU[0], b"\x7c\x05" + _FU[1], b"\x7c\x45" + _FU[2]]
_STAP = b"\x00\x18" + TINY_SPS + b"\x00\x05" + TINY_PPS
GST_ZERO_LATENCY = [[b"\x78" + _STAP + _STAP, *_IDR_FU_A], [TINY_P1], [TINY_P2]]
GST_DEFAULT = [[TINY_SPS, TINY_PPS, TINY_SPS, TINY_PPS, *_IDR_FU_A], [TINY_P1], [TINY_P2]]
FFMPEG = [[b"\x18" + _STAP, *_IDR_FU_A], [TINY_P1], [TINY_P2]]
SENDERS = [
    pytest.param(GST_ZERO_LATENCY, id="gstreamer-zero-latency"),
    pytest.param(GST_DEFAULT, id="gstreamer-default"),
    pytest.param(FFMPEG, id="ffmpeg"),
]

# (id, SPS, PPS, FFmpeg's avcC, profile, level, chroma_format_idc, bit depth, POC type,
#  frame_mbs_only, width, height) from libx264 via `ffmpeg -f lavfi -i testsrc2=size=WxH ...`.
REAL_SPS = [
    pytest.param(
        "6742c00dd90141fb0110000003001000000303c8f142a480",
        "68cb83cb20",
        "0142c00dffe100186742c00dd90141fb0110000003001000000303c8f142a48001000568cb83cb20",
        (66, 13, 1, 8, 2, True, 320, 240),
        id="baseline-320x240",
    ),
    pytest.param(
        "6742c01fd9005005bb0110000003001000000303c0f1832480",
        "68cb83cb20",
        "0142c01fffe100196742c01fd9005005bb0110000003001000000303c0f183248001000568cb83cb20",
        (66, 31, 1, 8, 2, True, 1280, 720),
        id="baseline-1280x720-cropped-from-736",
    ),
    pytest.param(
        "6764001eacd940a02ff970110000030001000003003c0f162d96",
        "68ebe3cb22c0",
        "0164001effe1001a6764001eacd940a02ff970110000030001000003003c0f162d9601000668ebe3cb22c0"
        "fdf8f800",
        (100, 30, 1, 8, 0, True, 640, 360),
        id="high-640x360",
    ),
    pytest.param(
        "676e000da6cd941419f9f0110000030001000003003c0f142996",
        "68ebe3cb22c0",
        "016e000dffe1001a676e000da6cd941419f9f0110000030001000003003c0f14299601000668ebe3cb22c0"
        "fdfafa00",
        (110, 13, 1, 10, 0, True, 320, 180),
        id="high10-yuv420p10le-320x180",
    ),
    pytest.param(
        "677a000dbcd94141ff9f0110000003001000000303c0f1429960",
        "68ebe3cb22c0",
        "017a000dffe1001a677a000dbcd94141ff9f0110000003001000000303c0f142996001000668ebe3cb22c0"
        "fef8f800",
        (122, 13, 2, 8, 0, True, 320, 234),
        id="high422-320x234-crop-unit-1",
    ),
    pytest.param(
        "6764000bf3650d3f898dc05b20000003002000000781e28532c0",
        "68ebe3cb22c0",
        "0164000bffe1001a6764000bf3650d3f898dc05b20000003002000000781e28532c001000668ebe3cb22c0"
        "fcf8f800",
        (100, 11, 0, 8, 0, True, 200, 100),
        id="high-gray-monochrome-200x100",
    ),
    pytest.param(
        "6764001eacd940b47b6022000003000200000300783e28532c",
        "68fba3cb22c0",
        "0164001effe100196764001eacd940b47b6022000003000200000300783e28532c01000668fba3cb22c0"
        "fdf8f800",
        (100, 30, 1, 8, 0, False, 720, 480),
        id="high-interlaced-720x480",
    ),
    pytest.param(
        "674d4028f403c0227ef0110000030001000003003c1f162ea0",
        "68de0fc8",
        "014d4028ffe10019674d4028f403c0227ef0110000030001000003003c1f162ea001000468de0fc8",
        (77, 40, 1, 8, 0, False, 1920, 1080),
        id="main-interlaced-1920x1080-field-crop",
    ),
    pytest.param(
        "6764000dacd94141fb0110000003001000000303c0f1429960",
        "68ebe3cb22c0",
        "0164000dffe100196764000dacd94141fb0110000003001000000303c0f142996001000668ebe3cb22c0"
        "fdf8f800",
        (100, 13, 1, 8, 0, True, 320, 240),
        id="high-bframes-mp4",
    ),
]
# High 4:4:4 Predictive (244). ISO/IEC 14496-15 5.3.3.1.1 adds the chroma/bit depth bytes only
# for profiles 100/110/122/144, so our avcC ends before them; FFmpeg appends them for every
# profile but 66/77/88 (and readers that follow the standard, e.g. Chromium's, ignore them).
REAL_SPS_444 = [
    pytest.param(
        "67f40015919b282c13f71f8088000003000800000301e078b16cb0",
        "68ebe3c44844",
        "01f40015ffe1001b67f40015919b282c13f71f8088000003000800000301e078b16cb001000668ebe3c44844"
        "fff8f800",
        (244, 21, 3, 8, 0, True, 350, 290),
        id="high444-350x290-crop-unit-1",
    ),
    pytest.param(
        "67f4000d90d9b28283f60220000003002000000781e28532c0",
        "68ebe3c44844",
        "01f4000dffe1001967f4000d90d9b28283f60220000003002000000781e28532c001000668ebe3c44844"
        "fffafa00",
        (244, 13, 3, 10, 0, True, 320, 240),
        id="high444-yuv444p10le-320x240",
    ),
]
# No encoder here writes SPS scaling lists (x264 puts its matrices in the PPS), so these are
# x264's SPSs (640x360 High, 320x240 High 4:4:4) with seq_scaling_matrix_present_flag set and
# random lists (8 and 12, some absent, some ended early by nextScale 0) spliced in by the writer
# below; FFmpeg parses them to the same size and decodes the streams without error.
SCALING_SPS = [
    pytest.param(
        "6764001ead8210b0507827100a4e343a09c38207068208d2a1d2a0c0e0882205714094543c60c05450276098"
        "5054148703c1804070480a4301a1e08cc111840520990270500883e2410827386c260844854b0d8808890c01"
        "39b281405ff2e022000003000200000300781e2c5b2c",
        (100, 1, 640, 360),
        id="high-420-8-lists",
    ),
    pytest.param(
        "67f4000d91a430c83ca1d123209182141d8f0a0683c1f140a02ca8d0b842160f06c38090a092509890fc2e1f"
        "0e0685822181020260441138d0a8230b8d0401c0420a01007c3609c261404609c130904240460945102808078"
        "230aa0d840148c0c1048290f8250c850a08814064407c22158804009410025042150b02404ac118c050d183c"
        "1486a11b098a04e100d86481704e3c3c604a090246098220ca3204a15044280adb28283f6022000000300200"
        "0000781e28532c0",
        (244, 3, 320, 240),
        id="high444-12-lists",
    ),
]
# GStreamer `videotestsrc ! video/x-raw,width=176,height=100 ! openh264enc`: POC type 0,
# log2_max_frame_num 15, 112 rows cropped to 100.
OPENH264_SPS = bytes.fromhex("6742c00b8c8d4167bcf00f08846a")


def _view(data: bytes) -> memoryview:
    return memoryview(data)


def _views(payloads: Sequence[bytes]) -> list[memoryview]:
    return [memoryview(p) for p in payloads]


def _depacketizer(fmtp: dict[str, str] | None = None) -> H264Depacketizer:
    return H264Depacketizer(CLOCK_RATE, None, fmtp)


def _length_prefixed(*nals: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(nal)) + nal for nal in nals)


def _split_length_prefixed(data: bytes) -> list[bytes]:
    nals = []
    offset = 0
    while offset < len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        offset += 4
        assert 0 < size <= len(data) - offset
        nals.append(data[offset : offset + size])
        offset += size
    return nals


def stap_a(*nals: bytes, header: int = 0x78) -> bytes:
    """RFC 6184 5.7.1: STAP-A header, then each NAL unit behind its 16-bit size."""
    return bytes([header]) + b"".join(len(nal).to_bytes(2, "big") + nal for nal in nals)


def fu_a(nal: bytes, size: int) -> list[bytes]:
    """RFC 6184 5.8: FU indicator (F, NRI of the NAL, type 28) + FU header (S, E, type)."""
    indicator = nal[0] & 0xE0 | 28
    body = nal[1:]
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    out = []
    for index, chunk in enumerate(chunks):
        header = nal[0] & 0x1F
        if index == 0:
            header |= 0x80
        if index == len(chunks) - 1:
            header |= 0x40
        out.append(bytes([indicator, header]) + chunk)
    return out


# -- an SPS writer (H.264 7.3.2.1.1, written from the syntax table) ------------------------------


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, bits: int, value: int) -> None:
        self.bits += [(value >> (bits - 1 - i)) & 1 for i in range(bits)]

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(code.bit_length() * 2 - 1, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def rbsp(self) -> bytes:
        bits = [*self.bits, 1]  # rbsp_stop_one_bit, then alignment zeros
        bits += [0] * (-len(bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def escape(rbsp: bytes) -> bytes:
    """H.264 7.4.1: emulation_prevention_three_byte after 00 00 before a byte <= 3."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def sps_nal(
    *,
    profile_idc: int = 100,
    constraint_flags: int = 0,
    level_idc: int = 30,
    sps_id: int = 0,
    chroma_format_idc: int = 1,
    separate_colour_plane: bool = False,
    bit_depth_luma: int = 8,
    bit_depth_chroma: int = 8,
    scaling_lists: Sequence[Sequence[int] | None] | None = None,
    log2_max_frame_num: int = 4,
    pic_order_cnt_type: int = 0,
    log2_max_poc_lsb: int = 4,
    poc_cycle: Sequence[int] = (),
    max_num_ref_frames: int = 1,
    width_mbs: int = 20,
    height_map_units: int = 15,
    frame_mbs_only: bool = True,
    crop: tuple[int, int, int, int] | None = None,
) -> bytes:
    """An SPS NAL unit; `scaling_lists` holds per list None (absent) or its delta_scale values."""
    w = BitWriter()
    w.ue(sps_id)
    if profile_idc in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        w.ue(chroma_format_idc)
        if chroma_format_idc == 3:
            w.u(1, separate_colour_plane)
        w.ue(bit_depth_luma - 8)
        w.ue(bit_depth_chroma - 8)
        w.u(1, 0)  # qpprime_y_zero_transform_bypass_flag
        w.u(1, scaling_lists is not None)
        if scaling_lists is not None:
            for index in range(8 if chroma_format_idc != 3 else 12):
                deltas = scaling_lists[index] if index < len(scaling_lists) else None
                w.u(1, deltas is not None)
                if deltas is None:
                    continue
                # 7.3.2.1.1.1: deltas are read while nextScale != 0.
                last = following = 8
                for j in range(16 if index < 6 else 64):
                    if following != 0:
                        delta = deltas[j] if j < len(deltas) else 0
                        w.se(delta)
                        following = (last + delta + 256) % 256
                    last = following or last
    w.ue(log2_max_frame_num - 4)
    w.ue(pic_order_cnt_type)
    if pic_order_cnt_type == 0:
        w.ue(log2_max_poc_lsb - 4)
    elif pic_order_cnt_type == 1:
        w.u(1, 1)  # delta_pic_order_always_zero_flag
        w.se(-3)  # offset_for_non_ref_pic
        w.se(7)  # offset_for_top_to_bottom_field
        w.ue(len(poc_cycle))
        for offset in poc_cycle:
            w.se(offset)
    w.ue(max_num_ref_frames)
    w.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    w.ue(width_mbs - 1)
    w.ue(height_map_units - 1)
    w.u(1, frame_mbs_only)
    if not frame_mbs_only:
        w.u(1, 1)  # mb_adaptive_frame_field_flag
    w.u(1, 1)  # direct_8x8_inference_flag
    w.u(1, crop is not None)
    if crop is not None:
        for offset in crop:
            w.ue(offset)
    w.u(1, 0)  # vui_parameters_present_flag
    header = bytes([0x67, profile_idc, constraint_flags, level_idc])
    return header + escape(w.rbsp())


def pps_nal(pps_id: int = 0, sps_id: int = 0, cabac: bool = False) -> bytes:
    w = BitWriter()
    w.ue(pps_id)
    w.ue(sps_id)
    w.u(1, cabac)  # entropy_coding_mode_flag; the rest does not matter to us
    return b"\x68" + escape(w.rbsp())


def slice_nal(nal_type: int, first_mb: int = 0, pps_id: int = 0, slice_type: int = 7) -> bytes:
    w = BitWriter()
    w.ue(first_mb)
    w.ue(slice_type)
    w.ue(pps_id)
    w.u(8, 0x5A)
    return bytes([0x60 | nal_type]) + escape(w.rbsp())


def _crop_units(chroma_format_idc: int, separate: bool, frame_mbs_only: bool) -> tuple[int, int]:
    """H.264 table 6-1 and equations 7-19 to 7-22."""
    if chroma_format_idc == 0 or separate:
        return 1, 2 - frame_mbs_only
    sub_width, sub_height = {1: (2, 2), 2: (2, 1), 3: (1, 1)}[chroma_format_idc]
    return sub_width, sub_height * (2 - frame_mbs_only)


# -- RFC 6184 5.6-5.8: the three packet structures, from real senders -------------------------


def test_captured_structures_match_the_rfc_packetizers() -> None:
    # The test packetizers reproduce what GStreamer and FFmpeg sent.
    assert fu_a(TINY_IDR, 286) == _IDR_FU_A
    assert stap_a(TINY_SPS, TINY_PPS, TINY_SPS, TINY_PPS) == GST_ZERO_LATENCY[0][0]
    assert stap_a(TINY_SPS, TINY_PPS, header=0x18) == FFMPEG[0][0]


@pytest.mark.parametrize("frames", SENDERS)
def test_real_senders_give_the_source_access_units(frames: list[list[bytes]]) -> None:
    depacketizer = _depacketizer()
    built = []
    for index, payloads in enumerate(frames):
        assert depacketizer.starts_frame(_view(payloads[0])) is True
        built.append(depacketizer.build(_views(payloads), 3000 * index))
    # GStreamer's repeated SPS/PPS are kept once.
    assert built[0].data == _length_prefixed(TINY_SPS, TINY_PPS, TINY_IDR)
    assert built[0].keyframe is True
    assert (built[0].width, built[0].height) == (40, 30)
    assert built[0].timestamp == 0
    for frame, nal in zip(built[1:], (TINY_P1, TINY_P2), strict=True):
        assert frame.data == _length_prefixed(nal)
        assert frame.keyframe is False
        assert (frame.width, frame.height) == (0, 0)
    assert depacketizer.config == CodecConfig(
        codec="H264",
        kind="video",
        clock_rate=CLOCK_RATE,
        width=40,
        height=30,
        profile=66,
        level=10,
        bit_depth=8,
        chroma_subsampling=1,
        record=TINY_AVCC,
    )


@pytest.mark.parametrize(
    "payloads",
    [
        pytest.param([TINY_SPS, TINY_PPS, TINY_IDR], id="single-NAL-units"),
        pytest.param([stap_a(TINY_SPS, TINY_PPS, TINY_IDR)], id="one-STAP-A"),
        pytest.param([stap_a(TINY_SPS), stap_a(TINY_PPS), TINY_IDR], id="STAP-A-of-one"),
        pytest.param([TINY_SPS, TINY_PPS, *fu_a(TINY_IDR, 1)], id="FU-A-of-one-byte"),
        pytest.param([TINY_SPS, TINY_PPS, *fu_a(TINY_IDR, 587)], id="FU-A-start-and-end"),
        pytest.param([stap_a(TINY_SPS, TINY_PPS), *fu_a(TINY_IDR, 100)], id="STAP-A-then-FU-A"),
        pytest.param(
            [TINY_SPS, TINY_PPS, bytes([0x7C, 0xC5]) + TINY_IDR[1:]], id="FU-A-with-S-and-E"
        ),
        pytest.param(
            [b"\x09\xf0", TINY_SPS, TINY_PPS, b"\x0c\xff\xff\x80", TINY_IDR],
            id="AUD-and-filler-dropped",
        ),
        pytest.param(
            [stap_a(b"\x09\xf0", TINY_SPS, TINY_PPS), TINY_IDR, b"\x0c\xff\x80"],
            id="AUD-in-STAP-A-filler-at-end",
        ),
    ],
)
def test_packet_structures(payloads: list[bytes]) -> None:
    frame = _depacketizer().build(_views(payloads), 0)
    assert frame.data == _length_prefixed(TINY_SPS, TINY_PPS, TINY_IDR)
    assert frame.keyframe is True


def test_sei_and_other_nal_units_are_kept_in_order() -> None:
    sei = bytes.fromhex("0605ffff5bdc45e9bde6d948b7962cd820d923ee80")
    end_of_sequence = b"\x0a"
    payloads = [stap_a(TINY_SPS, TINY_PPS, sei), *fu_a(TINY_IDR, 200), end_of_sequence]
    frame = _depacketizer().build(_views(payloads), 0)
    assert frame.data == _length_prefixed(TINY_SPS, TINY_PPS, sei, TINY_IDR, end_of_sequence)


@pytest.mark.parametrize(
    ("payload", "starts"),
    [
        pytest.param(TINY_IDR, True, id="single-NAL"),
        pytest.param(TINY_P1, True, id="single-non-IDR"),
        pytest.param(b"\x06\x05", True, id="single-SEI"),
        pytest.param(stap_a(TINY_SPS, TINY_PPS), True, id="STAP-A"),
        pytest.param(_IDR_FU_A[0], True, id="FU-A-start"),
        pytest.param(_IDR_FU_A[1], False, id="FU-A-middle"),
        pytest.param(_IDR_FU_A[2], False, id="FU-A-end"),
        pytest.param(b"\x7c\xc5\x00", True, id="FU-A-start-and-end"),
    ],
)
def test_starts_frame(payload: bytes, starts: bool) -> None:
    assert _depacketizer().starts_frame(_view(payload)) is starts


# -- RFC 6184: malformed, lost and unsupported payloads -----------------------------------------

MALFORMED_PAYLOADS = [
    pytest.param(b"", "H.264 payload is empty", id="empty"),
    pytest.param(b"\xe5\x88", "H.264 payload has the forbidden_zero_bit set", id="forbidden-bit"),
    pytest.param(b"\x00\x00", "H.264 payload type 0 is reserved (RFC 6184 table 1)", id="type-0"),
    pytest.param(b"\x1e\x00", "H.264 payload type 30 is reserved (RFC 6184 table 1)", id="type-30"),
    pytest.param(b"\x1f\x00", "H.264 payload type 31 is reserved (RFC 6184 table 1)", id="type-31"),
    pytest.param(
        b"\x19\x00\x01\x00\x02\x65\x88",
        "H.264 STAP-B packets (type 25) are unsupported",
        id="STAP-B",
    ),
    pytest.param(
        b"\x1a\x00\x00\x00", "H.264 MTAP16 packets (type 26) are unsupported", id="MTAP16"
    ),
    pytest.param(
        b"\x1b\x00\x00\x00", "H.264 MTAP24 packets (type 27) are unsupported", id="MTAP24"
    ),
    pytest.param(
        b"\x7d\x85\x00\x01\x88", "H.264 FU-B packets (type 29) are unsupported", id="FU-B"
    ),
    pytest.param(b"\x7c", "H.264 FU-A truncated: no FU header", id="FU-A-no-header"),
]


@pytest.mark.parametrize(("payload", "message"), MALFORMED_PAYLOADS)
def test_malformed_payload_in_starts_frame(payload: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        _depacketizer().starts_frame(_view(payload))
    assert str(raised.value) == message


MALFORMED_FRAMES = [
    *[pytest.param([p.values[0]], p.values[1], id=p.id) for p in MALFORMED_PAYLOADS],
    pytest.param([], "H.264 access unit has no slices", id="no-payloads"),
    pytest.param(_IDR_FU_A[1:], "H.264 FU-A continues a NAL unit whose start is lost", id="no-S"),
    pytest.param(
        [TINY_SPS, TINY_PPS, *_IDR_FU_A[:2]],
        "H.264 FU-A fragment without its end",
        id="end-missing",
    ),
    pytest.param(
        [TINY_SPS, TINY_PPS, _IDR_FU_A[0], TINY_P1],
        "H.264 FU-A fragment without its end",
        id="end-missing-before-a-single-NAL",
    ),
    pytest.param(
        [_IDR_FU_A[0], *_IDR_FU_A],
        "H.264 FU-A starts before the previous one ended",
        id="second-start",
    ),
    pytest.param(
        [_IDR_FU_A[0], b"\x7c\x41\x00"],
        "H.264 FU-A of NAL type 1 continues type 5",
        id="type-changes",
    ),
    pytest.param(
        [b"\x7c\x98\x00"],
        "H.264 FU-A carries NAL unit type 24, expected 1-23",
        id="FU-A-of-STAP-A",
    ),
    pytest.param(
        [b"\x7c\x80\x00"], "H.264 FU-A carries NAL unit type 0, expected 1-23", id="FU-A-type-0"
    ),
    pytest.param([b"\x78"], "H.264 STAP-A carries no NAL units", id="STAP-A-empty"),
    pytest.param(
        [stap_a(TINY_SPS) + b"\x00"],
        "H.264 STAP-A truncated: half a NAL unit size",
        id="STAP-A-size-cut",
    ),
    pytest.param(
        [stap_a(TINY_SPS)[:-1]],
        "H.264 STAP-A NAL unit of 24 bytes overruns the payload (23 left)",
        id="STAP-A-NAL-cut",
    ),
    pytest.param(
        [b"\x78\x00\x00\x00\x01\x65"],
        "H.264 STAP-A has a zero-size NAL unit",
        id="STAP-A-zero-size",
    ),
    pytest.param(
        [stap_a(b"\xe5\x88")],
        "H.264 STAP-A has the forbidden_zero_bit set",
        id="STAP-A-forbidden-bit",
    ),
    pytest.param(
        [stap_a(b"\x7c\x85\x00")],
        "H.264 STAP-A carries NAL unit type 28, expected 1-23",
        id="STAP-A-of-FU-A",
    ),
    pytest.param(
        [stap_a(TINY_SPS, b"\x19\x00")],
        "H.264 STAP-A carries NAL unit type 25, expected 1-23",
        id="STAP-A-of-STAP-B",
    ),
    pytest.param(
        [TINY_SPS, TINY_PPS, b"\x19\x00\x01\x00\x02\x65\x88", TINY_IDR],
        "H.264 STAP-B packets (type 25) are unsupported",
        id="STAP-B-inside-a-frame",
    ),
    pytest.param([TINY_SPS, TINY_PPS], "H.264 access unit has no slices", id="parameter-sets-only"),
    pytest.param([b"\x09\xf0"], "H.264 access unit has no slices", id="AUD-only"),
    pytest.param([TINY_IDR], "H.264 IDR without parameter sets", id="IDR-nothing-known"),
    pytest.param([TINY_SPS, TINY_IDR], "H.264 IDR without parameter sets", id="IDR-no-PPS-known"),
    pytest.param(
        [pps_nal(0, 3), TINY_IDR], "H.264 IDR without parameter sets", id="PPS-names-unknown-SPS"
    ),
    pytest.param(
        [TINY_SPS, TINY_PPS, slice_nal(5, first_mb=3)],
        "H.264 access unit lacks the slice at macroblock 0",
        id="first-slice-lost",
    ),
    pytest.param(
        [slice_nal(1, first_mb=1), slice_nal(1, first_mb=2)],
        "H.264 access unit lacks the slice at macroblock 0",
        id="first-non-IDR-slice-lost",
    ),
    pytest.param(
        [TINY_SPS, TINY_PPS, b"\x65"],
        "H.264 slice header truncated at bit 0 (needs 1 more)",
        id="IDR-empty",
    ),
    pytest.param(
        [TINY_SPS, TINY_PPS, slice_nal(5, slice_type=10)],
        "H.264 slice_type is 10, at most 9",
        id="slice-type-10",
    ),
    pytest.param(
        [TINY_SPS, TINY_PPS, slice_nal(5, pps_id=256)],
        "H.264 slice refers to PPS 256, at most 255",
        id="slice-PPS-256",
    ),
    pytest.param(
        [sps_nal(sps_id=32), TINY_PPS, TINY_IDR],
        "H.264 SPS seq_parameter_set_id is 32, at most 31 allowed",
        id="SPS-id-32",
    ),
    pytest.param(
        [TINY_SPS, pps_nal(256), TINY_IDR],
        "H.264 PPS pic_parameter_set_id is 256, at most 255",
        id="PPS-id-256",
    ),
    pytest.param(
        [TINY_SPS[:5], TINY_PPS, TINY_IDR],
        "H.264 SPS truncated at bit 8 (needs 2 more)",
        id="SPS-cut",
    ),
]


@pytest.mark.parametrize(("payloads", "message"), MALFORMED_FRAMES)
def test_malformed_frame(payloads: list[bytes], message: str) -> None:
    depacketizer = _depacketizer()
    with pytest.raises(DepacketizeError) as raised:
        depacketizer.build(_views(payloads), 0)
    assert str(raised.value) == message
    assert depacketizer.config is None


def test_lost_start_is_not_a_frame_start() -> None:
    # The stream asks starts_frame about the first packet it has; without S it drops the frame.
    assert _depacketizer().starts_frame(_view(_IDR_FU_A[1])) is False


# -- parameter sets: remembered, prepended to IDRs, taken from the SDP ---------------------------


def _sent_apart(depacketizer: H264Depacketizer, *nals: bytes) -> None:
    """Parameter sets in an access unit of their own, as some cameras send them."""
    with pytest.raises(DepacketizeError, match="no slices"):
        depacketizer.build(_views([stap_a(*nals)]), 0)


def test_idr_without_parameter_sets_gets_the_latest_ones() -> None:
    # A sender that relies on earlier parameter sets (or the SDP's) for its IDRs.
    depacketizer = _depacketizer()
    _sent_apart(depacketizer, TINY_SPS, TINY_PPS)
    depacketizer.build(_views(fu_a(TINY_IDR, 300)), 0)
    first = depacketizer.config
    frame = depacketizer.build(_views(fu_a(TINY_IDR, 300)), 90000)
    assert frame.keyframe is True
    assert frame.data == _length_prefixed(TINY_SPS, TINY_PPS, TINY_IDR)
    assert (frame.width, frame.height) == (40, 30)
    assert depacketizer.config is first, "same parameter sets: the config is not rebuilt"


def test_in_band_sender_losing_its_parameter_sets_is_refused_once() -> None:
    # Captured case (FFmpeg -f rtp, 3% loss): the STAP-A with the new 640x360 SPS/PPS was lost
    # and the IDR that followed would have been decoded with the old 320x240 ones.
    depacketizer = _depacketizer()
    depacketizer.build(_views(FFMPEG[0]), 0)
    with pytest.raises(DepacketizeError) as raised:
        depacketizer.build(_views(_IDR_FU_A), 90000)
    assert str(raised.value) == "H.264 IDR lost the parameter sets its sender sends with it"
    # In-band again: fine. And a sender that really stopped sending them in-band: the next IDR
    # without them is completed.
    assert depacketizer.build(_views(FFMPEG[0]), 180000).keyframe is True
    with pytest.raises(DepacketizeError):
        depacketizer.build(_views(_IDR_FU_A), 270000)
    frame = depacketizer.build(_views(_IDR_FU_A), 360000)
    assert frame.data == _length_prefixed(TINY_SPS, TINY_PPS, TINY_IDR)


def test_parameter_sets_sent_apart_are_used_by_the_next_idr() -> None:
    depacketizer = _depacketizer()
    with pytest.raises(DepacketizeError):
        depacketizer.build(_views([stap_a(TINY_SPS, TINY_PPS)]), 0)
    frame = depacketizer.build(_views([b"\x09\xf0", TINY_IDR]), 0)
    assert frame.data == _length_prefixed(TINY_SPS, TINY_PPS, TINY_IDR)


def test_idr_with_sps_only_gets_the_pps_after_it() -> None:
    depacketizer = _depacketizer()
    _sent_apart(depacketizer, TINY_SPS, TINY_PPS)
    sei = b"\x06\x05\x01\x00\x80"
    frame = depacketizer.build(_views([sei, TINY_SPS, TINY_IDR]), 3000)
    # SPS before PPS before the SEI (a buffering period SEI refers to the SPS).
    assert frame.data == _length_prefixed(TINY_SPS, TINY_PPS, sei, TINY_IDR)


def test_idr_with_pps_only_gets_the_sps_before_it() -> None:
    depacketizer = _depacketizer()
    _sent_apart(depacketizer, TINY_SPS, TINY_PPS)
    frame = depacketizer.build(_views([TINY_PPS, TINY_IDR]), 3000)
    assert frame.data == _length_prefixed(TINY_SPS, TINY_PPS, TINY_IDR)


def test_non_idr_frames_are_left_alone() -> None:
    depacketizer = _depacketizer()
    depacketizer.build(_views([TINY_SPS, TINY_PPS, TINY_IDR]), 0)
    frame = depacketizer.build(_views([TINY_P1]), 3000)
    assert frame.data == _length_prefixed(TINY_P1)
    # An in-band PPS in front of a P frame stays where the sender put it.
    frame = depacketizer.build(_views([TINY_PPS, TINY_P2]), 6000)
    assert frame.data == _length_prefixed(TINY_PPS, TINY_P2)
    assert frame.keyframe is False


def test_slices_choose_their_pps_and_the_latest_of_an_id_wins() -> None:
    depacketizer = _depacketizer()
    sps_a = sps_nal(sps_id=0, width_mbs=20, height_map_units=15)
    sps_b = sps_nal(sps_id=1, width_mbs=40, height_map_units=30)
    payloads = [sps_a, sps_b, pps_nal(0, 0), pps_nal(7, 1), slice_nal(5, pps_id=7)]
    frame = depacketizer.build(_views(payloads), 0)
    assert (frame.width, frame.height) == (640, 480)
    assert depacketizer.config is not None
    assert depacketizer.config.record == avcc_record([sps_b], [pps_nal(7, 1)], parse_sps(sps_b))
    # A new SPS 1 replaces the old; an IDR without parameter sets gets the new one (once the
    # sender is seen to leave them out: the first such IDR may have lost them).
    sps_c = sps_nal(sps_id=1, width_mbs=10, height_map_units=10, level_idc=11)
    depacketizer.build(_views([sps_c, slice_nal(1, first_mb=0)]), 3000)
    with pytest.raises(DepacketizeError, match="lost the parameter sets"):
        depacketizer.build(_views([slice_nal(5, pps_id=7)]), 6000)
    frame = depacketizer.build(_views([slice_nal(5, pps_id=7)]), 6000)
    assert frame.data == _length_prefixed(sps_c, pps_nal(7, 1), slice_nal(5, pps_id=7))
    assert (frame.width, frame.height) == (160, 160)
    assert depacketizer.config.level == 11


def test_parameter_sets_after_the_slices_are_for_the_next_picture() -> None:
    depacketizer = _depacketizer()
    sps, old, new = sps_nal(), pps_nal(0), pps_nal(0, cabac=True)
    frame = depacketizer.build(_views([sps, old, slice_nal(5), new]), 0)
    assert frame.data == _length_prefixed(sps, old, slice_nal(5), new)
    assert depacketizer.config is not None
    assert depacketizer.config.record == avcc_record([sps], [old], parse_sps(sps))
    with pytest.raises(DepacketizeError, match="lost the parameter sets"):
        depacketizer.build(_views([slice_nal(5)]), 3000)
    frame = depacketizer.build(_views([slice_nal(5)]), 3000)
    assert frame.data == _length_prefixed(sps, new, slice_nal(5))
    assert depacketizer.config.record == avcc_record([sps], [new], parse_sps(sps))


def test_config_is_kept_while_parameter_sets_agree_and_replaced_when_they_change() -> None:
    depacketizer = _depacketizer()
    assert depacketizer.config is None
    depacketizer.build(_views(GST_ZERO_LATENCY[0]), 0)
    first = depacketizer.config
    depacketizer.build(_views(GST_DEFAULT[0]), 3000)
    assert depacketizer.config is first
    depacketizer.build(_views([TINY_P1]), 6000)
    assert depacketizer.config is first
    bigger = sps_nal(profile_idc=66, level_idc=31, width_mbs=80, height_map_units=45)
    frame = depacketizer.build(_views([bigger, TINY_PPS, TINY_IDR]), 9000)
    assert (frame.width, frame.height) == (1280, 720)
    assert depacketizer.config is not first
    assert depacketizer.config is not None
    assert (depacketizer.config.width, depacketizer.config.height) == (1280, 720)
    assert depacketizer.config.level == 31
    assert depacketizer.config.record == avcc_record([bigger], [TINY_PPS], parse_sps(bigger))


def test_sprop_parameter_sets_from_ffmpeg_sdp() -> None:
    fmtp = parse_sdp(FFMPEG_SDP).media[0].formats[102].fmtp
    depacketizer = _depacketizer(fmtp)
    # The config is known before any packet, and the SDP's trailing zero does not count.
    assert depacketizer.config is not None
    assert depacketizer.config.record == TINY_AVCC
    assert (depacketizer.config.width, depacketizer.config.height) == (40, 30)
    first = depacketizer.config
    frame = depacketizer.build(_views([TINY_IDR]), 0)
    assert frame.data == _length_prefixed(TINY_SPS, TINY_PPS, TINY_IDR)
    assert depacketizer.config is first
    depacketizer.build(_views(FFMPEG[0]), 3000)
    assert depacketizer.config is first


@pytest.mark.parametrize(
    ("value", "nals"),
    [
        pytest.param(
            "Z0LACtkNeWsBEAAAAwAQAAADA8jxImSA,aMuDyyAA", [TINY_SPS, TINY_PPS], id="ffmpeg"
        ),
        pytest.param(
            "Z0LACtkNeWsBEAAAAwAQAAADA8jxImSA,aMuDyyA=", [TINY_SPS, TINY_PPS], id="padded"
        ),
        pytest.param(
            " Z0LACtkNeWsBEAAAAwAQAAADA8jxImSA , aMuDyyA ", [TINY_SPS, TINY_PPS], id="unpadded"
        ),
        pytest.param("aMuDyyA=,!!!,,Zg==", [TINY_PPS, b"f"], id="bad-entries-skipped"),
        pytest.param("AAAA", [], id="only-zeros"),
        pytest.param("", [], id="empty"),
    ],
)
def test_parse_sprop_parameter_sets(value: str, nals: list[bytes]) -> None:
    assert parse_sprop_parameter_sets(value) == nals


@pytest.mark.parametrize(
    "fmtp",
    [
        pytest.param({"sprop-parameter-sets": "!!!"}, id="garbage"),
        pytest.param({"sprop-parameter-sets": base64.b64encode(TINY_PPS).decode()}, id="PPS-only"),
        pytest.param({"sprop-parameter-sets": base64.b64encode(TINY_SPS).decode()}, id="SPS-only"),
        pytest.param(
            {"sprop-parameter-sets": "Z0LA," + base64.b64encode(TINY_PPS).decode()},
            id="broken-SPS",
        ),
    ],
)
def test_unusable_sprop_leaves_the_config_to_the_stream(fmtp: dict[str, str]) -> None:
    depacketizer = _depacketizer(fmtp)
    assert depacketizer.config is None
    frame = depacketizer.build(_views([TINY_SPS, TINY_PPS, TINY_IDR]), 0)
    assert frame.keyframe is True
    assert depacketizer.config is not None
    assert depacketizer.config.record == TINY_AVCC


def test_sprop_key_is_case_insensitive() -> None:
    fmtp = {"Sprop-Parameter-Sets": "Z0LACtkNeWsBEAAAAwAQAAADA8jxImSA,aMuDyyAA"}
    depacketizer = _depacketizer(fmtp)
    assert depacketizer.config is not None
    assert depacketizer.config.record == TINY_AVCC


# -- H.264 7.3.2.1.1: the SPS of real encoders ---------------------------------------------------

_FIELDS = (
    "profile_idc",
    "level_idc",
    "chroma_format_idc",
    "bit_depth_luma",
    "pic_order_cnt_type",
    "frame_mbs_only",
    "width",
    "height",
)


@pytest.mark.parametrize(("sps", "pps", "avcc", "expected"), REAL_SPS + REAL_SPS_444)
def test_real_sps(sps: str, pps: str, avcc: str, expected: tuple[object, ...]) -> None:
    parsed = parse_sps(bytes.fromhex(sps))
    assert tuple(getattr(parsed, name) for name in _FIELDS) == expected
    assert parsed.sps_id == 0
    assert parse_pps_ids(bytes.fromhex(pps)) == (0, 0)


@pytest.mark.parametrize(("sps", "pps", "avcc", "expected"), REAL_SPS)
def test_avcc_equals_ffmpegs(sps: str, pps: str, avcc: str, expected: tuple[object, ...]) -> None:
    nal = bytes.fromhex(sps)
    assert avcc_record([nal], [bytes.fromhex(pps)], parse_sps(nal)) == bytes.fromhex(avcc)


@pytest.mark.parametrize(("sps", "pps", "avcc", "expected"), REAL_SPS_444)
def test_avcc_for_444_is_ffmpegs_without_the_extension(
    sps: str, pps: str, avcc: str, expected: tuple[object, ...]
) -> None:
    nal = bytes.fromhex(sps)
    assert avcc_record([nal], [bytes.fromhex(pps)], parse_sps(nal)) == bytes.fromhex(avcc)[:-4]


@pytest.mark.parametrize(("sps", "expected"), SCALING_SPS)
def test_sps_with_scaling_lists_sized_like_ffmpeg(sps: str, expected: tuple[int, ...]) -> None:
    parsed = parse_sps(bytes.fromhex(sps))
    assert (parsed.profile_idc, parsed.chroma_format_idc, parsed.width, parsed.height) == expected


def test_openh264_sps() -> None:
    assert parse_sps(OPENH264_SPS) == Sps(
        profile_idc=66,
        constraint_flags=0xC0,
        level_idc=11,
        sps_id=0,
        chroma_format_idc=1,
        separate_colour_plane=False,
        bit_depth_luma=8,
        bit_depth_chroma=8,
        log2_max_frame_num=15,
        pic_order_cnt_type=0,
        max_num_ref_frames=1,
        frame_mbs_only=True,
        width=176,
        height=100,
    )


def test_tiny_sps_is_cropped_from_48x32() -> None:
    parsed = parse_sps(TINY_SPS)
    assert (parsed.width, parsed.height) == (40, 30)
    assert parsed.pic_order_cnt_type == 2
    assert parsed.constraint_flags == 0xC0  # constrained baseline


# -- H.264 7.3.2.1.1: invented SPSs for the branches encoders rarely take ------------------------


def _bits(data: bytes) -> str:
    return "".join(f"{byte:08b}" for byte in data)


@pytest.mark.parametrize(
    ("real", "fields"),
    [
        pytest.param(
            "6742c01fd9005005bb0110000003001000000303c0f1832480",
            {"max_num_ref_frames": 3, "width_mbs": 80, "height_map_units": 45},
            id="baseline-1280x720",
        ),
        pytest.param(
            TINY_SPS.hex(),
            {"max_num_ref_frames": 3, "width_mbs": 3, "height_map_units": 2, "crop": (0, 4, 0, 1)},
            id="baseline-40x30",
        ),
    ],
)
def test_writer_reproduces_x264_up_to_the_vui(real: str, fields: dict[str, object]) -> None:
    # Checks the test's SPS writer against x264: the same bits up to vui_parameters_present_flag
    # (1 in x264's SPS, 0 from the writer, followed by its stop bit).
    level = bytes.fromhex(real)[3]
    written = sps_nal(
        profile_idc=66, constraint_flags=0xC0, level_idc=level, pic_order_cnt_type=2, **fields
    )  # type: ignore[arg-type]
    written_bits = _bits(written).rstrip("0")[:-2]
    real_bits = _bits(bytes.fromhex(real))
    assert real_bits.startswith(written_bits)
    assert real_bits[len(written_bits)] == "1"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"scaling_lists": [[1, -2, 3]] * 6 + [[5] * 64, None]},
            {"width": 320, "height": 240},
            id="scaling-lists-4:2:0",
        ),
        pytest.param(
            {"scaling_lists": [None] * 6 + [[-8], [0] * 64]},
            {"width": 320, "height": 240},
            id="scaling-list-use-default",
        ),
        pytest.param(
            {"chroma_format_idc": 3, "scaling_lists": [[2, 2]] * 12, "crop": (1, 2, 3, 4)},
            {"chroma_format_idc": 3, "width": 317, "height": 233},
            id="scaling-lists-4:4:4-twelve",
        ),
        pytest.param(
            {"chroma_format_idc": 3, "separate_colour_plane": True, "crop": (1, 0, 0, 1)},
            {"separate_colour_plane": True, "width": 319, "height": 239},
            id="separate-colour-planes-crop-unit-1",
        ),
        pytest.param(
            {"chroma_format_idc": 0, "frame_mbs_only": False, "crop": (1, 1, 1, 1)},
            {"chroma_format_idc": 0, "width": 318, "height": 476},
            id="monochrome-fields-crop-unit-2",
        ),
        pytest.param(
            {"chroma_format_idc": 2, "frame_mbs_only": False, "crop": (1, 1, 1, 1)},
            {"width": 316, "height": 476},
            id="4:2:2-fields",
        ),
        pytest.param(
            {"frame_mbs_only": False, "crop": (0, 0, 0, 2)},
            {"frame_mbs_only": False, "width": 320, "height": 472},
            id="4:2:0-fields-crop-unit-4",
        ),
        pytest.param(
            {"pic_order_cnt_type": 1, "poc_cycle": [1, -2, 300, -70000]},
            {"pic_order_cnt_type": 1, "width": 320, "height": 240},
            id="POC-type-1-cycle",
        ),
        pytest.param(
            {"pic_order_cnt_type": 1, "poc_cycle": [*range(-127, 127), 9]},
            {"pic_order_cnt_type": 1, "height": 240},
            id="POC-type-1-longest-cycle",
        ),
        pytest.param(
            {"profile_idc": 77, "chroma_format_idc": 3, "bit_depth_luma": 12},
            {"chroma_format_idc": 1, "bit_depth_luma": 8},
            id="main-profile-has-no-chroma-fields",
        ),
        pytest.param(
            {"profile_idc": 118, "bit_depth_luma": 14, "bit_depth_chroma": 9},
            {"bit_depth_luma": 14, "bit_depth_chroma": 9},
            id="multiview-high-14-bit",
        ),
        pytest.param(
            {"sps_id": 31, "log2_max_frame_num": 16, "log2_max_poc_lsb": 16},
            {"sps_id": 31, "log2_max_frame_num": 16},
            id="largest-ids-and-counters",
        ),
        pytest.param(
            {"width_mbs": 1055, "height_map_units": 132, "max_num_ref_frames": 16},
            {"width": 16880, "height": 2112, "max_num_ref_frames": 16},
            id="widest",
        ),
        pytest.param(
            {"width_mbs": 1, "height_map_units": 1, "crop": (7, 0, 7, 0)},
            {"width": 2, "height": 2},
            id="smallest",
        ),
    ],
)
def test_invented_sps(fields: dict[str, object], expected: dict[str, object]) -> None:
    parsed = parse_sps(sps_nal(**fields))  # type: ignore[arg-type]
    for name, value in expected.items():
        assert getattr(parsed, name) == value, name


MALFORMED_SPS = [
    pytest.param(b"", "H.264 SPS truncated: 0 bytes", id="empty"),
    pytest.param(b"\x67\x42\xc0", "H.264 SPS truncated: 3 bytes", id="header-only"),
    pytest.param(b"\x68\x42\xc0\x1f\xff", "H.264 NAL unit header 0x68 is not an SPS", id="PPS"),
    pytest.param(
        b"\xe7\x42\xc0\x1f\xff", "H.264 NAL unit header 0xe7 is not an SPS", id="forbidden-bit"
    ),
    pytest.param(b"\x67\x42\xc0\x1f", "H.264 SPS truncated at bit 0 (needs 1 more)", id="no-body"),
    pytest.param(
        b"\x67\x42\xc0\x1f\x00\x00\x00\x00\x00",
        "H.264 SPS has an Exp-Golomb code over 32 bits",
        id="exp-golomb-too-long",
    ),
    pytest.param(
        sps_nal(sps_id=32), "H.264 SPS seq_parameter_set_id is 32, at most 31 allowed", id="id-32"
    ),
    pytest.param(
        sps_nal(chroma_format_idc=4),
        "H.264 SPS chroma_format_idc is 4, at most 3 allowed",
        id="chroma-4",
    ),
    pytest.param(
        sps_nal(bit_depth_luma=15),
        "H.264 SPS bit_depth_luma_minus8 is 7, at most 6 allowed",
        id="luma-15-bit",
    ),
    pytest.param(
        sps_nal(bit_depth_chroma=16),
        "H.264 SPS bit_depth_chroma_minus8 is 8, at most 6 allowed",
        id="chroma-16-bit",
    ),
    pytest.param(
        sps_nal(scaling_lists=[[200]]),
        "H.264 SPS delta_scale 200 is out of range",
        id="delta-scale-200",
    ),
    pytest.param(
        sps_nal(scaling_lists=[[-129]]),
        "H.264 SPS delta_scale -129 is out of range",
        id="delta-scale-minus-129",
    ),
    pytest.param(
        sps_nal(log2_max_frame_num=17),
        "H.264 SPS log2_max_frame_num_minus4 is 13, at most 12 allowed",
        id="frame-num-17",
    ),
    pytest.param(
        sps_nal(pic_order_cnt_type=3),
        "H.264 SPS pic_order_cnt_type is 3, at most 2 allowed",
        id="POC-type-3",
    ),
    pytest.param(
        sps_nal(log2_max_poc_lsb=17),
        "H.264 SPS log2_max_pic_order_cnt_lsb_minus4 is 13, at most 12 allowed",
        id="POC-lsb-17",
    ),
    pytest.param(
        sps_nal(pic_order_cnt_type=1, poc_cycle=[0] * 256),
        "H.264 SPS num_ref_frames_in_pic_order_cnt_cycle is 256, at most 255 allowed",
        id="POC-cycle-256",
    ),
    pytest.param(
        sps_nal(max_num_ref_frames=17),
        "H.264 SPS max_num_ref_frames is 17, at most 16 allowed",
        id="refs-17",
    ),
    pytest.param(
        sps_nal(width_mbs=1056),
        "H.264 SPS declares 1056x15 macroblocks, beyond level 6.2",
        id="too-wide",
    ),
    pytest.param(
        sps_nal(height_map_units=528, frame_mbs_only=False),
        "H.264 SPS declares 20x1056 macroblocks, beyond level 6.2",
        id="too-tall-in-fields",
    ),
    pytest.param(
        sps_nal(width_mbs=1000, height_map_units=1000),
        "H.264 SPS declares 1000x1000 macroblocks, beyond level 6.2",
        id="too-many-macroblocks",
    ),
    pytest.param(
        sps_nal(width_mbs=1, height_map_units=1, crop=(4, 4, 0, 0)),
        "H.264 SPS cropping (4, 4, 0, 0) leaves no picture of the 16x16 frame",
        id="cropped-to-nothing",
    ),
    pytest.param(
        sps_nal(crop=(0, 0, 0, 1 << 31)),
        "H.264 SPS cropping (0, 0, 0, 2147483648) leaves no picture of the 320x240 frame",
        id="absurd-crop",
    ),
    pytest.param(sps_nal()[:-3], "H.264 SPS truncated at bit 16 (needs 1 more)", id="cut"),
]


@pytest.mark.parametrize(("nal", "message"), MALFORMED_SPS)
def test_malformed_sps(nal: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        parse_sps(nal)
    assert str(raised.value) == message


def test_sps_with_emulation_prevention() -> None:
    # 00 00 03 in the NAL is 00 00 in the RBSP: the real 1280x720 SPS has two of them.
    parsed = parse_sps(bytes.fromhex("6742c01fd9005005bb0110000003001000000303c0f1832480"))
    assert (parsed.width, parsed.height) == (1280, 720)
    written = sps_nal(sps_id=0, width_mbs=1, height_map_units=1, crop=(0, 0, 0, 0))
    assert parse_sps(written).width == 16


@pytest.mark.parametrize(
    ("nal", "ids"),
    [
        pytest.param(TINY_PPS, (0, 0), id="x264"),
        pytest.param(bytes.fromhex("68ce3c80"), (0, 0), id="openh264"),
        pytest.param(pps_nal(255, 31), (255, 31), id="largest"),
    ],
)
def test_pps_ids(nal: bytes, ids: tuple[int, int]) -> None:
    assert parse_pps_ids(nal) == ids


@pytest.mark.parametrize(
    ("nal", "message"),
    [
        pytest.param(b"\x68", "H.264 PPS truncated or not a PPS", id="header-only"),
        pytest.param(b"\x67\x80", "H.264 PPS truncated or not a PPS", id="SPS"),
        pytest.param(pps_nal(0, 32), "H.264 PPS seq_parameter_set_id is 32, at most 31", id="sps"),
        pytest.param(
            b"\x68" + bytes(5) + b"\x80", "H.264 PPS has an Exp-Golomb code over 32 bits", id="eg"
        ),
    ],
)
def test_malformed_pps(nal: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        parse_pps_ids(nal)
    assert str(raised.value) == message


def test_slice_start() -> None:
    assert parse_slice_start(TINY_IDR) == (0, 0)
    assert parse_slice_start(TINY_P1) == (0, 0)
    assert parse_slice_start(slice_nal(1, first_mb=1234, pps_id=255)) == (1234, 255)


# -- ISO/IEC 14496-15 5.3.3.1: avcC -----------------------------------------------------------


def test_avcc_layout() -> None:
    sps = sps_nal(profile_idc=110, constraint_flags=0x10, level_idc=41, bit_depth_luma=10)
    pps = [pps_nal(0), pps_nal(1)]
    record = avcc_record([sps], pps, parse_sps(sps))
    assert record[:6] == bytes([1, 110, 0x10, 41, 0xFF, 0xE1])
    assert record[6:8] == len(sps).to_bytes(2, "big")
    offset = 8 + len(sps)
    assert record[8:offset] == sps
    assert record[offset] == 2
    offset += 1
    for nal in pps:
        assert record[offset : offset + 2] == len(nal).to_bytes(2, "big")
        assert record[offset + 2 : offset + 2 + len(nal)] == nal
        offset += 2 + len(nal)
    assert record[offset:] == bytes([0xFD, 0xFA, 0xF8, 0x00])


@pytest.mark.parametrize(
    ("profile", "extension"),
    [(66, False), (77, False), (88, False), (100, True), (110, True), (122, True), (144, True)]
    + [(profile, False) for profile in (244, 44, 83, 86, 118, 128)],
)
def test_avcc_extension_profiles(profile: int, extension: bool) -> None:
    sps = sps_nal(profile_idc=profile)
    record = avcc_record([sps], [TINY_PPS], parse_sps(sps))
    assert len(record) == 6 + 2 + len(sps) + 1 + 2 + len(TINY_PPS) + (4 if extension else 0)


def test_avcc_limits() -> None:
    parsed = parse_sps(TINY_SPS)
    with pytest.raises(DepacketizeError):
        avcc_record([], [TINY_PPS], parsed)
    with pytest.raises(DepacketizeError):
        avcc_record([TINY_SPS] * 32, [TINY_PPS], parsed)
    with pytest.raises(DepacketizeError):
        avcc_record([TINY_SPS], [TINY_PPS] * 256, parsed)
    with pytest.raises(DepacketizeError):
        avcc_record([TINY_SPS + bytes(0x10000)], [TINY_PPS], parsed)
    assert avcc_record([TINY_SPS] * 31, [TINY_PPS] * 255, parsed)[5] == 0xFF


def test_nal_units_are_views_of_the_payload() -> None:
    # Single NAL units and STAP-A members are passed on without copying.
    payload = _view(stap_a(TINY_SPS, TINY_PPS))
    nals = nal_units([payload])
    assert [bytes(nal) for nal in nals] == [TINY_SPS, TINY_PPS]
    assert all(isinstance(nal, memoryview) and nal.obj is payload.obj for nal in nals)


# -- property tests: only DepacketizeError escapes, and what is accepted is consistent ----------

PAYLOAD_SEEDS: list[bytes] = [
    *[payload for sender in SENDERS for frame in sender.values[0] for payload in frame],
    *[p.values[0] for p in MALFORMED_PAYLOADS],
    stap_a(TINY_SPS, TINY_PPS, TINY_IDR),
    b"\x7c\xc5\x00",
]
FRAME_SEEDS: list[list[bytes]] = [
    *[frame for s in SENDERS for frame in s.values[0]],
    *[p.values[0] for p in MALFORMED_FRAMES],
]
SPS_SEEDS: list[bytes] = [
    TINY_SPS,
    OPENH264_SPS,
    *[bytes.fromhex(p.values[0]) for p in REAL_SPS + REAL_SPS_444 + SCALING_SPS],
    *[p.values[0] for p in MALFORMED_SPS],
    sps_nal(scaling_lists=[[1, -2, 3]] * 6 + [[5] * 64, None]),
    sps_nal(pic_order_cnt_type=1, poc_cycle=[1, -2, 300]),
    sps_nal(chroma_format_idc=3, separate_colour_plane=True, crop=(1, 0, 0, 1)),
]


@st.composite
def mutated_frames(draw: st.DrawFn) -> list[bytes]:
    """A seed frame with some payloads mutated, dropped, duplicated or reordered."""
    payloads = list(draw(st.sampled_from(FRAME_SEEDS)))
    for _ in range(draw(st.integers(0, 3))):
        operation = draw(st.sampled_from(("mutate", "drop", "duplicate", "swap")))
        if not payloads:
            break
        index = draw(st.integers(0, len(payloads) - 1))
        if operation == "mutate":
            payloads[index] = draw(mutations([payloads[index]]))
        elif operation == "drop":
            del payloads[index]
        elif operation == "duplicate":
            payloads.insert(index, payloads[index])
        else:
            other = draw(st.integers(0, len(payloads) - 1))
            payloads[index], payloads[other] = payloads[other], payloads[index]
    return payloads


def _check_starts_frame(payload: bytes) -> None:
    # RFC 6184 5.2-5.8 read independently: None where the payload must be refused.
    expected: bool | None
    if not payload or payload[0] & 0x80:
        expected = None
    elif 1 <= payload[0] & 0x1F <= 24:
        expected = True
    elif payload[0] & 0x1F == 28 and len(payload) >= 2:
        expected = bool(payload[1] & 0x80)
    else:
        expected = None
    try:
        starts = _depacketizer().starts_frame(_view(payload))
    except DepacketizeError:
        assert expected is None
        return
    assert starts is expected


@FUZZ
@given(st.binary(max_size=8))
def test_starts_frame_arbitrary_bytes(payload: bytes) -> None:
    _check_starts_frame(payload)


@FUZZ
@given(mutations(PAYLOAD_SEEDS))
def test_starts_frame_mutated_payloads(payload: bytes) -> None:
    _check_starts_frame(payload)


def _check_build(payloads: list[bytes], depacketizer: H264Depacketizer | None = None) -> None:
    depacketizer = depacketizer or _depacketizer()
    before = depacketizer.config
    try:
        frame = depacketizer.build(_views(payloads), 11)
    except DepacketizeError:
        return
    assert frame.timestamp == 11
    nals = _split_length_prefixed(frame.data)
    types = [nal[0] & 0x1F for nal in nals]
    assert all(1 <= t <= 23 and t not in (9, 12) for t in types)
    assert all(not nal[0] & 0x80 for nal in nals)
    assert frame.keyframe is (5 in types)
    if frame.keyframe:
        # avc3: the parameter sets travel with the keyframe, ahead of its slices.
        first_slice = next(i for i, t in enumerate(types) if 1 <= t <= 5)
        assert 7 in types[:first_slice] and 8 in types[:first_slice]
        assert depacketizer.config is not None
        assert (depacketizer.config.width, depacketizer.config.height) == (
            frame.width,
            frame.height,
        )
        assert 0 < frame.width <= 16880 and 0 < frame.height <= 16880
        assert depacketizer.config.record[0] == 1
    else:
        assert (frame.width, frame.height) == (0, 0)
        assert depacketizer.config is before


@FUZZ
@given(st.lists(st.binary(max_size=40), max_size=6))
@example([TINY_SPS, TINY_PPS, TINY_IDR])
@example([stap_a(TINY_SPS, TINY_PPS), b"\x7c\xc5\x88"])
def test_build_arbitrary_payloads(payloads: list[bytes]) -> None:
    _check_build(payloads)


@FUZZ
@given(mutated_frames())
def test_build_mutated_frames(payloads: list[bytes]) -> None:
    _check_build(payloads)


@FUZZ
@given(mutated_frames())
def test_build_mutated_frames_with_known_parameter_sets(payloads: list[bytes]) -> None:
    depacketizer = _depacketizer()
    depacketizer.build(_views([TINY_SPS, TINY_PPS, TINY_IDR]), 0)
    _check_build(payloads, depacketizer)


def _check_sps(nal: bytes) -> None:
    try:
        parsed = parse_sps(nal)
    except DepacketizeError:
        return
    assert 0 <= parsed.sps_id <= 31
    assert 0 <= parsed.chroma_format_idc <= 3
    assert 8 <= parsed.bit_depth_luma <= 14 and 8 <= parsed.bit_depth_chroma <= 14
    assert 0 < parsed.width <= 16880 and 0 < parsed.height <= 16880
    assert avcc_record([nal], [TINY_PPS], parsed)[1:4] == nal[1:4]


@FUZZ
@given(st.binary(max_size=40))
def test_sps_arbitrary_bytes(data: bytes) -> None:
    _check_sps(b"\x67" + data)


@FUZZ
@given(mutations(SPS_SEEDS))
def test_sps_mutated(nal: bytes) -> None:
    _check_sps(nal)


@st.composite
def sps_fields(draw: st.DrawFn) -> dict[str, object]:
    profile_idc = draw(st.sampled_from((66, 77, 88, 100, 110, 122, 244, 44, 83, 118, 128, 139)))
    chroma = draw(st.integers(0, 3))
    lists = draw(
        st.none()
        | st.lists(
            st.none() | st.lists(st.integers(-128, 127), max_size=70), min_size=12, max_size=12
        )
    )
    frame_mbs_only = draw(st.booleans())
    width_mbs = draw(st.integers(1, 120))
    height_map_units = draw(st.integers(1, 68))
    return {
        "profile_idc": profile_idc,
        "constraint_flags": draw(st.integers(0, 255)),
        "level_idc": draw(st.integers(0, 255)),
        "sps_id": draw(st.integers(0, 31)),
        "chroma_format_idc": chroma,
        "separate_colour_plane": chroma == 3 and draw(st.booleans()),
        "bit_depth_luma": draw(st.integers(8, 14)),
        "bit_depth_chroma": draw(st.integers(8, 14)),
        "scaling_lists": lists,
        "log2_max_frame_num": draw(st.integers(4, 16)),
        "pic_order_cnt_type": draw(st.integers(0, 2)),
        "log2_max_poc_lsb": draw(st.integers(4, 16)),
        "poc_cycle": draw(st.lists(st.integers(-(2**31) + 1, 2**31 - 1), max_size=20)),
        "max_num_ref_frames": draw(st.integers(0, 16)),
        "width_mbs": width_mbs,
        "height_map_units": height_map_units,
        "frame_mbs_only": frame_mbs_only,
        "crop": draw(st.none() | st.tuples(*[st.integers(0, 40)] * 4)),
    }


@FUZZ
@given(sps_fields())
def test_sps_round_trip(fields: dict[str, object]) -> None:
    nal = sps_nal(**fields)  # type: ignore[arg-type]
    high = fields["profile_idc"] in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135)
    chroma = fields["chroma_format_idc"] if high else 1
    separate = bool(fields["separate_colour_plane"]) if high else False
    frame_mbs_only = bool(fields["frame_mbs_only"])
    unit_x, unit_y = _crop_units(chroma, separate, frame_mbs_only)  # type: ignore[arg-type]
    left, right, top, bottom = fields["crop"] or (0, 0, 0, 0)  # type: ignore[misc]
    width = 16 * fields["width_mbs"] - unit_x * (left + right)  # type: ignore[operator]
    frame_height = 16 * fields["height_map_units"] * (2 - frame_mbs_only)  # type: ignore[operator]
    height = frame_height - unit_y * (top + bottom)
    try:
        parsed = parse_sps(nal)
    except DepacketizeError as error:
        assert width <= 0 or height <= 0, str(error)
        return
    assert parsed == Sps(
        profile_idc=fields["profile_idc"],  # type: ignore[arg-type]
        constraint_flags=fields["constraint_flags"],  # type: ignore[arg-type]
        level_idc=fields["level_idc"],  # type: ignore[arg-type]
        sps_id=fields["sps_id"],  # type: ignore[arg-type]
        chroma_format_idc=chroma,  # type: ignore[arg-type]
        separate_colour_plane=separate,
        bit_depth_luma=fields["bit_depth_luma"] if high else 8,  # type: ignore[arg-type]
        bit_depth_chroma=fields["bit_depth_chroma"] if high else 8,  # type: ignore[arg-type]
        log2_max_frame_num=fields["log2_max_frame_num"],  # type: ignore[arg-type]
        pic_order_cnt_type=fields["pic_order_cnt_type"],  # type: ignore[arg-type]
        max_num_ref_frames=fields["max_num_ref_frames"],  # type: ignore[arg-type]
        frame_mbs_only=frame_mbs_only,
        width=width,
        height=height,
    )


@FUZZ
@given(st.text(max_size=60))
@example("Z0LACtkNeWsBEAAAAwAQAAADA8jxImSA,aMuDyyAA")
@example("Z0LA,aMuDyyAA,Zw==,aA==")
def test_sprop_arbitrary_text(value: str) -> None:
    nals = parse_sprop_parameter_sets(value)
    assert all(nal and nal[-1] != 0 for nal in nals)
    depacketizer = _depacketizer({"sprop-parameter-sets": value})
    if depacketizer.config is not None:
        assert depacketizer.config.width > 0
