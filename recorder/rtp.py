"""RTP packets: the RFC 3550 fixed header, CSRCs, padding and RFC 8285 header extensions.

`RtpPacket.parse` is on the per-packet path: one `unpack_from`, bounds checks, and slices of a
memoryview. Header extension elements are only walked when someone asks for them
(`RtpPacket.extensions`), because the recorder itself does not need them per packet.
"""

from __future__ import annotations

import struct

from recorder.errors import RtpError

RTP_VERSION = 2
FIXED_HEADER_SIZE = 12
# V=2 and nothing else (no padding, extension or CSRCs): a header that needs no more checks.
PLAIN_FIRST_OCTET = 0x80
# RFC 8285 section 4.2: "defined by profile" value of the one-byte header form.
ONE_BYTE_PROFILE = 0xBEDE
# RFC 8285 section 4.3: 0x100 followed by four "appbits" marks the two-byte header form.
TWO_BYTE_PROFILE_MASK = 0xFFF0
TWO_BYTE_PROFILE = 0x1000
# RFC 8285 section 4.2: "The local identifier value 15 is reserved for a future extension
# and MUST NOT be used as an identifier. If the ID value 15 is encountered, its length
# field should be ignored, processing of the entire extension should terminate".
ONE_BYTE_STOP_ID = 15

_FIXED = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")
_new = object.__new__


class RtpPacket:
    """One parsed RTP packet; `payload` is a view into the datagram, without padding."""

    __slots__ = (
        "csrc_count",
        "extension_data",
        "extension_profile",
        "marker",
        "payload",
        "payload_type",
        "raw",
        "sequence",
        "ssrc",
        "timestamp",
    )

    def __init__(
        self,
        raw: memoryview,
        marker: bool,
        payload_type: int,
        sequence: int,
        timestamp: int,
        ssrc: int,
        csrc_count: int,
        extension_profile: int | None,
        extension_data: memoryview | None,
        payload: memoryview,
    ) -> None:
        self.raw = raw
        self.marker = marker
        self.payload_type = payload_type
        self.sequence = sequence
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrc_count = csrc_count
        self.extension_profile = extension_profile
        self.extension_data = extension_data
        self.payload = payload

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Parse one datagram; raise `RtpError` with the exact reason if it is not valid RTP."""
        view = data if type(data) is memoryview else memoryview(data)
        size = len(view)
        if size < FIXED_HEADER_SIZE:
            raise RtpError(f"RTP packet truncated: {size} bytes, the fixed header needs 12")
        first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(view)
        extension_profile = None
        extension_data = None
        if first == PLAIN_FIRST_OCTET:
            csrc_count = 0
            offset = FIXED_HEADER_SIZE
            end = size
        else:
            if first >> 6 != RTP_VERSION:
                raise RtpError(f"RTP version is {first >> 6}, expected 2")
            csrc_count = first & 0x0F
            offset = FIXED_HEADER_SIZE + 4 * csrc_count
            if offset > size:
                raise RtpError(
                    f"RTP packet truncated: {size} bytes, {csrc_count} CSRCs need {offset}"
                )
            end = size
            if first & 0x20:
                # RFC 3550 section 5.1: the last octet of the padding counts the padding
                # octets, itself included, so it cannot be zero.
                padding = view[size - 1]
                if padding == 0:
                    raise RtpError("RTP padding length is zero")
                end = size - padding
            if first & 0x10:
                if offset + 4 > end:
                    raise RtpError("RTP header extension truncated: no room for its 4-byte header")
                extension_profile, words = _EXTENSION_HEADER.unpack_from(view, offset)
                start = offset + 4
                offset = start + 4 * words
                if offset > end:
                    raise RtpError(f"RTP header extension of {4 * words} bytes overruns the packet")
                extension_data = view[start:offset]
            if offset > end:
                raise RtpError(f"RTP padding of {size - end} bytes overruns the payload")
        # Once per packet: filled in here rather than through __init__'s call.
        packet = _new(cls)
        packet.raw = view
        packet.marker = second > 0x7F
        packet.payload_type = second & 0x7F
        packet.sequence = sequence
        packet.timestamp = timestamp
        packet.ssrc = ssrc
        packet.csrc_count = csrc_count
        packet.extension_profile = extension_profile
        packet.extension_data = extension_data
        packet.payload = view[offset:end]
        return packet

    @property
    def csrcs(self) -> tuple[int, ...]:
        """The contributing sources (RFC 3550 section 5.1)."""
        return struct.unpack_from(f"!{self.csrc_count}I", self.raw, FIXED_HEADER_SIZE)

    def extensions(self) -> dict[int, bytes]:
        """RFC 8285 header extension elements by local id; raise `RtpError` if malformed.

        A header extension of another profile (RFC 3550 section 5.3.1) yields no elements.
        """
        data = self.extension_data
        profile = self.extension_profile
        if data is None or profile is None:
            return {}
        if profile == ONE_BYTE_PROFILE:
            return _one_byte_elements(data)
        if profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE:
            return _two_byte_elements(data)
        return {}

    def __repr__(self) -> str:
        return (
            f"RtpPacket(pt={self.payload_type}, seq={self.sequence}, ts={self.timestamp}, "
            f"ssrc={self.ssrc:#010x}, marker={self.marker}, payload={len(self.payload)} bytes)"
        )


def _one_byte_elements(data: memoryview) -> dict[int, bytes]:
    elements: dict[int, bytes] = {}
    index = 0
    size = len(data)
    while index < size:
        byte = data[index]
        if byte == 0:  # padding between elements (RFC 8285 section 4.2)
            index += 1
            continue
        element_id = byte >> 4
        if element_id == ONE_BYTE_STOP_ID or element_id == 0:
            # ID 15, or ID 0 with a length (0 is reserved for padding): nothing after it
            # can be trusted, so only the elements before it count.
            break
        length = (byte & 0x0F) + 1
        start = index + 1
        if start + length > size:
            raise RtpError(
                f"RTP one-byte header extension element {element_id} of {length} bytes "
                "overruns the extension"
            )
        elements[element_id] = bytes(data[start : start + length])
        index = start + length
    return elements


def _two_byte_elements(data: memoryview) -> dict[int, bytes]:
    elements: dict[int, bytes] = {}
    index = 0
    size = len(data)
    while index < size:
        element_id = data[index]
        if element_id == 0:  # padding (RFC 8285 section 4.3)
            index += 1
            continue
        if index + 2 > size:
            raise RtpError(f"RTP two-byte header extension element {element_id} has no length byte")
        length = data[index + 1]
        start = index + 2
        if start + length > size:
            raise RtpError(
                f"RTP two-byte header extension element {element_id} of {length} bytes "
                "overruns the extension"
            )
        elements[element_id] = bytes(data[start : start + length])
        index = start + length
    return elements


def is_rtcp(data: bytes | memoryview) -> bool:
    """RFC 5761 section 4: RTCP packet types 192-223 occupy the RTP marker + payload type byte."""
    return len(data) >= 2 and 192 <= data[1] <= 223
