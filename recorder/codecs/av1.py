"""AV1 over RTP (AOM "RTP Payload Format for AV1" v1.0) and the AV1 headers a recorder needs.

Aggregation header (RTP spec section 4.4), the first byte of every payload:

     0 1 2 3 4 5 6 7
    +-+-+-+-+-+-+-+-+
    |Z|Y| W |N|-|-|-|
    +-+-+-+-+-+-+-+-+

Z: the first OBU element continues an OBU fragment of the previous packet. Y: the last element
continues in the next packet. W: 0 = every element has a leb128 length; 1-3 = the packet holds W
elements and the last one has no length. N: first packet of a coded video sequence (a hint we do
not trust: keyframes are decided from the bitstream). The three reserved bits are ignored.

What leaves `build` is one temporal unit in the AV1 "Low overhead bitstream format" (AV1 spec
5.2) that MP4 (AV1-ISOBMFF 2.4) and Matroska require: every OBU with obu_has_size_field = 1,
no temporal delimiters, tile lists or padding.

Real senders differ (see the project's notes on real peers): Chromium follows the RTP spec
(OBUs without size fields, W = 1 or 2, N on keyframes); pion's payloader sends W = 0, never N,
keeps obu_size and may send a whole temporal unit, temporal delimiter included, as one element
fragmented across packets. Both are accepted: an element is read as a sequence of OBUs, each
taking its obu_size when it has one and the rest of the element when it has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from recorder.codecs.base import Depacketizer
from recorder.codecs.bits import BitReader
from recorder.errors import DepacketizeError
from recorder.media import CodecConfig, Frame

# Aggregation header bits (RTP spec 4.4).
Z_BIT = 0x80
Y_BIT = 0x40
W_MASK = 0x30
W_SHIFT = 4
N_BIT = 0x08

# OBU header bits (AV1 spec 5.3.2).
OBU_FORBIDDEN_BIT = 0x80
OBU_EXTENSION_BIT = 0x04
OBU_HAS_SIZE_BIT = 0x02

# obu_type values (AV1 spec 6.2.2).
OBU_SEQUENCE_HEADER = 1
OBU_TEMPORAL_DELIMITER = 2
OBU_FRAME_HEADER = 3
OBU_TILE_GROUP = 4
OBU_METADATA = 5
OBU_FRAME = 6
OBU_REDUNDANT_FRAME_HEADER = 7
OBU_TILE_LIST = 8
OBU_PADDING = 15
# RTP spec section 5: temporal delimiters SHOULD be removed by the sender and MUST be ignored
# by receivers, tile lists likewise; padding carries nothing a file needs. AV1-ISOBMFF 2.4 says
# the same for samples.
DROPPED_OBU_TYPES = frozenset((OBU_TEMPORAL_DELIMITER, OBU_TILE_LIST, OBU_PADDING))

# frame_type values (AV1 spec 6.8.2).
KEY_FRAME = 0
INTER_FRAME = 1
INTRA_ONLY_FRAME = 2
SWITCH_FRAME = 3

# seq_force_screen_content_tools / seq_force_integer_mv "decide per frame" (AV1 spec 6.4.1).
SELECT_SCREEN_CONTENT_TOOLS = 2
SELECT_INTEGER_MV = 2
# chroma_sample_position (AV1 spec 6.4.2).
CSP_UNKNOWN = 0
CSP_VERTICAL = 1
CSP_COLOCATED = 2
# color_config special case (AV1 spec 6.4.2): sRGB is always 4:4:4 full range.
CP_BT_709 = 1
TC_SRGB = 13
MC_IDENTITY = 0

# `CodecConfig.chroma_subsampling` uses the vpcC chromaSubsampling codes (VP codec ISO-BMFF
# binding, as the VP8/VP9 modules do), so every video codec reports it the same way:
CHROMA_420_VERTICAL = 0  # 4:2:0, chroma between two luma rows (CSP_VERTICAL), or unknown
CHROMA_420_COLOCATED = 1  # 4:2:0, chroma co-sited with luma (0,0) (CSP_COLOCATED)
CHROMA_422 = 2
CHROMA_444 = 3

# The uncompressed header up to frame_size() of a shown key frame is at most ~145 bytes (32
# operating points with 32-bit buffer_removal_time, 25-bit frame id, 32-bit presentation time);
# reading a bounded prefix keeps BitReader from copying a whole frame OBU.
FRAME_HEADER_PREFIX = 256

# AV1-ISOBMFF 2.3.3: marker = 1, version = 1.
AV1C_MARKER_VERSION = 0x81


def read_leb128(data: memoryview | bytes, offset: int, end: int, what: str) -> tuple[int, int]:
    """AV1 spec 4.10.5 leb128 at `offset` (up to 8 bytes, value < 2^32): (value, next offset)."""
    value = 0
    for index in range(8):
        if offset >= end:
            raise DepacketizeError(f"{what} leb128 is truncated")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            break
    else:
        raise DepacketizeError(f"{what} leb128 is longer than 8 bytes")
    if value >= 1 << 32:
        raise DepacketizeError(f"{what} leb128 value {value} exceeds 2^32 - 1")
    return value, offset


def encode_leb128(value: int) -> bytes:
    """Shortest leb128 encoding of a non-negative integer."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def packet_elements(payload: memoryview | bytes) -> tuple[int, list[memoryview]]:
    """Split one RTP payload into its aggregation header byte and its OBU elements.

    Elements may be empty (a zero length field); the caller decides what that means.
    """
    view = memoryview(payload)
    end = len(view)
    if end == 0:
        raise DepacketizeError("AV1 payload is empty")
    header = view[0]
    if header & N_BIT and header & Z_BIT:
        # RTP spec 4.4: "if N equals 1 then Z must equal 0".
        raise DepacketizeError("AV1 aggregation header has both N and Z set")
    if end == 1:
        raise DepacketizeError("AV1 payload has no OBU elements after its aggregation header")
    count = (header & W_MASK) >> W_SHIFT
    elements: list[memoryview] = []
    offset = 1
    while True:
        if count and len(elements) == count - 1:
            # W > 0: the W-th element has no length field and runs to the end of the payload
            # (it may be empty: the start of a fragment that begins in the next packet).
            elements.append(view[offset:end])
            break
        if offset == end:
            if count:
                # The length fields consumed the payload before the W-th element began.
                raise DepacketizeError(
                    f"AV1 aggregation header says W={count} but the payload holds only "
                    f"{len(elements)} length-prefixed elements"
                )
            break
        length, offset = read_leb128(view, offset, end, "AV1 OBU element length")
        if offset + length > end:
            raise DepacketizeError(
                f"AV1 OBU element of {length} bytes overruns the payload "
                f"({end - offset} bytes left)"
            )
        elements.append(view[offset : offset + length])
        offset += length
    return header, elements


