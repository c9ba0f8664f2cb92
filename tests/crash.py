"""Crash snapshots: the file as it was on disk when the writer died after N bytes.

A `JournalFile` records every write a writer makes, in order, including the seeks back for
in-place patches. `snapshot(writes, budget)` replays them until `budget` bytes have been
written (cutting the last write short, as a full disk or a kill mid-write would), which is
what a crash at that moment leaves behind. Cutting a finished file at a random offset is not
the same thing: the finished file has every patch applied.

`complete_chunks` walks a snapshot and counts the frames of each track in whole fragments
(MP4) or clusters (WebM): what a player must be able to decode from it.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field


class JournalFile(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[int, bytes]] = []

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.writes.append((self.tell(), bytes(data)))
        return super().write(data)

    @property
    def total(self) -> int:
        return sum(len(data) for _, data in self.writes)


def snapshot(writes: list[tuple[int, bytes]], budget: int) -> bytes:
    disk = bytearray()
    for offset, data in writes:
        if budget <= 0:
            break
        data = data[:budget]
        budget -= len(data)
        end = offset + len(data)
        if len(disk) < end:
            disk.extend(bytes(end - len(disk)))
        disk[offset:end] = data
    return bytes(disk)


@dataclass
class Chunks:
    frames: dict[int, int] = field(default_factory=dict)  # track number -> frames
    end: int = 0  # byte offset just past the last complete fragment / cluster


def complete_chunks(data: bytes, container: str) -> Chunks:
    return _mp4_chunks(data) if container == "mp4" else _webm_chunks(data)


def _mp4_chunks(data: bytes) -> Chunks:
    chunks = Chunks()
    position = 0
    pending: dict[int, int] | None = None  # samples of a moof whose mdat is not yet whole
    while position + 8 <= len(data):
        size, box_type = struct.unpack_from(">I4s", data, position)
        end = position + size
        if size < 8 or end > len(data):
            break
        if box_type == b"moof":
            pending = _trun_counts(data[position + 8 : end])
        elif box_type == b"mdat" and pending is not None:
            for track, count in pending.items():
                chunks.frames[track] = chunks.frames.get(track, 0) + count
            chunks.end = end
            pending = None
        elif box_type in (b"ftyp", b"moov"):
            chunks.end = end
        else:
            pending = None
        position = end
    return chunks


def _trun_counts(moof: bytes) -> dict[int, int]:
    counts: dict[int, int] = {}
    for traf in _children(moof, b"traf"):
        track = struct.unpack_from(">I", next(_children(traf, b"tfhd")), 4)[0]
        for trun in _children(traf, b"trun"):
            counts[track] = counts.get(track, 0) + struct.unpack_from(">I", trun, 4)[0]
    return counts


def _children(body: bytes, wanted: bytes):  # type: ignore[no-untyped-def]
    position = 0
    while position + 8 <= len(body):
        size, box_type = struct.unpack_from(">I4s", body, position)
        if box_type == wanted:
            yield body[position + 8 : position + size]
        position += size


SEGMENT = 0x18538067
CLUSTER = 0x1F43B675
SIMPLE_BLOCK = 0xA3


def _vint(data: bytes, position: int, keep_marker: bool) -> tuple[int | None, int]:
    first = data[position]
    length = 9 - first.bit_length()
    if not 1 <= length <= 8 or position + length > len(data):
        raise IndexError
    value = int.from_bytes(data[position : position + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
        if value == (1 << (7 * length)) - 1:
            return None, position + length  # unknown size
    return value, position + length


def _webm_chunks(data: bytes) -> Chunks:
    chunks = Chunks()
    try:
        _, position = _vint(data, 0, True)  # EBML header id
        size, position = _vint(data, position, False)
        position += size or 0
        segment_id, position = _vint(data, position, True)
        assert segment_id == SEGMENT
        _, position = _vint(data, position, False)
        chunks.end = position
        while position < len(data):
            element, start = _vint(data, position, True)
            size, start = _vint(data, start, False)
            assert size is not None
            end = start + size
            if end > len(data):
                break
            if element == CLUSTER:
                for track in _block_tracks(data[start:end]):
                    chunks.frames[track] = chunks.frames.get(track, 0) + 1
            chunks.end = end
            position = end
    except IndexError:
        pass
    return chunks


def _block_tracks(cluster: bytes) -> list[int]:
    tracks = []
    position = 0
    while position < len(cluster):
        element, start = _vint(cluster, position, True)
        size, start = _vint(cluster, start, False)
        assert size is not None
        if element == SIMPLE_BLOCK:
            tracks.append(cluster[start] & 0x7F)
        position = start + size
    return tracks
