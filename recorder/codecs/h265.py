"""H.265 over RTP (RFC 7798) and the parts of the H.265 bitstream the recorder needs.

RTP payloads (RFC 7798 section 4.4) all start with a 2-byte payload header shaped like the
H.265 NAL unit header (H.265 7.3.1.2):

        +---------------+---------------+
        |0|1|2|3|4|5|6|7|0|1|2|3|4|5|6|7|
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |F|   Type    |  LayerId  | TID |
        +-------------+-----------------+

Type 0-47 is a single NAL unit packet, 48 an aggregation packet (AP), 49 a fragmentation unit
(FU), 50 a PACI packet; 51-63 have no meaning in RTP. Frames leave here as hvcC-style samples
(ISO/IEC 14496-15 section 8.3): each NAL unit behind a 4-byte big-endian length. The MP4 sample
entry is `hev1` (parameter sets in band), so every keyframe carries its VPS, SPS and PPS.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from recorder.codecs.base import Depacketizer
from recorder.codecs.bits import BitReader, unescape_rbsp
from recorder.errors import DepacketizeError, SdpError
from recorder.media import CodecConfig, Frame

# H.265 table 7-1: NAL unit types we act on.
NAL_IRAP_FIRST = 16  # BLA_W_LP; IRAP pictures are 16..23 (H.265 3.73, RSV_IRAP_VCL22/23 included)
NAL_IRAP_LAST = 23
NAL_VCL_LAST = 31
NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_AUD = 35
NAL_FD = 38
# RFC 7798 section 4.4: payload structures that reuse the unspecified NAL unit types.
PAYLOAD_AP = 48
PAYLOAD_FU = 49
PAYLOAD_PACI = 50

PAYLOAD_HEADER_SIZE = 2
# RFC 7798 sections 4.4.1-4.4.3: decoding order number fields, present only when
# sprop-max-don-diff > 0.
DONL_SIZE = 2
DOND_SIZE = 1
AP_LENGTH_SIZE = 2
FU_HEADER_SIZE = 1
FU_START = 0x80
FU_END = 0x40
TYPE_MASK = 0x3F
FORBIDDEN_BIT = 0x80
TID_MASK = 0x07
# RFC 7798 section 4.4.4: a PACI packet's 2 bytes after the payload header (A, cType, PHSsize,
# F0-F2, Y) and the PHES that PHSsize counts.
PACI_FIELDS_SIZE = 2
# RFC 7798 section 7.1: sprop-max-don-diff is an integer in the range 0 to 32767.
MAX_DON_DIFF = 32767
# ISO/IEC 14496-15 section 8.3.3.1: lengthSizeMinusOne; our samples use 4-byte lengths.
LENGTH_SIZE = 4

# H.265 7.4.3: value ranges of the fields we read.
MAX_SUB_LAYERS_MINUS1 = 6
MAX_VPS_ID = 15
MAX_SPS_ID = 15
MAX_PPS_ID = 63
MAX_CHROMA_FORMAT_IDC = 3
MAX_BIT_DEPTH_MINUS8 = 8
MAX_POC_LSB_MINUS4 = 12
MAX_LAYER_SETS_MINUS1 = 1023
# H.265 A.4.1: pic_width/height_in_luma_samples <= Sqrt(MaxLumaPs * 8); 16888 for the largest
# MaxLumaPs of table A.8 (35 651 584, levels 6 to 6.2). Far above anything WebRTC sends.
MAX_PICTURE_DIMENSION = 16888
# H.265 7.4.3.2.1: MinCbLog2SizeY is at least 3 and CtbLog2SizeY at most 6.
MIN_CB_LOG2_MIN = 3
CTB_LOG2_MAX = 6
# H.265 table 6-1: (SubWidthC, SubHeightC) by chroma_format_idc (monochrome and 4:4:4: 1, 1).
CHROMA_SUBSAMPLING = ((1, 1), (2, 2), (2, 1), (1, 1))
# Bytes of a slice segment header that always hold slice_pic_parameter_set_id (H.265
# 7.3.6.1: 2 flag bits, then ue(v) of at most 13 bits for ids 0-63), with room for emulation
# prevention bytes.
SLICE_HEADER_PREFIX = 8


@dataclass(frozen=True, slots=True)
class ProfileTierLevel:
    """The general part of profile_tier_level() (H.265 7.3.3), as hvcC repeats it."""

    profile_space: int
    tier_flag: int
    profile_idc: int
    compatibility_flags: int  # 32 bits, general_profile_compatibility_flag[0] first
    constraint_flags: int  # 48 bits: progressive/interlaced/non-packed/frame-only + 44
    level_idc: int


@dataclass(frozen=True, slots=True)
class VideoParameterSet:
    """What we read of video_parameter_set_rbsp() (H.265 7.3.2.1)."""

    vps_id: int
    max_sub_layers_minus1: int
    temporal_id_nesting: bool
    ptl: ProfileTierLevel


@dataclass(frozen=True, slots=True)
class SequenceParameterSet:
    """What we read of seq_parameter_set_rbsp() (H.265 7.3.2.2), up to the coding block sizes."""

    vps_id: int
    sps_id: int
    max_sub_layers_minus1: int
    temporal_id_nesting: bool
    ptl: ProfileTierLevel
    chroma_format_idc: int
    separate_colour_plane: bool
    coded_width: int  # pic_width_in_luma_samples
    coded_height: int
    width: int  # after the conformance window
    height: int
    bit_depth_luma: int
    bit_depth_chroma: int


def _nal_reader(nal: bytes | memoryview, nal_type: int, what: str) -> BitReader:
    """A reader positioned after the NAL unit header, which must be of `nal_type`."""
    if len(nal) < PAYLOAD_HEADER_SIZE:
        raise DepacketizeError(f"{what} NAL unit shorter than its 2-byte header")
    found = (nal[0] >> 1) & TYPE_MASK
    if found != nal_type:
        raise DepacketizeError(f"{what} NAL unit has type {found}, expected {nal_type}")
    return BitReader(unescape_rbsp(nal[PAYLOAD_HEADER_SIZE:]), what)


def _profile_tier_level(reader: BitReader, max_sub_layers_minus1: int) -> ProfileTierLevel:
    """profile_tier_level(1, maxNumSubLayersMinus1), H.265 7.3.3; sub-layer parts skipped."""
    profile_space = reader.u(2)
    tier_flag = reader.u(1)
    profile_idc = reader.u(5)
    compatibility_flags = reader.u(32)
    constraint_flags = reader.u(48)
    level_idc = reader.u(8)
    profile_present = []
    level_present = []
    for _ in range(max_sub_layers_minus1):
        profile_present.append(reader.flag())
        level_present.append(reader.flag())
    if max_sub_layers_minus1 > 0:
        reader.skip(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for index in range(max_sub_layers_minus1):
        if profile_present[index]:
            reader.skip(88)  # sub_layer profile space ... sub_layer_inbld/reserved flag
        if level_present[index]:
            reader.skip(8)  # sub_layer_level_idc
    return ProfileTierLevel(
        profile_space, tier_flag, profile_idc, compatibility_flags, constraint_flags, level_idc
    )


def _sub_layer_ordering_info(reader: BitReader, max_sub_layers_minus1: int) -> None:
    """Skip {vps,sps}_sub_layer_ordering_info (three ue(v) per sub-layer described)."""
    present = reader.flag()
    for _ in range(0 if present else max_sub_layers_minus1, max_sub_layers_minus1 + 1):
        reader.ue()  # max_dec_pic_buffering_minus1
        reader.ue()  # max_num_reorder_pics
        reader.ue()  # max_latency_increase_plus1


def parse_vps(nal: bytes | memoryview) -> VideoParameterSet:
    """Read a VPS NAL unit (header included) up to its timing info; raise if malformed."""
    reader = _nal_reader(nal, NAL_VPS, "H.265 VPS")
    vps_id = reader.u(4)
    reader.skip(2)  # vps_base_layer_internal_flag, vps_base_layer_available_flag
    reader.skip(6)  # vps_max_layers_minus1
    max_sub_layers_minus1 = reader.u(3)
    if max_sub_layers_minus1 > MAX_SUB_LAYERS_MINUS1:
        raise DepacketizeError("H.265 VPS has vps_max_sub_layers_minus1 7 (range 0-6)")
    temporal_id_nesting = reader.flag()
    if reader.u(16) != 0xFFFF:
        raise DepacketizeError("H.265 VPS has vps_reserved_0xffff_16bits not equal to 0xffff")
    ptl = _profile_tier_level(reader, max_sub_layers_minus1)
    _sub_layer_ordering_info(reader, max_sub_layers_minus1)
    max_layer_id = reader.u(6)
    num_layer_sets_minus1 = reader.ue()
    if num_layer_sets_minus1 > MAX_LAYER_SETS_MINUS1:
        raise DepacketizeError(
            f"H.265 VPS has vps_num_layer_sets_minus1 {num_layer_sets_minus1} (range 0-1023)"
        )
    reader.skip(num_layer_sets_minus1 * (max_layer_id + 1))  # layer_id_included_flag
    if reader.flag():  # vps_timing_info_present_flag
        reader.skip(64)  # vps_num_units_in_tick, vps_time_scale
        if reader.flag():  # vps_poc_proportional_to_timing_flag
            reader.ue()
        # The HRD parameters that follow say nothing hvcC needs; we stop here.
        reader.ue()  # vps_num_hrd_parameters
    return VideoParameterSet(vps_id, max_sub_layers_minus1, temporal_id_nesting, ptl)


def parse_sps(nal: bytes | memoryview) -> SequenceParameterSet:
    """Read an SPS NAL unit (header included) up to the coding block sizes; raise if malformed."""
    reader = _nal_reader(nal, NAL_SPS, "H.265 SPS")
    vps_id = reader.u(4)
    max_sub_layers_minus1 = reader.u(3)
    if max_sub_layers_minus1 > MAX_SUB_LAYERS_MINUS1:
        raise DepacketizeError("H.265 SPS has sps_max_sub_layers_minus1 7 (range 0-6)")
    temporal_id_nesting = reader.flag()
    ptl = _profile_tier_level(reader, max_sub_layers_minus1)
    sps_id = _ue_at_most(reader, MAX_SPS_ID, "sps_seq_parameter_set_id")
    chroma_format_idc = _ue_at_most(reader, MAX_CHROMA_FORMAT_IDC, "chroma_format_idc")
    separate_colour_plane = chroma_format_idc == 3 and reader.flag()
    coded_width = reader.ue()
    coded_height = reader.ue()
    for value, name in ((coded_width, "width"), (coded_height, "height")):
        if not 0 < value <= MAX_PICTURE_DIMENSION:
            raise DepacketizeError(
                f"H.265 SPS has pic_{name}_in_luma_samples {value} "
                f"(1-{MAX_PICTURE_DIMENSION} supported)"
            )
    # H.265 7.4.3.2.1: the conformance window is in chroma sample units (SubWidthC/SubHeightC;
    # 1 when the colour planes are coded separately, ChromaArrayType 0).
    sub_width, sub_height = CHROMA_SUBSAMPLING[0 if separate_colour_plane else chroma_format_idc]
    width, height = coded_width, coded_height
    if reader.flag():  # conformance_window_flag
        left, right, top, bottom = reader.ue(), reader.ue(), reader.ue(), reader.ue()
        width -= sub_width * (left + right)
        height -= sub_height * (top + bottom)
        if width <= 0 or height <= 0:
            raise DepacketizeError(
                f"H.265 SPS conformance window crops the {coded_width}x{coded_height} "
                "picture to nothing"
            )
    bit_depth_luma = 8 + _ue_at_most(reader, MAX_BIT_DEPTH_MINUS8, "bit_depth_luma_minus8")
    bit_depth_chroma = 8 + _ue_at_most(reader, MAX_BIT_DEPTH_MINUS8, "bit_depth_chroma_minus8")
    _ue_at_most(reader, MAX_POC_LSB_MINUS4, "log2_max_pic_order_cnt_lsb_minus4")
    _sub_layer_ordering_info(reader, max_sub_layers_minus1)
    min_cb_log2 = MIN_CB_LOG2_MIN + _ue_at_most(
        reader, CTB_LOG2_MAX - MIN_CB_LOG2_MIN, "log2_min_luma_coding_block_size_minus3"
    )
    _ue_at_most(reader, CTB_LOG2_MAX - min_cb_log2, "log2_diff_max_min_luma_coding_block_size")
    # H.265 7.4.3.2.1: the coded picture is a whole number of minimum coding blocks.
    min_cb_mask = (1 << min_cb_log2) - 1
    if coded_width & min_cb_mask or coded_height & min_cb_mask:
        raise DepacketizeError(
            f"H.265 SPS picture {coded_width}x{coded_height} is not a multiple of the "
            f"{1 << min_cb_log2}-sample minimum coding block"
        )
    return SequenceParameterSet(
        vps_id,
        sps_id,
        max_sub_layers_minus1,
        temporal_id_nesting,
        ptl,
        chroma_format_idc,
        separate_colour_plane,
        coded_width,
        coded_height,
        width,
        height,
        bit_depth_luma,
        bit_depth_chroma,
    )


def parse_pps_ids(nal: bytes | memoryview) -> tuple[int, int]:
    """(pps_pic_parameter_set_id, pps_seq_parameter_set_id) of a PPS NAL unit (H.265 7.3.2.3)."""
    reader = _nal_reader(nal, NAL_PPS, "H.265 PPS")
    pps_id = _ue_at_most(reader, MAX_PPS_ID, "pps_pic_parameter_set_id")
    sps_id = _ue_at_most(reader, MAX_SPS_ID, "pps_seq_parameter_set_id")
    return pps_id, sps_id


def slice_pps_id(nal: bytes | memoryview) -> int:
    """slice_pic_parameter_set_id of an IRAP slice segment NAL unit (H.265 7.3.6.1)."""
    if len(nal) <= PAYLOAD_HEADER_SIZE:
        raise DepacketizeError("H.265 slice NAL unit has no slice segment header")
    prefix = nal[PAYLOAD_HEADER_SIZE : PAYLOAD_HEADER_SIZE + SLICE_HEADER_PREFIX]
    reader = BitReader(unescape_rbsp(prefix), "H.265 slice segment header")
    reader.skip(1)  # first_slice_segment_in_pic_flag
    if NAL_IRAP_FIRST <= (nal[0] >> 1) & TYPE_MASK <= NAL_IRAP_LAST:
        reader.skip(1)  # no_output_of_prior_pics_flag
    return _ue_at_most(reader, MAX_PPS_ID, "slice_pic_parameter_set_id")


def _ue_at_most(reader: BitReader, limit: int, name: str) -> int:
    value = reader.ue()
    if value > limit:
        raise DepacketizeError(f"{reader.what} has {name} {value} (range 0-{limit})")
    return value


def hvcc_record(
    vps: VideoParameterSet,
    sps: SequenceParameterSet,
    vps_nals: Sequence[bytes],
    sps_nals: Sequence[bytes],
    pps_nals: Sequence[bytes],
) -> bytes:
    """HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 section 8.3.3.1), the hvcC box body.

    The general fields come from the SPS in use. Choices match what FFmpeg 5.1 writes:
    - min_spatial_segmentation_idc 0 and parallelismType 0 ("unknown"): always true, and
      FFmpeg writes the same unless the VUI declares a restriction, which would need the whole
      SPS parsed (scaling lists, reference picture sets) to reach.
    - avgFrameRate 0 and constantFrameRate 0: RTP does not tell.
    - numTemporalLayers is the larger of the VPS's and the SPS's sub-layer count.
    - array_completeness 0: with `hev1`, parameter sets may also (and do) arrive in band and
      change mid-stream; 1 would promise they never do. FFmpeg writes 0 for `hev1` too.
    """
    ptl = sps.ptl
    temporal_layers = max(vps.max_sub_layers_minus1, sps.max_sub_layers_minus1) + 1
    record = bytearray(
        [
            1,  # configurationVersion
            ptl.profile_space << 6 | ptl.tier_flag << 5 | ptl.profile_idc,
        ]
    )
    record += ptl.compatibility_flags.to_bytes(4, "big")
    record += ptl.constraint_flags.to_bytes(6, "big")
    record.append(ptl.level_idc)
    record += (0xF000).to_bytes(2, "big")  # reserved 1111, min_spatial_segmentation_idc 0
    record.append(0xFC)  # reserved 111111, parallelismType 0
    record.append(0xFC | sps.chroma_format_idc)
    record.append(0xF8 | (sps.bit_depth_luma - 8))
    record.append(0xF8 | (sps.bit_depth_chroma - 8))
    record += b"\x00\x00"  # avgFrameRate
    record.append(temporal_layers << 3 | int(sps.temporal_id_nesting) << 2 | (LENGTH_SIZE - 1))
    arrays = ((NAL_VPS, vps_nals), (NAL_SPS, sps_nals), (NAL_PPS, pps_nals))
    record.append(len(arrays))
    for nal_type, nals in arrays:
        record.append(nal_type)  # array_completeness 0, reserved 0
        record += len(nals).to_bytes(2, "big")
        for nal in nals:
            record += len(nal).to_bytes(2, "big")
            record += nal
    return bytes(record)


def _check_header(byte0: int, byte1: int, what: str) -> int:
    """The Type of a payload or NAL unit header; raise on F=1 or TID=0 (H.265 7.4.2.2)."""
    if byte0 & FORBIDDEN_BIT:
        raise DepacketizeError(f"H.265 {what} header has the forbidden_zero_bit set")
    if not byte1 & TID_MASK:
        raise DepacketizeError(f"H.265 {what} header has TID 0 (nuh_temporal_id_plus1 = 0)")
    return (byte0 >> 1) & TYPE_MASK


def _check_nal(nal: memoryview, what: str) -> None:
    """An aggregated or reassembled NAL unit: a valid header and a type a decoder knows."""
    if len(nal) < PAYLOAD_HEADER_SIZE:
        raise DepacketizeError(f"H.265 {what} holds a NAL unit shorter than its 2-byte header")
    nal_type = _check_header(nal[0], nal[1], what)
    if nal_type >= PAYLOAD_AP:
        raise DepacketizeError(f"H.265 {what} holds a NAL unit of type {nal_type} (0-47 allowed)")


class H265Depacketizer(Depacketizer):
    codec = "H265"
    kind = "video"

    __slots__ = ("_active_sps", "_dirty", "_donl", "_pps", "_seen", "_sps", "_vps")

    def __init__(
        self, clock_rate: int, channels: int | None = None, fmtp: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(clock_rate, channels, fmtp)
        # Parameter sets by id, as a decoder keeps them (H.265 7.4.2.4.2): bytes and what we
        # parsed of them. `_seen` holds the bytes of all of them, so a repeated set (every
        # keyframe of most senders) costs one set lookup, not a parse.
        self._vps: dict[int, tuple[bytes, VideoParameterSet]] = {}
        self._sps: dict[int, tuple[bytes, SequenceParameterSet]] = {}
        self._pps: dict[int, tuple[bytes, int]] = {}  # id -> (bytes, sps id)
        self._seen: set[bytes] = set()
        self._dirty = False  # a parameter set changed since `config` was built
        self._active_sps = -1
        params = {key.lower(): value for key, value in self.fmtp.items()}
        self._donl = _max_don_diff(params.get("sprop-max-don-diff")) > 0
        self._load_sprop(params)

    def _load_sprop(self, params: Mapping[str, str]) -> None:
        """RFC 7798 section 7.1: sprop-vps/sps/pps, base64 NAL units separated by commas.

        An unusable one is ignored rather than refused: senders repeat parameter sets in band,
        and an IRAP picture whose sets never arrive is refused when it comes.
        """
        for key, nal_type in (
            ("sprop-vps", NAL_VPS),
            ("sprop-sps", NAL_SPS),
            ("sprop-pps", NAL_PPS),
        ):
            for item in params.get(key, "").split(","):
                item = item.strip()
                if not item:
                    continue
                try:
                    nal = base64.b64decode(item, validate=True)
                    if len(nal) < PAYLOAD_HEADER_SIZE or (nal[0] >> 1) & TYPE_MASK != nal_type:
                        continue
                    _check_header(nal[0], nal[1], "sprop parameter set")
                    self._store(nal_type, nal)
                except (binascii.Error, DepacketizeError):
                    continue
        if self._pps:
            first_pps = next(iter(self._pps))
            # Incomplete sets in the SDP are fine: the stream's own will complete them.
            with contextlib.suppress(DepacketizeError):
                self._configure(first_pps)

    def starts_frame(self, payload: memoryview) -> bool:
        # RFC 7798 section 4.4: everything but an FU continuation begins with a NAL unit.
        if len(payload) < PAYLOAD_HEADER_SIZE:
            raise DepacketizeError("H.265 payload shorter than its 2-byte payload header")
        payload_type = _check_header(payload[0], payload[1], "payload")
        if payload_type == PAYLOAD_FU:
            if len(payload) < PAYLOAD_HEADER_SIZE + FU_HEADER_SIZE:
                raise DepacketizeError("H.265 FU has no FU header")
            return bool(payload[2] & FU_START)
        if payload_type > PAYLOAD_PACI:
            raise DepacketizeError(f"H.265 payload type {payload_type} is unspecified (51-63)")
        return True

    def nal_units(self, payloads: Sequence[memoryview]) -> list[bytes]:
        """The NAL units of one frame's payloads, in transmission order.

        DONL/DOND fields (present when sprop-max-don-diff > 0) are skipped: we do not reorder
        NAL units by decoding order number (RFC 7798 section 6 de-packetization buffer). No
        sender we record (FFmpeg, GStreamer, browsers) writes DON at all; one that really sent
        NAL units out of decoding order would need that buffer.
        """
        donl = DONL_SIZE if self._donl else 0
        nals: list[bytes] = []
        fragment: bytearray | None = None
        fragment_key = (0, 0)
        paci = False
        for payload in payloads:
            size = len(payload)
            if size < PAYLOAD_HEADER_SIZE:
                raise DepacketizeError("H.265 payload shorter than its 2-byte payload header")
            byte0 = payload[0]
            byte1 = payload[1]
            payload_type = _check_header(byte0, byte1, "payload")
            if payload_type == PAYLOAD_FU:
                # RFC 7798 section 4.4.3
                if size < PAYLOAD_HEADER_SIZE + FU_HEADER_SIZE:
                    raise DepacketizeError("H.265 FU has no FU header")
                fu_header = payload[2]
                fu_type = fu_header & TYPE_MASK
                if fu_type >= PAYLOAD_AP:
                    raise DepacketizeError(f"H.265 FU carries NAL unit type {fu_type} (0-47)")
                # The NAL unit header: Type from the FU header; F (checked 0), LayerId and TID
                # from the payload header, which "MUST be equal" to the fragmented unit's.
                key = ((byte0 & 0x01) | fu_type << 1, byte1)
                if fu_header & FU_START:
                    if fu_header & FU_END:
                        raise DepacketizeError("H.265 FU has both S and E set")
                    if fragment is not None:
                        raise DepacketizeError("H.265 FU starts before the previous one ended")
                    start = PAYLOAD_HEADER_SIZE + FU_HEADER_SIZE + donl
                    if size < start:
                        raise DepacketizeError("H.265 FU truncated in its DONL field")
                    fragment = bytearray(key)
                    fragment += payload[start:]
                    fragment_key = key
                    continue
                if fragment is None:
                    raise DepacketizeError("H.265 FU continues a NAL unit whose start was lost")
                if key != fragment_key:
                    raise DepacketizeError("H.265 FU header differs from its first fragment's")
                fragment += payload[PAYLOAD_HEADER_SIZE + FU_HEADER_SIZE :]
                if fu_header & FU_END:
                    nals.append(bytes(fragment))
                    fragment = None
                continue
            if fragment is not None:
                # RFC 7798 section 4.4.3: the FUs of a NAL unit are sent back to back.
                raise DepacketizeError("H.265 FU ended without its end fragment")
            if payload_type < PAYLOAD_AP:
                # RFC 7798 section 4.4.1: the payload header is the NAL unit header.
                if donl:
                    if size < PAYLOAD_HEADER_SIZE + donl:
                        raise DepacketizeError("H.265 single NAL unit packet truncated in DONL")
                    nals.append(
                        bytes(payload[:PAYLOAD_HEADER_SIZE])
                        + bytes(payload[PAYLOAD_HEADER_SIZE + donl :])
                    )
                else:
                    nals.append(bytes(payload))
            elif payload_type == PAYLOAD_AP:
                _aggregated(payload, donl, nals)
            elif payload_type == PAYLOAD_PACI:
                # RFC 7798 section 4.4.4: PACI wraps a payload with header extensions for
                # middleboxes. No sender we record uses it; we skip it whole.
                paci = True
                if size < PAYLOAD_HEADER_SIZE + PACI_FIELDS_SIZE:
                    raise DepacketizeError("H.265 PACI packet truncated in its fixed fields")
                phes_size = (payload[2] & 0x01) << 4 | payload[3] >> 4
                if size < PAYLOAD_HEADER_SIZE + PACI_FIELDS_SIZE + phes_size:
                    raise DepacketizeError("H.265 PACI packet truncated in its PHES")
            else:
                raise DepacketizeError(f"H.265 payload type {payload_type} is unspecified (51-63)")
        if fragment is not None:
            raise DepacketizeError("H.265 frame ends inside a fragmented NAL unit")
        if not nals:
            raise DepacketizeError(
                "H.265 frame holds only PACI packets, which we skip"
                if paci
                else "H.265 frame holds no NAL units"
            )
        return nals

    def build(self, payloads: Sequence[memoryview], timestamp: int) -> Frame:
        nals = self.nal_units(payloads)
        kept: list[bytes] = []
        irap: bytes | None = None
        has_vcl = False
        has_sets = 0  # bit (type - 32) for each parameter set type the access unit carries
        for nal in nals:
            nal_type = (nal[0] >> 1) & TYPE_MASK
            if nal_type in (NAL_AUD, NAL_FD):
                continue  # a sample is one access unit already; filler data is padding
            base_layer = not nal[0] & 0x01 and nal[1] >> 3 == 0
            if nal_type <= NAL_VCL_LAST:
                has_vcl = True
                if irap is None and base_layer and NAL_IRAP_FIRST <= nal_type <= NAL_IRAP_LAST:
                    irap = nal
            elif NAL_VPS <= nal_type <= NAL_PPS and base_layer:
                self._store(nal_type, nal)
                has_sets |= 1 << (nal_type - NAL_VPS)
            kept.append(nal)
        if not has_vcl:
            # A sample without a picture would shift every later frame's timing; any parameter
            # sets it held are kept and go with the next keyframe.
            raise DepacketizeError("H.265 access unit holds no slice")
        if irap is None:
            return Frame(timestamp, _length_prefixed(kept), False)
        sps = self._configure(slice_pps_id(irap))
        if has_sets != 0b111:
            # hev1: a keyframe must carry its own parameter sets (ISO/IEC 14496-15 8.4.3).
            kept = [
                *self._parameter_sets(),
                *(nal for nal in kept if not NAL_VPS <= (nal[0] >> 1) & TYPE_MASK <= NAL_PPS),
            ]
        return Frame(timestamp, _length_prefixed(kept), True, 0, sps.width, sps.height)

    def _parameter_sets(self) -> list[bytes]:
        return [
            *(nal for nal, _ in self._vps.values()),
            *(nal for nal, _ in self._sps.values()),
            *(nal for nal, _ in self._pps.values()),
        ]

    def _store(self, nal_type: int, nal: bytes) -> None:
        """Keep a parameter set by id; a changed set drops those that referred to the old one.

        The cascade mirrors a decoder (H.265 7.4.2.4.2: a set's content may change only at
        an IRAP picture, and FFmpeg forgets dependants of a replaced set), so a keyframe never
        gets a stale PPS for a new SPS prepended.
        """
        if nal in self._seen:
            return
        if nal_type == NAL_VPS:
            vps = parse_vps(nal)
            if vps.vps_id in self._vps:
                for sps_id in [i for i, (_, s) in self._sps.items() if s.vps_id == vps.vps_id]:
                    self._drop_sps(sps_id)
            self._vps[vps.vps_id] = (nal, vps)
        elif nal_type == NAL_SPS:
            sps = parse_sps(nal)
            if sps.sps_id in self._sps:
                self._drop_sps(sps.sps_id)
            self._sps[sps.sps_id] = (nal, sps)
        else:
            pps_id, sps_id = parse_pps_ids(nal)
            self._pps.pop(pps_id, None)
            self._pps[pps_id] = (nal, sps_id)
        self._seen = set(self._parameter_sets())
        self._dirty = True

    def _drop_sps(self, sps_id: int) -> None:
        del self._sps[sps_id]
        for pps_id in [i for i, (_, s) in self._pps.items() if s == sps_id]:
            del self._pps[pps_id]

    def _configure(self, pps_id: int) -> SequenceParameterSet:
        """The SPS an IRAP picture uses (via its PPS); rebuild `config` if the sets changed."""
        pps = self._pps.get(pps_id)
        if pps is None:
            raise DepacketizeError(f"H.265 IRAP picture uses PPS {pps_id}, never received")
        sps_id = pps[1]
        sps_entry = self._sps.get(sps_id)
        if sps_entry is None:
            raise DepacketizeError(f"H.265 PPS {pps_id} uses SPS {sps_id}, never received")
        sps = sps_entry[1]
        vps_entry = self._vps.get(sps.vps_id)
        if vps_entry is None:
            raise DepacketizeError(f"H.265 SPS {sps_id} uses VPS {sps.vps_id}, never received")
        if not self._dirty and sps_id == self._active_sps:
            return sps
        record = hvcc_record(
            vps_entry[1],
            sps,
            [nal for nal, _ in self._vps.values()],
            [nal for nal, _ in self._sps.values()],
            [nal for nal, _ in self._pps.values()],
        )
        config = self.config
        if config is None or config.record != record:
            self.config = CodecConfig(
                codec=self.codec,
                kind=self.kind,
                clock_rate=self.clock_rate,
                width=sps.width,
                height=sps.height,
                profile=sps.ptl.profile_idc,
                level=sps.ptl.level_idc,
                bit_depth=sps.bit_depth_luma,
                chroma_subsampling=sps.chroma_format_idc,
                record=record,
            )
        self._dirty = False
        self._active_sps = sps_id
        return sps


def _aggregated(payload: memoryview, donl: int, nals: list[bytes]) -> None:
    """Append the NAL units of an aggregation packet (RFC 7798 section 4.4.2)."""
    size = len(payload)
    offset = PAYLOAD_HEADER_SIZE + donl  # the first unit has DONL, later ones DOND
    while True:
        if offset + AP_LENGTH_SIZE > size:
            raise DepacketizeError("H.265 AP truncated before a NAL unit size")
        length = payload[offset] << 8 | payload[offset + 1]
        offset += AP_LENGTH_SIZE
        end = offset + length
        if end > size:
            raise DepacketizeError(
                f"H.265 AP NAL unit of {length} bytes overruns the {size}-byte payload"
            )
        nal = payload[offset:end]
        _check_nal(nal, "AP")
        nals.append(bytes(nal))
        if end == size:
            return
        offset = end + (DOND_SIZE if donl else 0)


def _length_prefixed(nals: Sequence[bytes]) -> bytes:
    parts = []
    for nal in nals:
        parts.append(len(nal).to_bytes(LENGTH_SIZE, "big"))
        parts.append(nal)
    return b"".join(parts)


def _max_don_diff(value: str | None) -> int:
    """sprop-max-don-diff (RFC 7798 section 7.1); without it DONL fields are absent."""
    if value is None:
        return 0
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_DON_DIFF:
        raise SdpError(f"H.265 sprop-max-don-diff {value!r} is not an integer in 0-32767")
    return int(text)
