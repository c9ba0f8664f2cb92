"""RTCP: compound packets in (RFC 3550 section 6, RFC 5506), reports and feedback out.

`parse_compound` takes one datagram (already unprotected if SRTCP) and returns one object per
RTCP packet in it. A datagram is accepted whole or refused whole: if any packet in it is
malformed, `RtcpError` says which and why, because a length or count that is wrong in one
packet makes every byte after it suspect. Packet types we do not act on (APP, XR, the rest of
192-223) come back as `Unknown` so they can be counted. The first packet need not be an SR or
RR: RFC 5506 reduced-size RTCP sends feedback on its own.

The builders return the bytes of one RTCP packet; `compound` joins them, and
`feedback_compound` puts feedback behind the RR + SDES CNAME that RFC 4585 section 3.1 asks
for. Peers depend on it: GStreamer 1.22's rtpsession ignores a FIR whose requester no RR, SR or
SDES has introduced (a lone PLI it still honours, finding the source by the media SSRC).

`ReceptionReport` turns a stream's counters into report blocks (RFC 3550 A.3 and 6.4.1).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from recorder.errors import MalformedPacket

RTCP_VERSION = 2
HEADER_SIZE = 4
# Packet types (RFC 3550 section 12.1, RFC 4585 section 6.1, RFC 3611).
SR = 200
RR = 201
SDES = 202
BYE = 203
APP = 204
RTPFB = 205
PSFB = 206
XR = 207
# RFC 5761 section 4: the packet types RTCP may use, so it can share a port with RTP.
FIRST_TYPE = 192
LAST_TYPE = 223
# Feedback message types of PSFB (RFC 4585 section 6.3, RFC 5104 section 4.3).
FMT_PLI = 1
FMT_FIR = 4
# SDES item types (RFC 3550 section 6.5).
SDES_END = 0
SDES_CNAME = 1
# The 5-bit count field bounds report blocks per packet and chunks / sources per SDES / BYE.
MAX_COUNT = 31

SENDER_INFO_SIZE = 20
REPORT_BLOCK_SIZE = 24
FEEDBACK_HEADER_SIZE = 8
FIR_ENTRY_SIZE = 8
# Seconds between the NTP epoch (1900) and the Unix epoch (1970), RFC 868.
NTP_UNIX_OFFSET = 2_208_988_800
NTP_ERA_SECONDS = 1 << 32
# RFC 3550 section 6.4.1: cumulative loss is a signed 24-bit field.
MAX_CUMULATIVE_LOST = 0x7FFFFF
MIN_CUMULATIVE_LOST = -0x800000

_HEADER = struct.Struct("!BBH")
_U32 = struct.Struct("!I")
_SENDER = struct.Struct("!IQIII")  # SSRC of sender, NTP, RTP timestamp, packet and octet count
_BLOCK = struct.Struct("!IIIIII")
_FEEDBACK = struct.Struct("!II")
_FIR_ENTRY = struct.Struct("!IB3x")

_NAMES = {
    SR: "SR",
    RR: "RR",
    SDES: "SDES",
    BYE: "BYE",
    APP: "APP",
    RTPFB: "RTPFB",
    PSFB: "PSFB",
    XR: "XR",
}


class RtcpError(MalformedPacket):
    """An RTCP compound packet, or one packet in it, is invalid."""


# -- parsed packets -----------------------------------------------------------------------------


class ReportBlock:
    """One reception report (RFC 3550 section 6.4.1) about the source `ssrc`."""

    __slots__ = (
        "cumulative_lost",
        "delay_since_last_sr",
        "fraction_lost",
        "highest_sequence",
        "jitter",
        "last_sr",
        "ssrc",
    )

    def __init__(
        self,
        ssrc: int,
        fraction_lost: int,
        cumulative_lost: int,
        highest_sequence: int,
        jitter: int,
        last_sr: int,
        delay_since_last_sr: int,
    ) -> None:
        self.ssrc = ssrc
        self.fraction_lost = fraction_lost  # fixed point, lost / expected * 256
        self.cumulative_lost = cumulative_lost  # signed: duplicates can make it negative
        self.highest_sequence = highest_sequence  # extended: cycles << 16 | sequence
        self.jitter = jitter  # RTP timestamp units
        self.last_sr = last_sr  # middle 32 bits of the last SR's NTP timestamp, 0 if none
        self.delay_since_last_sr = delay_since_last_sr  # units of 1/65536 s

    def __repr__(self) -> str:
        return (
            f"ReportBlock(ssrc={self.ssrc:#010x}, fraction_lost={self.fraction_lost}, "
            f"cumulative_lost={self.cumulative_lost}, highest_sequence={self.highest_sequence}, "
            f"jitter={self.jitter}, last_sr={self.last_sr:#010x}, "
            f"delay_since_last_sr={self.delay_since_last_sr})"
        )


class SenderReport:
    """SR (RFC 3550 section 6.4.1): the sender's NTP ↔ RTP timestamp mapping and its counts."""

    __slots__ = ("ntp", "octet_count", "packet_count", "reports", "rtp_timestamp", "ssrc")

    def __init__(
        self,
        ssrc: int,
        ntp: int,
        rtp_timestamp: int,
        packet_count: int,
        octet_count: int,
        reports: list[ReportBlock],
    ) -> None:
        self.ssrc = ssrc
        self.ntp = ntp  # 64-bit NTP timestamp: seconds since 1900 << 32 | fraction
        self.rtp_timestamp = rtp_timestamp
        self.packet_count = packet_count
        self.octet_count = octet_count
        self.reports = reports

    def __repr__(self) -> str:
        return (
            f"SenderReport(ssrc={self.ssrc:#010x}, ntp={self.ntp:#018x}, "
            f"rtp_timestamp={self.rtp_timestamp}, packet_count={self.packet_count}, "
            f"octet_count={self.octet_count}, reports={self.reports!r})"
        )


