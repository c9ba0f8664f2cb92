"""Bit-level reading shared by the bitstream parsers (SPS/VPS, VP9 and AV1 headers)."""

from __future__ import annotations

from recorder.errors import DepacketizeError


class BitReader:
    """Reads big-endian bit fields from bytes; running past the end raises `DepacketizeError`.

    `what` names the structure being read, so a truncated header says which one it was.
    """

    __slots__ = ("_data", "_end", "position", "what")

    def __init__(self, data: bytes | bytearray | memoryview, what: str) -> None:
        self._data = bytes(data)
        self._end = len(self._data) * 8
        self.position = 0  # in bits
        self.what = what

    @property
    def remaining(self) -> int:
        return self._end - self.position

    def u(self, bits: int) -> int:
        """An unsigned `bits`-wide field (f(n)/u(n) in the H.26x, VP9 and AV1 specs)."""
        position = self.position
        end = position + bits
        if end > self._end:
            raise DepacketizeError(f"{self.what} truncated at bit {position} (needs {bits} more)")
        value = 0
        data = self._data
        while position < end:
            byte = data[position >> 3]
            offset = position & 7
            take = min(8 - offset, end - position)
            value = (value << take) | ((byte >> (8 - offset - take)) & ((1 << take) - 1))
            position += take
        self.position = end
        return value

    def flag(self) -> bool:
        return bool(self.u(1))

    def skip(self, bits: int) -> None:
        if self.position + bits > self._end:
            raise DepacketizeError(f"{self.what} truncated at bit {self.position}")
        self.position += bits

    def ue(self) -> int:
        """Unsigned Exp-Golomb ue(v) (H.264 9.1); more than 31 leading zeros is malformed."""
        # The leading zeros are counted a byte at a time (slice headers have one per slice).
        position = self.position
        data = self._data
        end = self._end
        zeros = 0
        while True:
            if position >= end:
                raise DepacketizeError(f"{self.what} truncated at bit {position} (needs 1 more)")
            offset = position & 7
            rest = data[position >> 3] & (0xFF >> offset)  # the bits not read yet of this byte
            if rest:
                zeros += 8 - offset - rest.bit_length()
                position += 8 - rest.bit_length() - offset + 1  # the zeros and the one
                break
            zeros += 8 - offset
            position += 8 - offset
            if zeros > 31:
                break
        if zeros > 31:
            raise DepacketizeError(f"{self.what} has an Exp-Golomb code over 32 bits")
        self.position = position
        return (1 << zeros) - 1 + (self.u(zeros) if zeros else 0)

    def se(self) -> int:
        """Signed Exp-Golomb se(v) (H.264 9.1.1)."""
        code = self.ue()
        return (code + 1) >> 1 if code & 1 else -(code >> 1)

    def leb128(self) -> int:
        """AV1 leb128(): up to 8 bytes, byte aligned, value below 2^32."""
        value = 0
        for index in range(8):
            byte = self.u(8)
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                break
        else:
            raise DepacketizeError(f"{self.what} has a leb128 longer than 8 bytes")
        if value >= 1 << 32:
            raise DepacketizeError(f"{self.what} has a leb128 value over 2^32 - 1")
        return value


# Bytes `leading_exp_golomb` looks at: 24 bits, so that its arithmetic stays on small ints.
EXP_GOLOMB_WINDOW = 3


def leading_exp_golomb(data: bytes, count: int) -> list[int] | None:
    """The first `count` ue(v) values of `data` when they all lie in its first 3 bytes, else
    None (a `BitReader` then reads them, and says exactly what is wrong).

    A slice header starts with three small ones; reading them from one integer is several
    times cheaper than bit by bit.
    """
    head = data[:EXP_GOLOMB_WINDOW]
    rest = int.from_bytes(head, "big")  # the bits not read yet
    remaining = len(head) * 8  # how many there are
    values = []
    for _ in range(count):
        length = rest.bit_length()  # from the code's first one bit to the end
        zeros = remaining - length
        if zeros >= length:  # not all of the code is here
            return None
        remaining = length - zeros - 1
        values.append((rest >> remaining) - 1)
        rest &= (1 << remaining) - 1
    return values


def unescape_rbsp(nal: bytes | memoryview) -> bytes:
    """Remove H.264/H.265 emulation prevention bytes (00 00 03 → 00 00), H.264 7.4.1.

    Matches do not overlap: after a removed 03 the zero count starts again, as in the spec's
    byte-by-byte reading.
    """
    return bytes(nal).replace(b"\x00\x00\x03", b"\x00\x00")