class Obu:
    """One OBU split out of an element: header byte(s) and payload (without obu_size)."""

    __slots__ = ("extension", "header", "payload", "type")

    def __init__(self, header: int, extension: int | None, payload: memoryview) -> None:
        self.header = header
        self.type = (header >> 3) & 0x0F
        self.extension = extension
        self.payload = payload

    @property
    def temporal_id(self) -> int:
        return self.extension >> 5 if self.extension is not None else 0

    @property
    def spatial_id(self) -> int:
        return (self.extension >> 3) & 0x03 if self.extension is not None else 0

    def sized_header(self) -> bytes:
        """OBU header with obu_has_size_field = 1, extension byte, obu_size (AV1 spec 5.3.1)."""
        size = encode_leb128(len(self.payload))
        if self.extension is None:
            return bytes((self.header | OBU_HAS_SIZE_BIT,)) + size
        return bytes((self.header | OBU_HAS_SIZE_BIT, self.extension)) + size

    def to_bytes(self) -> bytes:
        """The OBU in Low overhead bitstream format: obu_has_size_field = 1 and obu_size."""
        return self.sized_header() + self.payload


def split_obus(element: memoryview | bytes) -> list[Obu]:
    """Read an OBU element (or a reassembled fragment) as one or more OBUs (AV1 spec 5.3).

    An OBU with obu_has_size_field = 1 takes obu_size bytes and may be followed by more OBUs
    (pion sends whole temporal units as one element); one without takes the rest.
    """
    view = memoryview(element)
    end = len(view)
    obus: list[Obu] = []
    offset = 0
    while offset < end:
        header = view[offset]
        if header & OBU_FORBIDDEN_BIT:
            raise DepacketizeError(f"AV1 OBU header {header:#04x} has the forbidden bit set")
        offset += 1
        extension = None
        if header & OBU_EXTENSION_BIT:
            if offset >= end:
                raise DepacketizeError("AV1 OBU extension header is missing")
            extension = view[offset]
            offset += 1
        if header & OBU_HAS_SIZE_BIT:
            size, offset = read_leb128(view, offset, end, "AV1 obu_size")
            if offset + size > end:
                raise DepacketizeError(
                    f"AV1 obu_size {size} overruns its element ({end - offset} bytes left)"
                )
            payload = view[offset : offset + size]
            offset += size
        else:
            payload = view[offset:end]
            offset = end
        obus.append(Obu(header, extension, payload))
    return obus


