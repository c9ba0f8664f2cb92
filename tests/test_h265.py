"""H.265 over RTP: RFC 7798 payload structures, the VPS/SPS parsers and the hvcC record.

Captured vectors (real encoder and payloader output, produced once and embedded here):
- Parameter sets and hvcC: FFmpeg 5.1 with libx265 3.5,
  `ffmpeg -f lavfi -i testsrc2=size=WxH:rate=30 -t 0.2 -c:v libx265
  -x265-params keyint=30:bframes=0:repeat-headers=1 -pix_fmt FMT clip.h265` for each clip of
  `CLIPS`: 320x240 yuv420p, 426x240 yuv420p (coded 432x240, conformance window), 320x240
  yuv420p10le, 426x238 yuv422p, 318x240 gray, and 320x240 yuv420p with
  `bframes=3:b-pyramid=0:temporal-layers=1` (two sub-layers). Then
  `ffmpeg -i clip.h265 -c copy clip.mp4`; `hvcc` is the body of the hvcC box FFmpeg wrote
  into the `hev1` sample entry.
- Slices and SEI: the first 20 bytes of the 320x240 clip's IDR_N_LP slice, first TRAIL_R
  slice and prefix SEI (the depacketizer reads no further than a slice header's PPS id).
- `FFMPEG_AP` and `FFMPEG_FMTP`: the first RTP payload and the SDP a=fmtp that FFmpeg 5.1
  (`ffmpeg -re -i clip.h265 -c copy -f rtp`) sent for that clip; GStreamer 1.22
  (`rtph265pay config-interval=-1 aggregate-mode=zero-latency`) sent the same AP. Neither
  sender writes DONL; those vectors come from `_packetize`, written here from RFC 7798.
Everything else is invented from RFC 7798 and H.265 and says so.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from recorder.codecs import h265
from recorder.codecs.h265 import (
    H265Depacketizer,
    hvcc_record,
    parse_pps_ids,
    parse_sps,
    parse_vps,
    slice_pps_id,
)
from recorder.errors import DepacketizeError, SdpError
from recorder.media import CodecConfig, Frame
from tests.fuzzing import FUZZ, first, mutations

CLOCK_RATE = 90000


@dataclass(frozen=True)
class Clip:
    vps: bytes
    sps: bytes
    pps: bytes
    hvcc: bytes  # what FFmpeg wrote into the hev1 sample entry
    width: int
    height: int
    coded: tuple[int, int]
    profile: int
    level: int
    bit_depth: int
    chroma_format_idc: int
    sub_layers: int


# Captured (see the module docstring): x265 output and FFmpeg's hvcC for it.
CLIPS = {
    "main-320x240": Clip(
        vps=bytes.fromhex("40010c01ffff01600000030090000003000003003c928090"),
        sps=bytes.fromhex(
            "42010101600000030090000003000003003ca00a080f16592a4932bc05a020000003002000000303c1"
        ),
        pps=bytes.fromhex("4401c172b46240"),
        hvcc=bytes.fromhex(
            "0101600000009000000000003cf000fcfdf8f800000f03200001001840010c01ffff01600000"
            "030090000003000003003c928090210001002942010101600000030090000003000003003ca0"
            "0a080f16592a4932bc05a020000003002000000303c122000100074401c172b46240"
        ),
        width=320,
        height=240,
        coded=(320, 240),
        profile=1,
        level=60,
        bit_depth=8,
        chroma_format_idc=1,
        sub_layers=1,
    ),
    "conformance-window-426x240": Clip(
        vps=bytes.fromhex("40010c01ffff01600000030090000003000003003c928090"),
        sps=bytes.fromhex(
            "42010101600000030090000003000003003ca00d880f1c9e592a4932bc05a020000003002000000303c1"
        ),
        pps=bytes.fromhex("4401c172b46240"),
        hvcc=bytes.fromhex(
            "0101600000009000000000003cf000fcfdf8f800000f03200001001840010c01ffff01600000"
            "030090000003000003003c928090210001002a42010101600000030090000003000003003ca0"
            "0d880f1c9e592a4932bc05a020000003002000000303c122000100074401c172b46240"
        ),
        width=426,
        height=240,
        coded=(432, 240),
        profile=1,
        level=60,
        bit_depth=8,
        chroma_format_idc=1,
        sub_layers=1,
    ),
    "main10-320x240": Clip(
        vps=bytes.fromhex("40010c01ffff02200000030090000003000003003c928090"),
        sps=bytes.fromhex(
            "42010102200000030090000003000003003ca00a080f136592a4932bc05a020000030002000003003c10"
        ),
        pps=bytes.fromhex("4401c172b46240"),
        hvcc=bytes.fromhex(
            "0102200000009000000000003cf000fcfdfafa00000f03200001001840010c01ffff02200000"
            "030090000003000003003c928090210001002a42010102200000030090000003000003003ca0"
            "0a080f136592a4932bc05a020000030002000003003c1022000100074401c172b46240"
        ),
        width=320,
        height=240,
        coded=(320, 240),
        profile=2,
        level=60,
        bit_depth=10,
        chroma_format_idc=1,
        sub_layers=1,
    ),
    "sub-layers-320x240": Clip(
        vps=bytes.fromhex("40010c02ffff01600000030090000003000003003c0000911488a048"),
        sps=bytes.fromhex(
            "42010201600000030090000003000003003c0000a00a080f165911488b24995e02d010000003"
            "001000000301e080"
        ),
        pps=bytes.fromhex("4401c172b46240"),
        hvcc=bytes.fromhex(
            "0101600000009000000000003cf000fcfdf8f800001303200001001c40010c02ffff01600000"
            "030090000003000003003c0000911488a048210001002e420102016000000300900000030000"
            "03003c0000a00a080f165911488b24995e02d010000003001000000301e08022000100074401"
            "c172b46240"
        ),
        width=320,
        height=240,
        coded=(320, 240),
        profile=1,
        level=60,
        bit_depth=8,
        chroma_format_idc=1,
        sub_layers=2,
    ),
    "yuv422-426x238": Clip(
        vps=bytes.fromhex("40010c01ffff0408000003009d0800000300003c928090"),
        sps=bytes.fromhex(
            "4201010408000003009d0800000300003cb00d880f1c97964a924caf016808000003000800000300f040"
        ),
        pps=bytes.fromhex("4401c172b46240"),
        hvcc=bytes.fromhex(
            "0104080000009d08000000003cf000fcfef8f800000f03200001001740010c01ffff04080000"
            "03009d0800000300003c928090210001002a4201010408000003009d0800000300003cb00d88"
            "0f1c97964a924caf016808000003000800000300f04022000100074401c172b46240"
        ),
        width=426,
        height=238,
        coded=(432, 240),
        profile=4,
        level=60,
        bit_depth=8,
        chroma_format_idc=2,
        sub_layers=1,
    ),
    "monochrome-318x240": Clip(
        vps=bytes.fromhex("40010c01ffff0408000003009fc800000300003c928090"),
        sps=bytes.fromhex(
            "4201010408000003009fc800000300003cc028203c77e592a4932bc05b020000030002000003003c10"
        ),
        pps=bytes.fromhex("4401c172b46240"),
        hvcc=bytes.fromhex(
            "0104080000009fc8000000003cf000fcfcf8f800000f03200001001740010c01ffff04080000"
            "03009fc800000300003c92809021000100294201010408000003009fc800000300003cc02820"
            "3c77e592a4932bc05b020000030002000003003c1022000100074401c172b46240"
        ),
        width=318,
        height=240,
        coded=(320, 240),
        profile=4,
        level=60,
        bit_depth=8,
        chroma_format_idc=0,
        sub_layers=1,
    ),
}
MAIN = CLIPS["main-320x240"]
WIDE = CLIPS["conformance-window-426x240"]
# Captured: the first 20 bytes of the clip's IDR_N_LP and TRAIL_R slices, and of its prefix SEI.
IDR_SLICE = bytes.fromhex("2801af08482f13acd69f63fc16c78d8868c3af2f")
TRAIL_SLICE = bytes.fromhex("0201d0097e10c61090545804c01060ef79611e0e")
PREFIX_SEI = bytes.fromhex("4e0105ffffffffffffffffe22ca2de09b51747db")
# Captured: FFmpeg's and GStreamer's first payload, an AP of the VPS, SPS and PPS.
FFMPEG_AP = bytes.fromhex(
    "6001001840010c01ffff01600000030090000003000003003c928090002942010101600000030090000003"
    "000003003ca00a080f16592a4932bc05a020000003002000000303c100074401c172b46240"
)
# Invented: H.265 7.3.2.5 AUD (pic_type 0 + stop bit), 7.3.2.8 filler data, an EOS NAL unit.
AUD = bytes([35 << 1, 0x01, 0x10])
FILLER = bytes([38 << 1, 0x01, 0xFF, 0xFF, 0x80])
EOS = bytes([36 << 1, 0x01])
# Invented: a CRA slice (type 21) using PPS 0, and an IDR_W_RADL (19) slice using PPS 1.
CRA_SLICE = bytes([21 << 1, 0x01, 0xA0, 0x55])
IDR_PPS1 = bytes([19 << 1, 0x01, 0x90, 0x55])  # first=1, no_output=0, ue '010' = 1
# Invented: a PPS with pps_pic_parameter_set_id 1 (ue '010') and sps id 0 ('1'), stop bit.
OTHER_PPS = bytes([34 << 1, 0x01, 0x58])


def _views(payloads: Sequence[bytes]) -> list[memoryview]:
    return [memoryview(payload) for payload in payloads]


def _depacketizer(**fmtp: str) -> H265Depacketizer:
    return H265Depacketizer(CLOCK_RATE, None, {k.replace("_", "-"): v for k, v in fmtp.items()})


def _samples(data: bytes) -> list[bytes]:
    """Split a sample of 4-byte length-prefixed NAL units."""
    nals = []
    offset = 0
    while offset < len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        nals.append(data[offset + 4 : offset + 4 + size])
        offset += 4 + size
    assert offset == len(data)
    return nals


def _keyframe(clip: Clip = MAIN) -> list[bytes]:
    return [clip.vps, clip.sps, clip.pps, PREFIX_SEI, IDR_SLICE]


# -- a test-only packetizer, written from RFC 7798 section 4.4 ---------------------------------


def _header(nal_type: int, layer_id: int = 0, tid: int = 1) -> bytes:
    return bytes([nal_type << 1 | layer_id >> 5, (layer_id & 0x1F) << 3 | tid])


def _single(nal: bytes, don: int | None = None) -> bytes:
    """Section 4.4.1: the NAL unit, with DONL after its header when DON is in use."""
    if don is None:
        return nal
    return nal[:2] + don.to_bytes(2, "big") + nal[2:]


def _ap(nals: Sequence[bytes], don: int | None = None) -> bytes:
    """Section 4.4.2: DONL before the first unit, DOND (here 0: consecutive) before the rest."""
    layer_id = min(((n[0] & 1) << 5) | n[1] >> 3 for n in nals)
    tid = min(n[1] & 7 for n in nals)
    out = bytearray(_header(h265.PAYLOAD_AP, layer_id, tid))
    for index, nal in enumerate(nals):
        if don is not None:
            out += don.to_bytes(2, "big") if index == 0 else b"\x00"
        out += len(nal).to_bytes(2, "big") + nal
    return bytes(out)


def _fu(nal: bytes, size: int, don: int | None = None) -> list[bytes]:
    """Section 4.4.3: the NAL unit's payload in `size`-byte fragments (at least two)."""
    header = bytes([(nal[0] & 0x81) | h265.PAYLOAD_FU << 1, nal[1]])
    nal_type = (nal[0] >> 1) & 0x3F
    body = nal[2:]
    pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    if len(pieces) == 1:
        pieces.append(b"")
    out = []
    for index, piece in enumerate(pieces):
        start = index == 0
        end = index == len(pieces) - 1
        fu_header = bytes([start << 7 | end << 6 | nal_type])
        donl = don.to_bytes(2, "big") if start and don is not None else b""
        out.append(header + fu_header + donl + piece)
    return out


