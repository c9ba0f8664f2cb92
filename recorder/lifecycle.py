"""Recordings and their connections: what the control plane starts, changes and stops.

A recording belongs to a channel (and optionally a session) of the SFU and has connections
(participants). Each connection that is not blocked gets a `ConnectionRecorder`: UDP ports,
live ingest and its files. Every state change is written to the store together with the
lifecycle event it causes (the webhook outbox of the next layer), and every finished file gets
its JSON document in `archive_dir/<recording_id>/`, named and shaped like the reference
product's (recorder.layout).

Everything here runs on the service's event loop. The connections themselves record either on
that loop or in worker processes (recorder.workers); one task ticks the lifecycle (announcing
archives that started, expiry, the disk floor, and the local connections' reorder gaps, RTCP
feedback and split keyframe requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recorder import layout
from recorder.codecs import DEPACKETIZERS
from recorder.connection import (
    ConnectionSettings,
    FinishedFile,
    MediaRequest,
    NoPortsAvailable,
    PortPool,
)
from recorder.errors import NoMediaError, RecorderError, SdpError, UnsupportedError
from recorder.ids import InvalidIdError, new_recording_id, validate_id
from recorder.live import srtp_sessions
from recorder.mux import WRITERS, writer_class
from recorder.recovery import recover_archive
from recorder.store import ConflictError, Event, RecordingRow, Store
from recorder.workers import (
    ConnectionEvents,
    ConnectionLost,
    Handle,
    connection_host,
    default_workers,
)

TICK = 0.1
MAX_SPLIT_DURATION = 86400
# Seconds between checks of the free disk space while recordings run.
DISK_CHECK_INTERVAL = 1.0


class LifecycleError(RecorderError):
    """A request the lifecycle refuses; `error_type` and `status` are what the API answers."""

    error_type = "INVALID-PARAMETER"
    status = 400

    def __init__(self, detail: str, error_type: str | None = None, status: int | None = None):
        super().__init__(detail)
        if error_type is not None:
            self.error_type = error_type
        if status is not None:
            self.status = status


def _not_found(what: str, ident: str) -> LifecycleError:
    error_type = "RECORDING-NOT-FOUND" if what == "recording" else "CONNECTION-NOT-FOUND"
    return LifecycleError(f"{what} {ident!r} not found", error_type, 404)


@dataclass(slots=True)
class MediaSpec:
    codec: str
    payload_type: int
    ssrc: int | None = None
    clock_rate: int | None = None
    channels: int | None = None
    fmtp: dict[str, str] = field(default_factory=dict)
    srtp_suite: str | None = None
    srtp_key: str | None = None


@dataclass(slots=True)
class ConnectionSpec:
    connection_id: str
    client_id: str | None = None
    bundle_id: str | None = None
    recording_block: bool = False
    audio: MediaSpec | None = None
    video: MediaSpec | None = None


@dataclass(slots=True)
class RecordingSpec:
    channel_id: str
    session_id: str | None = None
    format: str | None = None
    split_duration: int | None = None
    split_only: bool = False
    expire_time: int | None = None
    recording_metadata: Any = None
    connections: list[ConnectionSpec] = field(default_factory=list)


@dataclass(slots=True)
class _Connection:
    spec: ConnectionSpec
    recorder: Handle | None  # None: recording_block
    ports: dict[str, int]  # taken from the pool until `ports_released`
    state: str = "recording"
    ports_released: bool = False
    archive_id: int | None = None  # the single archive's store row, once media arrived
    announced: bool = False  # archive.started sent
    split_rows: dict[int, int] = field(default_factory=dict)  # split index -> store row
    pieces: list[layout.ArchiveInfo] = field(default_factory=list)
    single: layout.ArchiveInfo | None = None


@dataclass(slots=True)
class _Recording:
    row: RecordingRow
    connections: dict[str, _Connection] = field(default_factory=dict)
    expires_at: float | None = None
    archives: list[layout.ArchiveInfo] = field(default_factory=list)
    stopping: asyncio.Future[None] | None = None  # set once a stop began; done when it ended


class RecordingManager:
    """The recordings of one service; `start` and `close` bracket its life."""

    def __init__(self, config: Any, store: Store) -> None:
        self.config = config
        self.store = store
        first, last = config.rtp_port_range
        self.ports = PortPool(first, last)
        workers = getattr(config, "workers", None)
        self.host = connection_host(default_workers() if workers is None else workers)
        self._running: dict[str, _Recording] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._node = layout.Node()
        self._disk_checked = 0.0
        # Counters of connections that ended, so the *_total metrics never go down.
        self._finished_totals: dict[str, float] = {}

    def _ensure_clock(self) -> None:
        # Started by the first request, on the loop the requests run on.
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def open(self) -> None:
        """Start the worker processes, if any, so the first request does not wait for them."""
        await self.host.open()

    async def close(self) -> None:
        """Service shutdown: stop every running recording cleanly, files and reports included,
        then the workers."""
        for recording_id in list(self._running):
            await self._stop(recording_id)
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        await self.host.close()

    async def refresh(self, recording_id: str | None = None) -> None:
        """Bring the counters of running connections (one recording's, or all) up to date for
        the views that follow; connections in worker processes report them on request."""
        recordings = (
            list(self._running.values())
            if recording_id is None
            else [r for r in (self._running.get(recording_id),) if r is not None]
        )
        await self.host.refresh(
            connection.recorder
            for recording in recordings
            for connection in recording.connections.values()
            if connection.recorder is not None and connection.state == "recording"
        )

    # -- requests ---------------------------------------------------------------------------

    async def create_recording(self, spec: RecordingSpec) -> dict[str, Any]:
        config = self.config
        channel_id = _valid_id(spec.channel_id, "channel_id")
        session_id = None if spec.session_id is None else _valid_id(spec.session_id, "session_id")
        container = spec.format or config.default_format
        if container not in WRITERS:
            raise LifecycleError(f"format must be one of {', '.join(WRITERS)}")
        if spec.split_only and not spec.split_duration:
            raise LifecycleError("split_only needs split_duration")
        if spec.split_duration is not None and not 1 <= spec.split_duration <= MAX_SPLIT_DURATION:
            raise LifecycleError(f"split_duration must be 1-{MAX_SPLIT_DURATION} seconds")
        expire_time = spec.expire_time or config.max_expire_time
        if not 1 <= expire_time <= config.max_expire_time:
            raise LifecycleError(f"expire_time must be 1-{config.max_expire_time} seconds")
        ids = [c.connection_id for c in spec.connections]
        if len(set(ids)) != len(ids):
            raise LifecycleError("two connections with one connection_id", "CONNECTION-EXISTS", 409)
        for connection in spec.connections:
            self._check_connection(connection, container)
        self._check_disk()
        needed = sum(len(_media_requests(c)) for c in spec.connections if not c.recording_block)
        if needed > self.ports.free:
            # Checked before the recording is stored, so a refusal leaves nothing behind.
            raise LifecycleError(
                f"{needed} RTP port pairs needed, {self.ports.free} free",
                "NO-PORTS-AVAILABLE",
                503,
            )
        now = time.time()
        recording_id = new_recording_id()
        try:
            row = self.store.create_recording(
                recording_id,
                channel_id,
                session_id=session_id,
                format=container,
                split_duration=spec.split_duration,
                split_only=spec.split_only,
                expire_time=expire_time,
                recording_metadata=spec.recording_metadata,
                created_at=now,
                started_at=now,
                expires_at=now + expire_time,
                events=[
                    Event(
                        "recording.started",
                        {
                            "recording_id": recording_id,
                            "channel_id": channel_id,
                            "session_id": session_id,
                            "format": container,
                            "split_duration": spec.split_duration,
                            "split_only": spec.split_only,
                            "expire_time": expire_time,
                            "recording_metadata": spec.recording_metadata,
                            "created_time": layout.unix_seconds(now),
                            "created_timestamp": layout.rfc3339(now),
                        },
                    )
                ],
            )
        except ConflictError as error:
            raise LifecycleError(str(error), "STARTED-RECORDING", 409) from None
        recording = _Recording(row, expires_at=now + expire_time)
        self._running[recording_id] = recording
        self._ensure_clock()
        try:
            for connection in spec.connections:
                await self._start_connection(recording, connection)
        except BaseException:
            await self._stop(recording_id, failed=True)
            raise
        return self._view(recording.row.id)

    async def add_connection(self, recording_id: str, spec: ConnectionSpec) -> dict[str, Any]:
        recording = self._live(recording_id)
        if spec.connection_id in recording.connections:
            raise LifecycleError(
                f"connection {spec.connection_id!r} exists", "CONNECTION-EXISTS", 409
            )
        self._check_connection(spec, recording.row.format)
        self._check_disk()
        await self._start_connection(recording, spec)
        return self._connection_view(recording_id, spec.connection_id)

    async def remove_connection(self, recording_id: str, connection_id: str) -> dict[str, Any]:
        recording = self._live(recording_id)
        connection = recording.connections.get(connection_id)
        if connection is None or connection.state not in ("recording", "blocked"):
            raise _not_found("connection", connection_id)
        await self._end_connection(recording, connection)
        return self._connection_view(recording_id, connection_id)

    async def stop_recording(self, recording_id: str, failed: bool = False) -> dict[str, Any]:
        return await self._stop(recording_id, failed)

    async def _stop(
        self, recording_id: str, failed: bool = False, failure: str | None = None
    ) -> dict[str, Any]:
        recording = self._running.get(recording_id)
        if recording is None:
            if self.store.get_recording(recording_id) is None:
                raise _not_found("recording", recording_id)
            return self._view(recording_id)  # already stopped: stopping again is harmless
        if recording.stopping is not None:
            # Stopped by someone else meanwhile (a request, expiry, the disk floor): one stop.
            await asyncio.shield(recording.stopping)
            return self._view(recording_id)
        recording.stopping = asyncio.get_running_loop().create_future()
        try:
            self.store.set_recording_state(recording_id, "stopping")
            await self._end_connections(recording, failure)
            self._report(recording, failed)
        finally:
            self._running.pop(recording_id, None)
            if not recording.stopping.done():
                recording.stopping.set_result(None)
        return self._view(recording_id)

    async def _end_connections(self, recording: _Recording, failure: str | None) -> None:
        # Split pieces finished while ending find the recording still listed. Connections in
        # different workers finish (fsync included) at the same time.
        await asyncio.gather(
            *(
                self._end_connection(recording, connection, failure)
                for connection in recording.connections.values()
                if connection.state in ("recording", "blocked")
            )
        )

    def _report(self, recording: _Recording, failed: bool) -> None:
        recording_id = recording.row.id
        stopped_at = time.time()
        info = self._recording_info(self.store.get_recording(recording_id) or recording.row)
        info = dataclasses.replace(info, stopped_at=stopped_at)
        directory = self._directory(recording_id)
        doc = layout.report(info, recording.archives, self.config.archive_dir, self._node)
        directory.mkdir(parents=True, exist_ok=True)
        layout.write_json_atomically(directory / layout.report_name(recording_id), doc)
        self.store.set_recording_state(
            recording_id,
            "failed" if failed else "stopped",
            stopped_at=stopped_at,
            events=[Event("recording.report", doc)],
        )

    def get_recording(self, recording_id: str) -> dict[str, Any]:
        if self.store.get_recording(recording_id) is None:
            raise _not_found("recording", recording_id)
        return self._view(recording_id)

    def list_recordings(
        self, state: str | None = None, channel_id: str | None = None
    ) -> list[dict[str, Any]]:
        rows = self.store.list_recordings(state=state, channel_id=channel_id)
        return [self._view(row.id) for row in rows]

    def archiving(self) -> list[dict[str, Any]]:
        """The reference's ListArchiving: what is being recorded right now, per connection."""
        now = time.monotonic()
        items = []
        for recording in self._running.values():
            for cid, connection in recording.connections.items():
                recorder = connection.recorder
                if recorder is None or connection.state != "recording":
                    continue
                status = recorder.status()
                stats = status.stats
                origin = status.origin
                seconds = 0.0 if origin is None else max(0.0, time.time() - origin)
                octets = sum(int(s.get("bytes") or 0) for s in stats)
                items.append(
                    {
                        "recording_id": recording.row.id,
                        "channel_id": recording.row.channel_id,
                        "connection_id": cid,
                        "seconds": round(seconds, 3),
                        "codecs": {str(s["media"]): s["codec"] for s in stats},
                        "packets": sum(int(s.get("packets") or 0) for s in stats),
                        "lost": sum(int(s.get("lost") or 0) for s in stats),
                        "bitrate_kbps": round(octets * 8 / seconds / 1000, 1) if seconds else 0,
                        "last_keyframe_age": status.last_keyframe_age(now),
                    }
                )
        return items

    def metrics(self) -> dict[str, float]:
        totals: dict[str, float] = {
            "recordings_running": len(self._running),
            "connections_recording": 0,
            "packets_total": 0,
            "bytes_total": 0,
            "lost_total": 0,
            "frames_total": 0,
            "dropped_frames_total": 0,
            "srtp_failures_total": 0,
            "ports_free": self.ports.free,
        }
        for name, value in self._finished_totals.items():
            totals[name] += value
        for recording in self._running.values():
            for connection in recording.connections.values():
                if connection.recorder is None or connection.state != "recording":
                    continue
                totals["connections_recording"] += 1
                for name, value in _counter_totals(connection.recorder.status().stats).items():
                    totals[name] += value
        return totals

    # -- connections ------------------------------------------------------------------------

    def _check_connection(self, spec: ConnectionSpec, container: str) -> None:
        _valid_id(spec.connection_id, "connection_id")
        if spec.client_id is not None:
            _valid_id(spec.client_id, "client_id")
        if spec.bundle_id is not None:
            _valid_id(spec.bundle_id, "bundle_id")
        media = _media_requests(spec)
        if not media and not spec.recording_block:
            raise LifecycleError(f"connection {spec.connection_id!r} has neither audio nor video")
        for request in media:
            if request.codec.upper() == "H265" and container == "webm":
                raise LifecycleError(
                    "H.265 can be recorded to MP4 only", "WEBM-H265-UNSUPPORTED", 400
                )
            try:
                section = request.section(0)
                # Keys are checked now, before anything is stored or bound.
                srtp_sessions([section])
            except (UnsupportedError, SdpError) as error:
                raise LifecycleError(str(error)) from None
            except RecorderError as error:  # SrtpKeyError: a bad suite or key
                raise LifecycleError(str(error)) from None
            kind = DEPACKETIZERS[request.codec.upper()].kind
            if kind != request.kind:
                raise LifecycleError(
                    f"connection {spec.connection_id!r}: {request.codec} is a {kind} codec, "
                    f"given as {request.kind}"
                )
        try:
            writer_class(container).check_codecs([r.codec.upper() for r in media])
        except UnsupportedError as error:
            raise LifecycleError(str(error)) from None

    def _check_disk(self) -> None:
        low = self._low_disk()
        if low is not None:
            raise LifecycleError(low, "INSUFFICIENT-DISK-SPACE", 507)

    def _low_disk(self) -> str | None:
        """Why there is not enough free space to record (None when there is)."""
        for name in ("archive_dir", "archive_tmp_dir"):
            directory = getattr(self.config, name)
            directory.mkdir(parents=True, exist_ok=True)
            free = self._free_space(directory)
            if free < self.config.min_free_space:
                return (
                    f"{free} bytes free in {name}, below the configured minimum of "
                    f"{self.config.min_free_space}"
                )
        return None

    @staticmethod
    def _free_space(directory: Path) -> int:
        return shutil.disk_usage(directory).free

    async def _start_connection(self, recording: _Recording, spec: ConnectionSpec) -> None:
        row = recording.row
        cid = spec.connection_id
        media = _media_requests(spec)
        recorder = None
        ports: dict[str, int] = {}
        if not spec.recording_block:
            ports = self._take_ports(media)
            container = row.format
            split = row.split_duration
            settings = ConnectionSettings(
                media,
                container=container,
                tmp_dir=self.config.archive_tmp_dir / row.id,
                final_dir=self._directory(row.id),
                ports=ports,
                single_name=None if row.split_only else layout.archive_name(cid, container),
                split_name=(
                    functools.partial(layout.split_archive_name, cid, ext=container)
                    if split
                    else None
                ),
                split_duration=split,
                listen=self.config.rtp_listen,
                keyframe_interval=self.config.pli_interval,
            )
            events = ConnectionEvents(
                on_split=lambda finished: self._on_split(row.id, cid, finished),
                on_piece_open=lambda index: self._on_piece_open(row.id, cid, index),
                on_lost=lambda reason: self._on_lost(row.id, cid, reason),
            )
            try:
                recorder = await self.host.start(settings, events)
            except BaseException as error:
                self._give_back(ports)
                if isinstance(error, (SdpError, UnsupportedError)):
                    raise LifecycleError(str(error)) from None
                if isinstance(error, RecorderError):  # a port could not be bound
                    raise LifecycleError(str(error), "NO-PORTS-AVAILABLE", 503) from None
                raise
            if recording.stopping is not None:
                # The recording was stopped while this connection started.
                with contextlib.suppress(RecorderError):
                    await self.host.stop(recorder)
                self._give_back(ports)
                raise LifecycleError(
                    f"recording {row.id} stopped while connection {cid!r} started",
                    "RECORDING-NOT-RUNNING",
                    409,
                )
        connection = _Connection(
            spec, recorder, ports, state="blocked" if spec.recording_block else "recording"
        )
        recording.connections[cid] = connection
        self.store.add_connection(
            row.id,
            cid,
            client_id=spec.client_id,
            bundle_id=spec.bundle_id,
            recording_block=spec.recording_block,
            media=self._media_view(connection),
        )

    def _take_ports(self, media: Sequence[MediaRequest]) -> dict[str, int]:
        """A port pair per medium from the pool, all or none."""
        ports: dict[str, int] = {}
        try:
            for request in media:
                ports[request.kind] = self.ports.take(self.config.rtp_listen)
        except NoPortsAvailable as error:
            self._give_back(ports)
            raise LifecycleError(str(error), "NO-PORTS-AVAILABLE", 503) from None
        return ports

    def _give_back(self, ports: dict[str, int]) -> None:
        for port in ports.values():
            self.ports.give_back(port)

    def _release_ports(self, connection: _Connection) -> None:
        # Exactly once: a port given back twice could be taken from whoever has it now.
        if not connection.ports_released:
            connection.ports_released = True
            self._give_back(connection.ports)

    async def _end_connection(
        self, recording: _Recording, connection: _Connection, failure: str | None = None
    ) -> None:
        """Finalize and move the connection's files. With `failure`, the finished file is
        still documented and kept (it plays), but announced as failed with that reason."""
        recorder = connection.recorder
        connection.state = "ended"
        if recorder is not None:
            try:
                single = await self.host.stop(recorder)
            except NoMediaError:
                connection.state = "failed"
                self._fail_archives(recording, connection, "no decodable media arrived")
            except ConnectionLost:
                # The worker died while finishing them: the files are as its crash left them.
                self._recover_files(recording, connection)
            except (RecorderError, OSError) as error:
                # Finishing failed (an fsync or a move met a disk error): the archive is not
                # sound; what was written stays in the temporary directory.
                connection.state = "failed"
                self._fail_archives(recording, connection, f"finishing the archive failed: {error}")
            else:
                if single is not None:
                    self._document_single(recording, connection, single, failure)
            finally:
                self._release_ports(connection)
            self._count_finished(recorder)
        self._close_connection(recording, connection)

    def _on_lost(self, recording_id: str, cid: str, reason: str) -> None:
        """The worker recording a connection died: its files are finished as the recovery at
        start finishes a crashed process's, and the connection ends; the recording goes on."""
        recording = self._running.get(recording_id)
        connection = recording.connections.get(cid) if recording is not None else None
        if recording is None or connection is None or connection.state != "recording":
            return
        connection.state = "ended"
        self._release_ports(connection)
        self._recover_files(recording, connection)
        if connection.recorder is not None:
            self._count_finished(connection.recorder)
        self._close_connection(recording, connection)

    def _recover_files(self, recording: _Recording, connection: _Connection) -> None:
        row = recording.row
        cid = connection.spec.connection_id
        recorder = connection.recorder
        if not connection.announced and recorder is not None and recorder.archive_started:
            self._announce(recording, connection)  # its store row is what recovery works from
        info = self._recording_info(row)
        rows = {c.connection_id: c for c in self.store.list_connections(row.id)}
        for archive in self.store.list_archives(row.id):
            if archive.connection_id != cid or archive.state != "writing":
                continue
            for recovered in recover_archive(
                self.store, info, archive, rows, self.config.archive_dir, self._node
            ):
                recording.archives.append(recovered)
                if recovered.is_split:
                    connection.pieces.append(recovered)
                else:
                    connection.single = recovered

    def _fail_archives(self, recording: _Recording, connection: _Connection, reason: str) -> None:
        row = recording.row
        for archive_id in [connection.archive_id, *connection.split_rows.values()]:
            if archive_id is not None:
                self.store.update_archive(
                    archive_id,
                    state="failed",
                    events=[
                        Event(
                            "archive.failed",
                            {
                                "recording_id": row.id,
                                "channel_id": row.channel_id,
                                "connection_id": connection.spec.connection_id,
                                "reason": reason,
                            },
                        )
                    ],
                )

    def _document_single(
        self,
        recording: _Recording,
        connection: _Connection,
        single: FinishedFile,
        failure: str | None,
    ) -> None:
        row = recording.row
        assert connection.recorder is not None
        info = self._recording_info(row)
        archive = self._archive_info(connection.recorder, connection, single, None)
        connection.single = archive
        recording.archives.append(archive)
        doc = layout.archive_metadata(info, archive, self.config.archive_dir, self._node)
        layout.write_json_atomically(
            self._directory(row.id) / layout.archive_metadata_name(connection.spec.connection_id),
            doc,
        )
        archive_id = self._ensure_archive_row(recording, connection)
        event = (
            Event("archive.available", doc)
            if failure is None
            else Event("archive.failed", {**doc, "reason": failure})
        )
        self.store.update_archive(
            archive_id,
            state="available" if failure is None else "failed",
            size=single.size,
            stopped_at=archive.stopped_at,
            metadata=doc,
            events=[event],
        )

    def _count_finished(self, recorder: Handle) -> None:
        # Counters of connections that ended, so the *_total metrics never go down.
        for name, value in _counter_totals(recorder.status().stats).items():
            self._finished_totals[name] = self._finished_totals.get(name, 0) + value

    def _close_connection(self, recording: _Recording, connection: _Connection) -> None:
        """The connection's last document (the end of its split series) and state."""
        row = recording.row
        cid = connection.spec.connection_id
        events: list[Event] = []
        if connection.pieces:
            doc = layout.split_archive_end_metadata(
                self._recording_info(row), connection.pieces, self.config.archive_dir, self._node
            )
            layout.write_json_atomically(
                self._directory(row.id) / layout.split_archive_end_name(cid), doc
            )
            events.append(Event("split-archive.end", doc))
        self.store.set_connection_state(row.id, cid, "ended", ended_at=time.time(), events=events)

    def _ensure_archive_row(self, recording: _Recording, connection: _Connection) -> int:
        if not connection.announced:
            self._announce(recording, connection)
        assert connection.archive_id is not None
        return connection.archive_id

    def _announce(self, recording: _Recording, connection: _Connection) -> None:
        """The connection's first decodable media arrived: its archive has started."""
        row = recording.row
        cid = connection.spec.connection_id
        connection.announced = True
        recorder = connection.recorder
        started = (recorder.status().origin if recorder is not None else None) or time.time()
        if row.split_only:
            name = layout.split_archive_name(cid, 1, row.format)
        else:
            name = layout.archive_name(cid, row.format)
        event = Event(
            "archive.started",
            {
                "recording_id": row.id,
                "channel_id": row.channel_id,
                "session_id": row.session_id,
                "connection_id": cid,
                "client_id": connection.spec.client_id or cid,
                "bundle_id": connection.spec.bundle_id or connection.spec.client_id or cid,
                "filename": name,
                "file_path": str(self._directory(row.id) / name),
                "audio_codec_type": _codec(connection.spec.audio),
                "video_codec_type": _codec(connection.spec.video),
                "start_time": layout.unix_seconds(started),
                "start_timestamp": layout.rfc3339(started),
                "start_time_offset": layout.time_offset(started, row.created_at),
                "recording_metadata": row.recording_metadata,
            },
            recording_id=row.id,
        )
        if row.split_only:
            self.store.add_events([event])  # the piece's row exists since it was opened
            return
        archive = self.store.add_archive(
            row.id,
            cid,
            kind="single",
            temp_path=self.config.archive_tmp_dir / row.id / name,
            final_path=self._directory(row.id) / name,
            started_at=time.time(),
            events=[event],
        )
        connection.archive_id = archive.id

    def _on_piece_open(self, recording_id: str, cid: str, index: int) -> None:
        """A split piece's file was opened: registered as being written, for crash recovery."""
        recording = self._running.get(recording_id)
        connection = recording.connections.get(cid) if recording is not None else None
        if recording is None or connection is None:
            return
        name = layout.split_archive_name(cid, index, recording.row.format)
        archive = self.store.add_archive(
            recording_id,
            cid,
            kind="split",
            split_index=index,
            temp_path=self.config.archive_tmp_dir / recording_id / name,
            final_path=self._directory(recording_id) / name,
            started_at=time.time(),
        )
        connection.split_rows[index] = archive.id

    def _on_split(self, recording_id: str, cid: str, finished: FinishedFile) -> None:
        recording = self._running.get(recording_id)
        connection = recording.connections.get(cid) if recording is not None else None
        if recording is None or connection is None or connection.recorder is None:
            return
        info = self._recording_info(recording.row)
        archive = self._archive_info(connection.recorder, connection, finished, finished.index)
        connection.pieces.append(archive)
        recording.archives.append(archive)
        doc = layout.archive_metadata(info, archive, self.config.archive_dir, self._node)
        name = layout.split_archive_metadata_name(cid, finished.index)
        layout.write_json_atomically(self._directory(recording_id) / name, doc)
        self.store.update_archive(
            connection.split_rows[finished.index],
            state="available",
            started_at=archive.started_at,
            size=finished.size,
            stopped_at=archive.stopped_at,
            metadata=doc,
            events=[Event("split-archive.available", doc)],
        )

    # -- clock ------------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            # One bad tick must not stop the clock for everyone.
            with contextlib.suppress(Exception):
                await self._tick(time.monotonic())

    async def _tick(self, now: float) -> None:
        wall = time.time()
        self.host.tick(now)
        if self._running and now - self._disk_checked >= DISK_CHECK_INTERVAL:
            self._disk_checked = now
            low = self._low_disk()
            if low is not None:
                # Below the floor, every running archive is finalized while it still can be,
                # and announced as failed.
                for recording_id in list(self._running):
                    await self._stop(recording_id, failed=True, failure=low)
                return
        for recording_id, recording in list(self._running.items()):
            if recording.stopping is not None:
                continue
            if recording.expires_at is not None and wall >= recording.expires_at:
                await self._stop(recording_id)
                continue
            for connection in recording.connections.values():
                recorder = connection.recorder
                if recorder is None or connection.state != "recording":
                    continue
                if not connection.announced and recorder.archive_started:
                    self._announce(recording, connection)

    # -- views and documents ----------------------------------------------------------------

    def _live(self, recording_id: str) -> _Recording:
        recording = self._running.get(recording_id)
        if recording is None or recording.stopping is not None:
            if self.store.get_recording(recording_id) is None:
                raise _not_found("recording", recording_id)
            raise LifecycleError(
                f"recording {recording_id} is not running", "RECORDING-NOT-RUNNING", 409
            )
        return recording

    def _directory(self, recording_id: str) -> Path:
        return layout.recording_dir(self.config.archive_dir, recording_id)

    @staticmethod
    def _recording_info(row: RecordingRow) -> layout.RecordingInfo:
        return layout.RecordingInfo(
            recording_id=row.id,
            channel_id=row.channel_id,
            format=row.format,
            created_at=row.created_at,
            session_id=row.session_id,
            stopped_at=row.stopped_at,
            expire_time=row.expire_time,
            split_duration=row.split_duration,
            split_only=row.split_only,
            recording_metadata=row.recording_metadata,
        )

    def _archive_info(
        self,
        recorder: Handle,
        connection: _Connection,
        finished: FinishedFile,
        split_index: int | None,
    ) -> layout.ArchiveInfo:
        spec = connection.spec
        status = recorder.status()
        origin = status.origin or time.time()
        started = origin + finished.start_us / 1_000_000
        width = height = None
        for track in finished.tracks:
            if track.get("kind") == "video" and track.get("width"):
                width, height = track["width"], track["height"]
        if width is None and spec.video is not None:
            # A split piece: the largest picture of the connection so far.
            largest = status.largest_picture
            if largest[0]:
                width, height = largest
        return layout.ArchiveInfo(
            connection=layout.ConnectionInfo(
                spec.connection_id,
                spec.client_id,
                spec.bundle_id,
                audio=layout.MediaInfo(spec.audio.codec) if spec.audio else None,
                video=layout.MediaInfo(spec.video.codec) if spec.video else None,
            ),
            started_at=started,
            stopped_at=started + finished.duration,
            size=finished.size,
            split_index=split_index,
            video_width=width,
            video_height=height,
            stats=layout.archive_stats(status.stats),
        )

    def _media_view(self, connection: _Connection) -> dict[str, Any]:
        view: dict[str, Any] = {}
        for kind in ("audio", "video"):
            media: MediaSpec | None = getattr(connection.spec, kind)
            if media is None:
                view[kind] = None
                continue
            port = connection.ports.get(kind)
            view[kind] = {
                "codec": media.codec.upper(),
                "payload_type": media.payload_type,
                "port": port,
                "rtcp_port": None if port is None else port + 1,
            }
        return view

    def _connection_view(self, recording_id: str, connection_id: str) -> dict[str, Any]:
        row = self.store.get_connection(recording_id, connection_id)
        if row is None:
            raise _not_found("connection", connection_id)
        live = self._running.get(recording_id)
        connection = live.connections.get(connection_id) if live is not None else None
        archives = [
            {
                "kind": archive.kind,
                "split_index": archive.split_index,
                "filename": Path(archive.final_path).name,
                "state": archive.state,
                "size": archive.size,
            }
            for archive in self.store.list_archives(recording_id)
            if archive.connection_id == connection_id
        ]
        if connection is not None:
            state = connection.state
        elif row.recording_block:
            state = "blocked"
        elif row.state == "active":
            state = "recording"  # a recording that was running when the process stopped
        else:
            # Ended without a file: no decodable media ever came.
            usable = any(archive["state"] in ("available", "recovered") for archive in archives)
            state = "ended" if usable else "failed"
        recorder = connection.recorder if connection is not None else None
        return {
            "connection_id": connection_id,
            "client_id": row.client_id,
            "bundle_id": row.bundle_id,
            "recording_block": row.recording_block,
            "state": state,
            "audio": row.media.get("audio"),
            "video": row.media.get("video"),
            "archives": archives,
            "stats": recorder.status().stats if recorder is not None else [],
        }

    def _view(self, recording_id: str) -> dict[str, Any]:
        row = self.store.get_recording(recording_id)
        assert row is not None
        return {
            "recording_id": row.id,
            "channel_id": row.channel_id,
            "session_id": row.session_id,
            "state": row.state,
            "format": row.format,
            "split_duration": row.split_duration,
            "split_only": row.split_only,
            "expire_time": row.expire_time,
            "recording_metadata": row.recording_metadata,
            "created_at": layout.rfc3339(row.created_at),
            "created_at_unix": layout.unix_seconds(row.created_at),
            "stopped_at": None if row.stopped_at is None else layout.rfc3339(row.stopped_at),
            "connections": [
                self._connection_view(row.id, connection.connection_id)
                for connection in self.store.list_connections(row.id)
            ],
        }


COUNTERS = ("packets", "bytes", "lost", "frames", "dropped_frames", "srtp_failures")


def _counter_totals(streams: list[dict[str, object]]) -> dict[str, float]:
    return {
        f"{name}_total": float(sum(int(str(s.get(name) or 0)) for s in streams))
        for name in COUNTERS
    }


def _codec(media: MediaSpec | None) -> str | None:
    return media.codec.upper() if media is not None else None


def _valid_id(value: str, what: str) -> str:
    try:
        return validate_id(value, what)
    except InvalidIdError as error:
        raise LifecycleError(str(error)) from None


def _media_requests(spec: ConnectionSpec) -> list[MediaRequest]:
    requests = []
    for kind in ("audio", "video"):
        media: MediaSpec | None = getattr(spec, kind)
        if media is None:
            continue
        requests.append(
            MediaRequest(
                kind,
                media.codec,
                media.payload_type,
                media.clock_rate,
                media.channels,
                dict(media.fmtp),
                media.srtp_suite,
                media.srtp_key,
            )
        )
    return requests


__all__: Sequence[str] = [
    "ConnectionSpec",
    "LifecycleError",
    "MediaSpec",
    "RecordingManager",
    "RecordingSpec",
]
