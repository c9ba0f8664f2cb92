"""Routing datagrams to streams: (port, payload type, SSRC) → `InboundStream`.

`Router.feed` is the one entry point for RTP and RTCP, whether the datagrams come from a capture
file (`recorder.convert`) or from sockets (`recorder.live`). A route is one SDP media section:
one port (plus its RTCP port unless RTCP is muxed, RFC 5761), one recorded codec, one track of
the archive. The first source address of a route is latched and others are dropped, an optional
allow-list filters sources before that, SRTP is removed when the route has keys, sender reports
go to the archive's clock, and malformed packets are counted per route by their exact reason.
Nothing a sender does raises out of `feed`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from recorder.archive import Archive, ArchiveTrack
from recorder.codecs import DEPACKETIZERS, Depacketizer
from recorder.errors import MalformedPacket, UnsupportedError
from recorder.rtcp import Bye, ReceptionReport, SenderReport, ntp_to_unix, parse_compound
from recorder.rtp import RtpPacket
from recorder.sdp import MediaDescription, RtpFormat
from recorder.stream import InboundStream

RECORDED_KINDS = ("audio", "video")
# Payload formats that ride along a recorded codec (retransmission, redundancy, FEC, DTMF,
# comfort noise) and are not media of their own: ignored without complaint.
AUXILIARY_ENCODINGS = {"RTX", "RED", "ULPFEC", "FLEXFEC-03", "TELEPHONE-EVENT", "CN"}
# Distinct malformation reasons kept per route; the count of the rest is still exact.
MAX_ERROR_REASONS = 32
# Sender reports kept for SSRCs not seen yet on a shared port (bounded against floods).
MAX_PENDING_REPORTS = 16
# Seconds a recorded SSRC must have been silent before another SSRC on the route replaces it
# (a sender restart, an SFU switching simulcast layers without rewriting the SSRC).
SSRC_SWITCH_IDLE = 0.5

Address = Any  # (host, port) from a socket, (bytes, int) from a capture
_parse_rtp = RtpPacket.parse  # bound once: it runs for every datagram


class Unprotector(Protocol):
    """What a route needs of an SRTP session (`recorder.srtp.SrtpReceiver`)."""

    def unprotect_rtp(self, data: bytes) -> bytes: ...
    def unprotect_rtcp(self, data: bytes) -> bytes: ...


class MediaRoute:
    """One SDP media section being recorded."""

    __slots__ = (
        "denied",
        "ended",
        "errors",
        "foreign",
        "kind",
        "last_packet",
        "malformed",
        "other_payload_types",
        "other_ssrcs",
        "payload_type",
        "port",
        "reception",
        "rtcp",
        "rtcp_malformed",
        "rtcp_mux",
        "rtcp_port",
        "rtcp_source",
        "rtp_format",
        "source",
        "srtp",
        "srtp_failures",
        "srtp_replays",
        "ssrc_switches",
        "stream",
        "track",
    )

    def __init__(
        self,
        media: MediaDescription,
        rtp_format: RtpFormat,
        archive: Archive,
        srtp: Unprotector | None = None,
    ) -> None:
        self.kind = media.kind
        self.port = media.port
        self.rtcp_mux = media.rtcp_mux
        # RFC 3550 section 11: RTCP goes to the next higher (odd) port by default.
        self.rtcp_port = media.port if media.rtcp_mux else media.rtcp_port or media.port + 1
        self.rtp_format = rtp_format
        self.payload_type = rtp_format.payload_type
        self.srtp = srtp
        self.track: ArchiveTrack = archive.add_track(self._depacketizer())
        self.stream: InboundStream | None = None
        self.reception: ReceptionReport | None = None
        self.source: Address | None = None  # latched RTP source
        self.rtcp_source: Address | None = None  # latched RTCP source: where feedback goes
        self.last_packet = 0.0
        self.ended = False  # RTCP BYE from the recorded source
        self.malformed = 0
        self.errors: dict[str, int] = {}
        self.rtcp = 0
        self.rtcp_malformed = 0
        self.other_payload_types = 0
        self.other_ssrcs = 0
        self.ssrc_switches = 0
        self.foreign = 0
        self.denied = 0
        self.srtp_failures = 0
        self.srtp_replays = 0

    def _depacketizer(self) -> Depacketizer:
        rtp_format = self.rtp_format
        cls = DEPACKETIZERS[rtp_format.encoding]
        return cls(rtp_format.clock_rate, rtp_format.channels, rtp_format.fmtp)

    def count_malformed(self, error: MalformedPacket) -> None:
        self.malformed += 1
        reason = str(error)
        errors = self.errors
        if reason in errors:
            errors[reason] += 1
        elif len(errors) < MAX_ERROR_REASONS:
            errors[reason] = 1

    def count_srtp_failure(self, error: MalformedPacket) -> None:
        if getattr(error, "reason", "") == "replay":
            self.srtp_replays += 1
        else:
            self.srtp_failures += 1

    def feedback_addresses(self) -> list[Address]:
        """Where RTCP for the sender goes: the address its RTCP comes from (symmetric RTCP,
        RFC 4961) and, without rtcp-mux, its RTP port + 1 (RFC 3550 section 11), which is
        where senders that send RTCP from an ephemeral port (GStreamer's udpsink without
        bind-port) listen."""
        addresses = []
        if self.rtcp_source is not None:
            addresses.append(self.rtcp_source)
        if self.source is not None:
            host, port = self.source[0], self.source[1]
            derived = (host, port) if self.rtcp_mux else (host, port + 1)
            if derived not in addresses:
                addresses.append(derived)
        return addresses

    def start_stream(self, ssrc: int) -> InboundStream:
        stream = self.stream = InboundStream(ssrc, self.track.depacketizer, self.track.on_frame)
        self.reception = ReceptionReport(ssrc)
        return stream

    def stats(self) -> dict[str, object]:
        stream = self.stream
        stats: dict[str, object] = {
            "media": self.kind,
            "codec": self.rtp_format.encoding,
            "port": self.port,
            "payload_type": self.rtp_format.payload_type,
            "ssrc": stream.ssrc if stream else None,
        }
        if stream is not None:
            stats.update(stream.stats())
        else:
            stats.update(
                packets=0, bytes=0, lost=0, late=0, duplicates=0, frames=0, dropped_frames=0,
                keyframes=0, jitter=0,
            )  # fmt: skip
        stats.update(
            malformed_packets=self.malformed,
            rtcp_packets=self.rtcp,
            rtcp_malformed=self.rtcp_malformed,
            other_payload_types=self.other_payload_types,
            other_ssrcs=self.other_ssrcs,
            ssrc_switches=self.ssrc_switches,
            foreign_packets=self.foreign,
            denied_packets=self.denied,
            srtp_failures=self.srtp_failures,
            srtp_replays=self.srtp_replays,
        )
        if self.errors:
            stats["errors"] = dict(self.errors)
        return stats


class Router:
    """Maps datagrams to the streams of one archive."""

    __slots__ = (
        "_allowed",
        "_networks",
        "_pending_reports",
        "_routes",
        "_rtcp_ports",
        "_single",
        "routes",
        "unmatched",
    )

    def __init__(
        self,
        sections: Iterable[tuple[MediaDescription, RtpFormat]],
        archive: Archive,
        *,
        srtp: Mapping[int, Unprotector] | None = None,
        allow: Sequence[str] = (),
    ) -> None:
        """`srtp` maps a media port to its SRTP session; `allow` lists addresses / CIDRs.

        Sections may share a port (audio and video of a connection on one port, as a bundled
        transport sends them): their packets are told apart by payload type, their RTCP by SSRC.
        """
        self.routes: list[MediaRoute] = []
        # port -> payload type -> route, and the fast path for a port with one route.
        self._routes: dict[int, dict[int, MediaRoute]] = {}
        self._single: dict[int, MediaRoute] = {}
        self._rtcp_ports: dict[int, list[MediaRoute]] = {}
        # Sender reports of an SSRC no stream has yet, on a shared port (FFmpeg sends its SRs
        # before any RTP): applied when the stream starts.
        self._pending_reports: dict[int, tuple[SenderReport, float]] = {}
        self.unmatched = 0
        self._networks = [ipaddress.ip_network(entry, strict=False) for entry in allow]
        self._allowed: dict[Any, bool] = {}  # per source host, decided once
        for section, rtp_format in sections:
            route = MediaRoute(section, rtp_format, archive, (srtp or {}).get(section.port))
            self.routes.append(route)
            self._routes.setdefault(section.port, {})[rtp_format.payload_type] = route
            if not route.rtcp_mux:
                self._rtcp_ports.setdefault(route.rtcp_port, []).append(route)
        for port, by_type in self._routes.items():
            if len(by_type) == 1:
                self._single[port] = next(iter(by_type.values()))

    @property
    def ports(self) -> list[int]:
        """Every port the routes receive on: media ports, then separate RTCP ports."""
        return [*self._routes, *(port for port in self._rtcp_ports if port not in self._routes)]

    def feed(self, port: int, data: bytes, arrival: float, source: Address | None = None) -> None:
        """Take one datagram that arrived on `port` at `arrival` (seconds, any one clock)."""
        route = self._single.get(port)
        rtcp = False
        if route is None:
            by_type = self._routes.get(port)
            if by_type is not None:
                # The payload type is in the clear even in SRTP (RFC 3711 section 3.1).
                route = by_type.get(data[1] & 0x7F) if len(data) > 1 else None
                if route is None:
                    route = next(iter(by_type.values()))
            else:
                shared = self._rtcp_ports.get(port)
                if shared is None:
                    self.unmatched += 1
                    return
                route = shared[0]
                rtcp = True
        # A datagram from the latched source, with no allow-list, needs no admission check.
        if (
            source is not None
            and (rtcp or source != route.source or self._networks)
            and not self._admit(route, source, rtcp)
        ):
            return
        # is_rtcp(data), inline: this runs for every datagram.
        if rtcp or (len(data) > 1 and 192 <= data[1] <= 223):
            self._feed_rtcp(self._rtcp_routes(port, route), data, arrival)
            return
        if route.srtp is not None:
            try:
                data = route.srtp.unprotect_rtp(data)
            except MalformedPacket as error:
                route.count_srtp_failure(error)
                return
        try:
            packet = _parse_rtp(data)
        except MalformedPacket as error:
            route.count_malformed(error)
            return
        if packet.payload_type != route.payload_type:
            route.other_payload_types += 1
            return
        stream = route.stream
        if stream is None:
            stream = self._start_stream(route, packet.ssrc)
        elif packet.ssrc != stream.ssrc:
            if arrival - route.last_packet < SSRC_SWITCH_IDLE and not route.ended:
                route.other_ssrcs += 1
                return
            # The recorded source went quiet (or said BYE) and another took its place: keep
            # the track's timeline going from where it stopped, from the next keyframe on.
            stream.flush()
            route.track.rebase(arrival)
            route.ssrc_switches += 1
            route.ended = False
            stream = self._start_stream(route, packet.ssrc)
        route.last_packet = arrival
        stream.push(packet, arrival)

    def _start_stream(self, route: MediaRoute, ssrc: int) -> InboundStream:
        stream = route.start_stream(ssrc)
        pending = self._pending_reports.pop(ssrc, None)
        if pending is not None:
            self._apply_report(route, *pending)
        return stream

    def _rtcp_routes(self, port: int, route: MediaRoute) -> list[MediaRoute]:
        shared = self._rtcp_ports.get(port)
        if shared is not None:
            # A separate RTCP port: every route behind it learns where the sender's RTCP is.
            for other in shared:
                other.rtcp_source = route.rtcp_source
            return shared
        return list(self._routes[port].values())

    def _admit(self, route: MediaRoute, source: Address, rtcp: bool) -> bool:
        if self._networks:
            host = source[0]
            allowed = self._allowed.get(host)
            if allowed is None:
                allowed = self._allowed[host] = self._check_allowed(host)
            if not allowed:
                route.denied += 1
                return False
        if rtcp:
            # RTCP from the recorded host, from whatever port its RTCP socket has.
            if route.source is not None and source[0] != route.source[0]:
                route.foreign += 1
                return False
            if route.rtcp_source is None:
                route.rtcp_source = source
            elif source != route.rtcp_source:
                route.foreign += 1
                return False
            return True
        latched = route.source
        if latched is None:
            route.source = source
        elif source != latched:
            route.foreign += 1
            return False
        return True

    def _check_allowed(self, host: Any) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def _feed_rtcp(self, routes: list[MediaRoute], data: bytes, arrival: float) -> None:
        route = routes[0]
        route.rtcp += 1
        if route.srtp is not None:
            try:
                data = route.srtp.unprotect_rtcp(data)
            except MalformedPacket as error:
                route.count_srtp_failure(error)
                return
        try:
            packets = parse_compound(data)
        except MalformedPacket:
            route.rtcp_malformed += 1
            return
        for packet in packets:
            if isinstance(packet, SenderReport):
                target = next(
                    (r for r in routes if r.stream is not None and r.stream.ssrc == packet.ssrc),
                    None,
                )
                if target is None and len(routes) == 1 and route.stream is None:
                    target = route  # one route: an SR before the first RTP packet is its own
                if target is None:
                    if len(self._pending_reports) < MAX_PENDING_REPORTS:
                        self._pending_reports[packet.ssrc] = (packet, arrival)
                    continue
                self._apply_report(target, packet, arrival)
            elif isinstance(packet, Bye):
                for target in routes:
                    stream = target.stream
                    if stream is not None and stream.ssrc in packet.ssrcs:
                        stream.flush()
                        target.ended = True

    @staticmethod
    def _apply_report(route: MediaRoute, report: SenderReport, arrival: float) -> None:
        route.track.on_sender_report(ntp_to_unix(report.ntp), report.rtp_timestamp)
        if route.reception is not None:
            route.reception.on_sender_report(report.ntp, arrival)

    def tick(self, now: float) -> None:
        """Called by a clock: give up on reorder gaps that waited too long."""
        for route in self.routes:
            if route.stream is not None:
                route.stream.expire(now)

    def flush(self) -> None:
        """End of input: release every stream's held packets."""
        for route in self.routes:
            if route.stream is not None:
                route.stream.flush()