def _packetize(nals: Sequence[bytes], mode: str, don: int | None = None) -> list[bytes]:
    if mode == "single":
        return [_single(nal, don) for nal in nals]
    if mode == "ap":
        return [_ap(nals, don)]
    return [fragment for nal in nals for fragment in _fu(nal, 7, don)]


# -- RFC 7798 section 4.4: what can start a frame -----------------------------------------------

STARTS = [
    pytest.param(IDR_SLICE, True, id="single-IDR"),
    pytest.param(MAIN.vps, True, id="single-VPS"),
    pytest.param(EOS, True, id="single-header-only"),
    pytest.param(FFMPEG_AP, True, id="AP-captured"),
    pytest.param(_fu(IDR_SLICE, 5)[0], True, id="FU-start"),
    pytest.param(_fu(IDR_SLICE, 5)[1], False, id="FU-middle"),
    pytest.param(_fu(IDR_SLICE, 5)[-1], False, id="FU-end"),
    pytest.param(bytes([0x64, 0x01, 0x00, 0x00]), True, id="PACI"),
    pytest.param(_header(1, 5, 3) + b"\x00", True, id="layer-5-TID-3"),
]


@pytest.mark.parametrize(("payload", "starts"), STARTS)
def test_starts_frame(payload: bytes, starts: bool) -> None:
    assert _depacketizer().starts_frame(memoryview(payload)) is starts


MALFORMED_STARTS = [
    pytest.param(b"", "shorter than its 2-byte", id="empty"),
    pytest.param(b"\x02", "shorter than its 2-byte", id="one-byte"),
    pytest.param(b"\x82\x01\x00", "forbidden_zero_bit", id="F-bit"),
    pytest.param(b"\x02\x00\x00", "TID 0", id="TID-0"),
    pytest.param(b"\x62\x01", "no FU header", id="FU-without-FU-header"),
    *[pytest.param(_header(t) + b"\x00\x00", "unspecified", id=f"type-{t}") for t in (51, 55, 63)],
]


@pytest.mark.parametrize(("payload", "message"), MALFORMED_STARTS)
def test_malformed_starts_frame(payload: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError, match=message):
        _depacketizer().starts_frame(memoryview(payload))


# -- RFC 7798 sections 4.4.1-4.4.3: NAL units out of payloads -----------------------------------

NAL_VECTORS = [
    pytest.param([IDR_SLICE], [IDR_SLICE], id="single"),
    pytest.param([EOS], [EOS], id="single-header-only"),
    pytest.param([FFMPEG_AP], [MAIN.vps, MAIN.sps, MAIN.pps], id="AP-captured"),
    pytest.param([_ap([AUD])], [AUD], id="AP-of-one-tolerated"),
    pytest.param(_fu(IDR_SLICE, 6), [IDR_SLICE], id="FU-start-middle-end"),
    pytest.param(_fu(IDR_SLICE, 18), [IDR_SLICE], id="FU-start-end"),
    pytest.param(_fu(EOS, 4), [EOS], id="FU-empty-fragments"),
    pytest.param(
        _fu(_header(20, 33, 6) + b"\x01\x02\x03", 1),
        [_header(20, 33, 6) + b"\x01\x02\x03"],
        id="FU-layer-33-TID-6",
    ),
    pytest.param(
        [FFMPEG_AP, *_fu(IDR_SLICE, 8), TRAIL_SLICE],
        [MAIN.vps, MAIN.sps, MAIN.pps, IDR_SLICE, TRAIL_SLICE],
        id="AP-FU-single",
    ),
    pytest.param(
        [bytes([0x64, 0x01, 0x00, 0x20, 0xAA, 0xBB]), IDR_SLICE], [IDR_SLICE], id="PACI-skipped"
    ),
]


