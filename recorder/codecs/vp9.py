"""VP9 over RTP (RFC 9628), VP9 superframes (VP9 bitstream spec Annex B) and the bits of the
VP9 uncompressed header (VP9 bitstream spec section 6.2) a container needs.

Payload descriptor (RFC 9628 section 4.2), flexible mode (F=1) and non-flexible mode (F=0):

         0 1 2 3 4 5 6 7                      0 1 2 3 4 5 6 7
        +-+-+-+-+-+-+-+-+                    +-+-+-+-+-+-+-+-+
        |I|P|L|F|B|E|V|Z|                    |I|P|L|F|B|E|V|Z|
        +-+-+-+-+-+-+-+-+                    +-+-+-+-+-+-+-+-+
   I:   |M| PICTURE ID  |               I:   |M| PICTURE ID  |
        +-+-+-+-+-+-+-+-+                    +-+-+-+-+-+-+-+-+
   M:   | EXTENDED PID  |               M:   | EXTENDED PID  |
        +-+-+-+-+-+-+-+-+                    +-+-+-+-+-+-+-+-+
   L:   | TID |U| SID |D|               L:   | TID |U| SID |D|
        +-+-+-+-+-+-+-+-+                    +-+-+-+-+-+-+-+-+
  P,F:  | P_DIFF      |N| up to 3 times      |   TL0PICIDX   |
        +-+-+-+-+-+-+-+-+                    +-+-+-+-+-+-+-+-+
   V:   | SS            |               V:   | SS            |
        +-+-+-+-+-+-+-+-+                    +-+-+-+-+-+-+-+-+

Scalability structure (SS, RFC 9628 section 4.2.1):

        +-+-+-+-+-+-+-+-+
   V:   | N_S |Y|G|-|-|-|
        +-+-+-+-+-+-+-+-+            -\
   Y:   |     WIDTH     | 16 bits     . N_S + 1 times
        |     HEIGHT    | 16 bits     .
        +-+-+-+-+-+-+-+-+            -/
   G:   |      N_G      |
        +-+-+-+-+-+-+-+-+            -\
  N_G:  | TID |U| R |-|-|             . N_G times
        |    P_DIFF     | R times     .
        +-+-+-+-+-+-+-+-+            -/

One picture (one RTP timestamp, marker on its last packet) holds one layer frame per spatial
layer, each begun by a B packet and ended by an E packet. A container sample is one chunk for
the decoder: a single layer frame as sent, or several packed into one superframe, which libvpx
decodes in order and displays the last shown frame of (the highest spatial layer).
"""

from __future__ import annotations

from collections.abc import Sequence

from recorder.codecs.base import Depacketizer
from recorder.codecs.bits import BitReader
from recorder.errors import DepacketizeError
from recorder.media import CodecConfig, Frame

# RFC 9628 section 4.2: the first descriptor byte.
I_BIT = 0x80  # picture ID present
P_BIT = 0x40  # inter-picture predicted
L_BIT = 0x20  # layer indices present
F_BIT = 0x10  # flexible mode
B_BIT = 0x08  # start of a layer frame
E_BIT = 0x04  # end of a layer frame
V_BIT = 0x02  # scalability structure present
Z_BIT = 0x01  # not a reference for upper spatial layers
M_BIT = 0x80  # 15-bit picture ID
N_BIT = 0x01  # another P_DIFF follows
D_BIT = 0x01  # inter-layer dependency (in the layer indices byte)
MAX_P_DIFFS = 3
SS_Y_BIT = 0x10
SS_G_BIT = 0x08

# VP9 bitstream spec Annex B: the superframe index, a marker byte 0b110[mag-1][frames-1]
# before and after the little-endian frame sizes.
SUPERFRAME_MARKER_MASK = 0xE0
SUPERFRAME_MARKER = 0xC0
MAX_SUPERFRAME_FRAMES = 8

