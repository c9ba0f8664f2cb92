"""The archive directory: file names and the JSON documents beside the media files.

Everything here follows seed 000 (the reference product's session recording) and DESIGN.md:

    archive_dir/<recording_id>/
      archive-<connection_id>.{mp4,webm}                 single archive of one connection
      archive-<connection_id>.json                       its metadata
      split-archive-<connection_id>_<NNNN>.{mp4,webm}    split pieces, 0001 … 9999, 10000 …
      split-archive-<connection_id>_<NNNN>.json          their metadata
      split-archive-end-<connection_id>.json             the end of a connection's split series
      report-<recording_id>.json                         every archive of the recording

Where the seed contradicts itself we follow its directory listings and its stated rules, not its
slips: "archvie-" in two prose lines is "archive-" everywhere else; one example path shows a
three-digit split index (`_001`) where the rule and the listings say four (`0001`); one example
metadata path puts the split file under `split-archive/…/archive-…`; one report example is named
after a connection id. Document builders keep the seed's field names and order; fields we add
are marked "ours" in the comments.

The functions are pure (no I/O) except `write_json_atomically` and `fsync_directory`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recorder.ids import validate_id

CONTAINER_EXTENSIONS = ("mp4", "webm")
METADATA_EXTENSION = "json"
# Seed 000: "0001 から始まり 9999 の後は 10000 となります": four digits, zero-padded, then wider.
SPLIT_INDEX_DIGITS = 4

# The lifecycle states an archive document can report (`state`, ours): the store's archive
# states once the file is final.
ARCHIVE_STATES = ("available", "failed", "recovered")


# ---------------------------------------------------------------------------------------------
# File names


def split_index_text(index: int) -> str:
    """`1` → `"0001"`, `9999` → `"9999"`, `10000` → `"10000"` (seed 000's `split_index`)."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 1:
        raise ValueError(f"split index must be a positive integer, not {index!r}")
    return f"{index:0{SPLIT_INDEX_DIGITS}d}"


def _extension(ext: str) -> str:
    if ext not in CONTAINER_EXTENSIONS:
        raise ValueError(f"archive extension must be one of {', '.join(CONTAINER_EXTENSIONS)}")
    return ext


def archive_name(connection_id: str, ext: str) -> str:
    """`archive-<connection_id>.{mp4,webm}`: a connection's single archive."""
    return f"archive-{validate_id(connection_id, 'connection_id')}.{_extension(ext)}"


def archive_metadata_name(connection_id: str) -> str:
    """`archive-<connection_id>.json`: the single archive's metadata."""
    return f"archive-{validate_id(connection_id, 'connection_id')}.{METADATA_EXTENSION}"


def split_archive_name(connection_id: str, index: int, ext: str) -> str:
    """`split-archive-<connection_id>_<NNNN>.{mp4,webm}`: one split piece."""
    cid = validate_id(connection_id, "connection_id")
    return f"split-archive-{cid}_{split_index_text(index)}.{_extension(ext)}"


def split_archive_metadata_name(connection_id: str, index: int) -> str:
    """`split-archive-<connection_id>_<NNNN>.json`: one split piece's metadata."""
    cid = validate_id(connection_id, "connection_id")
    return f"split-archive-{cid}_{split_index_text(index)}.{METADATA_EXTENSION}"


def split_archive_end_name(connection_id: str) -> str:
    """`split-archive-end-<connection_id>.json`: written when the split series ends."""
    return f"split-archive-end-{validate_id(connection_id, 'connection_id')}.{METADATA_EXTENSION}"


def report_name(recording_id: str) -> str:
    """`report-<recording_id>.json`: written when the recording ends."""
    return f"report-{validate_id(recording_id, 'recording_id')}.{METADATA_EXTENSION}"


def recording_dir(archive_dir: Path, recording_id: str) -> Path:
    """`archive_dir/<recording_id>/`; also the per-recording directory in `archive_tmp_dir`.

    Temporary files keep their final names inside `archive_tmp_dir/<recording_id>/`, so a
    file left behind by a crash is recognisable (and playable, by its extension) and the move
    into `archive_dir` is a rename of the same name.
    """
    return archive_dir / validate_id(recording_id, "recording_id")


# ---------------------------------------------------------------------------------------------
# Inputs of the documents: filled by the lifecycle layer from the store and the live recorder


def default_node_name() -> str:
    # The reference writes "sora@<address>" (its Erlang node name); ours names the program and
    # the host, enough to tell which sidecar wrote an archive.
    return f"rtp-recorder@{socket.gethostname()}"


@dataclass(frozen=True, slots=True)
class Node:
    """Who wrote the files: the seed's `label` and `node_name`."""

    label: str = "rtp-recorder"
    node_name: str = field(default_factory=default_node_name)


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """One recorded medium of a connection.

    `codec` is our codec name (`"OPUS"`, `"VP9"`, `"H264"`, … in any case); documents show it
    upper case, as the reference's `audio_codec_type` / `video_codec_type` do. `params` becomes
    `video_<codec>_params` (the seed's `video_vp9_params: {"profile_id": 0}`); `bit_rate`
    becomes `video_bit_rate` (kbit/s). Both are left out when unknown.
    """

    codec: str
    params: Mapping[str, Any] | None = None
    bit_rate: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """A connection (participant) of a recording.

    As in the reference's examples, `client_id` defaults to the connection id and `bundle_id`
    to the client id.
    """

    connection_id: str
    client_id: str | None = None
    bundle_id: str | None = None
    audio: MediaInfo | None = None
    video: MediaInfo | None = None

    @property
    def effective_client_id(self) -> str:
        return self.client_id if self.client_id is not None else self.connection_id

    @property
    def effective_bundle_id(self) -> str:
        return self.bundle_id if self.bundle_id is not None else self.effective_client_id


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """A recording, as its documents describe it. Times are UNIX seconds (float).

    `created_at` is when the recording was accepted (the reference's StartRecording time: every
    `*_time_offset` counts from it); `stopped_at` is when stop was accepted or the expiry time.
    `expire_time`, `split_duration` and `recording_metadata` are left out of the documents when
    None (seed 003: an unset `expire_time` has no `expire_time` / `expired_at` fields).
    """

    recording_id: str
    channel_id: str
    format: str
    created_at: float
    session_id: str | None = None
    stopped_at: float | None = None
    expire_time: int | None = None
    split_duration: int | None = None
    split_only: bool = False
    recording_metadata: Any = None


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    """One finished media file: a single archive (`split_index` None) or one split piece.

    `started_at` / `stopped_at` are the UNIX times of its first and last media; `stats` is what
    `archive_stats` builds from the live recorder's counters; `created_at` is when the metadata
    document is written (the seed's `created_at`, after `stop_time`), now when None.
    """

    connection: ConnectionInfo
    started_at: float
    stopped_at: float
    size: int
    split_index: int | None = None
    video_width: int | None = None
    video_height: int | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)
    state: str = "available"
    created_at: float | None = None

    @property
    def is_split(self) -> bool:
        return self.split_index is not None