def test_the_test_packetizer_builds_the_captured_ap() -> None:
    assert _ap([MAIN.vps, MAIN.sps, MAIN.pps]) == FFMPEG_AP


@pytest.mark.parametrize(("payloads", "nals"), NAL_VECTORS)
def test_nal_units(payloads: list[bytes], nals: list[bytes]) -> None:
    assert _depacketizer().nal_units(_views(payloads)) == nals


# Section 4.4: DONL (and DOND in APs) when sprop-max-don-diff > 0; NAL units stay in
# transmission order.
DONL_VECTORS = [
    pytest.param([_single(IDR_SLICE, 7)], [IDR_SLICE], id="single"),
    pytest.param([_single(EOS, 0xFFFF)], [EOS], id="single-header-only"),
    pytest.param([_ap([MAIN.vps, MAIN.sps, MAIN.pps], 3)], [MAIN.vps, MAIN.sps, MAIN.pps], id="AP"),
    pytest.param(_fu(IDR_SLICE, 6, 9), [IDR_SLICE], id="FU-DONL-in-first-only"),
    pytest.param(
        [_ap([PREFIX_SEI, AUD], 1), *_fu(IDR_SLICE, 5, 3), _single(TRAIL_SLICE, 4)],
        [PREFIX_SEI, AUD, IDR_SLICE, TRAIL_SLICE],
        id="mixed",
    ),
]


@pytest.mark.parametrize(("payloads", "nals"), DONL_VECTORS)
@pytest.mark.parametrize("key", ["sprop-max-don-diff", "SPROP-Max-Don-Diff"])
def test_nal_units_with_donl(payloads: list[bytes], nals: list[bytes], key: str) -> None:
    depacketizer = H265Depacketizer(CLOCK_RATE, None, {key: "2"})
    assert depacketizer.nal_units(_views(payloads)) == nals


def test_donl_is_absent_when_max_don_diff_is_0() -> None:
    assert _depacketizer(sprop_max_don_diff="0").nal_units(_views([IDR_SLICE])) == [IDR_SLICE]


@pytest.mark.parametrize("value", ["-1", "32768", "x", "1.5", ""])
def test_max_don_diff_must_be_an_integer_in_range(value: str) -> None:
    with pytest.raises(SdpError, match="sprop-max-don-diff"):
        _depacketizer(sprop_max_don_diff=value)


def _paci(phes: bytes, body: bytes = IDR_SLICE) -> bytes:
    """Section 4.4.4, invented: A/cType of an IDR slice, PHSsize, F0-F2 and Y zero."""
    return (
        _header(h265.PAYLOAD_PACI)
        + bytes([(20 << 1) | len(phes) >> 4, (len(phes) & 0x0F) << 4])
        + phes
        + body[2:]
    )


MALFORMED_FRAMES = [
    # Headers (H.265 7.4.2.2, RFC 7798 section 1.1.4).
    pytest.param([b""], "shorter than its 2-byte", id="empty-payload"),
    pytest.param([b"\x82\x01\x00"], "forbidden_zero_bit", id="F-bit"),
    pytest.param([b"\x02\x00\x00"], "TID 0", id="TID-0"),
    pytest.param([_header(51) + b"\x00"], "unspecified", id="type-51"),
    pytest.param([_header(63) + b"\x00"], "unspecified", id="type-63"),
    # Aggregation packets (section 4.4.2).
    pytest.param([_header(48)], "truncated before a NAL unit size", id="AP-empty"),
    pytest.param([_header(48) + b"\x00"], "truncated before a NAL unit size", id="AP-half-size"),
    pytest.param([FFMPEG_AP[:-1]], "overruns", id="AP-last-unit-truncated"),
    pytest.param([FFMPEG_AP + b"\x00"], "truncated before a NAL unit size", id="AP-trailing-byte"),
    pytest.param([_header(48) + b"\x00\x00"], "shorter than its 2-byte", id="AP-size-0"),
    pytest.param([_header(48) + b"\x00\x01\x02"], "shorter than its 2-byte", id="AP-size-1"),
    pytest.param([_header(48) + b"\xff\xff" + IDR_SLICE], "overruns", id="AP-size-65535"),
    pytest.param([_ap([IDR_SLICE, b"\x82\x01\x00"])], "forbidden_zero_bit", id="AP-unit-F-bit"),
    pytest.param(
        [_ap([IDR_SLICE, b"\x02\x00\x00"])[:-3] + b"\x02\x00\x00"], "TID 0", id="AP-unit-TID-0"
    ),
    pytest.param([_ap([IDR_SLICE, _header(48) + b"\x00"])], "type 48", id="AP-in-AP"),
    pytest.param([_ap([IDR_SLICE, _header(49) + b"\x00"])], "type 49", id="FU-in-AP"),
    # Fragmentation units (section 4.4.3).
    pytest.param(_fu(IDR_SLICE, 6)[1:], "start was lost", id="FU-lost-start"),
    pytest.param(_fu(IDR_SLICE, 6)[-1:], "start was lost", id="FU-only-end"),
    pytest.param(_fu(IDR_SLICE, 6)[:-1], "ends inside a fragmented", id="FU-missing-end"),
    pytest.param(_fu(IDR_SLICE, 6)[:1], "ends inside a fragmented", id="FU-start-only"),
    pytest.param(
        [*_fu(IDR_SLICE, 6)[:-1], TRAIL_SLICE], "without its end fragment", id="FU-then-single"
    ),
    pytest.param([*_fu(IDR_SLICE, 6)[:-1], FFMPEG_AP], "without its end fragment", id="FU-then-AP"),
    pytest.param(
        [*_fu(IDR_SLICE, 6)[:-1], _paci(b"")], "without its end fragment", id="FU-then-PACI"
    ),
    pytest.param(
        [*_fu(IDR_SLICE, 6)[:-1], *_fu(TRAIL_SLICE, 6)],
        "before the previous one ended",
        id="FU-restarts",
    ),
    pytest.param([_fu(IDR_SLICE, 6)[0], _fu(TRAIL_SLICE, 6)[-1]], "differs", id="FU-type-changes"),
    pytest.param(
        [_fu(IDR_SLICE, 6)[0], _fu(IDR_SLICE[:1] + b"\x02" + IDR_SLICE[2:], 6)[-1]],
        "differs",
        id="FU-TID-changes",
    ),
    pytest.param([_header(49) + b"\xc0\x00"], "both S and E", id="FU-S-and-E"),
    pytest.param([_header(49) + b"\xb0\x00"], "type 48", id="FU-of-AP"),
    pytest.param([_header(49) + b"\xbf\x00"], "type 63", id="FU-of-type-63"),
    pytest.param([_header(49)], "no FU header", id="FU-without-FU-header"),
    # PACI (section 4.4.4): skipped, but its own fields must fit.
    pytest.param([_paci(b"")], "only PACI", id="PACI-only"),
    pytest.param([_paci(b"\x01\x02"), _paci(b"")], "only PACI", id="PACI-only-two"),
    pytest.param([_header(50) + b"\x28"], "fixed fields", id="PACI-truncated"),
    pytest.param([_header(50) + b"\x29\xf0" + b"\x00" * 30], "PHES", id="PACI-PHES-overrun"),
]


