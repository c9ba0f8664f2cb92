"""Test-only AV1 RTP packetizers, written from the AOM "RTP Payload Format for AV1" v1.0.

`packetize` follows the spec's SHOULDs the way browsers do: temporal delimiters (and tile
lists, padding) removed, OBUs without obu_size, W = element count when a packet holds 1-3
elements (the last one then has no length field), N = 1 on the first packet of a coded video
sequence, OBUs fragmented at the MTU with Z/Y.

`pion_packetize` imitates pion/rtp 1.7's AV1Payloader as described in the project's notes on
real peers: the whole temporal unit (temporal delimiter and obu_size fields kept) is one OBU
element, cut into MTU-sized fragments, W = 0, N never set.

Neither depends on recorder code, so a depacketizer bug cannot cancel out in a round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

OBU_SEQUENCE_HEADER = 1
OBU_TEMPORAL_DELIMITER = 2
OBU_TILE_LIST = 8
OBU_PADDING = 15
DROPPED = (OBU_TEMPORAL_DELIMITER, OBU_TILE_LIST, OBU_PADDING)

Z_BIT = 0x80
Y_BIT = 0x40
N_BIT = 0x08
W_SHIFT = 4
MAX_W = 3


def leb128(value: int) -> bytes:
    """AV1 spec 4.10.5: 7 bits per byte, least significant group first."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _read_leb128(data: bytes, offset: int) -> tuple[int, int]:
    value = 0
    for index in range(8):
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, offset
    raise ValueError("leb128 longer than 8 bytes")


@dataclass
class Obu:
    type: int
    header: bytes  # the OBU header with obu_has_size_field cleared (+ extension byte)
    payload: bytes

    def without_size(self) -> bytes:
        return self.header + self.payload


def low_overhead_obus(temporal_unit: bytes) -> list[Obu]:
    """Split a temporal unit in Low overhead bitstream format (AV1 spec 5.2: every OBU has a
    size field) into OBUs."""
    obus = []
    offset = 0
    while offset < len(temporal_unit):
        first = temporal_unit[offset]
        if not first & 0x02:
            raise ValueError("OBU without obu_size in a low overhead temporal unit")
        header_size = 2 if first & 0x04 else 1
        header = bytes([first & ~0x02]) + temporal_unit[offset + 1 : offset + header_size]
        size, start = _read_leb128(temporal_unit, offset + header_size)
        obus.append(Obu((first >> 3) & 0x0F, header, temporal_unit[start : start + size]))
        offset = start + size
    return obus


def _packet_size(lengths: list[int]) -> int:
    """Bytes a payload with elements of these lengths takes (W mode when 1-3 elements)."""
    size = 1 + sum(lengths)
    omit_last = len(lengths) <= MAX_W
    for index, length in enumerate(lengths):
        if not (omit_last and index == len(lengths) - 1):
            size += len(leb128(length))
    return size


def _serialize(elements: list[bytes], z: bool, y: bool, n: bool) -> bytes:
    w = len(elements) if len(elements) <= MAX_W else 0
    header = (Z_BIT if z else 0) | (Y_BIT if y else 0) | w << W_SHIFT | (N_BIT if n else 0)
    out = bytearray([header])
    for index, element in enumerate(elements):
        if not (w and index == len(elements) - 1):
            out += leb128(len(element))
        out += element
    return bytes(out)


def packetize(temporal_unit: bytes, mtu: int, new_sequence: bool | None = None) -> list[bytes]:
    """RTP payloads (at most `mtu` bytes each) for one temporal unit, spec style.

    `new_sequence` sets N on the first packet; by default it is set when the temporal unit
    carries a sequence header (libaom sends one with every key frame and nowhere else).
    """
    obus = [obu for obu in low_overhead_obus(temporal_unit) if obu.type not in DROPPED]
    if not obus:
        raise ValueError("temporal unit has nothing to send")
    if new_sequence is None:
        new_sequence = any(obu.type == OBU_SEQUENCE_HEADER for obu in obus)
    payloads: list[bytes] = []
    elements: list[bytes] = []
    z = False  # the current packet's first element continues a fragment

    def flush(y: bool) -> None:
        nonlocal elements, z
        payloads.append(_serialize(elements, z, y, new_sequence and not payloads))
        elements = []
        z = y

    for obu in obus:
        data = obu.without_size()
        while data:
            lengths = [len(element) for element in elements]
            room = mtu - _packet_size([*lengths, 0])
            while room > 0 and _packet_size([*lengths, room]) > mtu:
                room -= 1
            if room >= len(data):
                elements.append(data)
                break
            if room <= 0:
                if not elements:
                    raise ValueError(f"MTU {mtu} too small for any OBU element")
                flush(False)
                continue
            elements.append(data[:room])
            data = data[room:]
            flush(True)
    flush(False)
    return payloads


def _pion_length(length: int) -> bytes:
    """pion 1.7 writes one length byte below 127 and two bytes from 127 on, so 127 itself
    becomes 00 7f: an empty element followed by a 127-byte one."""
    encoded = leb128(length)
    if length >= 127 and len(encoded) == 1:
        return b"\x00" + encoded
    return encoded


def pion_packetize(temporal_unit: bytes, mtu: int) -> list[bytes]:
    """RTP payloads the way pion/rtp 1.7 sends a temporal unit: one element, W = 0, no N."""
    fragment = mtu - 3  # aggregation header + a two-byte leb128 length
    pieces = [temporal_unit[i : i + fragment] for i in range(0, len(temporal_unit), fragment)]
    payloads = []
    for index, piece in enumerate(pieces):
        header = (Z_BIT if index else 0) | (Y_BIT if index < len(pieces) - 1 else 0)
        payloads.append(bytes([header]) + _pion_length(len(piece)) + piece)
    return payloads