# VP9 bitstream spec section 6.2.
FRAME_MARKER = 2
SYNC_CODE = 0x498342
CS_RGB = 7
# Every uncompressed header field we read lies in its first 16 bytes; reading a slice keeps the
# bit reader from copying a whole frame.
HEADER_BYTES = 16

# vpcC chromaSubsampling (VP Codec ISO Media File Format Binding, section 2.2). VP9 carries no
# chroma siting, and FFmpeg's mp4 muxer then declares 4:2:0 co-sited with luma (1); we match it.
# 4:4:0 (profile 1/3 with only vertical subsampling) has no vpcC value; it is declared 4:4:4.
CHROMA_420_COLOCATED = 1
CHROMA_422 = 2
CHROMA_444 = 3
_CHROMA = {(1, 1): CHROMA_420_COLOCATED, (1, 0): CHROMA_422, (0, 0): CHROMA_444}

# FFmpeg's vpcC level for a picture size (libavformat/vpcc.c, VP9 levels table). Its mp4 muxer
# passes no frame rate, so only the picture-size limits decide; a larger picture gets 0.
_LEVELS = (
    (36864, 10),
    (73728, 11),
    (122880, 20),
    (245760, 21),
    (552960, 30),
    (983040, 31),
    (2228224, 40),
    (8912896, 50),
    (35651584, 60),
)


def vp9_level(width: int, height: int) -> int:
    """The vpcC level FFmpeg writes for a `width` x `height` VP9 stream (0 = unknown)."""
    picture_size = width * height
    for limit, level in _LEVELS:
        if picture_size <= limit:
            return level
    return 0


# -- RFC 9628 section 4.2: payload descriptor ------------------------------------------------


class ScalabilityStructure:
    """The SS of RFC 9628 section 4.2.1: spatial layer count, their sizes, the picture group."""

    __slots__ = ("pictures", "resolutions", "spatial_layers")

    def __init__(
        self,
        spatial_layers: int,
        resolutions: tuple[tuple[int, int], ...],
        pictures: tuple[tuple[int, bool, tuple[int, ...]], ...],
    ) -> None:
        self.spatial_layers = spatial_layers  # N_S + 1
        self.resolutions = resolutions  # (width, height) per spatial layer when Y=1, else ()
        self.pictures = pictures  # (TID, U, P_DIFFs) per picture of the group when G=1

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScalabilityStructure):
            return NotImplemented
        return (self.spatial_layers, self.resolutions, self.pictures) == (
            other.spatial_layers,
            other.resolutions,
            other.pictures,
        )

    def __repr__(self) -> str:
        return (
            f"ScalabilityStructure({self.spatial_layers}, {self.resolutions!r}, {self.pictures!r})"
        )


class Descriptor:
    """A parsed RFC 9628 payload descriptor; `size` is where the VP9 data begins.

    Fields absent from the payload are None (picture ID, layer indices, TL0PICIDX, SS).
    """

    __slots__ = (
        "flags",
        "inter_layer",
        "p_diffs",
        "picture_id",
        "sid",
        "size",
        "ss",
        "switching_up",
        "tid",
        "tl0_pic_idx",
    )

    def __init__(self, flags: int, size: int) -> None:
        self.flags = flags
        self.size = size
        self.picture_id: int | None = None
        self.tid: int | None = None
        self.switching_up: bool | None = None
        self.sid: int | None = None
        self.inter_layer: bool | None = None
        self.tl0_pic_idx: int | None = None
        self.p_diffs: tuple[int, ...] = ()
        self.ss: ScalabilityStructure | None = None

    @property
    def begins(self) -> bool:
        return bool(self.flags & B_BIT)

    @property
    def ends(self) -> bool:
        return bool(self.flags & E_BIT)

    @property
    def flexible(self) -> bool:
        return bool(self.flags & F_BIT)

    @property
    def inter_picture(self) -> bool:
        return bool(self.flags & P_BIT)

    @property
    def not_upper_reference(self) -> bool:
        return bool(self.flags & Z_BIT)