@pytest.mark.parametrize(("payloads", "message"), MALFORMED_FRAMES)
def test_malformed_frame(payloads: list[bytes], message: str) -> None:
    depacketizer = _depacketizer()
    with pytest.raises(DepacketizeError, match=message):
        depacketizer.build(_views(payloads), 0)
    assert depacketizer.config is None


MALFORMED_DONL = [
    pytest.param([IDR_SLICE[:3]], "truncated in DONL", id="single-DONL-cut"),
    pytest.param([_header(48) + b"\x00"], "truncated before a NAL unit size", id="AP-DONL-cut"),
    pytest.param(
        [_ap([IDR_SLICE, TRAIL_SLICE], 1)[: 2 + 2 + 2 + len(IDR_SLICE) + 1]],
        "truncated before a NAL unit size",
        id="AP-after-DOND",
    ),
    pytest.param([_header(49) + b"\x94\x00"], "truncated in its DONL", id="FU-DONL-cut"),
]


@pytest.mark.parametrize(("payloads", "message"), MALFORMED_DONL)
def test_malformed_donl(payloads: list[bytes], message: str) -> None:
    with pytest.raises(DepacketizeError, match=message):
        _depacketizer(sprop_max_don_diff="5").nal_units(_views(payloads))


# -- frames: length-prefixed NAL units, keyframes, parameter sets ------------------------------


def test_keyframe_from_captured_payloads() -> None:
    depacketizer = _depacketizer()
    payloads = [FFMPEG_AP, PREFIX_SEI, *_fu(IDR_SLICE, 8)]
    frame = depacketizer.build(_views(payloads), 1234)
    assert frame.keyframe is True
    assert frame.timestamp == 1234
    assert (frame.width, frame.height) == (320, 240)
    assert _samples(frame.data) == _keyframe()
    assert frame.data[:4] == len(MAIN.vps).to_bytes(4, "big")
    assert depacketizer.config == CodecConfig(
        codec="H265",
        kind="video",
        clock_rate=CLOCK_RATE,
        width=320,
        height=240,
        profile=1,
        level=60,
        bit_depth=8,
        chroma_subsampling=1,
        record=MAIN.hvcc,
    )


def test_interframe() -> None:
    depacketizer = _depacketizer()
    depacketizer.build(_views(_keyframe()), 0)
    config = depacketizer.config
    frame = depacketizer.build(_views([TRAIL_SLICE]), 3000)
    assert frame.keyframe is False
    assert (frame.width, frame.height) == (0, 0)
    assert frame.data == len(TRAIL_SLICE).to_bytes(4, "big") + TRAIL_SLICE
    assert depacketizer.config is config


def test_interframe_needs_no_parameter_sets() -> None:
    depacketizer = _depacketizer()
    assert depacketizer.build(_views([TRAIL_SLICE]), 0).keyframe is False
    assert depacketizer.config is None


@pytest.mark.parametrize("nal_type", range(16, 24))
def test_every_irap_type_is_a_keyframe(nal_type: int) -> None:
    slice_nal = bytes([nal_type << 1, 0x01]) + IDR_SLICE[2:]
    frame = _depacketizer().build(_views([MAIN.vps, MAIN.sps, MAIN.pps, slice_nal]), 0)
    assert frame.keyframe is True


@pytest.mark.parametrize("nal_type", [0, 1, 9, 15, 24, 31])
def test_other_slices_are_not_keyframes(nal_type: int) -> None:
    slice_nal = bytes([nal_type << 1, 0x01]) + TRAIL_SLICE[2:]
    frame = _depacketizer().build(_views([MAIN.vps, MAIN.sps, MAIN.pps, slice_nal]), 0)
    assert frame.keyframe is False
    assert (frame.width, frame.height) == (0, 0)


def test_irap_of_a_higher_layer_is_not_a_keyframe() -> None:
    frame = _depacketizer().build(_views([TRAIL_SLICE, _header(19, 1) + b"\xa0"]), 0)
    assert frame.keyframe is False


def test_aud_and_filler_are_dropped_and_the_rest_kept_in_order() -> None:
    nals = [AUD, *_keyframe(), FILLER, EOS]
    frame = _depacketizer().build(_views([_ap(nals[:4]), *nals[4:]]), 0)
    assert _samples(frame.data) == [*_keyframe(), EOS]


@pytest.mark.parametrize(
    "payloads",
    [
        pytest.param([PREFIX_SEI], id="SEI"),
        pytest.param([AUD], id="AUD"),
        pytest.param([FFMPEG_AP], id="parameter-sets"),
        pytest.param([AUD, FILLER, EOS], id="AUD-filler-EOS"),
    ],
)
def test_access_unit_without_a_slice_is_refused(payloads: list[bytes]) -> None:
    with pytest.raises(DepacketizeError, match="no slice"):
        _depacketizer().build(_views(payloads), 0)


def test_irap_without_any_parameter_set_is_refused() -> None:
    with pytest.raises(DepacketizeError, match="PPS 0, never received"):
        _depacketizer().build(_views([PREFIX_SEI, IDR_SLICE]), 0)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        pytest.param([MAIN.vps, MAIN.sps], "PPS 0, never received", id="no-PPS"),
        pytest.param([MAIN.vps, MAIN.pps], "SPS 0, never received", id="no-SPS"),
        pytest.param([MAIN.sps, MAIN.pps], "VPS 0, never received", id="no-VPS"),
    ],
)
def test_irap_with_incomplete_parameter_sets_is_refused(sets: list[bytes], message: str) -> None:
    depacketizer = _depacketizer()
    with pytest.raises(DepacketizeError, match=message):
        depacketizer.build(_views([*sets, IDR_SLICE]), 0)
    assert depacketizer.config is None


def test_irap_using_an_unknown_pps_is_refused() -> None:
    with pytest.raises(DepacketizeError, match="PPS 1, never received"):
        _depacketizer().build(_views([*_keyframe()[:3], IDR_PPS1]), 0)


@pytest.mark.parametrize(
    "present",
    [
        pytest.param([], id="none"),
        pytest.param([0], id="VPS-only"),
        pytest.param([2], id="PPS-only"),
        pytest.param([1, 2], id="SPS-and-PPS"),
    ],
)
def test_keyframe_without_its_parameter_sets_gets_the_known_ones(present: list[int]) -> None:
    """hev1: each keyframe carries VPS, SPS, PPS (ahead of the rest, in that order)."""
    depacketizer = _depacketizer()
    depacketizer.build(_views(_keyframe()), 0)
    sets = [MAIN.vps, MAIN.sps, MAIN.pps]
    frame = depacketizer.build(_views([PREFIX_SEI, *(sets[i] for i in present), CRA_SLICE]), 9)
    assert frame.keyframe is True
    assert _samples(frame.data) == [*sets, PREFIX_SEI, CRA_SLICE]


def test_keyframe_with_its_parameter_sets_is_left_alone() -> None:
    depacketizer = _depacketizer()
    depacketizer.build(_views(_keyframe()), 0)
    nals = [PREFIX_SEI, MAIN.vps, MAIN.sps, MAIN.pps, CRA_SLICE]
    assert _samples(depacketizer.build(_views(nals), 9).data) == nals


def test_parameter_sets_of_a_slice_less_access_unit_serve_the_next_keyframe() -> None:
    depacketizer = _depacketizer()
    with pytest.raises(DepacketizeError, match="no slice"):
        depacketizer.build(_views([FFMPEG_AP]), 0)
    frame = depacketizer.build(_views([IDR_SLICE]), 0)
    assert _samples(frame.data) == [MAIN.vps, MAIN.sps, MAIN.pps, IDR_SLICE]
    assert depacketizer.config is not None and depacketizer.config.record == MAIN.hvcc


