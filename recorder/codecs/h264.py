"""H.264 over RTP (RFC 6184, packetization modes 0 and 1) and the H.264 bitstream bits we need.

Every RTP payload starts with a NAL unit header (RFC 6184 section 5.3, H.264 7.3.1):

    +---------------+
    |0|1|2|3|4|5|6|7|
    +-+-+-+-+-+-+-+-+
    |F|NRI|  Type   |
    +---------------+

Type 1-23 is a single NAL unit packet, 24 a STAP-A (aggregation of NAL units, each behind a
16-bit size), 28 an FU-A (one fragment of a NAL unit; a second byte |S|E|R|Type| says whether it
is the first or last). 25 (STAP-B), 26/27 (MTAP16/24) and 29 (FU-B) belong to the interleaved
mode 2, which we do not negotiate; 0, 30 and 31 are reserved (RFC 6184 table 1).

A frame (all packets of one RTP timestamp) is one access unit. It leaves here in avcC form: each
NAL unit behind a 4-byte big-endian length (lengthSizeMinusOne = 3), access unit delimiters and
filler data dropped. Files use in-band parameter sets (`avc3`), so every IDR access unit is made
to carry the SPS and PPS it needs.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from recorder.codecs.base import Depacketizer
from recorder.codecs.bits import (
    EXP_GOLOMB_WINDOW,
    BitReader,
    leading_exp_golomb,
    unescape_rbsp,
)
from recorder.errors import DepacketizeError
from recorder.media import CodecConfig, Frame

# H.264 table 7-1: the NAL unit types we act on.
NAL_SLICE = 1
NAL_SLICE_PARTITION_A = 2
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_FILLER = 12
# RFC 6184 table 1: payload structures that are not a single NAL unit.
STAP_A = 24
STAP_B = 25
MTAP16 = 26
MTAP24 = 27
FU_A = 28
FU_B = 29

F_BIT = 0x80
NRI_MASK = 0x60
TYPE_MASK = 0x1F
FU_START = 0x80
FU_END = 0x40

_UNSUPPORTED = {STAP_B: "STAP-B", MTAP16: "MTAP16", MTAP24: "MTAP24", FU_B: "FU-B"}
# Access unit delimiters only mark boundaries that the container already has; filler data only
# pads a constant bit rate (ISO/IEC 14496-15 5.3.2 lets a file leave both out).
_DROPPED = frozenset((NAL_AUD, NAL_FILLER))
_LENGTH = struct.Struct(">I")

# H.264 7.3.2.1.1: profiles whose SPS carries chroma format, bit depths and scaling lists.
HIGH_PROFILES = frozenset((100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135))
# ISO/IEC 14496-15 5.3.3.1.1: profiles whose avcC ends with chroma format and bit depths.
AVCC_EXTENSION_PROFILES = frozenset((100, 110, 122, 144))
MAX_SPS_ID = 31
MAX_PPS_ID = 255
# Table A-1, level 6.2 (the largest): MaxFS = 139264 macroblocks, and H.264 A.3.1 h)/i) bound
# each side to sqrt(8 * MaxFS) = 1055 macroblocks. Anything larger is not a picture we can keep.
MAX_FRAME_MBS = 139264
MAX_SIDE_MBS = 1055
# A.3.1 / A.3.2: MaxDpbFrames is at most 16.
MAX_REF_FRAMES = 16
# avcC stores each parameter set behind a 16-bit length and counts SPSs in 5 bits.
MAX_RECORD_NAL = 0xFFFF
# A slice header's first three ue(v) fields fit in 3 * 65 bits; room for emulation prevention.
_SLICE_HEADER_PREFIX = 40


@dataclass(frozen=True, slots=True)
class Sps:
    """The fields of a sequence parameter set (H.264 7.3.2.1.1) up to the VUI, which we skip.

    `width`/`height` are the cropped picture size (7.4.2.1.1, frame_crop_*_offset).
    """

    profile_idc: int
    constraint_flags: int  # the whole byte after profile_idc: constraint_set0..5 + 2 reserved
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    separate_colour_plane: bool
    bit_depth_luma: int
    bit_depth_chroma: int
    log2_max_frame_num: int
    pic_order_cnt_type: int
    max_num_ref_frames: int
    frame_mbs_only: bool
    width: int
    height: int


def _check(value: int, limit: int, what: str) -> int:
    if value > limit:
        raise DepacketizeError(f"H.264 SPS {what} is {value}, at most {limit} allowed")
    return value


def _skip_scaling_list(reader: BitReader, size: int) -> None:
    """H.264 7.3.2.1.1.1 scaling_list(): read and discard one list of `size` coefficients."""
    last_scale = 8
    next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            delta_scale = reader.se()
            if not -128 <= delta_scale <= 127:
                raise DepacketizeError(f"H.264 SPS delta_scale {delta_scale} is out of range")
            next_scale = (last_scale + delta_scale + 256) % 256
        if next_scale != 0:
            last_scale = next_scale


def parse_sps(nal: bytes | memoryview) -> Sps:
    """Parse an SPS NAL unit (header byte included, emulation prevention not yet removed)."""
    data = unescape_rbsp(nal)
    if len(data) < 4:
        raise DepacketizeError(f"H.264 SPS truncated: {len(data)} bytes")
    if data[0] & F_BIT or data[0] & TYPE_MASK != NAL_SPS:
        raise DepacketizeError(f"H.264 NAL unit header {data[0]:#04x} is not an SPS")
    profile_idc = data[1]
    constraint_flags = data[2]
    level_idc = data[3]
    reader = BitReader(data[4:], "H.264 SPS")
    sps_id = _check(reader.ue(), MAX_SPS_ID, "seq_parameter_set_id")
    chroma_format_idc = 1
    separate_colour_plane = False
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in HIGH_PROFILES:
        chroma_format_idc = _check(reader.ue(), 3, "chroma_format_idc")
        if chroma_format_idc == 3:
            separate_colour_plane = reader.flag()
        bit_depth_luma = 8 + _check(reader.ue(), 6, "bit_depth_luma_minus8")
        bit_depth_chroma = 8 + _check(reader.ue(), 6, "bit_depth_chroma_minus8")
        reader.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if reader.flag():  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if reader.flag():  # seq_scaling_list_present_flag[index]
                    _skip_scaling_list(reader, 16 if index < 6 else 64)
    log2_max_frame_num = 4 + _check(reader.ue(), 12, "log2_max_frame_num_minus4")
    pic_order_cnt_type = _check(reader.ue(), 2, "pic_order_cnt_type")
    if pic_order_cnt_type == 0:
        _check(reader.ue(), 12, "log2_max_pic_order_cnt_lsb_minus4")
    elif pic_order_cnt_type == 1:
        reader.skip(1)  # delta_pic_order_always_zero_flag
        reader.se()  # offset_for_non_ref_pic
        reader.se()  # offset_for_top_to_bottom_field
        cycle = _check(reader.ue(), 255, "num_ref_frames_in_pic_order_cnt_cycle")
        for _ in range(cycle):
            reader.se()  # offset_for_ref_frame[i]
    max_num_ref_frames = _check(reader.ue(), MAX_REF_FRAMES, "max_num_ref_frames")
    reader.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = reader.ue() + 1
    height_map_units = reader.ue() + 1
    frame_mbs_only = reader.flag()
    if not frame_mbs_only:
        reader.skip(1)  # mb_adaptive_frame_field_flag
    reader.skip(1)  # direct_8x8_inference_flag
    # 7.4.2.1.1: a frame is two fields' worth of map units when fields may be coded.
    height_mbs = height_map_units * (1 if frame_mbs_only else 2)
    if (
        width_mbs > MAX_SIDE_MBS
        or height_mbs > MAX_SIDE_MBS
        or width_mbs * height_mbs > MAX_FRAME_MBS
    ):
        raise DepacketizeError(
            f"H.264 SPS declares {width_mbs}x{height_mbs} macroblocks, beyond level 6.2"
        )
    width = width_mbs * 16
    height = height_mbs * 16
    if reader.flag():  # frame_cropping_flag
        left, right, top, bottom = reader.ue(), reader.ue(), reader.ue(), reader.ue()
        # 7.4.2.1.1 equations 7-19 to 7-22: crop units follow ChromaArrayType.
        if separate_colour_plane or chroma_format_idc == 0:
            unit_x, unit_y = 1, 1
        else:
            unit_x = 1 if chroma_format_idc == 3 else 2
            unit_y = 2 if chroma_format_idc == 1 else 1
        unit_y *= 1 if frame_mbs_only else 2
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
        if width <= 0 or height <= 0:
            raise DepacketizeError(
                f"H.264 SPS cropping ({left}, {right}, {top}, {bottom}) leaves no picture "
                f"of the {width_mbs * 16}x{height_mbs * 16} frame"
            )
    return Sps(
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
        sps_id=sps_id,
        chroma_format_idc=chroma_format_idc,
        separate_colour_plane=separate_colour_plane,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        log2_max_frame_num=log2_max_frame_num,
        pic_order_cnt_type=pic_order_cnt_type,
        max_num_ref_frames=max_num_ref_frames,
        frame_mbs_only=frame_mbs_only,
        width=width,
        height=height,
    )


def parse_pps_ids(nal: bytes | memoryview) -> tuple[int, int]:
    """(pic_parameter_set_id, seq_parameter_set_id) of a PPS NAL unit (H.264 7.3.2.2)."""
    if len(nal) < 2 or nal[0] & F_BIT or nal[0] & TYPE_MASK != NAL_PPS:
        raise DepacketizeError("H.264 PPS truncated or not a PPS")
    reader = BitReader(unescape_rbsp(nal[1:_SLICE_HEADER_PREFIX]), "H.264 PPS")
    pps_id = reader.ue()
    if pps_id > MAX_PPS_ID:
        raise DepacketizeError(f"H.264 PPS pic_parameter_set_id is {pps_id}, at most 255")
    sps_id = reader.ue()
    if sps_id > MAX_SPS_ID:
        raise DepacketizeError(f"H.264 PPS seq_parameter_set_id is {sps_id}, at most 31")
    return pps_id, sps_id


def parse_slice_start(nal: bytes | memoryview) -> tuple[int, int]:
    """(first_mb_in_slice, pic_parameter_set_id) of a slice NAL unit (H.264 7.3.3)."""
    if len(nal) > 1:
        # The first byte after the header is never an emulation prevention byte, and most
        # slice headers (first_mb 0, a P or I slice, PPS 0) start within it.
        start = _SLICE_STARTS.get(nal[1], _UNKNOWN)
        if start is _UNKNOWN:
            start = _SLICE_STARTS[nal[1]] = _slice_start_in_byte(nal[1])
        if start is not None:
            return start
    # Unescaping a prefix gives a prefix of the unescaped whole; 5 bytes give at least 3.
    values = leading_exp_golomb(unescape_rbsp(nal[1 : 1 + EXP_GOLOMB_WINDOW + 2]), 3)
    if values is not None:
        first_mb, slice_type, pps_id = values
        if first_mb < MAX_FRAME_MBS and slice_type <= 9 and pps_id <= MAX_PPS_ID:
            return first_mb, pps_id
    # Bit by bit, with the exact reason when the header is refused.
    reader = BitReader(unescape_rbsp(nal[1:_SLICE_HEADER_PREFIX]), "H.264 slice header")
    first_mb = reader.ue()
    if first_mb >= MAX_FRAME_MBS:
        raise DepacketizeError(f"H.264 slice starts at macroblock {first_mb}, beyond level 6.2")
    slice_type = reader.ue()
    if slice_type > 9:
        raise DepacketizeError(f"H.264 slice_type is {slice_type}, at most 9")
    pps_id = reader.ue()
    if pps_id > MAX_PPS_ID:
        raise DepacketizeError(f"H.264 slice refers to PPS {pps_id}, at most 255")
    return first_mb, pps_id


# First byte of a slice header -> its (first_mb, pps_id) when the three leading ue(v) lie in
# that byte and are valid, else None; filled as bytes are met (at most 256 entries).
_SLICE_STARTS: dict[int, tuple[int, int] | None] = {}
_UNKNOWN = object()


def _slice_start_in_byte(byte: int) -> tuple[int, int] | None:
    values = leading_exp_golomb(bytes((byte,)), 3)
    if values is None:
        return None
    first_mb, slice_type, pps_id = values
    if first_mb >= MAX_FRAME_MBS or slice_type > 9 or pps_id > MAX_PPS_ID:
        return None
    return first_mb, pps_id


def _append_parameter_sets(out: bytearray, nals: Sequence[bytes]) -> None:
    for nal in nals:
        if len(nal) > MAX_RECORD_NAL:
            raise DepacketizeError(f"H.264 parameter set of {len(nal)} bytes is too long")
        out += len(nal).to_bytes(2, "big")
        out += nal


def avcc_record(sps_nals: Sequence[bytes], pps_nals: Sequence[bytes], sps: Sps) -> bytes:
    """The AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1), the body of `avcC`.

    `sps` is the parse of `sps_nals[0]`, which gives profile, compatibility and level.
    """
    if not sps_nals or len(sps_nals) > 31 or len(pps_nals) > 255:
        raise DepacketizeError(
            f"H.264 avcC holds 1-31 SPS and 0-255 PPS, not {len(sps_nals)} and {len(pps_nals)}"
        )
    first = sps_nals[0]
    out = bytearray((1, first[1], first[2], first[3], 0xFC | 3, 0xE0 | len(sps_nals)))
    _append_parameter_sets(out, sps_nals)
    out.append(len(pps_nals))
    _append_parameter_sets(out, pps_nals)
    if sps.profile_idc in AVCC_EXTENSION_PROFILES:
        out += bytes(
            (
                0xFC | sps.chroma_format_idc,
                0xF8 | (sps.bit_depth_luma - 8),
                0xF8 | (sps.bit_depth_chroma - 8),
                0,  # numOfSequenceParameterSetExt: we keep no SPS extensions (type 13)
            )
        )
    return bytes(out)


def parse_sprop_parameter_sets(value: str) -> list[bytes]:
    """The NAL units of an fmtp `sprop-parameter-sets` (RFC 6184 8.1: base64, comma separated).

    Entries that are not valid base64 or are empty are left out: the stream repeats its
    parameter sets in-band, so a damaged SDP entry must not stop the recording. Trailing zero
    bytes are cut: a NAL unit never ends in 0x00 (H.264 7.4.1), but FFmpeg's SDP keeps the
    trailing_zero_8bits of its Annex B extradata, which would make the SDP's PPS differ from
    the identical one in the stream.
    """
    nals = []
    for item in value.split(","):
        text = item.strip()
        if not text:
            continue
        try:
            nal = binascii.a2b_base64(text + "=" * (-len(text) % 4), strict_mode=True)
        except ValueError:  # binascii.Error, or text that is not ASCII
            continue
        nal = nal.rstrip(b"\x00")
        if nal:
            nals.append(nal)
    return nals


def _check_nal_header(header: int, where: str) -> int:
    """The type of a NAL unit inside a STAP-A or FU-A; raise if it cannot be one."""
    if header & F_BIT:
        raise DepacketizeError(f"H.264 {where} has the forbidden_zero_bit set")
    nal_type = header & TYPE_MASK
    if not 1 <= nal_type <= 23:
        raise DepacketizeError(f"H.264 {where} carries NAL unit type {nal_type}, expected 1-23")
    return nal_type


def _payload_type(payload: memoryview) -> int:
    """The RFC 6184 payload type of a packet; raise for the ones we cannot take."""
    if not payload:
        raise DepacketizeError("H.264 payload is empty")
    header = payload[0]
    if header & F_BIT:
        raise DepacketizeError("H.264 payload has the forbidden_zero_bit set")
    nal_type = header & TYPE_MASK
    if 1 <= nal_type <= STAP_A or nal_type == FU_A:
        return nal_type
    name = _UNSUPPORTED.get(nal_type)
    if name is not None:
        raise DepacketizeError(f"H.264 {name} packets (type {nal_type}) are unsupported")
    raise DepacketizeError(f"H.264 payload type {nal_type} is reserved (RFC 6184 table 1)")


def nal_units(payloads: Iterable[memoryview]) -> list[bytes | memoryview]:
    """The NAL units carried by the payloads of one frame, in order (RFC 6184 5.6-5.8).

    A fragmented NAL unit whose first or last FU-A is missing cannot be decoded and fails the
    whole frame rather than being passed on half-built.
    """
    nals: list[bytes | memoryview] = []
    fragments: list[bytes | memoryview] | None = None
    fragment_type = 0
    for payload in payloads:
        if len(payload) > 1 and payload[0] & (F_BIT | TYPE_MASK) == FU_A:
            # Most packets of a frame: an FU-A (F bit clear) with its FU header.
            fu_header = payload[1]
            nal_type = fu_header & TYPE_MASK
            if not 1 <= nal_type <= 23:
                raise DepacketizeError(
                    f"H.264 FU-A carries NAL unit type {nal_type}, expected 1-23"
                )
            if fu_header & FU_START:
                if fragments is not None:
                    raise DepacketizeError("H.264 FU-A starts before the previous one ended")
                # The rebuilt NAL unit header, then the fragments: joined once at the end.
                fragments = [bytes(((payload[0] & NRI_MASK) | nal_type,)), payload[2:]]
                fragment_type = nal_type
            elif fragments is None:
                raise DepacketizeError("H.264 FU-A continues a NAL unit whose start is lost")
            elif nal_type != fragment_type:
                raise DepacketizeError(
                    f"H.264 FU-A of NAL type {nal_type} continues type {fragment_type}"
                )
            else:
                fragments.append(payload[2:])
            # RFC 6184 5.8 forbids S and E in one FU-A; a sender that does it anyway still sent
            # a whole NAL unit, so take it.
            if fu_header & FU_END:
                nals.append(b"".join(fragments))
                fragments = None
            continue
        nal_type = _payload_type(payload)
        if nal_type == FU_A:  # a one-byte FU-A: the F bit is clear, the FU header missing
            raise DepacketizeError("H.264 FU-A truncated: no FU header")
        if fragments is not None:
            raise DepacketizeError("H.264 FU-A fragment without its end")
        if nal_type == STAP_A:
            size = len(payload)
            offset = 1
            if size == 1:
                raise DepacketizeError("H.264 STAP-A carries no NAL units")
            while offset < size:
                if offset + 2 > size:
                    raise DepacketizeError("H.264 STAP-A truncated: half a NAL unit size")
                nal_size = payload[offset] << 8 | payload[offset + 1]
                offset += 2
                if nal_size == 0:
                    raise DepacketizeError("H.264 STAP-A has a zero-size NAL unit")
                if offset + nal_size > size:
                    raise DepacketizeError(
                        f"H.264 STAP-A NAL unit of {nal_size} bytes overruns the payload "
                        f"({size - offset} left)"
                    )
                _check_nal_header(payload[offset], "STAP-A")
                nals.append(payload[offset : offset + nal_size])
                offset += nal_size
        else:
            nals.append(payload)
    if fragments is not None:
        raise DepacketizeError("H.264 FU-A fragment without its end")
    return nals


def _kept_nal_units(nals: list[bytes | memoryview]) -> list[bytes | memoryview]:
    """The NAL units that go into the file: no delimiters or filler, no repeated SPS/PPS.

    GStreamer's rtph264pay with config-interval=-1 sends SPS and PPS again before every IDR
    slice, so a two-slice IDR arrives as SPS PPS SEI SPS PPS slice SPS PPS slice. Parameter sets
    between the slices of one picture make decoders (FFmpeg's parser) start a new access unit
    there; an identical copy tells a decoder nothing, so only the first one stays.
    """
    kept: list[bytes | memoryview] = []
    parameter_sets: list[bytes | memoryview] = []
    for nal in nals:
        nal_type = nal[0] & TYPE_MASK
        if nal_type in _DROPPED:
            continue
        if nal_type in (NAL_SPS, NAL_PPS):
            if any(nal == seen for seen in parameter_sets):
                continue
            parameter_sets.append(nal)
        kept.append(nal)
    return kept


class H264Depacketizer(Depacketizer):
    codec = "H264"
    kind = "video"

    # _sps: seq_parameter_set_id -> (NAL unit, parse); _pps: pic_parameter_set_id -> (NAL unit,
    # the SPS id it refers to). The latest of each id wins, as in a decoder (H.264 7.4.1.2.1).
    # _config_key: the parameter sets `config` was built from, to rebuild only on change.
    # _in_band: whether the last IDR access unit brought all its SPS/PPS itself.
    __slots__ = ("_config_key", "_in_band", "_pps", "_sps")

    def __init__(
        self, clock_rate: int, channels: int | None = None, fmtp: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(clock_rate, channels, fmtp)
        self._sps: dict[int, tuple[bytes, Sps]] = {}
        self._pps: dict[int, tuple[bytes, int]] = {}
        self._config_key: tuple[bytes, ...] = ()
        self._in_band = False
        for key, value in self.fmtp.items():
            if key.lower() == "sprop-parameter-sets":
                self._use_sprop(value)

    def _use_sprop(self, value: str) -> None:
        """Remember the SDP's parameter sets and describe the track from them (RFC 6184 8.1)."""
        first: tuple[bytes, Sps] | None = None
        for nal in parse_sprop_parameter_sets(value):
            try:
                if nal[0] & TYPE_MASK == NAL_SPS:
                    sps = self._remember_sps(nal)
                    if first is None:
                        first = self._sps[sps.sps_id]
                elif nal[0] & TYPE_MASK == NAL_PPS:
                    self._remember_pps(nal)
            except DepacketizeError:
                continue  # a broken SDP entry; the stream's own parameter sets will do
        if first is None:
            return
        sps_id = first[1].sps_id
        pps_nals = [nal for _, (nal, ref) in sorted(self._pps.items()) if ref == sps_id]
        if pps_nals:
            self._update_config(first[0], first[1], pps_nals)

    def _remember_sps(self, nal: bytes | memoryview) -> Sps:
        for known, sps in self._sps.values():
            if known == nal:
                return sps
        data = bytes(nal)
        sps = parse_sps(data)
        self._sps[sps.sps_id] = (data, sps)
        return sps

    def _remember_pps(self, nal: bytes | memoryview) -> int:
        for pps_id, (known, _) in self._pps.items():
            if known == nal:
                return pps_id
        data = bytes(nal)
        pps_id, sps_id = parse_pps_ids(data)
        self._pps[pps_id] = (data, sps_id)
        return pps_id

    def _remember(self, nals: Iterable[bytes | memoryview]) -> None:
        for nal in nals:
            nal_type = nal[0] & TYPE_MASK
            if nal_type == NAL_SPS:
                self._remember_sps(nal)
            elif nal_type == NAL_PPS:
                self._remember_pps(nal)

    def _update_config(self, sps_nal: bytes, sps: Sps, pps_nals: Sequence[bytes]) -> None:
        key = (sps_nal, *pps_nals)
        if key == self._config_key:
            return
        self.config = CodecConfig(
            codec=self.codec,
            kind=self.kind,
            clock_rate=self.clock_rate,
            width=sps.width,
            height=sps.height,
            profile=sps.profile_idc,
            level=sps.level_idc,
            bit_depth=sps.bit_depth_luma,
            chroma_subsampling=sps.chroma_format_idc,
            record=avcc_record([sps_nal], pps_nals, sps),
        )
        self._config_key = key

    def starts_frame(self, payload: memoryview) -> bool:
        # RFC 6184 5.6-5.8: a single NAL unit or a STAP-A is whole; an FU-A starts a NAL unit
        # only with S set.
        nal_type = _payload_type(payload)
        if nal_type != FU_A:
            return True
        if len(payload) < 2:
            raise DepacketizeError("H.264 FU-A truncated: no FU header")
        return bool(payload[1] & FU_START)

    def build(self, payloads: Sequence[memoryview], timestamp: int) -> Frame:
        nals = nal_units(payloads)
        if len(nals) == 1 and nals[0][0] & TYPE_MASK == NAL_SLICE:
            # Most access units: one non-IDR slice, nothing to remember or complete. What the
            # general case below comes to for it.
            nal = nals[0]
            if parse_slice_start(nal)[0] != 0:
                raise DepacketizeError("H.264 access unit lacks the slice at macroblock 0")
            return Frame(timestamp, _LENGTH.pack(len(nal)) + nal, False)
        nals = _kept_nal_units(nals)
        first_vcl = next(
            (index for index, nal in enumerate(nals) if 1 <= nal[0] & TYPE_MASK <= NAL_IDR), None
        )
        if first_vcl is None:
            # Parameter sets sent apart from any picture are still the ones the next IDR uses.
            self._remember(nals)
            raise DepacketizeError("H.264 access unit has no slices")
        head = nals[:first_vcl]
        tail = nals[first_vcl:]
        self._remember(head)
        idr_pps: list[int] = []
        has_first_slice = False
        for nal in tail:
            nal_type = nal[0] & TYPE_MASK
            if nal_type == NAL_IDR:
                first_mb, pps_id = parse_slice_start(nal)
                has_first_slice = has_first_slice or first_mb == 0
                if pps_id not in idr_pps:
                    idr_pps.append(pps_id)
            elif not has_first_slice and nal_type in (NAL_SLICE, NAL_SLICE_PARTITION_A):
                has_first_slice = parse_slice_start(nal)[0] == 0
        if not has_first_slice:
            # Slices of a picture may come in any order (arbitrary slice order), but one of
            # them starts at macroblock 0; without it the picture's start was lost.
            raise DepacketizeError("H.264 access unit lacks the slice at macroblock 0")
        width = height = 0
        if idr_pps:
            nals = self._complete_idr(nals, head, idr_pps)
            sps_nal, sps = self._sps[self._pps[idr_pps[0]][1]]
            width, height = sps.width, sps.height
            pps_nals = [self._pps[pps_id][0] for pps_id in sorted(idr_pps)]
            self._update_config(sps_nal, sps, pps_nals)
        # Parameter sets after the first slice are for later pictures: remembered only now.
        self._remember(tail)
        parts: list[bytes | memoryview] = []
        for nal in nals:
            parts.append(_LENGTH.pack(len(nal)))
            parts.append(nal)
        return Frame(timestamp, b"".join(parts), bool(idr_pps), 0, width, height)

    def _complete_idr(
        self, nals: list[bytes | memoryview], head: list[bytes | memoryview], idr_pps: list[int]
    ) -> list[bytes | memoryview]:
        """The IDR access unit with every SPS/PPS its slices use ahead of them (for `avc3`)."""
        present_sps: set[int] = set()
        present_pps: set[int] = set()
        for nal in head:
            nal_type = nal[0] & TYPE_MASK
            if nal_type == NAL_SPS:
                present_sps.add(self._remember_sps(nal).sps_id)
            elif nal_type == NAL_PPS:
                present_pps.add(self._remember_pps(nal))
        missing_sps: list[bytes] = []
        missing_pps: list[bytes] = []
        for pps_id in idr_pps:
            pps = self._pps.get(pps_id)
            sps = self._sps.get(pps[1]) if pps is not None else None
            if pps is None or sps is None:
                raise DepacketizeError("H.264 IDR without parameter sets")
            if pps_id not in present_pps:
                missing_pps.append(pps[0])
            if sps[1].sps_id not in present_sps and sps[0] not in missing_sps:
                missing_sps.append(sps[0])
        if not missing_sps and not missing_pps:
            self._in_band = True
            return nals
        if self._in_band:
            # This sender puts SPS/PPS in every IDR access unit, so these were lost on the way
            # (the packets before the IDR's first slice). They may have been new ones (WebRTC
            # changes resolution at an IDR): decoding with the previous ones would give garbage.
            # Refuse this IDR; if the sender has just stopped sending them in-band, the next
            # IDR is completed from the ones we know.
            self._in_band = False
            raise DepacketizeError("H.264 IDR lost the parameter sets its sender sends with it")
        # SPSs before PPSs (a PPS is parsed against its SPS), both before any SEI (a buffering
        # period SEI names its SPS): the order H.264 7.4.1.2.3 expects.
        head_sps = [nal for nal in head if nal[0] & TYPE_MASK == NAL_SPS]
        head_pps = [nal for nal in head if nal[0] & TYPE_MASK == NAL_PPS]
        head_other = [nal for nal in head if nal[0] & TYPE_MASK not in (NAL_SPS, NAL_PPS)]
        return [
            *missing_sps,
            *head_sps,
            *missing_pps,
            *head_pps,
            *head_other,
            *nals[len(head) :],
        ]
