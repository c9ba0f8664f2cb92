"""Live recording: UDP sockets → `Router` → archive → writers, with RTCP feedback to the sender.

One non-blocking socket per bound port (each SDP media port, plus its RTCP port unless RTCP is
muxed), watched by the event loop's selector; each wake-up drains the socket and hands every
datagram to the `Router` straight from the reader callback: no await, no per-packet task. A
tick every `TICK` seconds expires reorder gaps and sends RTCP back to each sender: receiver
reports, and keyframe requests (PLI, FIR as the fallback) at stream start until the first
keyframe, after loss that left the stream waiting for one, and on the configured interval.

`LiveSession` is the one entry point for live ingest: `LiveRecording` (`rtp-recorder record`)
drives one into a file, the lifecycle layer drives one per connection from the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recorder import rtcp, writeback
from recorder.archive import Archive
from recorder.errors import MalformedPacket, RecorderError, UnsupportedError
from recorder.ingest import MediaRoute, Router, recorded_sections
from recorder.mux import writer_class
from recorder.sdp import MediaDescription, RtpFormat, SessionDescription
from recorder.stream import InboundStream

TICK = 0.1
# Datagrams read per wake-up of one socket before the loop serves the others.
DRAIN_BATCH = 64
# The largest UDP payload (IPv4); RTP from an SFU stays under the path MTU, but a datagram
# larger than the read would be cut silently.
MAX_DATAGRAM = 65535
# Receive buffer asked for each socket: a burst of a 1080p keyframe (~200 packets) per stream
# must fit while the event loop is busy writing a fragment.
RECEIVE_BUFFER = 4 * 1024 * 1024
# Linux caps SO_RCVBUF at net.core.rmem_max (208 KiB on a stock kernel, about 170 full-size
# packets); SO_RCVBUFFORCE (not in the socket module) lifts the cap with CAP_NET_ADMIN.
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
RECEIVER_REPORT_INTERVAL = 1.0
# While a stream waits for a keyframe, a request every so often; after this many PLIs without
# an answer, FIR (RFC 5104) is sent instead, for senders that ignore PLI.
KEYFRAME_RETRY = 0.5
PLIS_BEFORE_FIR = 2
DEFAULT_KEYFRAME_INTERVAL = 20.0
KEYFRAME_INTERVAL_RANGE = (1.0, 240.0)
CNAME = b"rtp-recorder"

log = logging.getLogger("recorder.live")


class _Endpoint:
    """One bound port; everything it receives goes to the router, nothing escapes.

    The loop calls `on_readable` when the socket has data, and it drains the socket: one
    wake-up serves every datagram queued since the last one, where asyncio's datagram
    transport takes one per loop iteration and asks `recvfrom` for 256 KiB each time
    (shared/PERF.md: about 4x the cost per packet of a drain loop).
    """

    __slots__ = ("_clock", "_feed", "_recvfrom", "internal_errors", "port", "sock")

    def __init__(self, router: Router, port: int, sock: socket.socket) -> None:
        self._feed = router.feed
        self._clock = time.monotonic
        self._recvfrom = sock.recvfrom
        self.port = port
        self.sock = sock
        self.internal_errors = 0

    def on_readable(self) -> None:
        recvfrom = self._recvfrom
        feed = self._feed
        clock = self._clock
        port = self.port
        # Bounded, so one flooded socket cannot starve the others sharing the loop.
        for _ in range(DRAIN_BATCH):
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError:
                # ICMP port unreachable for feedback sent to a sender that went away
                # surfaces here on Linux: not fatal, and the next datagram is still there.
                continue
            try:
                feed(port, data, clock(), addr)
            except Exception:
                # A bug of ours must not take the other streams down with it; it is counted
                # and shows in the summary.
                self.internal_errors += 1

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        """Best effort: feedback that does not fit the send buffer now is not worth waiting for."""
        with contextlib.suppress(OSError):
            self.sock.sendto(data, address)


class _Feedback:
    """RTCP sent back to one route's sender: RR, PLI / FIR."""

    __slots__ = (
        "fir_sequence",
        "firs_sent",
        "keyframe_interval",
        "last_keyframe_request",
        "last_report",
        "plis_sent",
        "requests_unanswered",
        "route",
        "seen_keyframes",
        "ssrc",
    )

    def __init__(self, route: MediaRoute, ssrc: int, keyframe_interval: float) -> None:
        self.route = route
        self.ssrc = ssrc
        self.keyframe_interval = keyframe_interval
        self.last_report = 0.0
        self.last_keyframe_request = 0.0
        self.requests_unanswered = 0
        self.seen_keyframes = 0
        self.plis_sent = 0
        self.firs_sent = 0
        self.fir_sequence = 0

    def due(self, stream: InboundStream, now: float) -> bytes | None:
        """The compound to send now, if any."""
        feedback: list[bytes] = []
        if stream.keyframes != self.seen_keyframes:
            self.seen_keyframes = stream.keyframes
            self.requests_unanswered = 0
        if self.route.kind == "video" and self._wants_keyframe(stream, now):
            self.last_keyframe_request = now
            if self.requests_unanswered >= PLIS_BEFORE_FIR and self.requests_unanswered % 2 == 0:
                self.fir_sequence = (self.fir_sequence + 1) & 0xFF
                feedback.append(rtcp.fir(self.ssrc, stream.ssrc, self.fir_sequence))
                self.firs_sent += 1
            else:
                feedback.append(rtcp.pli(self.ssrc, stream.ssrc))
                self.plis_sent += 1
            self.requests_unanswered += 1
        if not feedback and now - self.last_report < RECEIVER_REPORT_INTERVAL:
            return None
        self.last_report = now
        reception = self.route.reception
        assert reception is not None
        block = reception.block(
            stream.base_sequence,
            stream.highest_sequence,
            stream.packets - stream.duplicates,
            stream.jitter,
            now,
        )
        return rtcp.feedback_compound(self.ssrc, CNAME, [block], *feedback)

    def _wants_keyframe(self, stream: InboundStream, now: float) -> bool:
        since = now - self.last_keyframe_request
        if stream.waiting_for_keyframe:
            return since >= KEYFRAME_RETRY
        return since >= self.keyframe_interval