def test_parameter_sets_of_higher_layers_are_kept_but_not_used() -> None:
    layer1_sps = bytes([MAIN.sps[0], 0x09]) + MAIN.sps[2:]  # nuh_layer_id 1
    depacketizer = _depacketizer()
    frame = depacketizer.build(_views([*_keyframe()[:3], layer1_sps, IDR_SLICE]), 0)
    assert _samples(frame.data)[3] == layer1_sps
    assert depacketizer.config is not None and depacketizer.config.record == MAIN.hvcc


# -- hvcC (ISO/IEC 14496-15 section 8.3.3.1), compared with what FFmpeg writes ------------------


@pytest.mark.parametrize("clip", CLIPS.values(), ids=CLIPS.keys())
def test_config_from_real_x265_output_matches_ffmpeg(clip: Clip) -> None:
    depacketizer = _depacketizer()
    frame = depacketizer.build(_views(_keyframe(clip)), 0)
    assert (frame.width, frame.height) == (clip.width, clip.height)
    config = depacketizer.config
    assert config is not None
    assert config.record == clip.hvcc
    assert (config.width, config.height) == (clip.width, clip.height)
    assert (config.profile, config.level) == (clip.profile, clip.level)
    assert config.bit_depth == clip.bit_depth
    assert config.chroma_subsampling == clip.chroma_format_idc


@pytest.mark.parametrize("clip", CLIPS.values(), ids=CLIPS.keys())
def test_sps_of_real_x265_output(clip: Clip) -> None:
    sps = parse_sps(clip.sps)
    assert (sps.width, sps.height) == (clip.width, clip.height)
    assert (sps.coded_width, sps.coded_height) == clip.coded
    assert sps.ptl.profile_idc == clip.profile
    assert sps.ptl.level_idc == clip.level
    assert sps.bit_depth_luma == sps.bit_depth_chroma == clip.bit_depth
    assert sps.chroma_format_idc == clip.chroma_format_idc
    assert sps.max_sub_layers_minus1 + 1 == clip.sub_layers
    assert sps.separate_colour_plane is False
    assert (sps.vps_id, sps.sps_id) == (0, 0)


@pytest.mark.parametrize("clip", CLIPS.values(), ids=CLIPS.keys())
def test_vps_of_real_x265_output(clip: Clip) -> None:
    vps = parse_vps(clip.vps)
    sps = parse_sps(clip.sps)
    assert vps.vps_id == 0
    assert vps.max_sub_layers_minus1 + 1 == clip.sub_layers
    assert vps.ptl == sps.ptl
    assert vps.temporal_id_nesting is (clip.sub_layers == 1)


def test_ptl_fields_of_main() -> None:
    ptl = parse_sps(MAIN.sps).ptl
    assert (ptl.profile_space, ptl.tier_flag, ptl.profile_idc) == (0, 0, 1)
    # general_profile_compatibility_flag[1] and [2]: Main is also decodable as Main 10.
    assert ptl.compatibility_flags == 0x60000000
    # progressive_source and frame_only_constraint (H.265 7.4.4).
    assert ptl.constraint_flags == 0x900000000000
    assert ptl.level_idc == 60  # level 2


def test_pps_ids_and_slice_pps_id() -> None:
    assert parse_pps_ids(MAIN.pps) == (0, 0)
    assert parse_pps_ids(OTHER_PPS) == (1, 0)
    assert slice_pps_id(IDR_SLICE) == 0
    assert slice_pps_id(IDR_PPS1) == 1
    # A trailing slice has no no_output_of_prior_pics_flag: '1' then ue '1' = 0.
    assert slice_pps_id(TRAIL_SLICE) == 0


def test_hvcc_lists_every_parameter_set_in_type_order() -> None:
    vps, sps = parse_vps(MAIN.vps), parse_sps(MAIN.sps)
    record = hvcc_record(vps, sps, [MAIN.vps], [MAIN.sps], [MAIN.pps, OTHER_PPS])
    assert record[:23] == MAIN.hvcc[:23]
    assert record[22] == 3  # numOfArrays
    assert record.endswith(
        bytes([34, 0, 2, 0, len(MAIN.pps)]) + MAIN.pps + bytes([0, 3]) + OTHER_PPS
    )


def test_config_is_built_when_parameter_sets_change_not_per_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = {"sps": 0, "hvcc": 0}

    def counting(name: str, function):  # type: ignore[no-untyped-def]
        def wrapper(*args):  # type: ignore[no-untyped-def]
            calls[name] += 1
            return function(*args)

        return wrapper

    monkeypatch.setattr(h265, "parse_sps", counting("sps", h265.parse_sps))
    monkeypatch.setattr(h265, "hvcc_record", counting("hvcc", h265.hvcc_record))
    depacketizer = _depacketizer()
    depacketizer.build(_views(_keyframe()), 0)
    first = depacketizer.config
    for timestamp in range(1, 5):
        depacketizer.build(_views(_keyframe()), timestamp)
        depacketizer.build(_views([TRAIL_SLICE]), timestamp)
    assert depacketizer.config is first
    assert calls == {"sps": 1, "hvcc": 1}
    # A resolution change (new SPS at a keyframe, as WebRTC senders do) and back.
    frame = depacketizer.build(_views(_keyframe(WIDE)), 10)
    assert (frame.width, frame.height) == (426, 240)
    assert depacketizer.config is not None and depacketizer.config.record == WIDE.hvcc
    frame = depacketizer.build(_views(_keyframe()), 11)
    assert (frame.width, frame.height) == (320, 240)
    assert depacketizer.config is not None and depacketizer.config.record == MAIN.hvcc
    assert calls == {"sps": 3, "hvcc": 3}


def test_a_replaced_sps_drops_the_pps_that_referred_to_it() -> None:
    """A stale PPS must not be prepended to a keyframe of the new SPS (H.265 7.4.2.4.2)."""
    depacketizer = _depacketizer()
    depacketizer.build(_views(_keyframe()), 0)
    with pytest.raises(DepacketizeError, match="PPS 0, never received"):
        depacketizer.build(_views([WIDE.sps, IDR_SLICE]), 1)
    frame = depacketizer.build(_views([WIDE.pps, IDR_SLICE]), 2)
    assert _samples(frame.data) == [MAIN.vps, WIDE.sps, WIDE.pps, IDR_SLICE]
    assert (frame.width, frame.height) == (426, 240)


def test_a_replaced_vps_drops_its_sps_and_pps() -> None:
    depacketizer = _depacketizer()
    depacketizer.build(_views(_keyframe()), 0)
    main10 = CLIPS["main10-320x240"]
    with pytest.raises(DepacketizeError, match="PPS 0, never received"):
        depacketizer.build(_views([main10.vps, IDR_SLICE]), 1)
    with pytest.raises(DepacketizeError, match="PPS 0 uses SPS 0, never received"):
        depacketizer.build(_views([main10.pps, IDR_SLICE]), 1)  # SPS 0 went with the VPS
    frame = depacketizer.build(_views([main10.sps, main10.pps, IDR_SLICE]), 2)
    assert frame.keyframe is True
    assert depacketizer.config is not None and depacketizer.config.record == main10.hvcc


# -- RFC 7798 section 7.1: parameter sets from the SDP ------------------------------------------


def _b64(*nals: bytes) -> str:
    return ",".join(base64.b64encode(nal).decode() for nal in nals)


# Captured: the a=fmtp line FFmpeg wrote into its SDP for the 320x240 clip.
FFMPEG_FMTP = {
    "sprop-vps": "QAEMAf//AWAAAAMAkAAAAwAAAwA8koCQ",
    "sprop-sps": "QgEBAWAAAAMAkAAAAwAAAwA8oAoIDxZZKkkyvAWgIAAAAwAgAAADA8E=",
    "sprop-pps": "RAHBcrRiQA==",
}


