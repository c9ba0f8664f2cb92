"""VP8 over RTP (RFC 7741) and the bits of the VP8 frame header we need (RFC 6386 9.1).

Payload descriptor (RFC 7741 section 4.2):

         0 1 2 3 4 5 6 7
        +-+-+-+-+-+-+-+-+
        |X|R|N|S|R| PID | (REQUIRED)
        +-+-+-+-+-+-+-+-+
   X:   |I|L|T|K| RSV   | (OPTIONAL)
        +-+-+-+-+-+-+-+-+
   I:   |M| PictureID   | (OPTIONAL, 7 or 15 bits)
        +-+-+-+-+-+-+-+-+
   L:   |   TL0PICIDX   | (OPTIONAL)
        +-+-+-+-+-+-+-+-+
   T/K: |TID|Y| KEYIDX  | (OPTIONAL)
        +-+-+-+-+-+-+-+-+
"""

from __future__ import annotations

from collections.abc import Sequence

from recorder.codecs.base import Depacketizer
from recorder.errors import DepacketizeError
from recorder.media import CodecConfig, Frame

X_BIT = 0x80
S_BIT = 0x10
PID_MASK = 0x07
I_BIT = 0x80
L_BIT = 0x40
TK_BITS = 0x30
M_BIT = 0x80

# RFC 6386 section 9.1: the 3-byte frame tag; keyframes add a start code and the dimensions.
FRAME_TAG_SIZE = 3
KEYFRAME_HEADER_SIZE = 10
KEYFRAME_START_CODE = b"\x9d\x01\x2a"
# vpcC chromaSubsampling 1: 4:2:0 with chroma co-sited with luma (0,0), what FFmpeg declares
# for VP8 when the chroma location is unspecified.
CHROMA_420_COLOCATED = 1


# The longest descriptor: the required byte, X, a 15-bit PictureID, TL0PICIDX and TID/KEYIDX.
MAX_DESCRIPTOR_SIZE = 6
# Descriptor size by X byte when I is set with a 7-bit PictureID or not set: 2 + I + L + T/K.
_EXTENDED_SIZES = tuple(
    2 + bool(x & I_BIT) + bool(x & L_BIT) + bool(x & TK_BITS) for x in range(256)
)


def descriptor_size(payload: memoryview) -> int:
    """Length of the payload descriptor; raise if it is truncated or nothing follows it."""
    size_available = len(payload)
    if size_available > MAX_DESCRIPTOR_SIZE:
        # Every byte any descriptor can have is there, and data after it: nothing to check.
        if not payload[0] & X_BIT:
            return 1
        extension = payload[1]
        if extension & I_BIT and payload[2] & M_BIT:
            return _EXTENDED_SIZES[extension] + 1
        return _EXTENDED_SIZES[extension]
    if size_available == 0:
        raise DepacketizeError("VP8 payload is empty")
    size = 1
    if payload[0] & X_BIT:
        if size_available < 2:
            raise DepacketizeError("VP8 payload descriptor has X set but no extension byte")
        extension = payload[1]
        size = 2
        if extension & I_BIT:
            if size_available < 3 or (payload[2] & M_BIT and size_available < 4):
                raise DepacketizeError("VP8 payload descriptor has truncated PictureID")
            size += 2 if payload[2] & M_BIT else 1
        if extension & L_BIT:
            size += 1
        if extension & TK_BITS:
            size += 1
        if size > size_available:
            raise DepacketizeError(
                f"VP8 payload descriptor truncated: {size} bytes declared, {size_available} present"
            )
    if size == size_available:
        raise DepacketizeError(f"VP8 payload has no data after its {size}-byte descriptor")
    return size


class Vp8Depacketizer(Depacketizer):
    codec = "VP8"
    kind = "video"

    __slots__ = ()

    def starts_frame(self, payload: memoryview) -> bool:
        # RFC 7741 section 4.2: S=1 and PID=0 mark the first packet of a frame.
        descriptor_size(payload)
        return payload[0] & (S_BIT | PID_MASK) == S_BIT

    def build(self, payloads: Sequence[memoryview], timestamp: int) -> Frame:
        parts = []
        for payload in payloads:
            if len(payload) > MAX_DESCRIPTOR_SIZE:
                # descriptor_size's first case, inline: this runs for every packet.
                if not payload[0] & X_BIT:
                    parts.append(payload[1:])
                    continue
                extension = payload[1]
                size = _EXTENDED_SIZES[extension]
                if extension & I_BIT and payload[2] & M_BIT:
                    size += 1
                parts.append(payload[size:])
            else:
                parts.append(payload[descriptor_size(payload) :])
        data = b"".join(parts)
        if len(data) < FRAME_TAG_SIZE:
            raise DepacketizeError(f"VP8 frame truncated: {len(data)} bytes, frame tag needs 3")
        tag = data[0]
        version = (tag >> 1) & 0x07
        if version > 3:
            raise DepacketizeError(f"VP8 frame header has version {version}, expected 0-3")
        keyframe = not tag & 0x01  # P bit: 0 = keyframe
        if keyframe and len(data) < KEYFRAME_HEADER_SIZE:
            raise DepacketizeError(
                f"VP8 keyframe truncated: {len(data)} bytes, keyframe header needs 10"
            )
        # RFC 6386 section 9.1: the first partition follows the uncompressed header (3 bytes,
        # 10 on keyframes); a frame shorter than that lost data and would fail to decode.
        first_partition = (tag | data[1] << 8 | data[2] << 16) >> 5
        header = KEYFRAME_HEADER_SIZE if keyframe else FRAME_TAG_SIZE
        if header + first_partition > len(data):
            raise DepacketizeError(
                f"VP8 first partition of {first_partition} bytes overruns the "
                f"{len(data)}-byte frame"
            )
        if not keyframe:
            return Frame(timestamp, data, False)
        if data[3:6] != KEYFRAME_START_CODE:
            raise DepacketizeError(f"VP8 keyframe start code is {data[3:6].hex()}, expected 9d012a")
        # 14 bits of size, 2 bits of upscaling hint that a decoder does not apply.
        width = (data[6] | data[7] << 8) & 0x3FFF
        height = (data[8] | data[9] << 8) & 0x3FFF
        if width == 0 or height == 0:
            raise DepacketizeError(f"VP8 keyframe declares a {width}x{height} picture")
        config = self.config
        if config is None or (config.width, config.height, config.profile) != (
            width,
            height,
            version,
        ):
            self.config = CodecConfig(
                codec=self.codec,
                kind=self.kind,
                clock_rate=self.clock_rate,
                width=width,
                height=height,
                profile=version,
                bit_depth=8,
                chroma_subsampling=CHROMA_420_COLOCATED,
            )
        return Frame(timestamp, data, True, 0, width, height)