class LiveSession:
    """The sockets of one set of media sections feeding one archive, and their RTCP.

    `LiveRecording` runs one for the command line; the lifecycle layer runs one per
    connection, all on the service's event loop, ticking them from one task.
    """

    def __init__(
        self,
        sections: Sequence[tuple[MediaDescription, RtpFormat]],
        archive: Archive,
        *,
        listen: str = "0.0.0.0",
        allow: Sequence[str] = (),
        keyframe_interval: float = DEFAULT_KEYFRAME_INTERVAL,
    ) -> None:
        check_keyframe_interval(keyframe_interval)
        self.router = Router(sections, archive, srtp=srtp_sessions(sections), allow=allow)
        self._listen = listen
        self._keyframe_interval = keyframe_interval
        self._endpoints: dict[int, _Endpoint] = {}
        self._sockets: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._feedback: dict[int, _Feedback] = {}
        # Our RTCP's SSRC; SRTCP with the sender's key needs it distinct from the sender's.
        self._ssrc = random.getrandbits(32)

    async def open(self) -> list[int]:
        """Bind every port (all or none); return them."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        try:
            for port in self.router.ports:
                sock = _bind(self._listen, port)
                self._sockets.append(sock)
                endpoint = _Endpoint(self.router, port, sock)
                loop.add_reader(sock.fileno(), endpoint.on_readable)
                self._endpoints[port] = endpoint
        except BaseException:
            self._close_sockets()
            raise
        return list(self._endpoints)

    def close(self) -> None:
        """Stop receiving and release what the streams hold to the archive."""
        self._close_sockets()
        self.router.flush()

    def _close_sockets(self) -> None:
        loop = self._loop
        for sock in self._sockets:
            if loop is not None and sock.fileno() >= 0 and not loop.is_closed():
                loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets = []

    def request_keyframe(self) -> None:
        """Ask every video sender for a keyframe at the next tick (e.g. before a split)."""
        for feedback in self._feedback.values():
            feedback.last_keyframe_request = float("-inf")

    def tick(self, now: float) -> None:
        router = self.router
        router.tick(now)
        for number, route in enumerate(router.routes):
            stream = route.stream
            if stream is None or route.ended:
                continue
            feedback = self._feedback.get(number)
            if feedback is None:
                feedback = self._feedback[number] = _Feedback(
                    route, self._ssrc, self._keyframe_interval
                )
            addresses = route.feedback_addresses()
            endpoint = self._endpoints.get(route.rtcp_port)
            if not addresses or endpoint is None:
                continue
            compound = feedback.due(stream, now)
            if compound is None:
                continue
            if route.srtp is not None:
                try:
                    compound = route.srtp.protect_rtcp(compound)
                except MalformedPacket:
                    continue
            for address in addresses:
                endpoint.send(compound, (address[0], address[1]))

    @property
    def internal_errors(self) -> int:
        return sum(endpoint.internal_errors for endpoint in self._endpoints.values())

    def stats(self) -> list[dict[str, object]]:
        """Per stream counters, readable while recording."""
        streams = []
        for number, route in enumerate(self.router.routes):
            stats = route.stats()
            feedback = self._feedback.get(number)
            stats["plis_sent"] = feedback.plis_sent if feedback else 0
            stats["firs_sent"] = feedback.firs_sent if feedback else 0
            streams.append(stats)
        return streams


class LiveRecording:
    """Records the media an SDP describes from UDP into one file (`rtp-recorder record`)."""

    def __init__(
        self,
        sdp: SessionDescription,
        output: str | Path,
        format_name: str | None = None,
        *,
        listen: str = "0.0.0.0",
        allow: Sequence[str] = (),
        keyframe_interval: float = DEFAULT_KEYFRAME_INTERVAL,
    ) -> None:
        from recorder.convert import container_for

        check_keyframe_interval(keyframe_interval)
        self.output = Path(output)
        self.container = container_for(self.output, format_name)
        self._writer_cls = writer_class(self.container)
        self._sections = recorded_sections(sdp.media)
        self._writer_cls.check_codecs([fmt.encoding for _, fmt in self._sections])
        srtp_sessions(self._sections)  # refuse unusable keys before any file exists
        self._allow = list(allow)
        self._listen = listen
        self._keyframe_interval = keyframe_interval
        self.session: LiveSession | None = None

    async def run(
        self,
        stop: asyncio.Event,
        duration: float | None = None,
        ready: Callable[[list[tuple[str, int]]], None] | None = None,
    ) -> dict[str, Any]:
        """Record until `stop` is set or `duration` seconds pass; return the summary.

        `ready`, if given, is called with the bound (host, port) pairs once every socket is
        bound, before the first datagram can be lost.
        """
        temporary = self.output.with_name(f".{self.output.name}.part")
        with open(temporary, "w+b") as file:
            writeback.register(file)
            try:
                archive = Archive([self._writer_cls(file)])
                session = self.session = LiveSession(
                    self._sections,
                    archive,
                    listen=self._listen,
                    allow=self._allow,
                    keyframe_interval=self._keyframe_interval,
                )
                ports = await session.open()
                if ready is not None:
                    ready([(self._listen, port) for port in ports])
                started = time.monotonic()
                deadline = None if duration is None else started + duration
                while not stop.is_set():
                    timeout = TICK if deadline is None else min(TICK, deadline - time.monotonic())
                    if timeout <= 0:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout)
                    session.tick(time.monotonic())
                session.close()
                result = archive.close()
                if (error := writeback.unregister(file)) is not None:
                    raise error
                file.flush()
                os.fsync(file.fileno())
            except BaseException:
                writeback.unregister(file)
                temporary.unlink(missing_ok=True)
                raise
        os.replace(temporary, self.output)
        return self._summary(result.duration, time.monotonic() - started)

    def _summary(self, duration: float, elapsed: float) -> dict[str, Any]:
        session = self.session
        assert session is not None
        return {
            "output": str(self.output),
            "format": self.container,
            "duration": round(duration, 3),
            "size": self.output.stat().st_size,
            "recorded_for": round(elapsed, 3),
            "streams": session.stats(),
            "network": {
                "unmatched_udp": session.router.unmatched,
                "internal_errors": session.internal_errors,
            },
        }


def check_keyframe_interval(seconds: float) -> None:
    low, high = KEYFRAME_INTERVAL_RANGE
    if not low <= seconds <= high:
        raise RecorderError(f"keyframe interval {seconds:g} s is outside {low:g}-{high:g} s")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        _size_receive_buffer(sock)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise RecorderError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.setblocking(False)
    return sock


def _size_receive_buffer(sock: socket.socket) -> int:
    """Ask for `RECEIVE_BUFFER`; say once per process when the kernel grants less."""
    global _small_buffer_reported
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except OSError:  # no CAP_NET_ADMIN, or not Linux
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    # Linux reports twice what it grants (the other half is its bookkeeping).
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    if granted < RECEIVE_BUFFER and not _small_buffer_reported:
        _small_buffer_reported = True
        log.warning(
            "UDP receive buffers are %d KiB, not the %d KiB asked for: bursts (keyframes) may "
            "be dropped while the recorder is busy; raise net.core.rmem_max to %d",
            granted // 1024,
            RECEIVE_BUFFER // 1024,
            RECEIVE_BUFFER,
        )
    return granted


_small_buffer_reported = False


def srtp_sessions(sections: Sequence[tuple[MediaDescription, RtpFormat]]) -> dict[int, Any]:
    """An SRTP session per media port whose SDP section has `a=crypto` lines: the first line
    the receiver can use (SDP order is the offerer's preference), else a clear error."""
    sessions: dict[int, Any] = {}
    for media, _ in sections:
        if not media.crypto:
            continue
        from recorder.srtp import SrtpReceiver, crypto_problem, parse_key

        problems = []
        for line in media.crypto:
            problem = crypto_problem(line)
            if problem is None:
                key = parse_key(line.suite, line.key_base64)
                sessions[media.port] = SrtpReceiver(line.suite, key)
                break
            problems.append(problem)
        else:
            raise UnsupportedError(
                f"{media.kind} on port {media.port}: no usable SRTP key ({'; '.join(problems)})"
            )
    return sessions