class ReceiverReport:
    """RR (RFC 3550 section 6.4.2)."""

    __slots__ = ("reports", "ssrc")

    def __init__(self, ssrc: int, reports: list[ReportBlock]) -> None:
        self.ssrc = ssrc
        self.reports = reports

    def __repr__(self) -> str:
        return f"ReceiverReport(ssrc={self.ssrc:#010x}, reports={self.reports!r})"


class SourceDescription:
    """SDES (RFC 3550 section 6.5): item type → value for each SSRC / CSRC chunk."""

    __slots__ = ("chunks",)

    def __init__(self, chunks: dict[int, dict[int, bytes]]) -> None:
        self.chunks = chunks

    def cname(self, ssrc: int) -> bytes | None:
        """The CNAME of `ssrc`, if this SDES carries one."""
        items = self.chunks.get(ssrc)
        return None if items is None else items.get(SDES_CNAME)

    def __repr__(self) -> str:
        return f"SourceDescription(chunks={self.chunks!r})"


class Bye:
    """BYE (RFC 3550 section 6.6): these sources are leaving."""

    __slots__ = ("reason", "ssrcs")

    def __init__(self, ssrcs: list[int], reason: str | None) -> None:
        self.ssrcs = ssrcs
        self.reason = reason

    def __repr__(self) -> str:
        return f"Bye(ssrcs={[f'{s:#010x}' for s in self.ssrcs]}, reason={self.reason!r})"


class Feedback:
    """Transport (205) or payload-specific (206) feedback, RFC 4585 section 6.1."""

    __slots__ = ("fci", "fmt", "media_ssrc", "packet_type", "sender_ssrc")

    def __init__(
        self, packet_type: int, fmt: int, sender_ssrc: int, media_ssrc: int, fci: bytes
    ) -> None:
        self.packet_type = packet_type
        self.fmt = fmt
        self.sender_ssrc = sender_ssrc
        self.media_ssrc = media_ssrc
        self.fci = fci  # feedback control information, without padding

    def __repr__(self) -> str:
        return (
            f"Feedback(packet_type={self.packet_type}, fmt={self.fmt}, "
            f"sender_ssrc={self.sender_ssrc:#010x}, media_ssrc={self.media_ssrc:#010x}, "
            f"fci={self.fci.hex()})"
        )