@dataclass(slots=True)
class OperatingPoint:
    """One operating point of a sequence header (AV1 spec 5.5.1)."""

    idc: int
    seq_level_idx: int
    seq_tier: int
    decoder_model_present: bool
    initial_display_delay_minus_1: int | None


@dataclass(slots=True)
class SequenceHeader:
    """The fields of sequence_header_obu() (AV1 spec 5.5) a recorder and a frame header use."""

    seq_profile: int
    still_picture: bool
    reduced_still_picture_header: bool
    timing_info_present_flag: bool
    equal_picture_interval: bool
    decoder_model_info_present_flag: bool
    buffer_removal_time_length: int
    frame_presentation_time_length: int
    initial_display_delay_present_flag: bool
    operating_points: list[OperatingPoint]
    frame_width_bits: int
    frame_height_bits: int
    max_frame_width: int
    max_frame_height: int
    frame_id_numbers_present_flag: bool
    frame_id_length: int  # idLen of the uncompressed header, 0 without frame ids
    use_128x128_superblock: bool
    enable_order_hint: bool
    seq_force_screen_content_tools: int
    seq_force_integer_mv: int
    order_hint_bits: int
    enable_superres: bool
    bit_depth: int
    high_bitdepth: bool
    twelve_bit: bool
    mono_chrome: bool
    color_primaries: int
    transfer_characteristics: int
    matrix_coefficients: int
    color_range: bool
    subsampling_x: int
    subsampling_y: int
    chroma_sample_position: int
    separate_uv_delta_q: bool
    film_grain_params_present: bool

    @property
    def seq_level_idx_0(self) -> int:
        return self.operating_points[0].seq_level_idx

    @property
    def seq_tier_0(self) -> int:
        return self.operating_points[0].seq_tier

    @property
    def chroma_subsampling(self) -> int:
        """vpcC-style chromaSubsampling code (see CHROMA_* above)."""
        if self.subsampling_x and self.subsampling_y:
            if self.chroma_sample_position == CSP_COLOCATED:
                return CHROMA_420_COLOCATED
            return CHROMA_420_VERTICAL
        return CHROMA_422 if self.subsampling_x else CHROMA_444


def _uvlc(reader: BitReader) -> int:
    """AV1 spec 4.10.3 uvlc(): 32 or more leading zeros mean 2^32 - 1 with no value bits."""
    zeros = 0
    while not reader.u(1):
        zeros += 1
    if zeros >= 32:
        return (1 << 32) - 1
    return reader.u(zeros) + (1 << zeros) - 1


