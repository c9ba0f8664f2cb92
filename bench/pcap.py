"""Just enough classic pcap for the benchmark: read the RTP of one UDP flow, write it back.

Captures made by ``tcpdump -i lo`` are Ethernet-framed (DLT_EN10MB) IPv4; that is all this
reads. Records are kept as whole frames so a rewritten capture carries the payloaders' bytes
unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PCAP_MAGIC_US = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
ETHERNET_HEADER = 14
ETHERTYPE_IPV4 = 0x0800
IPPROTO_UDP = 17
UDP_HEADER = 8

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_RTP = struct.Struct("!BBHII")


class PcapError(Exception):
    """The capture is not what the benchmark made."""


@dataclass(slots=True)
class Record:
    time: float
    frame: bytes  # the whole Ethernet frame
    payload_offset: int  # where the UDP payload (the RTP packet) starts in `frame`
    dst_port: int

    @property
    def payload(self) -> bytes:
        return self.frame[self.payload_offset :]


@dataclass(slots=True)
class Rtp:
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    payload_type: int


def parse_rtp(packet: bytes) -> Rtp:
    first, second, sequence, timestamp, ssrc = _RTP.unpack_from(packet)
    if first >> 6 != 2:
        raise PcapError("not RTP version 2")
    return Rtp(sequence, timestamp, ssrc, bool(second & 0x80), second & 0x7F)


def read(path: Path) -> Iterator[Record]:
    """Every IPv4 UDP record of an Ethernet-framed, microsecond pcap."""
    with path.open("rb") as file:
        header = file.read(_GLOBAL.size)
        magic, _, _, _, _, _, link_type = _GLOBAL.unpack(header)
        if magic != PCAP_MAGIC_US or link_type != LINKTYPE_ETHERNET:
            raise PcapError(f"{path.name}: not a little-endian Ethernet pcap")
        while True:
            head = file.read(_RECORD.size)
            if len(head) < _RECORD.size:
                return
            seconds, micros, length, _ = _RECORD.unpack(head)
            frame = file.read(length)
            if len(frame) < length:
                raise PcapError(f"{path.name}: truncated record")
            ethertype = struct.unpack_from("!H", frame, 12)[0]
            if ethertype != ETHERTYPE_IPV4 or frame[ETHERNET_HEADER + 9] != IPPROTO_UDP:
                continue
            ip_length = (frame[ETHERNET_HEADER] & 0x0F) * 4
            udp = ETHERNET_HEADER + ip_length
            dst_port = struct.unpack_from("!H", frame, udp + 2)[0]
            yield Record(seconds + micros / 1e6, frame, udp + UDP_HEADER, dst_port)


def write(path: Path, records: Iterable[tuple[float, bytes]]) -> int:
    """Write (time, Ethernet frame) records; return how many."""
    count = 0
    with path.open("wb") as file:
        file.write(_GLOBAL.pack(PCAP_MAGIC_US, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))
        for when, frame in records:
            micros_total = round(when * 1_000_000)
            seconds, micros = divmod(micros_total, 1_000_000)
            file.write(_RECORD.pack(seconds, micros, len(frame), len(frame)))
            file.write(frame)
            count += 1
    return count