def _truncated(field: str, needed: int, present: int) -> DepacketizeError:
    return DepacketizeError(
        f"VP9 payload descriptor truncated in {field}: needs {needed} bytes, {present} present"
    )


def parse_descriptor(payload: memoryview | bytes) -> Descriptor:
    """Parse the payload descriptor; raise if it is truncated or no VP9 data follows it."""
    end = len(payload)
    if end == 0:
        raise DepacketizeError("VP9 payload is empty")
    flags = payload[0]
    descriptor = Descriptor(flags, 0)
    position = 1
    if flags & I_BIT:
        if position >= end:
            raise _truncated("picture ID", position + 1, end)
        first = payload[position]
        if first & M_BIT:
            if position + 1 >= end:
                raise _truncated("picture ID", position + 2, end)
            descriptor.picture_id = (first & 0x7F) << 8 | payload[position + 1]
            position += 2
        else:
            descriptor.picture_id = first
            position += 1
    if flags & L_BIT:
        # Non-flexible mode adds TL0PICIDX to the layer indices.
        needed = position + (1 if flags & F_BIT else 2)
        if needed > end:
            raise _truncated("layer indices", needed, end)
        layer = payload[position]
        descriptor.tid = layer >> 5
        descriptor.switching_up = bool(layer & 0x10)
        descriptor.sid = (layer >> 1) & 0x07
        descriptor.inter_layer = bool(layer & D_BIT)
        if not flags & F_BIT:
            descriptor.tl0_pic_idx = payload[position + 1]
        position = needed
    if flags & F_BIT and flags & P_BIT:
        # Flexible mode: one to three reference indices, each saying whether another follows.
        p_diffs = []
        while True:
            if position >= end:
                raise _truncated("reference indices", position + 1, end)
            byte = payload[position]
            position += 1
            p_diffs.append(byte >> 1)
            if not byte & N_BIT:
                break
            if len(p_diffs) == MAX_P_DIFFS:
                raise DepacketizeError(
                    f"VP9 payload descriptor has more than {MAX_P_DIFFS} reference indices"
                )
        descriptor.p_diffs = tuple(p_diffs)
    if flags & V_BIT:
        descriptor.ss, position = _parse_ss(payload, position, end)
    if position >= end:
        raise DepacketizeError(f"VP9 payload has no data after its {position}-byte descriptor")
    descriptor.size = position
    return descriptor


def _parse_ss(
    payload: memoryview | bytes, position: int, end: int
) -> tuple[ScalabilityStructure, int]:
    if position >= end:
        raise _truncated("scalability structure", position + 1, end)
    head = payload[position]
    position += 1
    spatial_layers = (head >> 5) + 1
    resolutions: tuple[tuple[int, int], ...] = ()
    if head & SS_Y_BIT:
        needed = position + 4 * spatial_layers
        if needed > end:
            raise _truncated("scalability structure resolutions", needed, end)
        resolutions = tuple(
            (
                payload[offset] << 8 | payload[offset + 1],
                payload[offset + 2] << 8 | payload[offset + 3],
            )
            for offset in range(position, needed, 4)
        )
        position = needed
    pictures: list[tuple[int, bool, tuple[int, ...]]] = []
    if head & SS_G_BIT:
        if position >= end:
            raise _truncated("scalability structure picture group", position + 1, end)
        count = payload[position]
        position += 1
        for _ in range(count):
            if position >= end:
                raise _truncated("scalability structure picture group", position + 1, end)
            byte = payload[position]
            references = (byte >> 2) & 0x03
            needed = position + 1 + references
            if needed > end:
                raise _truncated("scalability structure picture group", needed, end)
            pictures.append((byte >> 5, bool(byte & 0x10), tuple(payload[position + 1 : needed])))
            position = needed
    return ScalabilityStructure(spatial_layers, resolutions, tuple(pictures)), position


# -- VP9 bitstream spec Annex B: superframes ---------------------------------------------------


