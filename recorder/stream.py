"""One RTP stream (one SSRC): packets in, whole decodable frames out.

Three steps, all codec-agnostic:
1. Order: 16-bit sequence numbers are extended, duplicates dropped, and packets held in a
   bounded reorder buffer until the gap before them fills or is given up as lost.
2. Assemble: packets in order are grouped into frames by RTP timestamp; a frame ends at the
   marker bit or when the timestamp changes. A frame that lost a packet, or whose first packet
   cannot start a frame, is dropped and counted.
3. Gate: after any loss, video frames are held back until the next keyframe, so no frame is
   written whose references are missing.

This is the per-packet path: plain attributes, no logging, no allocation beyond the frame's
payload list.
"""

from __future__ import annotations

from collections.abc import Callable

from recorder.codecs.base import Depacketizer
from recorder.errors import DepacketizeError
from recorder.media import Frame
from recorder.rtp import RtpPacket

# Packets held while waiting for a missing one. A 1080p keyframe is ~200 packets at mtu 1200,
# and real networks reorder within a few packets; 256 covers both without unbounded memory.
REORDER_WINDOW = 256
# ... and at most this many payload bytes, whatever the packet count (jumbo packets).
REORDER_BYTES = 1 << 20
# Seconds a gap may stay open before the missing packets are declared lost, whatever the
# window holds, so a quiet stream does not hold its last frames forever.
REORDER_DELAY = 0.5
# RFC 3550 appendix A.1: a sequence jump beyond these is not loss but a source restart
# (or a stray packet), confirmed when the next packet continues from it.
MAX_DROPOUT = 3000
MAX_MISORDER = 100
# Lost sequence numbers remembered to tell a late packet from a duplicate.
LOST_HISTORY = 1024

FrameSink = Callable[[Frame, float], None]


