"""EBML (RFC 8794) encoding for the Matroska / WebM elements we write.

Elements are built as bytes, children first, so every size is known before it is written.
Values patched at finalize are written with a fixed width and placed last in their parent,
so their position follows from the parent's end.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

# Matroska element ids (RFC 9559), with their length markers included.
EBML = b"\x1a\x45\xdf\xa3"
EBML_VERSION = b"\x42\x86"
EBML_READ_VERSION = b"\x42\xf7"
EBML_MAX_ID_LENGTH = b"\x42\xf2"
EBML_MAX_SIZE_LENGTH = b"\x42\xf3"
DOC_TYPE = b"\x42\x82"
DOC_TYPE_VERSION = b"\x42\x87"
DOC_TYPE_READ_VERSION = b"\x42\x85"
SEGMENT = b"\x18\x53\x80\x67"
SEEK_HEAD = b"\x11\x4d\x9b\x74"
SEEK = b"\x4d\xbb"
SEEK_ID = b"\x53\xab"
SEEK_POSITION = b"\x53\xac"
INFO = b"\x15\x49\xa9\x66"
TIMESTAMP_SCALE = b"\x2a\xd7\xb1"
MUXING_APP = b"\x4d\x80"
WRITING_APP = b"\x57\x41"
DURATION = b"\x44\x89"
TRACKS = b"\x16\x54\xae\x6b"
TRACK_ENTRY = b"\xae"
TRACK_NUMBER = b"\xd7"
TRACK_UID = b"\x73\xc5"
TRACK_TYPE = b"\x83"
FLAG_LACING = b"\x9c"
CODEC_ID = b"\x86"
CODEC_PRIVATE = b"\x63\xa2"
CODEC_DELAY = b"\x56\xaa"
SEEK_PRE_ROLL = b"\x56\xbb"
VIDEO = b"\xe0"
PIXEL_WIDTH = b"\xb0"
PIXEL_HEIGHT = b"\xba"
AUDIO = b"\xe1"
SAMPLING_FREQUENCY = b"\xb5"
CHANNELS = b"\x9f"
CLUSTER = b"\x1f\x43\xb6\x75"
TIMESTAMP = b"\xe7"
SIMPLE_BLOCK = b"\xa3"
CUES = b"\x1c\x53\xbb\x6b"
CUE_POINT = b"\xbb"
CUE_TIME = b"\xb3"
CUE_TRACK_POSITIONS = b"\xb7"
CUE_TRACK = b"\xf7"
CUE_CLUSTER_POSITION = b"\xf1"
VOID = b"\xec"

# RFC 8794 section 6.2: an all-ones VINT_DATA means "unknown size"; eight bytes leave room to
# patch in any real size later.
UNKNOWN_SIZE_8 = b"\x01\xff\xff\xff\xff\xff\xff\xff"
TRACK_TYPE_VIDEO = 1
TRACK_TYPE_AUDIO = 2


# The data sizes whose shortest VINT takes 2 bytes (1 byte holds up to 126; all-ones reserved).
VINT_2_MIN = 0x7F
VINT_2_MAX = 0x3FFE


def vint(value: int) -> bytes:
    """The shortest EBML variable-size integer for a data size (all-ones is reserved)."""
    # Block sizes are per frame: the common lengths first, without the loop.
    if value < 0x3FFF:
        return (value | 0x4000).to_bytes(2, "big") if value >= 0x7F else bytes((value | 0x80,))
    if value < 0x1FFFFF:
        return (value | 0x200000).to_bytes(3, "big")
    for length in range(4, 9):
        if value < (1 << (7 * length)) - 1:
            return (value | 1 << (7 * length)).to_bytes(length, "big")
    raise ValueError(f"EBML size {value} does not fit in 8 bytes")


def vint8(value: int) -> bytes:
    """An eight-byte VINT, for sizes patched in place after the fact."""
    return (value | 1 << 56).to_bytes(8, "big")


def element(element_id: bytes, data: bytes) -> bytes:
    return element_id + vint(len(data)) + data


def master(element_id: bytes, children: Sequence[bytes]) -> bytes:
    return element(element_id, b"".join(children))


def uint(element_id: bytes, value: int, width: int = 0) -> bytes:
    """An unsigned integer element; `width` fixes the data size so it can be patched."""
    size = width or max(1, (value.bit_length() + 7) // 8)
    return element(element_id, value.to_bytes(size, "big"))


def float64(element_id: bytes, value: float) -> bytes:
    return element(element_id, struct.pack(">d", value))


def string(element_id: bytes, value: str) -> bytes:
    return element(element_id, value.encode("utf-8"))


def void(size: int) -> bytes:
    """A Void element of exactly `size` bytes (at least 2), to reserve or fill space."""
    if size < 2:
        raise ValueError("a Void element needs at least 2 bytes")
    if size - 2 < 127:
        return VOID + vint(size - 2) + bytes(size - 2)
    return VOID + vint8(size - 9) + bytes(size - 9)