def superframe_frames(chunk: bytes) -> list[bytes]:
    """The frames of one decoder chunk: those its superframe index lists, or the chunk itself.

    libvpx never ends a frame with a byte that looks like a superframe marker (it pads with a
    zero byte), so a chunk ending in one must carry a well-formed index whose sizes add up.
    """
    if not chunk:
        raise DepacketizeError("VP9 frame is empty")
    last = chunk[-1]
    if last & SUPERFRAME_MARKER_MASK != SUPERFRAME_MARKER:
        return [chunk]
    size_bytes = ((last >> 3) & 0x03) + 1
    count = (last & 0x07) + 1
    index_size = 2 + size_bytes * count
    length = len(chunk)
    if index_size > length or chunk[length - index_size] != last:
        raise DepacketizeError(
            f"VP9 frame ends in superframe marker {last:#04x} without a matching index"
        )
    frames = []
    offset = 0
    position = length - index_size + 1
    for _ in range(count):
        size = int.from_bytes(chunk[position : position + size_bytes], "little")
        position += size_bytes
        if size == 0:
            raise DepacketizeError("VP9 superframe index lists an empty frame")
        frames.append(chunk[offset : offset + size])
        offset += size
    if offset != length - index_size:
        raise DepacketizeError(
            f"VP9 superframe index sizes add up to {offset} bytes, "
            f"the frames take {length - index_size}"
        )
    return frames