def test_sdp_parameter_sets_give_the_config_before_any_packet() -> None:
    depacketizer = H265Depacketizer(CLOCK_RATE, None, FFMPEG_FMTP)
    assert depacketizer.config is not None
    assert depacketizer.config.record == MAIN.hvcc
    assert (depacketizer.config.width, depacketizer.config.height) == (320, 240)


def test_sdp_parameter_sets_are_prepended_to_a_keyframe_without_them() -> None:
    fmtp = {key.upper(): value for key, value in FFMPEG_FMTP.items()}  # keys any case
    depacketizer = H265Depacketizer(CLOCK_RATE, None, fmtp)
    config = depacketizer.config
    frame = depacketizer.build(_views(_fu(IDR_SLICE, 8)), 0)
    assert frame.keyframe is True
    assert _samples(frame.data) == [MAIN.vps, MAIN.sps, MAIN.pps, IDR_SLICE]
    assert depacketizer.config is config


def test_sdp_with_several_sets_per_parameter() -> None:
    depacketizer = _depacketizer(
        sprop_vps=_b64(MAIN.vps), sprop_sps=_b64(MAIN.sps), sprop_pps=_b64(MAIN.pps, OTHER_PPS)
    )
    frame = depacketizer.build(_views([IDR_PPS1]), 0)
    assert _samples(frame.data) == [MAIN.vps, MAIN.sps, MAIN.pps, OTHER_PPS, IDR_PPS1]


@pytest.mark.parametrize(
    "fmtp",
    [
        pytest.param({"sprop-vps": "!!!", "sprop-sps": "QgE", "sprop-pps": "=="}, id="not-base64"),
        pytest.param({"sprop-vps": _b64(MAIN.sps), "sprop-sps": _b64(MAIN.vps)}, id="swapped"),
        pytest.param({"sprop-sps": _b64(MAIN.sps[:12])}, id="truncated-SPS"),
        pytest.param({"sprop-vps": _b64(MAIN.vps), "sprop-pps": _b64(MAIN.pps)}, id="no-SPS"),
        pytest.param({"sprop-pps": _b64(b"\x44")}, id="one-byte"),
        pytest.param({"sprop-pps": _b64(b"\xc4\x01\xc1")}, id="F-bit"),
    ],
)
def test_unusable_sdp_parameter_sets_are_ignored(fmtp: dict[str, str]) -> None:
    depacketizer = H265Depacketizer(CLOCK_RATE, None, fmtp)
    assert depacketizer.config is None
    depacketizer.build(_views(_keyframe()), 0)
    assert depacketizer.config is not None and depacketizer.config.record == MAIN.hvcc


# -- VPS / SPS parsers: invented sets for the corners x265 does not produce ---------------------


