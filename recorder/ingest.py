"""Routing datagrams to streams: (port, payload type, SSRC) → `InboundStream`.

`Router.feed` is the one entry point for RTP, whether the datagrams come from a capture file
(`recorder.convert`) or, later, from sockets. A route is one SDP media section: one port, one
recorded codec, one track of the archive. Malformed packets are counted per route by their
exact reason and dropped; nothing a sender does raises out of `feed`.
"""

from __future__ import annotations

from collections.abc import Iterable

from recorder.archive import Archive
from recorder.codecs import DEPACKETIZERS, Depacketizer
from recorder.errors import MalformedPacket, UnsupportedError
from recorder.rtp import RtpPacket, is_rtcp
from recorder.sdp import MediaDescription, RtpFormat
from recorder.stream import InboundStream

RECORDED_KINDS = ("audio", "video")
# Payload formats that ride along a recorded codec (retransmission, redundancy, FEC, DTMF,
# comfort noise) and are not media of their own: ignored without complaint.
AUXILIARY_ENCODINGS = {"RTX", "RED", "ULPFEC", "FLEXFEC-03", "TELEPHONE-EVENT", "CN"}
# Distinct malformation reasons kept per route; the count of the rest is still exact.
MAX_ERROR_REASONS = 32


class MediaRoute:
    """One SDP media section being recorded."""

    __slots__ = (
        "errors",
        "kind",
        "malformed",
        "other_payload_types",
        "other_ssrcs",
        "port",
        "rtcp",
        "rtp_format",
        "stream",
        "track",
    )

    def __init__(self, media: MediaDescription, rtp_format: RtpFormat, archive: Archive) -> None:
        self.kind = media.kind
        self.port = media.port
        self.rtp_format = rtp_format
        self.track = archive.add_track(self._depacketizer())
        self.stream: InboundStream | None = None
        self.malformed = 0
        self.errors: dict[str, int] = {}
        self.rtcp = 0
        self.other_payload_types = 0
        self.other_ssrcs = 0

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
            stats.update(packets=0, lost=0, duplicates=0, frames=0, dropped_frames=0, keyframes=0)
        stats.update(
            malformed_packets=self.malformed,
            rtcp_packets=self.rtcp,
            other_payload_types=self.other_payload_types,
            other_ssrcs=self.other_ssrcs,
        )
        if self.errors:
            stats["errors"] = dict(self.errors)
        return stats


class Router:
    """Maps datagrams to the streams of one archive."""

    __slots__ = ("_routes", "_rtcp_ports", "routes", "unmatched")

    def __init__(
        self, sections: Iterable[tuple[MediaDescription, RtpFormat]], archive: Archive
    ) -> None:
        self.routes: list[MediaRoute] = []
        self._routes: dict[int, MediaRoute] = {}
        self._rtcp_ports: dict[int, MediaRoute] = {}
        self.unmatched = 0
        for section, rtp_format in sections:
            route = MediaRoute(section, rtp_format, archive)
            self.routes.append(route)
            self._routes[section.port] = route
            if not section.rtcp_mux:
                # RFC 3550 section 11: RTCP goes to the next higher (odd) port by default.
                self._rtcp_ports[section.rtcp_port or section.port + 1] = route

    def feed(self, port: int, data: bytes, arrival: float) -> None:
        """Take one datagram that arrived on `port` at `arrival` (seconds, any epoch)."""
        route = self._routes.get(port)
        if route is None:
            rtcp_route = self._rtcp_ports.get(port)
            if rtcp_route is not None:
                rtcp_route.rtcp += 1
            else:
                self.unmatched += 1
            return
        if is_rtcp(data):
            route.rtcp += 1
            return
        try:
            packet = RtpPacket.parse(data)
        except MalformedPacket as error:
            route.count_malformed(error)
            return
        if packet.payload_type != route.rtp_format.payload_type:
            route.other_payload_types += 1
            return
        stream = route.stream
        if stream is None:
            stream = route.stream = InboundStream(
                packet.ssrc, route.track.depacketizer, route.track.on_frame
            )
        elif packet.ssrc != stream.ssrc:
            # The first SSRC on a route is the one recorded; a switch of source is not yet
            # followed.
            route.other_ssrcs += 1
            return
        stream.push(packet, arrival)

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
    ports = set()
    for section in media:
        # RFC 3264 section 6: port 0 marks a rejected or disabled stream.
        if section.kind not in RECORDED_KINDS or section.port == 0:
            continue
        if section.port in ports:
            raise UnsupportedError(
                f"two media sections on port {section.port}: bundled media is not supported"
            )
        ports.add(section.port)
        sections.append((section, recorded_format(section)))
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
