"""A VP8 + Opus connection's packets, from the captures, as long as asked.

Longer than the capture, each flow is looped with its sequence numbers and RTP timestamps
continued (as one long send would have numbered them), so the recorder sees one unbroken stream.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from bench.inputs import Capture, rtp_flow

VIDEO, AUDIO = 0, 1
_SEQ_TS = struct.Struct("!HI")


@dataclass(slots=True)
class Flow:
    kind: int
    clock_rate: int
    packets: list[tuple[float, bytes]]  # (seconds from the first packet, RTP packet)
    period: float  # seconds between loops (last timestamp + one frame)
    ts_span: int  # RTP timestamp advance per loop

    @classmethod
    def load(cls, capture: Capture, kind: int) -> Flow:
        packets = rtp_flow(capture)
        clock = capture.medium.clock_rate
        first_ts = _SEQ_TS.unpack_from(packets[0][1], 2)[1]
        last_ts = _SEQ_TS.unpack_from(packets[-1][1], 2)[1]
        frame = 3000 if kind == VIDEO else 960
        span = ((last_ts - first_ts) & 0xFFFFFFFF) + frame
        return cls(kind, clock, packets, span / clock, span)

    def until(self, seconds: float) -> Iterator[tuple[float, int, bytes]]:
        """(media time, kind, packet) for media times below `seconds`."""
        loop = 0
        count = len(self.packets)
        while True:
            offset = loop * self.period
            for when, packet in self.packets:
                at = offset + when
                if at >= seconds:
                    return
                if loop:
                    sequence, timestamp = _SEQ_TS.unpack_from(packet, 2)
                    packet = (
                        packet[:2]
                        + _SEQ_TS.pack(
                            (sequence + loop * count) & 0xFFFF,
                            (timestamp + loop * self.ts_span) & 0xFFFFFFFF,
                        )
                        + packet[8:]
                    )
                yield at, self.kind, packet
            loop += 1


def connection(video: Flow, audio: Flow, seconds: float) -> Iterator[tuple[float, int, bytes]]:
    """Both flows merged in media-time order."""
    return heapq.merge(video.until(seconds), audio.until(seconds), key=lambda item: item[0])


def with_ssrc(packet: bytes, ssrc: bytes) -> bytes:
    return packet[:8] + ssrc + packet[12:]
