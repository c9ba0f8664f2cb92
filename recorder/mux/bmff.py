"""ISO/IEC 14496-12 boxes for the header, whose fields are patched at finalize.

A `Box` knows its size before it is written, and remembers where it landed (`offset`), so the
writer can seek back to a duration or a width without searching. Fragments are hot enough to
be packed directly with `struct` in `recorder.mux.mp4`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

_HEADER = struct.Struct(">I4s")
HEADER_SIZE = 8


class Box:
    __slots__ = ("body", "children", "offset", "type")

    def __init__(self, box_type: bytes, body: bytes = b"", children: Sequence[Box] = ()) -> None:
        self.type = box_type
        self.body = body
        self.children = tuple(children)
        self.offset = -1

    @property
    def size(self) -> int:
        return HEADER_SIZE + len(self.body) + sum(child.size for child in self.children)

    def serialize(self, out: bytearray, base: int = 0) -> None:
        """Append the box to `out`; `base` is the file offset at which `out` starts."""
        self.offset = base + len(out)
        out += _HEADER.pack(self.size, self.type)
        out += self.body
        for child in self.children:
            child.serialize(out, base)

    def find(self, box_type: bytes) -> Box:
        """The first descendant (depth first) of this type."""
        for child in self.children:
            if child.type == box_type:
                return child
            try:
                return child.find(box_type)
            except KeyError:
                continue
        raise KeyError(box_type)


def full_box(
    box_type: bytes, version: int, flags: int, body: bytes = b"", children: Sequence[Box] = ()
) -> Box:
    """A FullBox: one byte of version and three of flags before the body."""
    return Box(box_type, struct.pack(">I", version << 24 | flags) + body, children)


# The identity transformation matrix of mvhd / tkhd (16.16 and 2.30 fixed point).
IDENTITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