# ---------------------------------------------------------------------------------------------
# Times


def rfc3339(unix_time: float) -> str:
    """`2021-03-12T04:42:17.455668Z`: UTC with microseconds, the seed's `*_timestamp` form."""
    moment = datetime.fromtimestamp(unix_time, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unix_seconds(unix_time: float) -> int:
    """Whole UNIX seconds, the seed's `*_time` and `created_at` form."""
    return math.floor(unix_time)


def time_offset(unix_time: float, recording_start: float) -> int:
    """Whole seconds from the recording's start (the seed's `start_time_offset`).

    The difference of the two whole-second times, so `start_time - offset` is the recording's
    `created_at` exactly; never negative (media cannot precede the recording it belongs to, a
    clock step could make it look so).
    """
    return max(0, unix_seconds(unix_time) - unix_seconds(recording_start))


# ---------------------------------------------------------------------------------------------
# Documents


def _file_fields(archive_dir: Path, recording_id: str, name: str, prefix: str = "") -> dict:
    # Seed: `file_path` is absolute, `filename` is relative to archive_dir
    # ("<recording_id>/archive-<cid>.mp4"); the same pair exists for the metadata file.
    relative = f"{validate_id(recording_id, 'recording_id')}/{name}"
    return {
        f"{prefix}file_path": str(Path(archive_dir).absolute() / relative),
        f"{prefix}filename": relative,
    }


def _codec_type(codec: str) -> str:
    return codec.upper()


def _media_fields(connection: ConnectionInfo, archive: ArchiveInfo | None) -> tuple[dict, dict]:
    """(audio fields, video fields) in the seed's names; `"audio": false` when not recorded."""
    audio: dict[str, Any] = {"audio": connection.audio is not None}
    if connection.audio is not None:
        audio["audio_codec_type"] = _codec_type(connection.audio.codec)
    video: dict[str, Any] = {"video": connection.video is not None}
    if connection.video is not None:
        media = connection.video
        codec = _codec_type(media.codec)
        if media.bit_rate is not None:
            video["video_bit_rate"] = media.bit_rate
        video["video_codec_type"] = codec
        if media.params is not None:
            video[f"video_{codec.lower()}_params"] = dict(media.params)
        if archive is not None and archive.video_height is not None:
            video["video_height"] = archive.video_height
        if archive is not None and archive.video_width is not None:
            video["video_width"] = archive.video_width
    return audio, video


def _ids(recording: RecordingInfo, connection: ConnectionInfo) -> dict[str, Any]:
    ids: dict[str, Any] = {"channel_id": recording.channel_id}
    if recording.session_id is not None:
        ids["session_id"] = recording.session_id
    ids.update(
        client_id=connection.effective_client_id,
        bundle_id=connection.effective_bundle_id,
        connection_id=connection.connection_id,
    )
    return ids


def _times(recording: RecordingInfo, started_at: float, stopped_at: float) -> dict[str, Any]:
    return {
        "start_time": unix_seconds(started_at),
        "start_time_offset": time_offset(started_at, recording.created_at),
        "start_timestamp": rfc3339(started_at),
        "stop_time": unix_seconds(stopped_at),
        "stop_time_offset": time_offset(stopped_at, recording.created_at),
        "stop_timestamp": rfc3339(stopped_at),
    }


def _names(recording: RecordingInfo, archive: ArchiveInfo) -> tuple[str, str]:
    cid = archive.connection.connection_id
    ext = recording.format
    if archive.split_index is None:
        return archive_name(cid, ext), archive_metadata_name(cid)
    index = archive.split_index
    return split_archive_name(cid, index, ext), split_archive_metadata_name(cid, index)


def _check_state(state: str) -> str:
    if state not in ARCHIVE_STATES:
        raise ValueError(f"archive state must be one of {', '.join(ARCHIVE_STATES)}")
    return state


def archive_metadata(
    recording: RecordingInfo,
    archive: ArchiveInfo,
    archive_dir: Path,
    node: Node | None = None,
) -> dict[str, Any]:
    """`archive-<cid>.json` or, for a split piece, `split-archive-<cid>_<NNNN>.json`.

    Fields and order follow seed 000's examples; the seed's `event_metadata` (the SFU's
    per-connection metadata) has no counterpart in our API and is left out.
    """
    node = node or Node()
    connection = archive.connection
    media_name, metadata_name = _names(recording, archive)
    audio, video = _media_fields(connection, archive)
    created_at = time.time() if archive.created_at is None else archive.created_at
    doc: dict[str, Any] = {**audio, "recording_id": recording.recording_id}
    doc.update(_ids(recording, connection))
    if archive.split_index is not None:
        doc["split_index"] = split_index_text(archive.split_index)
    doc["created_at"] = unix_seconds(created_at)
    doc.update(_file_fields(archive_dir, recording.recording_id, media_name))
    doc.update(_file_fields(archive_dir, recording.recording_id, metadata_name, "metadata_"))
    doc["size"] = archive.size
    doc.update(_times(recording, archive.started_at, archive.stopped_at))
    doc["stats"] = dict(archive.stats)
    doc.update(label=node.label, node_name=node.node_name)
    doc.update(video)
    doc["format"] = recording.format
    # Ours: the archive's lifecycle state (a recovered file is marked so) and the recording's
    # metadata, which the reference puts only in the report and the webhooks.
    doc["state"] = _check_state(archive.state)
    if recording.recording_metadata is not None:
        doc["recording_metadata"] = recording.recording_metadata
    return doc


def split_archive_end_metadata(
    recording: RecordingInfo,
    pieces: Sequence[ArchiveInfo],
    archive_dir: Path,
    node: Node | None = None,
    stats: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`split-archive-end-<cid>.json`: the end of one connection's split series.

    As in seed 000 it names itself in `file_path` / `filename`, carries `split_last_index` and
    the series' start (first piece) and stop (last piece); it has no `size` and no video size.
    `stats` defaults to the last piece's (the live counters are cumulative per connection).
    """
    if not pieces:
        raise ValueError("a split series has at least one piece")
    node = node or Node()
    ordered = sorted(pieces, key=_split_index_of)
    connection = ordered[-1].connection
    if any(piece.connection.connection_id != connection.connection_id for piece in ordered):
        raise ValueError("split pieces of more than one connection")
    audio, video = _media_fields(connection, None)
    doc: dict[str, Any] = {
        **audio,
        "split_last_index": split_index_text(_split_index_of(ordered[-1])),
        "recording_id": recording.recording_id,
    }
    name = split_archive_end_name(connection.connection_id)
    doc.update(_file_fields(archive_dir, recording.recording_id, name))
    doc.update(_ids(recording, connection))
    doc.update(_times(recording, ordered[0].started_at, ordered[-1].stopped_at))
    doc["stats"] = dict(ordered[-1].stats if stats is None else stats)
    doc.update(label=node.label, node_name=node.node_name)
    doc.update(video)
    doc["format"] = recording.format
    return doc


def _split_index_of(piece: ArchiveInfo) -> int:
    if piece.split_index is None:
        raise ValueError("a single archive is not a split piece")
    return piece.split_index


def report(
    recording: RecordingInfo,
    archives: Sequence[ArchiveInfo],
    archive_dir: Path,
    node: Node | None = None,
) -> dict[str, Any]:
    """`report-<recording_id>.json`: every archive of the recording, grouped per connection.

    `archives` holds every single archive and split piece to report, in any order. As in seed
    000 there is one entry per connection: the single archive's file fields when there is one,
    `split_last_index` when there are split pieces (both in dual output), the times of the
    whole. Ours: `split_archives`, every piece with its file fields and times, and `state`.
    """
    if recording.stopped_at is None:
        raise ValueError("the report is written once the recording has stopped")
    node = node or Node()
    rid = recording.recording_id
    singles: dict[str, ArchiveInfo] = {}
    pieces: dict[str, list[ArchiveInfo]] = {}
    order: list[str] = []
    for archive in sorted(archives, key=lambda a: (a.started_at, a.split_index or 0)):
        cid = archive.connection.connection_id
        if cid not in singles and cid not in pieces:
            order.append(cid)
        if archive.split_index is None:
            if cid in singles:
                raise ValueError(f"two single archives for connection {cid!r}")
            singles[cid] = archive
        else:
            pieces.setdefault(cid, []).append(archive)

    entries = []
    for cid in order:
        single = singles.get(cid)
        series = sorted(pieces.get(cid, ()), key=_split_index_of)
        first = single or series[0]
        connection = first.connection
        entry: dict[str, Any] = {
            "client_id": connection.effective_client_id,
            "bundle_id": connection.effective_bundle_id,
            "connection_id": cid,
        }
        if single is not None:
            media_name, metadata_name = _names(recording, single)
            entry.update(_file_fields(archive_dir, rid, media_name))
            entry.update(_file_fields(archive_dir, rid, metadata_name, "metadata_"))
            entry["size"] = single.size
            started_at, stopped_at = single.started_at, single.stopped_at
        else:
            started_at, stopped_at = series[0].started_at, series[-1].stopped_at
        times = _times(recording, started_at, stopped_at)
        entry.update(
            start_time_offset=times["start_time_offset"],
            start_timestamp=times["start_timestamp"],
            stop_time_offset=times["stop_time_offset"],
            stop_timestamp=times["stop_timestamp"],
        )
        if series:
            entry["split_last_index"] = split_index_text(_split_index_of(series[-1]))
        entry.update(label=node.label, node_name=node.node_name)
        # Ours, below.
        entry["state"] = _check_state(single.state if single is not None else series[-1].state)
        if series:
            entry["split_archives"] = [
                _report_piece(recording, piece, archive_dir) for piece in series
            ]
        entries.append(entry)

    doc: dict[str, Any] = {"archives": entries, "channel_id": recording.channel_id}
    if recording.session_id is not None:
        doc["session_id"] = recording.session_id  # ours: the recording.report webhook has it
    doc["created_at"] = unix_seconds(recording.created_at)
    if recording.expire_time is not None:
        doc["expire_time"] = recording.expire_time
        doc["expired_at"] = unix_seconds(recording.created_at) + recording.expire_time
    doc.update(_file_fields(archive_dir, rid, report_name(rid)))
    doc["recording_id"] = rid
    doc.update(label=node.label, node_name=node.node_name)
    if recording.split_duration is not None:
        doc["split_duration"] = recording.split_duration
    doc["split_only"] = recording.split_only
    if recording.recording_metadata is not None:
        doc["recording_metadata"] = recording.recording_metadata
    doc["start_timestamp"] = rfc3339(recording.created_at)
    doc["stop_timestamp"] = rfc3339(recording.stopped_at)
    # Ours: the same two moments in UNIX seconds, as every other document has them.
    doc["start_time"] = unix_seconds(recording.created_at)
    doc["stop_time"] = unix_seconds(recording.stopped_at)
    doc["format"] = recording.format
    return doc


def _report_piece(recording: RecordingInfo, piece: ArchiveInfo, archive_dir: Path) -> dict:
    media_name, metadata_name = _names(recording, piece)
    rid = recording.recording_id
    doc: dict[str, Any] = {"split_index": split_index_text(_split_index_of(piece))}
    doc.update(_file_fields(archive_dir, rid, media_name))
    doc.update(_file_fields(archive_dir, rid, metadata_name, "metadata_"))
    doc["size"] = piece.size
    times = _times(recording, piece.started_at, piece.stopped_at)
    for key in ("start_time_offset", "start_timestamp", "stop_time_offset", "stop_timestamp"):
        doc[key] = times[key]
    doc["state"] = _check_state(piece.state)
    return doc


# Counters of the live recorder (`LiveRecording.stats()` per stream) summed into the top of
# `stats`; the per-stream dicts are kept whole under `streams`.
_SUMMED_COUNTERS = (
    "packets",
    "bytes",
    "lost",
    "late",
    "duplicates",
    "frames",
    "dropped_frames",
    "keyframes",
    "malformed_packets",
    "srtp_failures",
    "plis_sent",
    "firs_sent",
)


def archive_stats(streams: Sequence[Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
    """The `stats` object (the seed omits its contents; these are ours): totals of the live
    recorder's per-stream counters, the streams themselves, and any `extra` fields."""
    totals = {
        name: sum(int(stream.get(name) or 0) for stream in streams) for name in _SUMMED_COUNTERS
    }
    return {**totals, **extra, "streams": [dict(stream) for stream in streams]}


# ---------------------------------------------------------------------------------------------
# Writing


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new entry in `directory` durable (POSIX: fsync the directory)."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_json_atomically(path: Path, doc: Mapping[str, Any]) -> None:
    """Write `doc` to `path` so that a reader or a crash sees the old file or the whole new one.

    A temporary file in the same directory (a rename is atomic only within one file system) is
    written, fsynced and renamed over `path`, then the directory is fsynced so the rename
    survives a power cut. The temporary name starts with a dot, which no archive file does.
    """
    path = Path(path)
    text = json.dumps(doc, ensure_ascii=False, indent=2, allow_nan=False) + "\n"
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(path.parent)