def parse_sequence_header(payload: memoryview | bytes) -> SequenceHeader:
    """Parse sequence_header_obu() (AV1 spec 5.5) from an OBU payload; raise if malformed."""
    r = BitReader(payload, "AV1 sequence header")
    seq_profile = r.u(3)
    if seq_profile > 2:
        raise DepacketizeError(f"AV1 sequence header has reserved seq_profile {seq_profile}")
    still_picture = r.flag()
    reduced = r.flag()
    timing_info_present = decoder_model_info_present = initial_display_delay_present = False
    equal_picture_interval = False
    buffer_delay_length = buffer_removal_time_length = frame_presentation_time_length = 0
    operating_points: list[OperatingPoint] = []
    if reduced:
        operating_points.append(OperatingPoint(0, r.u(5), 0, False, None))
    else:
        timing_info_present = r.flag()
        if timing_info_present:
            # timing_info() (5.5.3): num_units_in_display_tick, time_scale.
            r.skip(64)
            equal_picture_interval = r.flag()
            if equal_picture_interval:
                _uvlc(r)  # num_ticks_per_picture_minus_1
            decoder_model_info_present = r.flag()
            if decoder_model_info_present:
                # decoder_model_info() (5.5.4).
                buffer_delay_length = r.u(5) + 1
                r.skip(32)  # num_units_in_decoding_tick
                buffer_removal_time_length = r.u(5) + 1
                frame_presentation_time_length = r.u(5) + 1
        initial_display_delay_present = r.flag()
        for _ in range(r.u(5) + 1):
            idc = r.u(12)
            level = r.u(5)
            tier = r.u(1) if level > 7 else 0
            model_present = False
            if decoder_model_info_present:
                model_present = r.flag()
                if model_present:
                    # operating_parameters_info() (5.5.5): decoder and encoder buffer delay,
                    # low_delay_mode_flag.
                    r.skip(2 * buffer_delay_length + 1)
            display_delay = None
            if initial_display_delay_present and r.flag():
                display_delay = r.u(4)
            operating_points.append(OperatingPoint(idc, level, tier, model_present, display_delay))
    frame_width_bits = r.u(4) + 1
    frame_height_bits = r.u(4) + 1
    max_frame_width = r.u(frame_width_bits) + 1
    max_frame_height = r.u(frame_height_bits) + 1
    frame_id_numbers_present = False if reduced else r.flag()
    frame_id_length = 0
    if frame_id_numbers_present:
        delta_frame_id_length_minus_2 = r.u(4)
        additional_frame_id_length_minus_1 = r.u(3)
        frame_id_length = additional_frame_id_length_minus_1 + delta_frame_id_length_minus_2 + 3
    use_128x128_superblock = r.flag()
    r.skip(2)  # enable_filter_intra, enable_intra_edge_filter
    enable_order_hint = False
    seq_force_screen_content_tools = SELECT_SCREEN_CONTENT_TOOLS
    seq_force_integer_mv = SELECT_INTEGER_MV
    order_hint_bits = 0
    if not reduced:
        # enable_interintra_compound, enable_masked_compound, enable_warped_motion,
        # enable_dual_filter.
        r.skip(4)
        enable_order_hint = r.flag()
        if enable_order_hint:
            r.skip(2)  # enable_jnt_comp, enable_ref_frame_mvs
        if not r.flag():  # seq_choose_screen_content_tools
            seq_force_screen_content_tools = r.u(1)
        if seq_force_screen_content_tools > 0 and not r.flag():  # seq_choose_integer_mv
            seq_force_integer_mv = r.u(1)
        if enable_order_hint:
            order_hint_bits = r.u(3) + 1
    enable_superres = r.flag()
    r.skip(2)  # enable_cdef, enable_restoration

    # color_config() (5.5.2).
    high_bitdepth = r.flag()
    twelve_bit = False
    if seq_profile == 2 and high_bitdepth:
        twelve_bit = r.flag()
        bit_depth = 12 if twelve_bit else 10
    else:
        bit_depth = 10 if high_bitdepth else 8
    mono_chrome = False if seq_profile == 1 else r.flag()
    color_primaries = transfer_characteristics = matrix_coefficients = 2  # unspecified
    if r.flag():  # color_description_present_flag
        color_primaries = r.u(8)
        transfer_characteristics = r.u(8)
        matrix_coefficients = r.u(8)
    chroma_sample_position = CSP_UNKNOWN
    separate_uv_delta_q = False
    if mono_chrome:
        color_range = r.flag()
        subsampling_x = subsampling_y = 1
    elif (
        color_primaries == CP_BT_709
        and transfer_characteristics == TC_SRGB
        and matrix_coefficients == MC_IDENTITY
    ):
        color_range = True
        subsampling_x = subsampling_y = 0
        separate_uv_delta_q = r.flag()
    else:
        color_range = r.flag()
        if seq_profile == 0:
            subsampling_x = subsampling_y = 1
        elif seq_profile == 1:
            subsampling_x = subsampling_y = 0
        elif bit_depth == 12:
            subsampling_x = r.u(1)
            subsampling_y = r.u(1) if subsampling_x else 0
        else:
            subsampling_x, subsampling_y = 1, 0
        if subsampling_x and subsampling_y:
            chroma_sample_position = r.u(2)
        separate_uv_delta_q = r.flag()
    film_grain_params_present = r.flag()

    # trailing_bits() (5.3.4): a one bit, then zeros to the end of the OBU. Anything else means
    # the header was cut or misparsed.
    if r.remaining < 1 or not r.u(1):
        raise DepacketizeError("AV1 sequence header has no trailing one bit")
    while r.remaining:
        if r.u(min(r.remaining, 32)):
            raise DepacketizeError("AV1 sequence header has non-zero bits after its end")

    return SequenceHeader(
        seq_profile=seq_profile,
        still_picture=still_picture,
        reduced_still_picture_header=reduced,
        timing_info_present_flag=timing_info_present,
        equal_picture_interval=equal_picture_interval,
        decoder_model_info_present_flag=decoder_model_info_present,
        buffer_removal_time_length=buffer_removal_time_length,
        frame_presentation_time_length=frame_presentation_time_length,
        initial_display_delay_present_flag=initial_display_delay_present,
        operating_points=operating_points,
        frame_width_bits=frame_width_bits,
        frame_height_bits=frame_height_bits,
        max_frame_width=max_frame_width,
        max_frame_height=max_frame_height,
        frame_id_numbers_present_flag=frame_id_numbers_present,
        frame_id_length=frame_id_length,
        use_128x128_superblock=use_128x128_superblock,
        enable_order_hint=enable_order_hint,
        seq_force_screen_content_tools=seq_force_screen_content_tools,
        seq_force_integer_mv=seq_force_integer_mv,
        order_hint_bits=order_hint_bits,
        enable_superres=enable_superres,
        bit_depth=bit_depth,
        high_bitdepth=high_bitdepth,
        twelve_bit=twelve_bit,
        mono_chrome=mono_chrome,
        color_primaries=color_primaries,
        transfer_characteristics=transfer_characteristics,
        matrix_coefficients=matrix_coefficients,
        color_range=color_range,
        subsampling_x=subsampling_x,
        subsampling_y=subsampling_y,
        chroma_sample_position=chroma_sample_position,
        separate_uv_delta_q=separate_uv_delta_q,
        film_grain_params_present=film_grain_params_present,
    )