class Unknown:
    """A well-framed RTCP packet of a type we do not interpret (APP, XR, ...)."""

    __slots__ = ("count", "data", "packet_type")

    def __init__(self, packet_type: int, count: int, data: bytes) -> None:
        self.packet_type = packet_type
        self.count = count  # the 5-bit field after V and P (subtype for APP, FMT for feedback)
        self.data = data  # the body after the 4-byte header, without padding

    def __repr__(self) -> str:
        return (
            f"Unknown(packet_type={self.packet_type}, count={self.count}, {len(self.data)} bytes)"
        )


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | Feedback | Unknown


# -- parsing ------------------------------------------------------------------------------------


def parse_compound(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Every RTCP packet of one datagram; raise `RtcpError` with the reason if any is malformed."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    size = len(view)
    if size == 0:
        raise RtcpError("RTCP compound packet is empty")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < size:
        left = size - offset
        if left < HEADER_SIZE:
            raise RtcpError(
                f"RTCP packet at byte {offset} truncated: {left} bytes, the header needs 4"
            )
        first, packet_type, words = _HEADER.unpack_from(view, offset)
        if first >> 6 != RTCP_VERSION:
            raise RtcpError(f"RTCP version is {first >> 6}, expected 2 (packet at byte {offset})")
        if not FIRST_TYPE <= packet_type <= LAST_TYPE:
            raise RtcpError(
                f"RTCP packet type {packet_type} is outside 192-223 (packet at byte {offset})"
            )
        name = _NAMES.get(packet_type, f"packet type {packet_type}")
        length = (words + 1) * 4
        if length > left:
            raise RtcpError(
                f"RTCP {name} of {length} bytes overruns the datagram: {left} bytes left "
                f"(packet at byte {offset})"
            )
        end = offset + length
        if first & 0x20:
            # RFC 3550 section 6.4.1: the last octet counts the padding, itself included. The
            # RFC wants padding on the last packet only, but the length field delimits every
            # packet either way, so padding elsewhere is unusual rather than ambiguous.
            if length == HEADER_SIZE:
                raise RtcpError(f"RTCP {name} has padding but no body (packet at byte {offset})")
            padding = view[end - 1]
            if padding == 0:
                raise RtcpError(f"RTCP {name} padding length is zero (packet at byte {offset})")
            if padding > length - HEADER_SIZE:
                raise RtcpError(
                    f"RTCP {name} padding of {padding} bytes overruns its {length - HEADER_SIZE}-"
                    f"byte body (packet at byte {offset})"
                )
            end -= padding
        count = first & 0x1F
        body = view[offset + HEADER_SIZE : end]
        if packet_type == SR:
            packets.append(_sender_report(body, count, offset))
        elif packet_type == RR:
            packets.append(_receiver_report(body, count, offset))
        elif packet_type == SDES:
            packets.append(_source_description(body, count, offset))
        elif packet_type == BYE:
            packets.append(_bye(body, count, offset))
        elif packet_type in (RTPFB, PSFB):
            packets.append(_feedback(body, packet_type, count, name, offset))
        else:
            packets.append(Unknown(packet_type, count, bytes(body)))
        offset += length
    return packets


def _report_blocks(
    body: memoryview, start: int, count: int, name: str, offset: int
) -> list[ReportBlock]:
    # Bytes after the blocks are a profile-specific extension (RFC 3550 section 6.4.1): ignored.
    need = start + count * REPORT_BLOCK_SIZE
    if need > len(body):
        raise RtcpError(
            f"RTCP {name} truncated: {count} report blocks need {need + HEADER_SIZE} bytes, "
            f"the packet has {len(body) + HEADER_SIZE} (packet at byte {offset})"
        )
    blocks = []
    for at in range(start, need, REPORT_BLOCK_SIZE):
        ssrc, loss, highest, jitter, last_sr, delay = _BLOCK.unpack_from(body, at)
        lost = loss & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        blocks.append(ReportBlock(ssrc, loss >> 24, lost, highest, jitter, last_sr, delay))
    return blocks


def _sender_report(body: memoryview, count: int, offset: int) -> SenderReport:
    if len(body) < 4 + SENDER_INFO_SIZE:
        raise RtcpError(
            f"RTCP SR truncated: {len(body) + HEADER_SIZE} bytes, the sender info needs 28 "
            f"(packet at byte {offset})"
        )
    ssrc, ntp, rtp_timestamp, packets, octets = _SENDER.unpack_from(body)
    blocks = _report_blocks(body, 4 + SENDER_INFO_SIZE, count, "SR", offset)
    return SenderReport(ssrc, ntp, rtp_timestamp, packets, octets, blocks)


def _receiver_report(body: memoryview, count: int, offset: int) -> ReceiverReport:
    if len(body) < 4:
        raise RtcpError(
            f"RTCP RR truncated: {len(body) + HEADER_SIZE} bytes, the sender SSRC needs 8 "
            f"(packet at byte {offset})"
        )
    ssrc = _U32.unpack_from(body)[0]
    return ReceiverReport(ssrc, _report_blocks(body, 4, count, "RR", offset))


def _source_description(body: memoryview, count: int, offset: int) -> SourceDescription:
    chunks: dict[int, dict[int, bytes]] = {}
    size = len(body)
    at = 0
    for index in range(count):
        if at + 4 > size:
            raise RtcpError(
                f"RTCP SDES chunk {index + 1} of {count} truncated: no room for its SSRC "
                f"(packet at byte {offset})"
            )
        ssrc = _U32.unpack_from(body, at)[0]
        items = chunks.setdefault(ssrc, {})
        at += 4
        while True:
            if at >= size:
                raise RtcpError(
                    f"RTCP SDES chunk {index + 1} of {count} has no end of its item list "
                    f"(packet at byte {offset})"
                )
            item_type = body[at]
            if item_type == SDES_END:
                # RFC 3550 section 6.5: null octets pad the chunk to the next 32-bit boundary
                # (the body starts on one, so the offset within it tells where that is).
                at = (at + 4) & ~3
                break
            if at + 2 > size:
                raise RtcpError(
                    f"RTCP SDES item {item_type} in chunk {index + 1} has no length "
                    f"(packet at byte {offset})"
                )
            item_end = at + 2 + body[at + 1]
            if item_end > size:
                raise RtcpError(
                    f"RTCP SDES item {item_type} of {body[at + 1]} bytes in chunk {index + 1} "
                    f"overruns the packet (packet at byte {offset})"
                )
            items[item_type] = bytes(body[at + 2 : item_end])
            at = item_end
        if at > size:
            raise RtcpError(
                f"RTCP SDES chunk {index + 1} of {count} is not padded to 32 bits "
                f"(packet at byte {offset})"
            )
    return SourceDescription(chunks)


def _bye(body: memoryview, count: int, offset: int) -> Bye:
    need = 4 * count
    size = len(body)
    if need > size:
        raise RtcpError(
            f"RTCP BYE truncated: {count} SSRCs need {need + HEADER_SIZE} bytes, the packet has "
            f"{size + HEADER_SIZE} (packet at byte {offset})"
        )
    ssrcs = list(struct.unpack_from(f"!{count}I", body))
    reason = None
    if need < size:
        # RFC 3550 section 6.6: an optional length-prefixed reason, then zero padding.
        reason_size = body[need]
        if need + 1 + reason_size > size:
            raise RtcpError(
                f"RTCP BYE reason of {reason_size} bytes overruns the packet "
                f"(packet at byte {offset})"
            )
        reason = bytes(body[need + 1 : need + 1 + reason_size]).decode("utf-8", "replace")
    return Bye(ssrcs, reason)


def _feedback(body: memoryview, packet_type: int, fmt: int, name: str, offset: int) -> Feedback:
    if len(body) < FEEDBACK_HEADER_SIZE:
        raise RtcpError(
            f"RTCP {name} truncated: {len(body) + HEADER_SIZE} bytes, the feedback header "
            f"needs 12 (packet at byte {offset})"
        )
    sender_ssrc, media_ssrc = _FEEDBACK.unpack_from(body)
    fci = bytes(body[FEEDBACK_HEADER_SIZE:])
    if packet_type == PSFB and fmt == FMT_FIR and (not fci or len(fci) % FIR_ENTRY_SIZE):
        # RFC 5104 section 4.3.1.2: one or more 8-byte entries; we read them (fir_requests).
        raise RtcpError(
            f"RTCP FIR has {len(fci)} bytes of FCI, not a whole number of 8-byte entries "
            f"(packet at byte {offset})"
        )
    return Feedback(packet_type, fmt, sender_ssrc, media_ssrc, fci)


def fir_requests(feedback: Feedback) -> list[tuple[int, int]]:
    """(media SSRC, command sequence number) of each FIR entry (RFC 5104 section 4.3.1.1)."""
    return [
        _FIR_ENTRY.unpack_from(feedback.fci, at)
        for at in range(0, len(feedback.fci) - FIR_ENTRY_SIZE + 1, FIR_ENTRY_SIZE)
    ]


# -- NTP timestamps -----------------------------------------------------------------------------


def ntp_to_unix(ntp: int) -> float:
    """Seconds since the Unix epoch of a 64-bit NTP timestamp.

    RFC 4330 section 3: a timestamp whose top bit is clear is in era 1 (from 2036-02-07), so
    the 32-bit seconds wrap does not send wall-clock time back to 1900.
    """
    seconds = ntp >> 32
    if not seconds & 0x80000000:
        seconds += NTP_ERA_SECONDS
    return seconds - NTP_UNIX_OFFSET + (ntp & 0xFFFFFFFF) / NTP_ERA_SECONDS


def unix_to_ntp(unix: float) -> int:
    """The 64-bit NTP timestamp of a Unix time (era 0 or 1, see `ntp_to_unix`)."""
    fixed = round((unix + NTP_UNIX_OFFSET) * NTP_ERA_SECONDS)
    return fixed & 0xFFFFFFFFFFFFFFFF


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: an SR's identity in LSR (RFC 3550 6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


# -- building -----------------------------------------------------------------------------------


def _header(count: int, packet_type: int, body_size: int) -> bytes:
    # Every body we build is a whole number of 32-bit words, so no padding is ever needed.
    return _HEADER.pack(0x80 | count, packet_type, body_size // 4)


def report_block(
    ssrc: int,
    fraction_lost: int,
    cumulative_lost: int,
    highest_sequence: int,
    jitter: int,
    last_sr: int,
    delay_since_last_sr: int,
) -> bytes:
    """One 24-byte reception report block (RFC 3550 section 6.4.1)."""
    if not 0 <= fraction_lost <= 0xFF:
        raise ValueError(f"fraction lost {fraction_lost} is outside 0-255")
    if not MIN_CUMULATIVE_LOST <= cumulative_lost <= MAX_CUMULATIVE_LOST:
        raise ValueError(f"cumulative lost {cumulative_lost} does not fit 24 signed bits")
    loss = fraction_lost << 24 | (cumulative_lost & 0xFFFFFF)
    return _BLOCK.pack(ssrc, loss, highest_sequence, jitter, last_sr, delay_since_last_sr)


def receiver_report(sender_ssrc: int, blocks: Iterable[bytes] = ()) -> bytes:
    """An RR from `sender_ssrc` carrying up to 31 report blocks built by `report_block`."""
    blocks = list(blocks)
    if len(blocks) > MAX_COUNT:
        raise ValueError(f"{len(blocks)} report blocks do not fit one RR (at most 31)")
    body = _U32.pack(sender_ssrc) + b"".join(blocks)
    return _header(len(blocks), RR, len(body)) + body


def source_description(ssrc: int, cname: str | bytes) -> bytes:
    """An SDES with one chunk: the CNAME of `ssrc` (RFC 3550 section 6.5.1)."""
    text = cname.encode() if isinstance(cname, str) else cname
    if not 0 < len(text) <= 0xFF:
        raise ValueError(f"CNAME of {len(text)} bytes: it needs 1-255")
    chunk = _U32.pack(ssrc) + bytes((SDES_CNAME, len(text))) + text
    # At least one null octet ends the item list, more pad the chunk to 32 bits.
    chunk += bytes(4 - len(chunk) % 4)
    return _header(1, SDES, len(chunk)) + chunk


def bye(ssrc: int, reason: str | None = None) -> bytes:
    """A BYE for `ssrc`, with an optional reason (RFC 3550 section 6.6)."""
    body = _U32.pack(ssrc)
    if reason is not None:
        text = reason.encode()
        if len(text) > 0xFF:
            raise ValueError(f"BYE reason of {len(text)} bytes: at most 255")
        body += bytes((len(text),)) + text
        body += bytes(-len(body) % 4)
    return _header(1, BYE, len(body)) + body


def pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """Picture Loss Indication (RFC 4585 section 6.3.1): PSFB, FMT 1, no FCI."""
    return _header(FMT_PLI, PSFB, FEEDBACK_HEADER_SIZE) + _FEEDBACK.pack(sender_ssrc, media_ssrc)


def fir(sender_ssrc: int, media_ssrc: int, sequence_number: int) -> bytes:
    """Full Intra Request (RFC 5104 section 4.3.1): PSFB, FMT 4, one FCI entry.

    The header's media SSRC "SHALL be set to 0"; the source is named in the FCI. A new request
    must use the next `sequence_number` (modulo 256), a repetition the same one.
    """
    body = _FEEDBACK.pack(sender_ssrc, 0) + _FIR_ENTRY.pack(media_ssrc, sequence_number & 0xFF)
    return _header(FMT_FIR, PSFB, len(body)) + body


def compound(*packets: bytes) -> bytes:
    """One datagram of RTCP packets, in the order given."""
    return b"".join(packets)


def feedback_compound(
    sender_ssrc: int, cname: str | bytes, blocks: Iterable[bytes], *feedback: bytes
) -> bytes:
    """RR + SDES CNAME + feedback, the compound RFC 4585 section 3.1 requires for feedback."""
    return compound(
        receiver_report(sender_ssrc, blocks), source_description(sender_ssrc, cname), *feedback
    )


# -- reception reports --------------------------------------------------------------------------


class ReceptionReport:
    """Report blocks about one source from its counters (RFC 3550 A.3 and section 6.4.1).

    Times (`arrival`, `now`) are seconds on any one monotonic clock. Sequence numbers are
    extended (cycles << 16 | sequence), as `InboundStream` keeps them.
    """

    __slots__ = ("_expected_prior", "_last_sr", "_last_sr_arrival", "_received_prior", "ssrc")

    def __init__(self, ssrc: int) -> None:
        self.ssrc = ssrc
        self._expected_prior = 0
        self._received_prior = 0
        self._last_sr = 0
        self._last_sr_arrival: float | None = None

    def on_sender_report(self, ntp: int, arrival: float) -> None:
        """Remember the latest SR from the source, for LSR and DLSR."""
        self._last_sr = ntp_middle(ntp)
        self._last_sr_arrival = arrival

    def block(
        self, base_sequence: int, highest_sequence: int, received: int, jitter: float, now: float
    ) -> bytes:
        """The report block for now; the loss fraction covers the time since the last call."""
        expected = highest_sequence - base_sequence + 1
        lost = expected - received
        # Duplicates can make loss negative; the field is 24-bit signed, so clamp both ways.
        lost = max(MIN_CUMULATIVE_LOST, min(MAX_CUMULATIVE_LOST, lost))
        expected_interval = expected - self._expected_prior
        received_interval = received - self._received_prior
        self._expected_prior = expected
        self._received_prior = received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            fraction = 0
        else:
            # Nothing received at all in the interval would give 256: report 255.
            fraction = min(0xFF, (lost_interval << 8) // expected_interval)
        arrival = self._last_sr_arrival
        if arrival is None:
            last_sr = delay = 0  # no SR yet: both fields are zero
        else:
            last_sr = self._last_sr
            delay = min(0xFFFFFFFF, max(0, round((now - arrival) * 65536)))
        return report_block(
            self.ssrc,
            fraction,
            lost,
            highest_sequence & 0xFFFFFFFF,
            min(0xFFFFFFFF, max(0, round(jitter))),
            last_sr,
            delay,
        )