class BitWriter:
    """Big-endian bit fields, ue(v), rbsp_trailing_bits and emulation prevention (H.265 7.4.2)."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, width: int, value: int) -> BitWriter:
        self.bits += [(value >> (width - 1 - i)) & 1 for i in range(width)]
        return self

    def ue(self, value: int) -> BitWriter:
        code = value + 1
        return self.u(2 * code.bit_length() - 1, code)

    def nal(self, header: bytes) -> bytes:
        bits = [*self.bits, 1]
        bits += [0] * (-len(bits) % 8)
        rbsp = bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))
        out = bytearray()
        zeros = 0
        for byte in rbsp:
            if zeros >= 2 and byte <= 3:
                out.append(3)
                zeros = 0
            out.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        return header + bytes(out)


def _ptl(writer: BitWriter, sub_layers: Sequence[tuple[bool, bool]] = ()) -> None:
    writer.u(2, 0).u(1, 0).u(5, 1).u(32, 0x60000000).u(48, 0x900000000000).u(8, 60)
    for profile_present, level_present in sub_layers:
        writer.u(1, profile_present).u(1, level_present)
    if sub_layers:
        writer.u(2 * (8 - len(sub_layers)), 0)
    for profile_present, level_present in sub_layers:
        if profile_present:
            writer.u(88, (1 << 87) | 0x5A5A)
        if level_present:
            writer.u(8, 90)


def _make_sps(
    *,
    sub_layers: Sequence[tuple[bool, bool]] = (),
    sps_id: int = 0,
    chroma: int = 1,
    separate_planes: int = 0,
    size: tuple[int, int] = (320, 240),
    window: tuple[int, int, int, int] | None = None,
    depths: tuple[int, int] = (0, 0),
    poc_lsb: int = 4,
    min_cb: int = 0,
    diff_cb: int = 3,
) -> bytes:
    """seq_parameter_set_rbsp() (H.265 7.3.2.2) up to the coding block sizes."""
    writer = BitWriter().u(4, 0).u(3, len(sub_layers)).u(1, 1)
    _ptl(writer, sub_layers)
    writer.ue(sps_id).ue(chroma)
    if chroma == 3:
        writer.u(1, separate_planes)
    writer.ue(size[0]).ue(size[1]).u(1, window is not None)
    for offset in window or ():
        writer.ue(offset)
    writer.ue(depths[0]).ue(depths[1]).ue(poc_lsb)
    writer.u(1, 1)
    for _ in range(len(sub_layers) + 1):
        writer.ue(1).ue(0).ue(0)
    writer.ue(min_cb).ue(diff_cb)
    return writer.nal(_header(h265.NAL_SPS))


def _make_vps(
    *,
    sub_layers: Sequence[tuple[bool, bool]] = (),
    reserved: int = 0xFFFF,
    max_sub_layers_minus1: int | None = None,
    layer_sets: tuple[int, int] = (0, 0),
    timing: bool = False,
) -> bytes:
    """video_parameter_set_rbsp() (H.265 7.3.2.1) up to vps_num_hrd_parameters."""
    count = len(sub_layers) if max_sub_layers_minus1 is None else max_sub_layers_minus1
    writer = BitWriter().u(4, 3).u(1, 1).u(1, 1).u(6, 0).u(3, count).u(1, 0).u(16, reserved)
    _ptl(writer, sub_layers)
    writer.u(1, 0)
    writer.ue(1).ue(0).ue(0)
    max_layer_id, sets_minus1 = layer_sets
    writer.u(6, max_layer_id).ue(sets_minus1)
    writer.u(sets_minus1 * (max_layer_id + 1), 0)
    writer.u(1, timing)
    if timing:
        writer.u(32, 1001).u(32, 30000).u(1, 1).ue(0).ue(0)
    return writer.nal(_header(h265.NAL_VPS))


def test_the_bit_writer_reproduces_the_fields_of_real_x265_output() -> None:
    assert parse_sps(_make_sps()) == parse_sps(MAIN.sps)
    assert parse_sps(_make_sps(size=(432, 240), window=(0, 3, 0, 0))) == parse_sps(WIDE.sps)


SPS_VECTORS = [
    pytest.param(_make_sps(), (320, 240, 1, 8), id="plain"),
    pytest.param(
        _make_sps(sub_layers=[(True, True), (False, True), (True, False)]),
        (320, 240, 1, 8),
        id="sub-layer-profile-and-level",
    ),
    pytest.param(_make_sps(sub_layers=[(False, False)] * 6), (320, 240, 1, 8), id="six-sub-layers"),
    pytest.param(
        _make_sps(chroma=0, size=(64, 48), window=(1, 2, 3, 4)), (61, 41, 0, 8), id="4:0:0-crop-1"
    ),
    pytest.param(
        _make_sps(chroma=1, size=(64, 48), window=(1, 2, 3, 4)), (58, 34, 1, 8), id="4:2:0-crop-2x2"
    ),
    pytest.param(
        _make_sps(chroma=2, size=(64, 48), window=(1, 2, 3, 4)), (58, 41, 2, 8), id="4:2:2-crop-2x1"
    ),
    pytest.param(
        _make_sps(chroma=3, size=(64, 48), window=(1, 2, 3, 4)), (61, 41, 3, 8), id="4:4:4-crop-1"
    ),
    pytest.param(
        _make_sps(chroma=3, separate_planes=1, size=(64, 48), window=(1, 2, 3, 4)),
        (61, 41, 3, 8),
        id="separate-planes-crop-1",
    ),
    pytest.param(_make_sps(depths=(8, 8)), (320, 240, 1, 16), id="16-bit"),
    pytest.param(_make_sps(size=(16888, 16888), min_cb=0), (16888, 16888, 1, 8), id="largest"),
    pytest.param(_make_sps(size=(8, 8)), (8, 8, 1, 8), id="smallest"),
    pytest.param(_make_sps(sps_id=15), (320, 240, 1, 8), id="sps-id-15"),
    pytest.param(_make_sps(size=(64, 64), min_cb=3, diff_cb=0), (64, 64, 1, 8), id="min-cb-64"),
]


@pytest.mark.parametrize(("nal", "expected"), SPS_VECTORS)
def test_sps_vectors(nal: bytes, expected: tuple[int, int, int, int]) -> None:
    sps = parse_sps(nal)
    assert (sps.width, sps.height, sps.chroma_format_idc, sps.bit_depth_luma) == expected


def test_separate_colour_planes_flag() -> None:
    assert parse_sps(_make_sps(chroma=3, separate_planes=1)).separate_colour_plane is True
    assert parse_sps(_make_sps(chroma=3)).separate_colour_plane is False


MALFORMED_SPS = [
    pytest.param(MAIN.vps, "type 32, expected 33", id="a-VPS"),
    pytest.param(MAIN.sps[:1], "shorter than its 2-byte", id="one-byte"),
    pytest.param(bytes.fromhex("42010e"), "sps_max_sub_layers_minus1 7", id="sub-layers-7"),
    pytest.param(_make_sps(sps_id=16), "sps_seq_parameter_set_id 16", id="sps-id-16"),
    pytest.param(_make_sps(chroma=4), "chroma_format_idc 4", id="chroma-4"),
    pytest.param(_make_sps(size=(0, 240)), "pic_width_in_luma_samples 0", id="width-0"),
    pytest.param(_make_sps(size=(320, 0)), "pic_height_in_luma_samples 0", id="height-0"),
    pytest.param(_make_sps(size=(16896, 240)), "16896", id="too-wide"),
    pytest.param(_make_sps(size=(2**32 - 2, 240)), "4294967294", id="ue-32-bit-width"),
    pytest.param(_make_sps(window=(80, 80, 0, 0)), "to nothing", id="crop-all-width"),
    pytest.param(_make_sps(window=(0, 0, 0, 2**31)), "to nothing", id="crop-huge"),
    pytest.param(_make_sps(depths=(9, 0)), "bit_depth_luma_minus8 9", id="luma-17-bit"),
    pytest.param(_make_sps(depths=(0, 9)), "bit_depth_chroma_minus8 9", id="chroma-17-bit"),
    pytest.param(_make_sps(poc_lsb=13), "log2_max_pic_order_cnt_lsb_minus4 13", id="poc-13"),
    pytest.param(
        _make_sps(min_cb=4, diff_cb=0), "log2_min_luma_coding_block_size_minus3 4", id="min-cb-128"
    ),
    pytest.param(
        _make_sps(min_cb=1, diff_cb=3), "log2_diff_max_min_luma_coding_block_size 3", id="ctb-128"
    ),
    pytest.param(_make_sps(size=(324, 240)), "not a multiple", id="width-not-multiple-of-8"),
    pytest.param(
        _make_sps(size=(320, 240), min_cb=2, diff_cb=0),
        "not a multiple",
        id="240-not-multiple-of-32",
    ),
    pytest.param(_header(33) + b"\x01" + b"\x00" * 8, "truncated", id="truncated-in-PTL"),
    pytest.param(
        _header(33) + b"\x01" + b"\x00" * 12 + b"\x00\x00\x03\x00\x00\x00",
        "Exp-Golomb",
        id="ue-over-32-bits",
    ),
]


@pytest.mark.parametrize(("nal", "message"), MALFORMED_SPS)
def test_malformed_sps(nal: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError, match=message):
        parse_sps(nal)


@pytest.mark.parametrize("clip", CLIPS.values(), ids=CLIPS.keys())
def test_every_truncation_of_a_real_sps_or_vps_is_refused_or_harmless(clip: Clip) -> None:
    # The parsers stop before the VUI / HRD parameters: a cut after that point changes nothing.
    for nal, parse in ((clip.sps, parse_sps), (clip.vps, parse_vps)):
        whole = parse(nal)
        for end in range(len(nal)):
            try:
                assert parse(nal[:end]) == whole
            except DepacketizeError:
                continue


VPS_VECTORS = [
    pytest.param(_make_vps(), 0, id="plain"),
    pytest.param(_make_vps(sub_layers=[(True, True), (True, False)]), 2, id="sub-layers"),
    pytest.param(_make_vps(layer_sets=(63, 1023)), 0, id="most-layer-sets"),
    pytest.param(_make_vps(timing=True), 0, id="timing-info"),
]


@pytest.mark.parametrize(("nal", "sub_layers_minus1"), VPS_VECTORS)
def test_vps_vectors(nal: bytes, sub_layers_minus1: int) -> None:
    vps = parse_vps(nal)
    assert vps.vps_id == 3
    assert vps.max_sub_layers_minus1 == sub_layers_minus1
    assert vps.ptl == parse_sps(MAIN.sps).ptl


MALFORMED_VPS = [
    pytest.param(MAIN.sps, "type 33, expected 32", id="an-SPS"),
    pytest.param(_make_vps(reserved=0xFFFE), "0xffff", id="reserved-bits"),
    pytest.param(
        _make_vps(max_sub_layers_minus1=7), "vps_max_sub_layers_minus1 7", id="sub-layers-7"
    ),
    pytest.param(
        _make_vps(layer_sets=(0, 1024)), "vps_num_layer_sets_minus1 1024", id="layer-sets"
    ),
    pytest.param(_make_vps(layer_sets=(63, 1023))[:-200], "truncated", id="layer-sets-cut"),
    pytest.param(MAIN.vps[:8], "truncated", id="cut-in-PTL"),
]


@pytest.mark.parametrize(("nal", "message"), MALFORMED_VPS)
def test_malformed_vps(nal: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError, match=message):
        parse_vps(nal)


@pytest.mark.parametrize(
    ("nal", "message"),
    [
        pytest.param(MAIN.sps, "type 33, expected 34", id="an-SPS"),
        pytest.param(
            BitWriter().ue(64).ue(0).nal(_header(34)),
            "pps_pic_parameter_set_id 64",
            id="pps-id-64",
        ),
        pytest.param(
            BitWriter().ue(0).ue(16).nal(_header(34)), "pps_seq_parameter_set_id 16", id="sps-id-16"
        ),
        pytest.param(bytes([0x44, 0x01]), "truncated", id="empty"),
    ],
)
def test_malformed_pps(nal: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError, match=message):
        parse_pps_ids(nal)


@pytest.mark.parametrize(
    ("nal", "message"),
    [
        pytest.param(IDR_SLICE[:2], "no slice segment header", id="header-only"),
        pytest.param(
            BitWriter().u(2, 2).ue(64).nal(_header(20)),
            "slice_pic_parameter_set_id 64",
            id="pps-id-64",
        ),
        pytest.param(bytes([0x28, 0x01, 0x80]), "truncated", id="cut"),
    ],
)
def test_malformed_slice_header(nal: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError, match=message):
        slice_pps_id(nal)


def test_malformed_parameter_set_refuses_the_frame() -> None:
    depacketizer = _depacketizer()
    with pytest.raises(DepacketizeError, match="chroma_format_idc 4"):
        depacketizer.build(_views([MAIN.vps, _make_sps(chroma=4), MAIN.pps, IDR_SLICE]), 0)
    assert depacketizer.config is None


# -- property tests -----------------------------------------------------------------------------


PAYLOAD_SEEDS: list[bytes] = [
    *first(STARTS),
    *first(MALFORMED_STARTS),
    *[payload for payloads in first(NAL_VECTORS) for payload in payloads],
    *[payload for payloads in first(MALFORMED_FRAMES) for payload in payloads],
]
FRAME_SEEDS: list[list[bytes]] = [
    *first(NAL_VECTORS),
    *first(MALFORMED_FRAMES),
    *[_keyframe(clip) for clip in CLIPS.values()],
    [FFMPEG_AP, PREFIX_SEI, *_fu(IDR_SLICE, 8)],
]
DONL_FRAME_SEEDS: list[list[bytes]] = [*first(DONL_VECTORS), *first(MALFORMED_DONL)]
SPS_SEEDS = [*(c.sps for c in CLIPS.values()), *first(SPS_VECTORS), *first(MALFORMED_SPS)]
VPS_SEEDS = [*(c.vps for c in CLIPS.values()), *first(VPS_VECTORS), *first(MALFORMED_VPS)]


def _check_starts_frame(payload: bytes) -> None:
    try:
        starts = _depacketizer().starts_frame(memoryview(payload))
    except DepacketizeError:
        return
    payload_type = (payload[0] >> 1) & 0x3F
    assert payload[0] & 0x80 == 0 and payload[1] & 0x07
    assert payload_type <= 50
    assert starts is (payload_type != 49 or bool(payload[2] & 0x80))


@FUZZ
@given(st.binary(max_size=24))
def test_starts_frame_arbitrary_bytes(payload: bytes) -> None:
    _check_starts_frame(payload)


@FUZZ
@given(mutations(PAYLOAD_SEEDS))
def test_starts_frame_mutated_payloads(payload: bytes) -> None:
    _check_starts_frame(payload)


def _check_build(payloads: list[bytes], depacketizer: H265Depacketizer) -> None:
    try:
        frame = depacketizer.build(_views(payloads), 5)
    except DepacketizeError:
        return
    assert isinstance(frame, Frame)
    assert frame.timestamp == 5
    nals = _samples(frame.data)
    assert nals, "a frame holds at least one NAL unit"
    types = [(nal[0] >> 1) & 0x3F for nal in nals]
    assert all(len(nal) >= 2 and nal[0] & 0x80 == 0 and nal[1] & 0x07 for nal in nals)
    assert all(t < 48 and t not in (35, 38) for t in types)
    assert any(t < 32 for t in types)
    if frame.keyframe:
        config = depacketizer.config
        assert config is not None
        assert {32, 33, 34} <= set(types)
        assert 0 < frame.width <= 16888 and 0 < frame.height <= 16888
        assert config.record[0] == 1
    else:
        assert (frame.width, frame.height) == (0, 0)


@FUZZ
@given(st.lists(st.binary(max_size=40), max_size=5))
def test_build_arbitrary_payloads(payloads: list[bytes]) -> None:
    _check_build(payloads, _depacketizer())


@FUZZ
@given(st.lists(mutations(PAYLOAD_SEEDS), min_size=1, max_size=5))
def test_build_mutated_payloads(payloads: list[bytes]) -> None:
    _check_build(payloads, _depacketizer())


@FUZZ
@given(st.sampled_from(FRAME_SEEDS), st.integers(0, 7), st.data())
def test_build_mutated_frames(seed: list[bytes], donl: int, data: st.DataObject) -> None:
    payloads = list(seed)
    index = data.draw(st.integers(0, len(payloads) - 1)) if payloads else 0
    if payloads:
        payloads[index] = data.draw(mutations([payloads[index]]))
    fmtp = {"sprop-max-don-diff": str(donl)}
    _check_build(payloads, H265Depacketizer(CLOCK_RATE, None, fmtp))


@FUZZ
@given(st.sampled_from(DONL_FRAME_SEEDS), st.data())
def test_build_mutated_donl_frames(seed: list[bytes], data: st.DataObject) -> None:
    payloads = [data.draw(mutations([payload])) for payload in seed]
    _check_build(payloads, _depacketizer(sprop_max_don_diff="3"))


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(0, 47), st.integers(0, 63), st.integers(1, 7), st.binary(max_size=20)
        ),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.sampled_from(("single", "ap", "fu")), min_size=1, max_size=6),
    st.one_of(st.none(), st.integers(0, 0xFFFF)),
)
def test_packetized_nal_units_come_back(
    units: list[tuple[int, int, int, bytes]], modes: list[str], don: int | None
) -> None:
    nals = [_header(t, layer, tid) + body for t, layer, tid, body in units]
    payloads = []
    for index, nal in enumerate(nals):
        payloads += _packetize([nal], modes[index % len(modes)], don)
    fmtp = {"sprop-max-don-diff": "1" if don is not None else "0"}
    depacketizer = H265Depacketizer(CLOCK_RATE, None, fmtp)
    assert depacketizer.starts_frame(memoryview(payloads[0])) is True
    assert depacketizer.nal_units(_views(payloads)) == nals


def _check_parameter_set(nal: bytes) -> None:
    try:
        sps = parse_sps(nal)
    except DepacketizeError:
        pass
    else:
        assert 0 < sps.width <= sps.coded_width <= 16888
        assert 0 < sps.height <= sps.coded_height <= 16888
        assert 8 <= sps.bit_depth_luma <= 16 and 8 <= sps.bit_depth_chroma <= 16
        assert 0 <= sps.chroma_format_idc <= 3 and 0 <= sps.sps_id <= 15
        record = hvcc_record(parse_vps(MAIN.vps), sps, [MAIN.vps], [nal], [MAIN.pps])
        assert len(record) == 23 + 3 * 5 + len(MAIN.vps) + len(nal) + len(MAIN.pps)
    try:
        vps = parse_vps(nal)
    except DepacketizeError:
        pass
    else:
        assert 0 <= vps.max_sub_layers_minus1 <= 6
        assert vps.ptl.constraint_flags < 1 << 48
    for parse in (parse_pps_ids, slice_pps_id):
        with contextlib.suppress(DepacketizeError):
            parse(nal)


@FUZZ
@given(st.sampled_from([32, 33, 34, 19]), st.binary(max_size=60))
def test_parameter_set_parsers_arbitrary_bytes(nal_type: int, body: bytes) -> None:
    _check_parameter_set(_header(nal_type) + body)


@FUZZ
@given(mutations([*SPS_SEEDS, *VPS_SEEDS, MAIN.pps, IDR_SLICE, TRAIL_SLICE]))
@example(_make_sps(size=(2**32 - 2, 8)))
def test_parameter_set_parsers_mutated(nal: bytes) -> None:
    _check_parameter_set(nal)


@FUZZ
@given(st.lists(mutations(SPS_SEEDS), max_size=3), st.lists(mutations(VPS_SEEDS), max_size=2))
def test_sdp_parameter_sets_never_break_the_constructor(
    spss: list[bytes], vpss: list[bytes]
) -> None:
    fmtp = {"sprop-vps": _b64(*vpss), "sprop-sps": _b64(*spss), "sprop-pps": _b64(MAIN.pps)}
    depacketizer = H265Depacketizer(CLOCK_RATE, None, fmtp)
    if depacketizer.config is not None:
        assert depacketizer.config.record[0] == 1
    _check_build(_keyframe(), depacketizer)
