"""One connection of a recording: its UDP ports, its live session and its archive files.

The lifecycle layer (recordings, the API, the store) allocates a port per medium from the
`PortPool` and describes each participant in `ConnectionSettings`; a `ConnectionRecorder` (in
the API process or in a worker, see recorder.workers) binds those ports (RTCP accepted muxed
there and on the next port), records into `archive_tmp_dir` (synced as the files grow, by
`recorder.writeback`), and on stop finalizes, fsyncs and moves the files into `archive_dir`,
telling its owner about each finished file through callbacks. Split pieces are moved as soon as
each is complete.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from recorder import layout, writeback
from recorder.archive import Archive
from recorder.errors import NoMediaError, RecorderError
from recorder.ingest import recorded_format
from recorder.live import DEFAULT_KEYFRAME_INTERVAL, LiveSession
from recorder.mux import Writer, WriterResult, writer_class
from recorder.mux.split import Piece, SplitWriter
from recorder.sdp import Crypto, MediaDescription, RtpFormat

# A keyframe is requested this long before a split boundary, so the cut lands close to it.
SPLIT_KEYFRAME_LEAD_US = 1_000_000
DEFAULT_CLOCK_RATES = {"audio": 48000, "video": 90000}


class NoPortsAvailable(RecorderError):
    """Every port pair of the configured range is taken."""


class PortPool:
    """Even/odd port pairs (RTP, RTCP) from a configured range, handed out and taken back."""

    def __init__(self, first: int, last: int) -> None:
        if first % 2:
            first += 1
        self._free = list(range(first, last, 2))
        self._used: set[int] = set()

    def take(self, host: str | None = None) -> int:
        """An even port P with P + 1 also reserved; `NoPortsAvailable` when none is left.

        With `host`, pairs that another process holds on that address are passed over (and
        kept for later): the range is shared with whatever else runs on the machine.
        """
        for _ in range(len(self._free)):
            port = self._free.pop(0)
            if host is None or _bindable(host, port):
                self._used.add(port)
                return port
            self._free.append(port)
        raise NoPortsAvailable("no RTP ports available in the configured range")

    @property
    def free(self) -> int:
        return len(self._free)

    def give_back(self, port: int) -> None:
        if port in self._used:
            self._used.remove(port)
            self._free.append(port)


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in (port, port + 1):
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((host, candidate))
            except OSError:
                return False
    return True


@dataclass(slots=True)
class MediaRequest:
    """What a client says of one medium of a connection (the API's `audio` / `video`)."""

    kind: str
    codec: str
    payload_type: int
    clock_rate: int | None = None
    channels: int | None = None
    fmtp: dict[str, str] = field(default_factory=dict)
    srtp_suite: str | None = None
    srtp_key: str | None = None  # base64 master key ‖ salt

    def section(self, port: int) -> tuple[MediaDescription, RtpFormat]:
        """The media section this request amounts to, received on `port` (RTCP on port + 1)."""
        codec = self.codec.upper()
        channels = self.channels or (2 if codec == "OPUS" else None)
        rtp_format = RtpFormat(
            self.payload_type,
            codec,
            self.clock_rate or DEFAULT_CLOCK_RATES.get(self.kind, 90000),
            channels,
            dict(self.fmtp),
        )
        crypto = []
        if self.srtp_suite and self.srtp_key:
            crypto.append(Crypto(1, self.srtp_suite, self.srtp_key))
        media = MediaDescription(
            self.kind,
            port,
            "RTP/SAVP" if crypto else "RTP/AVP",
            {self.payload_type: rtp_format},
            rtcp_port=port + 1,
            crypto=crypto,
        )
        # Refuses a codec we do not record before anything is bound.
        recorded_format(media)
        return media, rtp_format


@dataclass(slots=True)
class FinishedFile:
    """A file moved into the archive directory."""

    path: Path
    size: int
    duration: float
    start_us: int = 0  # on the connection's archive timeline
    index: int = 0  # split pieces: 1, 2, ...
    tracks: list[dict[str, Any]] = field(default_factory=list)  # single archive: per track


@dataclass(slots=True)
class ConnectionSettings:
    """How one connection is recorded: plain data, so a worker process can be handed it.

    `ports` are already allocated (RTP on each, RTCP accepted muxed there and on the next
    port); `single_name` None means split-only, `split_name` None means no split files.
    """

    media: list[MediaRequest]
    container: str
    tmp_dir: Path
    final_dir: Path
    ports: dict[str, int]
    single_name: str | None
    split_name: Callable[[int], str] | None = None  # picklable, e.g. a functools.partial
    split_duration: float | None = None
    listen: str = "0.0.0.0"
    keyframe_interval: float = DEFAULT_KEYFRAME_INTERVAL


@dataclass(slots=True)
class ConnectionStatus:
    """What the lifecycle reads of a running connection, as of one moment."""

    archive_started: bool = False
    origin: float | None = None  # UNIX time of the archive timeline's 0
    largest_picture: tuple[int, int] = (0, 0)
    last_keyframe_at: float | None = None  # time.monotonic() of the last video keyframe
    stats: list[dict[str, object]] = field(default_factory=list)

    def last_keyframe_age(self, now: float) -> float | None:
        """Seconds since a video keyframe was last seen (at tick resolution), None if never."""
        at = self.last_keyframe_at
        return None if at is None else round(now - at, 1)


class ConnectionRecorder:
    """Records one connection: `start`, `tick` from a clock task, `stop`."""

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        on_split: Callable[[FinishedFile], None] | None = None,
        on_piece_open: Callable[[int], None] | None = None,
    ) -> None:
        if settings.single_name is None and settings.split_name is None:
            raise ValueError("a connection records at least one kind of file")
        self._writer_cls = writer_class(settings.container)
        self._writer_cls.check_codecs([request.codec.upper() for request in settings.media])
        if set(settings.ports) != {request.kind for request in settings.media}:
            raise ValueError("one port per medium")
        self._media = list(settings.media)
        self._tmp_dir = settings.tmp_dir
        self._final_dir = settings.final_dir
        self._single_name = settings.single_name
        self._split_name = settings.split_name
        self._split_us = int((settings.split_duration or 0) * 1_000_000)
        self._listen = settings.listen
        self._keyframe_interval = settings.keyframe_interval
        self._on_split = on_split or (lambda finished: None)
        self._on_piece_open = on_piece_open or (lambda index: None)
        self.ports: dict[str, int] = dict(settings.ports)
        self.session: LiveSession | None = None
        self._archive: Archive | None = None
        self._single_file: BinaryIO | None = None
        self._split: SplitWriter | None = None
        self._split_requested_for = -1
        # Arrival times are monotonic; this turns them into UNIX times for the documents.
        self.clock_offset = time.time() - time.monotonic()
        self._keyframes_seen = 0
        self._last_keyframe_at: float | None = None

    async def start(self) -> dict[str, int]:
        """Bind the ports and open the files; return {kind: port}. Nothing is left bound or
        open on error."""
        try:
            sections = [request.section(self.ports[request.kind]) for request in self._media]
            self._tmp_dir.mkdir(parents=True, exist_ok=True)
            writers: list[Writer] = []
            if self._single_name is not None:
                self._single_file = open(self._tmp_dir / self._single_name, "w+b")  # noqa: SIM115
                writeback.register(self._single_file)
                writers.append(self._writer_cls(self._single_file))
            if self._split_name is not None:
                self._split = SplitWriter(
                    self._writer_cls, self._split_us, self._open_piece, self._piece_done
                )
                writers.append(self._split)
            self._archive = Archive(writers)
            self.session = LiveSession(
                sections,
                self._archive,
                listen=self._listen,
                keyframe_interval=self._keyframe_interval,
            )
            await self.session.open()
        except BaseException:
            self._release()
            raise
        return dict(self.ports)

    def tick(self, now: float) -> None:
        session = self.session
        if session is None:
            return
        split = self._split
        if split is not None:
            # Ask for a keyframe once per piece, shortly before its boundary.
            cut = split.next_cut_us
            if cut != self._split_requested_for and self._media_time_us() >= (
                cut - SPLIT_KEYFRAME_LEAD_US
            ):
                self._split_requested_for = cut
                session.request_keyframe()
        session.tick(now)
        keyframes = sum(
            route.stream.keyframes
            for route in session.router.routes
            if route.kind == "video" and route.stream is not None
        )
        if keyframes != self._keyframes_seen:
            self._keyframes_seen = keyframes
            self._last_keyframe_at = now

    def largest_picture(self) -> tuple[int, int]:
        """The largest video picture recorded so far, (0, 0) before any."""
        return self._archive.largest_picture() if self._archive is not None else (0, 0)

    @property
    def archive_started(self) -> bool:
        return self._archive is not None and self._archive.started

    @property
    def origin(self) -> float | None:
        """UNIX time of the archive timeline's 0 (its first media), once media arrived."""
        first = self._archive.first_arrival if self._archive is not None else None
        return None if first is None else first + self.clock_offset

    def _media_time_us(self) -> int:
        archive = self._archive
        return archive.newest_us if archive is not None else 0

    def stats(self) -> list[dict[str, object]]:
        return self.session.stats() if self.session is not None else []

    def status(self) -> ConnectionStatus:
        """Everything the lifecycle reads of the connection, now."""
        return ConnectionStatus(
            self.archive_started,
            self.origin,
            self.largest_picture(),
            self._last_keyframe_at,
            self.stats(),
        )

    def stop(self) -> FinishedFile | None:
        """Finalize and move the files. Returns the single archive (None when split-only);
        raises `NoMediaError` when no decodable media ever arrived (the archive failed)."""
        session, archive = self.session, self._archive
        try:
            if session is None or archive is None:
                raise NoMediaError("the connection never started")
            session.close()
            try:
                result = archive.close()
            except NoMediaError:
                # No decodable media, so no header was ever written: no empty file stays.
                if self._single_name is not None and self._single_file is not None:
                    writeback.unregister(self._single_file)
                    self._single_file.close()
                    (self._tmp_dir / self._single_name).unlink(missing_ok=True)
                raise
            if self._single_file is None:
                return None
            # The single writer is the archive's first (see `start`).
            single = result.writers[0]
            finished = self._finish(self._single_file, self._single_name or "", single, 0, 0)
            finished.tracks = result.tracks
            return finished
        finally:
            self._release()

    # -- files ------------------------------------------------------------------------------

    def _open_piece(self, index: int) -> BinaryIO:
        assert self._split_name is not None
        self._on_piece_open(index)
        file = open(self._tmp_dir / self._split_name(index), "w+b")  # noqa: SIM115
        writeback.register(file)
        return file

    def _piece_done(self, piece: Piece) -> None:
        assert self._split_name is not None
        finished = self._finish(
            piece.file, self._split_name(piece.index), piece.result, piece.start_us, piece.index
        )
        self._on_split(finished)

    def _finish(
        self, file: BinaryIO, name: str, result: WriterResult, start_us: int, index: int
    ) -> FinishedFile:
        # All but the last moment's data is on disk already; a failed background sync fails
        # the file as a failed fsync would.
        if (error := writeback.unregister(file)) is not None:
            raise error
        file.flush()
        os.fsync(file.fileno())
        file.close()
        self._final_dir.mkdir(parents=True, exist_ok=True)
        final = self._final_dir / name
        os.replace(self._tmp_dir / name, final)
        layout.fsync_directory(self._final_dir)
        return FinishedFile(final, result.size, result.duration, start_us, index)

    def _release(self) -> None:
        if self.session is not None:
            self.session.close()
        if self._single_file is not None and not self._single_file.closed:
            writeback.unregister(self._single_file)
            self._single_file.close()
