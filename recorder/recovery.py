"""Crash recovery: recordings that were running when the process died become finished files.

The writers keep every temp file playable up to its last complete fragment (MP4: a fragment
is a `free` box until it is whole, then renamed `moof`) or cluster (WebM). On the next start
each such file is cut after its last complete fragment / cluster, moved into the archive
directory, documented with state "recovered", and announced like any archive; the recording
gets its report and ends as "recovered".
"""

from __future__ import annotations

import dataclasses
import os
import struct
import time
from pathlib import Path
from typing import Any

from recorder import layout
from recorder.store import ArchiveRow, Event, RecordingRow, Store

_MP4_KEEP = {b"ftyp", b"moov", b"mfra", b"styp", b"sidx"}
EBML_HEADER = 0x1A45DFA3
SEGMENT = 0x18538067
CLUSTER = 0x1F43B675


def playable_length(path: Path) -> int:
    """Bytes of `path` that form a complete, playable file (0 if none do)."""
    with open(path, "rb") as file:
        data = file.read()
    if data[4:8] == b"ftyp":
        return _mp4_length(data)
    if data[:4] == EBML_HEADER.to_bytes(4, "big"):
        return _webm_length(data)
    return 0


def trim_to_playable(path: Path) -> int:
    """Cut `path` after its last complete fragment / cluster and make what is left consistent;
    return its new length (0: nothing playable, the file is left as it was)."""
    length = playable_length(path)
    if length == 0:
        return 0
    with open(path, "r+b") as file:
        file.truncate(length)
        head = file.read(64)
        sized = _webm_segment_size_field(head) if head[:4] == b"\x1a\x45\xdf\xa3" else None
        if sized is not None:
            # A finished file that was cut declares a segment larger than what is left; an
            # unknown size (all ones, same width) is what a file being written has.
            offset, width = sized
            file.seek(offset)
            file.write(_unknown(width))
        file.flush()
        os.fsync(file.fileno())
    return length


def _unknown(width: int) -> bytes:
    # The width marker bit, then all ones: the EBML "unknown size" of that width.
    return ((1 << (7 * width + 1)) - 1).to_bytes(width, "big")


def _webm_segment_size_field(data: bytes) -> tuple[int, int] | None:
    try:
        _, offset = _read_id(data, 0)
        size, offset = _read_size(data, offset)
        if size is None:
            return None
        offset += size
        element, offset = _read_id(data, offset)
        if element != SEGMENT:
            return None
        width = 1 + (8 - data[offset].bit_length())
        return offset, width
    except (ValueError, IndexError):
        return None


def _mp4_length(data: bytes) -> int:
    # Only a file with at least one whole fragment holds media: headers alone are not kept.
    offset = 0
    good = 0
    fragments = 0
    pending_moof = False
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if offset + 16 > len(data):
                break
            size = struct.unpack_from(">Q", data, offset + 8)[0]
            header = 16
        if size < header or offset + size > len(data):
            break  # cut short
        if kind == b"moof":
            pending_moof = True
        elif kind == b"mdat" and pending_moof:
            pending_moof = False
            good = offset + size
            fragments += 1
        elif kind in _MP4_KEEP:
            if not pending_moof:
                good = offset + size
        else:
            break  # a 'free' box is a fragment that was never committed
        offset += size
    return good if fragments else 0


def _read_id(data: bytes, offset: int) -> tuple[int, int]:
    first = data[offset]
    length = 1 + (8 - first.bit_length())
    if length > 4 or offset + length > len(data):
        raise ValueError("bad EBML id")
    return int.from_bytes(data[offset : offset + length], "big"), offset + length


def _read_size(data: bytes, offset: int) -> tuple[int | None, int]:
    first = data[offset]
    if first == 0:
        raise ValueError("bad EBML size")
    length = 1 + (8 - first.bit_length())
    if offset + length > len(data):
        raise ValueError("truncated EBML size")
    value = first & ((1 << (8 - length)) - 1)
    for byte in data[offset + 1 : offset + length]:
        value = value << 8 | byte
    unknown = value == (1 << (7 * length)) - 1
    return (None if unknown else value), offset + length


def _webm_length(data: bytes) -> int:
    try:
        element, offset = _read_id(data, 0)
        size, offset = _read_size(data, offset)
        if element != EBML_HEADER or size is None:
            return 0
        offset += size
        element, offset = _read_id(data, offset)
        segment_size, offset = _read_size(data, offset)
        if element != SEGMENT:
            return 0
        end = len(data) if segment_size is None else min(len(data), offset + segment_size)
        good = 0  # the end of the last complete cluster
        while offset < end:
            element, offset = _read_id(data, offset)
            size, offset = _read_size(data, offset)
            if size is None or offset + size > end:
                break
            offset += size
            if element == CLUSTER:
                good = offset
        return good
    except (ValueError, IndexError):
        return 0


def recover(store: Store, archive_dir: Path, node: layout.Node | None = None) -> list[str]:
    """Finish every recording the store says was running; return their ids."""
    recovered = []
    for row in store.running_recordings():
        _recover_recording(store, row, archive_dir, node or layout.Node())
        recovered.append(row.id)
    return recovered