class InboundStream:
    """Reorders, assembles and gates one SSRC; hands each decodable frame to `sink`."""

    __slots__ = (
        "_arrival",
        "_buffer",
        "_buffered_bytes",
        "_clock_rate",
        "_depacketizer",
        "_expected",
        "_frame_ok",
        "_frame_ts",
        "_gap",
        "_gap_since",
        "_highest",
        "_in_frame",
        "_last_ts",
        "_lost_recent",
        "_need_keyframe",
        "_parts",
        "_probation",
        "_single",
        "_sink",
        "_transit",
        "_video",
        "base_sequence",
        "bytes",
        "duplicates",
        "frames",
        "frames_gated",
        "frames_incomplete",
        "frames_malformed",
        "jitter",
        "keyframes",
        "late",
        "lost",
        "packets",
        "reorder_delay",
        "reorder_window",
        "restarts",
        "ssrc",
        "stray",
    )

    def __init__(
        self,
        ssrc: int,
        depacketizer: Depacketizer,
        sink: FrameSink,
        *,
        reorder_window: int = REORDER_WINDOW,
        reorder_delay: float = REORDER_DELAY,
    ) -> None:
        self.ssrc = ssrc
        self.reorder_window = reorder_window
        self.reorder_delay = reorder_delay
        self._depacketizer = depacketizer
        self._sink = sink
        self._single = depacketizer.single_packet_frames
        self._video = depacketizer.kind == "video"
        self._clock_rate = depacketizer.clock_rate
        self._transit: int | None = None
        # Ordering state; extended sequence numbers start at the first packet's.
        self._highest: int | None = None
        self._expected = 0
        self._buffer: dict[int, tuple[RtpPacket, float]] = {}
        self._buffered_bytes = 0
        self._gap_since = 0.0
        self._gap = False
        self._lost_recent: dict[int, None] = {}
        self._probation: int | None = None
        # Assembly state.
        self._in_frame = False
        self._frame_ok = False
        self._frame_ts = 0
        self._parts: list[memoryview] = []
        self._arrival = 0.0
        self._last_ts: int | None = None
        self._need_keyframe = self._video
        # Counters, read from outside through `stats`.
        self.packets = 0
        self.bytes = 0
        # RFC 3550 A.8 interarrival jitter, in RTP timestamp units.
        self.jitter = 0.0
        self.base_sequence = 0  # extended sequence number of the first packet (RR, A.3)
        self.lost = 0
        self.duplicates = 0
        self.late = 0
        self.stray = 0
        self.restarts = 0
        self.frames = 0
        self.keyframes = 0
        self.frames_incomplete = 0
        self.frames_gated = 0
        self.frames_malformed = 0

    def stats(self) -> dict[str, int]:
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "late": self.late,
            "stray": self.stray,
            "restarts": self.restarts,
            "frames": self.frames,
            "keyframes": self.keyframes,
            "dropped_frames": self.frames_incomplete + self.frames_gated + self.frames_malformed,
            "incomplete_frames": self.frames_incomplete,
            "gated_frames": self.frames_gated,
            "malformed_frames": self.frames_malformed,
            "jitter": round(self.jitter),
        }

    @property
    def highest_sequence(self) -> int:
        """The highest extended sequence number received (RFC 3550 A.3), for reports."""
        return self._highest if self._highest is not None else 0

    @property
    def waiting_for_keyframe(self) -> bool:
        """Video frames are being dropped until a keyframe arrives (start, or after loss)."""
        return self._need_keyframe

    def expire(self, now: float) -> None:
        """Give up on gaps older than the reorder delay; called by a clock when packets stop."""
        if self._buffer and now - self._gap_since > self.reorder_delay:
            self._skip_gap()

    # -- ordering ---------------------------------------------------------------------------

    def push(self, packet: RtpPacket, arrival: float) -> None:
        """Take one packet of this SSRC, in arrival order."""
        self.packets += 1
        self.bytes += len(packet.payload)
        # RFC 3550 A.8; the 32-bit wrap of RTP timestamps is folded out of the difference.
        transit = int(arrival * self._clock_rate) - packet.timestamp
        previous = self._transit
        self._transit = transit
        if previous is not None:
            d = transit - previous
            if not -0x80000000 <= d < 0x80000000:
                d = ((d + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            self.jitter += ((d if d >= 0 else -d) - self.jitter) / 16
        sequence = packet.sequence
        highest = self._highest
        if highest is None:
            self._highest = self._expected = ext = self.base_sequence = sequence
        else:
            ext = highest + 1
            if sequence == ext & 0xFFFF and ext == self._expected and not self._buffer:
                # The next packet, nothing held: what the general case below comes to.
                self._highest = ext
                self._probation = None
                self._expected = ext + 1
                self._deliver(packet, arrival)
                return
            delta = (sequence - highest) & 0xFFFF
            ext = highest + delta if delta < 0x8000 else highest + delta - 0x10000
            if ext - highest > MAX_DROPOUT or self._expected - ext > MAX_MISORDER:
                ext = self._far_jump(sequence)
                if ext is None:
                    return
            elif ext > highest:
                self._highest = ext
            self._probation = None
        expected = self._expected
        if ext == expected and not self._buffer:
            self._expected = ext + 1
            self._deliver(packet, arrival)
            return
        if ext < expected:
            if ext in self._lost_recent:
                self.late += 1
            else:
                self.duplicates += 1
            return
        buffer = self._buffer
        if ext in buffer:
            self.duplicates += 1
            return
        if not buffer:
            self._gap_since = arrival
        buffer[ext] = (packet, arrival)
        self._buffered_bytes += len(packet.payload)
        self._drain()
        if buffer and (
            len(buffer) >= self.reorder_window
            or self._buffered_bytes > REORDER_BYTES
            or self._highest - self._expected >= self.reorder_window
            or arrival - self._gap_since > self.reorder_delay
        ):
            self._skip_gap()

    def _far_jump(self, sequence: int) -> int | None:
        """RFC 3550 A.1: believe a far jump only when the next packet continues it."""
        if self._probation != sequence:
            self._probation = (sequence + 1) & 0xFFFF
            self.stray += 1
            return None
        # The source restarted: release what we hold, then continue the extended numbering
        # from the new sequence number (keeping ext = sequence modulo 2**16, which unwrapping
        # relies on) without counting the jump as loss.
        self.flush()
        self.restarts += 1
        self._probation = None
        highest = self._highest if self._highest is not None else 0
        ext = highest + ((sequence - highest) & 0xFFFF or 0x10000)
        self._highest = self._expected = ext
        self._gap = True
        return ext

    def _drain(self) -> None:
        buffer = self._buffer
        if self._expected not in buffer:
            return
        while self._expected in buffer:
            packet, arrival = buffer.pop(self._expected)
            self._buffered_bytes -= len(packet.payload)
            self._expected += 1
            self._deliver(packet, arrival)
        if buffer:
            # A later gap remains open; it has been waiting since its oldest packet arrived.
            self._gap_since = min(arrival for _, arrival in buffer.values())

    def _skip_gap(self) -> None:
        """Give up on the packets missing before the oldest buffered one."""
        first = min(self._buffer)
        lost_recent = self._lost_recent
        for ext in range(self._expected, first):
            lost_recent[ext] = None
        while len(lost_recent) > LOST_HISTORY:
            del lost_recent[next(iter(lost_recent))]
        self.lost += first - self._expected
        self._expected = first
        self._gap = True
        self._drain()

    def flush(self) -> None:
        """End of stream: release everything held (declaring gaps lost), drop a partial frame."""
        while self._buffer:
            self._skip_gap()
        if self._in_frame:
            self._in_frame = False
            self._parts = []
            self.frames_incomplete += 1

    # -- assembly ---------------------------------------------------------------------------

    def _deliver(self, packet: RtpPacket, arrival: float) -> None:
        if self._gap:
            self._gap = False
            if self._video:
                self._need_keyframe = True
                self._frame_ok = False
        payload = packet.payload
        if not payload:
            # Padding-only packets (Chrome's bandwidth probes) advance the sequence, carry
            # no media and do not end a frame.
            return
        if self._single:
            self._emit([payload], packet.timestamp, arrival)
            return
        timestamp = packet.timestamp
        if not self._in_frame or timestamp != self._frame_ts:
            if self._in_frame:
                # The previous frame's last packet carried no marker; a new timestamp ends it.
                self._finish_frame()
            self._in_frame = True
            self._frame_ts = timestamp
            try:
                self._frame_ok = self._depacketizer.starts_frame(payload)
            except DepacketizeError:
                self._frame_ok = False
        if self._frame_ok:
            self._parts.append(payload)
        self._arrival = arrival
        if packet.marker:
            self._finish_frame()

    def _finish_frame(self) -> None:
        self._in_frame = False
        parts = self._parts
        self._parts = []
        if self._frame_ok:
            self._emit(parts, self._frame_ts, self._arrival)
        else:
            self.frames_incomplete += 1

    def _emit(self, parts: list[memoryview], timestamp: int, arrival: float) -> None:
        last = self._last_ts
        if last is None:
            extended = timestamp
        else:
            delta = (timestamp - last) & 0xFFFFFFFF
            extended = last + delta if delta < 0x80000000 else last + delta - 0x100000000
        try:
            frame = self._depacketizer.build(parts, extended)
        except DepacketizeError:
            self.frames_malformed += 1
            if self._video:
                self._need_keyframe = True
            return
        self._last_ts = extended
        if self._need_keyframe:
            if not frame.keyframe:
                self.frames_gated += 1
                return
            self._need_keyframe = False
        self.frames += 1
        if frame.keyframe:
            self.keyframes += 1
        self._sink(frame, arrival)