@dataclass(slots=True)
class FrameHeader:
    """The start of uncompressed_header() (AV1 spec 5.9.2), read as far as a recorder needs.

    `frame_type` is None for show_existing_frame = 1 (it would come from decoder state).
    `width`/`height` (the upscaled frame size) are read for shown key frames only, else 0.
    """

    show_existing_frame: bool
    frame_type: int | None
    show_frame: bool
    width: int = 0
    height: int = 0

    @property
    def is_shown_key_frame(self) -> bool:
        return not self.show_existing_frame and self.frame_type == KEY_FRAME and self.show_frame


def parse_frame_header(
    payload: memoryview | bytes, sequence: SequenceHeader, temporal_id: int = 0, spatial_id: int = 0
) -> FrameHeader:
    """Parse a frame (header) OBU payload up to frame_type, show_frame and, for shown key
    frames, frame_size(); `temporal_id`/`spatial_id` come from the OBU extension header."""
    r = BitReader(payload[:FRAME_HEADER_PREFIX], "AV1 frame header")
    if sequence.reduced_still_picture_header:
        frame_type, show_frame = KEY_FRAME, True
    else:
        if r.flag():  # show_existing_frame
            return FrameHeader(True, None, True)
        frame_type = r.u(2)
        show_frame = r.flag()
        if not (frame_type == KEY_FRAME and show_frame):
            return FrameHeader(False, frame_type, show_frame)
        if sequence.decoder_model_info_present_flag and not sequence.equal_picture_interval:
            r.skip(sequence.frame_presentation_time_length)  # temporal_point_info()
        # showable_frame is implied (shown), error_resilient_mode is 1 for shown key frames.
    r.skip(1)  # disable_cdf_update
    allow_screen_content_tools = sequence.seq_force_screen_content_tools
    if allow_screen_content_tools == SELECT_SCREEN_CONTENT_TOOLS:
        allow_screen_content_tools = r.u(1)
    if allow_screen_content_tools and sequence.seq_force_integer_mv == SELECT_INTEGER_MV:
        r.skip(1)  # force_integer_mv
    if sequence.frame_id_numbers_present_flag:
        r.skip(sequence.frame_id_length)  # current_frame_id
    frame_size_override = False if sequence.reduced_still_picture_header else r.flag()
    r.skip(sequence.order_hint_bits)  # order_hint
    # primary_ref_frame is PRIMARY_REF_NONE for intra frames: not coded.
    if sequence.decoder_model_info_present_flag and r.flag():  # buffer_removal_time_present
        for point in sequence.operating_points:
            if point.decoder_model_present:
                idc = point.idc
                in_temporal = (idc >> temporal_id) & 1
                in_spatial = (idc >> (spatial_id + 8)) & 1
                if idc == 0 or (in_temporal and in_spatial):
                    r.skip(sequence.buffer_removal_time_length)
    # refresh_frame_flags is allFrames for a shown key frame: not coded; frame_size() follows.
    if frame_size_override:
        width = r.u(sequence.frame_width_bits) + 1
        height = r.u(sequence.frame_height_bits) + 1
    else:
        width, height = sequence.max_frame_width, sequence.max_frame_height
    return FrameHeader(False, frame_type, show_frame, width, height)