def _recover_recording(
    store: Store, row: RecordingRow, archive_dir: Path, node: layout.Node
) -> None:
    now = time.time()
    info = layout.RecordingInfo(
        recording_id=row.id,
        channel_id=row.channel_id,
        format=row.format,
        created_at=row.created_at,
        session_id=row.session_id,
        stopped_at=now,
        expire_time=row.expire_time,
        split_duration=row.split_duration,
        split_only=row.split_only,
        recording_metadata=row.recording_metadata,
    )
    connections = {c.connection_id: c for c in store.list_connections(row.id)}
    archives: list[layout.ArchiveInfo] = []
    for archive in store.list_archives(row.id):
        if archive.state in ("available", "recovered"):
            archives.append(_info(archive, connections, "available"))
            continue
        if archive.state != "writing":
            continue
        archives += recover_archive(store, info, archive, connections, archive_dir, node)
    for cid, connection in connections.items():
        if connection.state == "ended":
            continue
        events = []
        pieces = [a for a in archives if a.is_split and a.connection.connection_id == cid]
        if pieces:
            # The series ended with the process: its end document, as a stop would write.
            end = layout.split_archive_end_metadata(info, pieces, archive_dir, node)
            path = layout.recording_dir(archive_dir, row.id) / layout.split_archive_end_name(cid)
            path.parent.mkdir(parents=True, exist_ok=True)
            layout.write_json_atomically(path, end)
            events.append(Event("split-archive.end", end))
        store.set_connection_state(row.id, cid, "ended", ended_at=now, events=events)
    directory = layout.recording_dir(archive_dir, row.id)
    directory.mkdir(parents=True, exist_ok=True)
    doc = layout.report(info, archives, archive_dir, node)
    layout.write_json_atomically(directory / layout.report_name(row.id), doc)
    store.set_recording_state(
        row.id, "recovered", stopped_at=now, events=[Event("recording.report", doc)]
    )


def recover_archive(
    store: Store,
    info: layout.RecordingInfo,
    archive: ArchiveRow,
    connections: dict[str, Any],
    archive_dir: Path,
    node: layout.Node,
) -> list[layout.ArchiveInfo]:
    """Finish one archive whose writer died: cut its temporary file back to what plays, move
    it into place, document and announce it (or announce it failed when nothing plays).
    `connections` maps connection ids to their store rows. Returns what was recovered."""
    temp, final = Path(archive.temp_path), Path(archive.final_path)
    if not temp.exists() and final.exists():
        # The crash came after the finished file was moved but before the store heard of it.
        temp = final
    length = trim_to_playable(temp) if temp.exists() else 0
    failed = Event(
        "archive.failed",
        {
            "recording_id": info.recording_id,
            "channel_id": info.channel_id,
            "connection_id": archive.connection_id,
            "reason": "no complete fragment or cluster in the file the crash left",
        },
    )
    if length == 0:
        temp.unlink(missing_ok=True)
        store.update_archive(archive.id, state="failed", events=[failed])
        return []
    stopped_at = temp.stat().st_mtime
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temp, final)
    layout.fsync_directory(final.parent)
    recovered = _info(archive, connections, "recovered", size=length, stopped_at=stopped_at)
    # The picture size is not in the store; a finished piece of the connection documented it.
    for other in store.list_archives(info.recording_id):
        doc = other.metadata if isinstance(other.metadata, dict) else {}
        if other.connection_id == archive.connection_id and doc.get("video_width"):
            recovered = dataclasses.replace(
                recovered, video_width=doc["video_width"], video_height=doc["video_height"]
            )
            break
    doc = layout.archive_metadata(info, recovered, archive_dir, node)
    if archive.kind == "split":
        name = layout.split_archive_metadata_name(archive.connection_id, archive.split_index or 1)
        event = "split-archive.available"
    else:
        name = layout.archive_metadata_name(archive.connection_id)
        event = "archive.available"
    layout.write_json_atomically(final.parent / name, doc)
    store.update_archive(
        archive.id,
        state="recovered",
        size=length,
        stopped_at=stopped_at,
        metadata=doc,
        events=[Event(event, doc)],
    )
    return [recovered]


def _info(
    archive: ArchiveRow,
    connections: dict[str, Any],
    state: str,
    size: int | None = None,
    stopped_at: float | None = None,
) -> layout.ArchiveInfo:
    connection = connections.get(archive.connection_id)
    media = connection.media if connection is not None else {}
    started = archive.started_at or time.time()

    def codec(kind: str) -> layout.MediaInfo | None:
        described = media.get(kind)
        return layout.MediaInfo(described["codec"]) if described else None

    return layout.ArchiveInfo(
        connection=layout.ConnectionInfo(
            archive.connection_id,
            connection.client_id if connection is not None else None,
            connection.bundle_id if connection is not None else None,
            audio=codec("audio"),
            video=codec("video"),
        ),
        started_at=started,
        stopped_at=stopped_at or archive.stopped_at or started,
        size=size if size is not None else archive.size or 0,
        split_index=archive.split_index,
        state=state,
    )
