"""Rewriting real captures: other link types and file formats, and network faults.

The datagrams stay those of the real senders; only their framing or their order changes.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

import dpkt

from recorder.capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    read_udp,
)

Datagram = tuple[float, bytes, int, int, bytes]
LINK_TYPES = {
    "ethernet": LINKTYPE_ETHERNET,
    "linux-sll": LINKTYPE_LINUX_SLL,
    "linux-sll2": LINKTYPE_LINUX_SLL2,
    "raw": LINKTYPE_RAW,
    "null": LINKTYPE_NULL,
}


# Where the fixture captures send each medium.
CAPTURE_PORTS = {"video": 5004, "audio": 5006}


def datagrams(capture: Path) -> list[Datagram]:
    return list(read_udp(capture))


async def send_capture(capture: Path, ports: dict[str, int], speed: float = 4.0) -> None:
    """Send the capture's media to `ports` ({kind: port} on 127.0.0.1) as its sender did,
    `speed` times faster."""
    loop = asyncio.get_running_loop()
    senders = {kind: socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for kind in ports}
    by_port = {port: kind for kind, port in CAPTURE_PORTS.items() if kind in ports}
    items = [(t, by_port[p], d) for t, _, _, p, d in datagrams(capture) if p in by_port]
    start = loop.time()
    try:
        for sent_at, kind, data in items:
            delay = (sent_at - items[0][0]) / speed - (loop.time() - start)
            if delay > 0:
                await asyncio.sleep(delay)
            senders[kind].sendto(data, ("127.0.0.1", ports[kind]))
    finally:
        for sock in senders.values():
            sock.close()


def ip_packet(source: bytes, source_port: int, port: int, payload: bytes, version: int) -> bytes:
    udp = dpkt.udp.UDP(sport=source_port, dport=port, data=payload)
    udp.ulen = len(udp)
    if version == 6:
        ip6 = dpkt.ip6.IP6(
            src=b"\0" * 15 + b"\1", dst=b"\0" * 15 + b"\1", nxt=dpkt.ip.IP_PROTO_UDP, hlim=64
        )
        ip6.data = udp
        ip6.plen = len(udp)
        return bytes(ip6)
    ip = dpkt.ip.IP(src=source, dst=b"\x7f\0\0\1", p=dpkt.ip.IP_PROTO_UDP, ttl=64, data=udp)
    ip.len = len(ip)
    return bytes(ip)


def frame(link: str, packet: bytes, version: int) -> bytes:
    ethertype = 0x86DD if version == 6 else 0x0800
    if link == "ethernet":
        return bytes(12) + struct.pack("!H", ethertype) + packet
    if link == "linux-sll":
        return struct.pack("!HHH8sH", 0, 772, 0, bytes(8), ethertype) + packet
    if link == "linux-sll2":
        return struct.pack("!HHIHBB8s", ethertype, 0, 1, 772, 0, 0, bytes(8)) + packet
    if link == "null":
        return struct.pack("<I", 24 if version == 6 else 2) + packet
    return packet


def write_capture(
    path: Path,
    items: Iterable[Datagram],
    link: str = "ethernet",
    pcapng: bool = False,
    version: int = 4,
) -> Path:
    linktype = LINK_TYPES[link]
    with open(path, "wb") as file:
        writer = (
            dpkt.pcapng.Writer(file, linktype=linktype)
            if pcapng
            else dpkt.pcap.Writer(file, linktype=linktype)
        )
        for timestamp, source, source_port, port, payload in items:
            source4 = source if len(source) == 4 else b"\x7f\0\0\1"
            packet = ip_packet(source4, source_port, port, payload, version)
            writer.writepkt(frame(link, packet, version), ts=timestamp)
    return path


def rewrite(
    capture: Path,
    path: Path,
    port: int,
    change: Callable[[list[Datagram]], list[Datagram]],
) -> Path:
    """Apply `change` to the datagrams sent to `port`, keep the others, write a new capture."""
    items = datagrams(capture)
    flow = [item for item in items if item[3] == port]
    others = [item for item in items if item[3] != port]
    changed = change(flow)
    # Arrival order: the changed flow keeps its new order; others interleave by time.
    merged = sorted(others + changed, key=lambda item: item[0])
    if changed:
        flow_order = iter(changed)
        merged = [next(flow_order) if item[3] == port else item for item in merged]
    return write_capture(path, merged)


def reorder_and_duplicate(flow: list[Datagram], seed: int) -> list[Datagram]:
    """Swap neighbours and repeat packets, as a jittery network with retransmitting links."""
    rng = random.Random(seed)
    result = list(flow)
    for index in range(1, len(result) - 1, 7):
        result[index], result[index + 1] = result[index + 1], result[index]
    for index in sorted(rng.sample(range(len(result)), len(result) // 20), reverse=True):
        result.insert(index + rng.randint(1, 3), result[index])
    return result