def av1c_record(sequence: SequenceHeader, sequence_header_obu: bytes) -> bytes:
    """The AV1CodecConfigurationRecord (AV1-ISOBMFF 2.3.3), the av1C box body.

    configOBUs carries the sequence header OBU (with obu_size, as 2.3.4 requires): Chromium's
    MSE refuses an av1C without it. initial_presentation_delay is not signalled.
    """
    return (
        bytes(
            (
                AV1C_MARKER_VERSION,
                sequence.seq_profile << 5 | sequence.seq_level_idx_0,
                sequence.seq_tier_0 << 7
                | sequence.high_bitdepth << 6
                | sequence.twelve_bit << 5
                | sequence.mono_chrome << 4
                | sequence.subsampling_x << 3
                | sequence.subsampling_y << 2
                | sequence.chroma_sample_position,
                0,  # reserved, initial_presentation_delay_present = 0, reserved
            )
        )
        + sequence_header_obu
    )


class Av1Depacketizer(Depacketizer):
    """One frame = one temporal unit (all packets of one RTP timestamp)."""

    codec = "AV1"
    kind = "video"

    # _sequence_payload: payload bytes of the sequence header in force (compared, not
    # re-parsed, when a TU repeats it); _sequence_obu: that header as written to files.
    __slots__ = ("_config_obu", "_sequence", "_sequence_obu", "_sequence_payload")

    def __init__(
        self, clock_rate: int, channels: int | None = None, fmtp: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(clock_rate, channels, fmtp)
        self._sequence: SequenceHeader | None = None
        self._sequence_payload = b""
        self._sequence_obu = b""
        self._config_obu = b""

    def starts_frame(self, payload: memoryview) -> bool:
        # RTP spec 4.4: a temporal unit's first packet cannot continue a fragment (Z = 0).
        if len(payload) < 2:
            raise DepacketizeError(
                "AV1 payload is empty" if not payload else "AV1 payload has no OBU elements"
            )
        header = payload[0]
        if header & N_BIT and header & Z_BIT:
            raise DepacketizeError("AV1 aggregation header has both N and Z set")
        return not header & Z_BIT

    def build(self, payloads: Sequence[memoryview], timestamp: int) -> Frame:
        obus: list[Obu] = []
        pending: list[memoryview] | None = None  # pieces of an OBU fragment in progress
        for index, payload in enumerate(payloads):
            header, elements = packet_elements(payload)
            # A zero-length element carries nothing, and one before the last is dropped so
            # that Z applies to the first element with bytes: pion 1.7 writes a 127-byte
            # element's length as the two bytes 00 7f, which reads as an empty element and
            # then 127 bytes. (An empty last element stays: it may be a fragment's start.)
            if len(elements) > 1:
                elements = [element for element in elements[:-1] if len(element)] + elements[-1:]
            continues = bool(header & Z_BIT)
            to_continue = bool(header & Y_BIT)
            if continues and pending is None:
                raise DepacketizeError(
                    f"AV1 packet {index} continues an OBU fragment whose start was lost (Z=1)"
                )
            if not continues and pending is not None:
                raise DepacketizeError(
                    f"AV1 packet {index} does not continue the OBU fragment of the packet "
                    "before it (Z=0 after Y=1)"
                )
            last = len(elements) - 1
            for position, element in enumerate(elements):
                if position == 0 and continues:
                    assert pending is not None
                    pending.append(element)
                    if position != last or not to_continue:
                        obus += split_obus(b"".join(pending))
                        pending = None
                elif position == last and to_continue:
                    pending = [element]
                else:
                    obus += split_obus(element)
        if pending is not None:
            raise DepacketizeError("AV1 temporal unit ends inside an OBU fragment (Y=1)")
        return self._temporal_unit(obus, timestamp)

    def _temporal_unit(self, obus: list[Obu], timestamp: int) -> Frame:
        """Turn the OBUs of one temporal unit into a Frame; track the sequence header."""
        parts: list[bytes | memoryview] = []
        sequence_obu: Obu | None = None
        first_frame: Obu | None = None
        for obu in obus:
            kind = obu.type
            if kind in DROPPED_OBU_TYPES:
                continue
            if kind == OBU_SEQUENCE_HEADER:
                if sequence_obu is None:
                    sequence_obu = obu
            elif kind in (OBU_FRAME, OBU_FRAME_HEADER) and first_frame is None:
                first_frame = obu
            # Header and payload view joined once per frame: no per-OBU copy of the payload.
            parts += (obu.sized_header(), obu.payload)
        if first_frame is None:
            raise DepacketizeError("AV1 temporal unit has no frame or frame header OBU")

        if sequence_obu is not None:
            payload = sequence_obu.payload
            if payload != self._sequence_payload:
                self._sequence = parse_sequence_header(payload)
                self._sequence_payload = bytes(payload)
            self._sequence_obu = sequence_obu.to_bytes()
        sequence = self._sequence
        if sequence is None:
            # Without a sequence header the frame header cannot be read in full, but its first
            # bits (reduced_still_picture_header aside) say whether this is a key frame.
            first = first_frame.payload[0] if len(first_frame.payload) else 0xFF
            if first & 0x80 == 0 and (first >> 5) & 0x03 == KEY_FRAME and first & 0x10:
                raise DepacketizeError("AV1 key frame arrived before any sequence header")
            return Frame(timestamp, b"".join(parts), False)

        frame = parse_frame_header(
            first_frame.payload, sequence, first_frame.temporal_id, first_frame.spatial_id
        )
        if not frame.is_shown_key_frame:
            return Frame(timestamp, b"".join(parts), False)
        if sequence_obu is None:
            # A shown key frame resets all decoder state but the sequence header; carrying the
            # one in force makes the sample a sync sample on its own (AV1-ISOBMFF 2.4).
            parts.insert(0, self._sequence_obu)
        if self._sequence_obu != self._config_obu:
            self.config = CodecConfig(
                codec=self.codec,
                kind=self.kind,
                clock_rate=self.clock_rate,
                width=sequence.max_frame_width,
                height=sequence.max_frame_height,
                profile=sequence.seq_profile,
                level=sequence.seq_level_idx_0,
                bit_depth=sequence.bit_depth,
                chroma_subsampling=sequence.chroma_subsampling,
                full_range=sequence.color_range,
                record=av1c_record(sequence, self._sequence_obu),
            )
            self._config_obu = self._sequence_obu
        return Frame(timestamp, b"".join(parts), True, 0, frame.width, frame.height)