def build_superframe(frames: Sequence[bytes]) -> bytes:
    """Frames concatenated and followed by their Annex B superframe index."""
    count = len(frames)
    if not 1 <= count <= MAX_SUPERFRAME_FRAMES:
        raise DepacketizeError(
            f"VP9 picture has {count} frames, a superframe holds 1 to {MAX_SUPERFRAME_FRAMES}"
        )
    largest = max(len(frame) for frame in frames)
    size_bytes = max(1, (largest.bit_length() + 7) // 8)
    if size_bytes > 4:
        raise DepacketizeError(f"VP9 frame of {largest} bytes is too large for a superframe")
    marker = bytes([SUPERFRAME_MARKER | (size_bytes - 1) << 3 | (count - 1)])
    sizes = b"".join(len(frame).to_bytes(size_bytes, "little") for frame in frames)
    return b"".join(frames) + marker + sizes + marker


# -- VP9 bitstream spec section 6.2: uncompressed header --------------------------------------


class FrameHeader:
    """The start of a VP9 uncompressed header, up to the frame size.

    `width`/`height` are 0 when the frame does not code them: show_existing_frame, or an inter
    frame taking its size from reference slot `size_from_slot` (found_ref).
    """

    __slots__ = (
        "bit_depth",
        "color_space",
        "frame_to_show",
        "full_range",
        "height",
        "intra_only",
        "keyframe",
        "profile",
        "refresh_frame_flags",
        "show_existing_frame",
        "show_frame",
        "size_from_slot",
        "subsampling_x",
        "subsampling_y",
        "width",
    )

    def __init__(self, profile: int) -> None:
        self.profile = profile
        self.show_existing_frame = False
        self.frame_to_show = -1
        self.keyframe = False
        self.show_frame = False
        self.intra_only = False
        # Profile 0 intra-only frames carry no colour config: 8-bit 4:2:0, studio range.
        self.bit_depth = 8
        self.color_space = 0
        self.full_range = False
        self.subsampling_x = 1
        self.subsampling_y = 1
        self.refresh_frame_flags = 0
        self.size_from_slot = -1
        self.width = 0
        self.height = 0

    @property
    def chroma_subsampling(self) -> int:
        """vpcC chromaSubsampling for this frame's colour config."""
        return _CHROMA.get((self.subsampling_x, self.subsampling_y), CHROMA_444)


def _read_profile(reader: BitReader) -> int:
    marker = reader.u(2)
    if marker != FRAME_MARKER:
        raise DepacketizeError(f"VP9 frame marker is {marker}, expected 2")
    low = reader.u(1)
    profile = reader.u(1) << 1 | low
    if profile == 3 and reader.u(1):
        raise DepacketizeError("VP9 profile 3 header has its reserved bit set")
    return profile


def parse_frame_header(frame: bytes | memoryview) -> FrameHeader:
    """Parse a VP9 uncompressed header up to the frame size (VP9 bitstream spec 6.2).

    Raises on a wrong frame marker or sync code, reserved bits set, colour configurations
    libvpx refuses, or a header cut short.
    """
    reader = BitReader(frame[:HEADER_BYTES], "VP9 uncompressed header")
    header = FrameHeader(_read_profile(reader))
    if reader.u(1):
        header.show_existing_frame = True
        header.show_frame = True
        header.frame_to_show = reader.u(3)
        return header
    header.keyframe = not reader.u(1)  # frame_type: 0 = KEY_FRAME
    header.show_frame = bool(reader.u(1))
    error_resilient = reader.u(1)
    if header.keyframe:
        _read_sync_code(reader)
        _read_color_config(reader, header)
        header.refresh_frame_flags = 0xFF
        _read_frame_size(reader, header)
        return header
    header.intra_only = not header.show_frame and bool(reader.u(1))
    if not error_resilient:
        reader.skip(2)  # reset_frame_context
    if header.intra_only:
        _read_sync_code(reader)
        if header.profile > 0:
            _read_color_config(reader, header)
        header.refresh_frame_flags = reader.u(8)
        _read_frame_size(reader, header)
        return header
    header.refresh_frame_flags = reader.u(8)
    slots = []
    for _ in range(3):  # LAST, GOLDEN, ALTREF
        slots.append(reader.u(3))  # ref_frame_idx
        reader.skip(1)  # ref_frame_sign_bias
    # frame_size_with_refs(): the first reference flagged found_ref lends its size.
    for slot in slots:
        if reader.u(1):
            header.size_from_slot = slot
            return header
    _read_frame_size(reader, header)
    return header


def _read_sync_code(reader: BitReader) -> None:
    code = reader.u(24)
    if code != SYNC_CODE:
        raise DepacketizeError(f"VP9 frame sync code is {code:06x}, expected 498342")


def _read_color_config(reader: BitReader, header: FrameHeader) -> None:
    profile = header.profile
    header.bit_depth = (12 if reader.u(1) else 10) if profile >= 2 else 8
    header.color_space = color_space = reader.u(3)
    odd_profile = profile & 1  # profiles 1 and 3 allow other subsamplings than 4:2:0
    if color_space != CS_RGB:
        header.full_range = bool(reader.u(1))
        if odd_profile:
            header.subsampling_x = reader.u(1)
            header.subsampling_y = reader.u(1)
            if header.subsampling_x and header.subsampling_y:
                raise DepacketizeError(f"VP9 profile {profile} header declares 4:2:0")
            if reader.u(1):
                raise DepacketizeError("VP9 colour config has its reserved bit set")
    else:
        if not odd_profile:
            raise DepacketizeError(f"VP9 profile {profile} header declares RGB")
        header.full_range = True
        header.subsampling_x = header.subsampling_y = 0
        if reader.u(1):
            raise DepacketizeError("VP9 colour config has its reserved bit set")


def _read_frame_size(reader: BitReader, header: FrameHeader) -> None:
    header.width = reader.u(16) + 1
    header.height = reader.u(16) + 1


def _check_frame_start(frame: bytes) -> None:
    """The cheap check every frame gets: frame marker and profile 3's reserved bit."""
    first = frame[0]
    if first >> 6 != FRAME_MARKER:
        raise DepacketizeError(f"VP9 frame marker is {first >> 6}, expected 2")
    if first & 0x30 == 0x30 and first & 0x08:
        raise DepacketizeError("VP9 profile 3 header has its reserved bit set")


def displayed_size(frames: Sequence[bytes]) -> tuple[FrameHeader, int, int]:
    """The first frame's header and the size of the last shown frame of a keyframe picture.

    The first frame must be a keyframe: it fills all eight reference slots, so the size of
    every later frame is known (coded, or taken from a slot by found_ref / show_existing).
    Without any shown frame the last frame's size counts.
    """
    first = parse_frame_header(frames[0])
    slots = [(first.width, first.height)] * 8
    width, height = first.width, first.height
    shown = first.show_frame
    for frame in frames[1:]:
        header = parse_frame_header(frame)
        if header.show_existing_frame:
            size = slots[header.frame_to_show]
        elif header.size_from_slot >= 0:
            size = slots[header.size_from_slot]
        else:
            size = (header.width, header.height)
        flags = header.refresh_frame_flags
        for slot in range(8):
            if flags >> slot & 1:
                slots[slot] = size
        if header.show_frame or not shown:
            width, height = size
            shown = shown or header.show_frame
    return first, width, height


# -- the depacketizer ---------------------------------------------------------------------------


class Vp9Depacketizer(Depacketizer):
    codec = "VP9"
    kind = "video"

    __slots__ = ()

    def starts_frame(self, payload: memoryview) -> bool:
        # A picture begins with the B packet of its lowest spatial layer present. A layer frame
        # predicted from the layer below (D=1) cannot be that lowest layer; without layer
        # indices any B packet may begin the picture.
        descriptor = parse_descriptor(payload)
        return bool(descriptor.flags & B_BIT) and not descriptor.inter_layer

    def build(self, payloads: Sequence[memoryview], timestamp: int) -> Frame:
        layers = _layer_frames(payloads)
        if len(layers) == 1:
            chunk = layers[0]
            frames = superframe_frames(chunk)
        else:
            frames = [frame for layer in layers for frame in superframe_frames(layer)]
            chunk = build_superframe(frames)
        for frame in frames:
            _check_frame_start(frame)
        first = frames[0]
        # frame_type sits after the marker, two profile bits, profile 3's reserved bit and
        # show_existing_frame (which must be 0 for a keyframe).
        bits = 0x06 if first[0] & 0x30 == 0x30 else 0x0C
        if first[0] & bits:
            return Frame(timestamp, chunk, False)
        header, width, height = displayed_size(frames)
        config = self.config
        chroma = header.chroma_subsampling
        if config is None or (
            config.width,
            config.height,
            config.profile,
            config.bit_depth,
            config.chroma_subsampling,
            config.full_range,
        ) != (width, height, header.profile, header.bit_depth, chroma, header.full_range):
            self.config = CodecConfig(
                codec=self.codec,
                kind=self.kind,
                clock_rate=self.clock_rate,
                width=width,
                height=height,
                profile=header.profile,
                level=vp9_level(width, height),
                bit_depth=header.bit_depth,
                chroma_subsampling=chroma,
                full_range=header.full_range,
            )
        return Frame(timestamp, chunk, True, 0, width, height)


def _layer_frames(payloads: Sequence[memoryview]) -> list[bytes]:
    """Split a picture's payloads into layer frames by their B and E bits."""
    layers: list[bytes] = []
    parts: list[memoryview] | None = None
    sid: int | None = None
    for payload in payloads:
        descriptor = parse_descriptor(payload)
        flags = descriptor.flags
        if flags & B_BIT:
            if parts is not None:
                raise DepacketizeError("VP9 layer frame has no E packet before the next B packet")
            parts = []
            sid = descriptor.sid
        elif parts is None:
            raise DepacketizeError("VP9 packet continues a layer frame whose B packet is missing")
        elif descriptor.sid is not None and sid is not None and descriptor.sid != sid:
            raise DepacketizeError(
                f"VP9 layer frame of spatial layer {sid} continues in layer {descriptor.sid}"
            )
        parts.append(payload[descriptor.size :])
        if flags & E_BIT:
            layers.append(b"".join(parts))
            parts = None
    if parts is not None:
        raise DepacketizeError("VP9 layer frame has no E packet")
    if not layers:
        raise DepacketizeError("VP9 picture has no packets")
    return layers