def recorded_sections(
    media: Iterable[MediaDescription],
) -> list[tuple[MediaDescription, RtpFormat]]:
    """The audio / video sections of an SDP with the payload format each one records."""
    sections = []
    types: set[tuple[int, int]] = set()
    for section in media:
        # RFC 3264 section 6: port 0 marks a rejected or disabled stream.
        if section.kind not in RECORDED_KINDS or section.port == 0:
            continue
        rtp_format = recorded_format(section)
        # Sections may share a port (bundled) as long as payload types tell them apart.
        key = (section.port, rtp_format.payload_type)
        if key in types:
            raise UnsupportedError(
                f"two media sections on port {section.port} record payload type "
                f"{rtp_format.payload_type}: they cannot be told apart"
            )
        types.add(key)
        sections.append((section, rtp_format))
    if not sections:
        raise UnsupportedError("the SDP has no audio or video section to record")
    return sections


def recorded_format(media: MediaDescription) -> RtpFormat:
    """The payload format of a media section that gets recorded: the first one we support."""
    unsupported = []
    for rtp_format in media.formats.values():
        if rtp_format.encoding in DEPACKETIZERS:
            return rtp_format
        if rtp_format.encoding not in AUXILIARY_ENCODINGS:
            unsupported.append(
                rtp_format.encoding or f"static payload type {rtp_format.payload_type}"
            )
    supported = ", ".join(sorted(DEPACKETIZERS))
    names = ", ".join(unsupported) or "none"
    raise UnsupportedError(
        f"{media.kind} on port {media.port}: codec {names} is not supported "
        f"(supported: {supported})"
    )
