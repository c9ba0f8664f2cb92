"""UDP datagrams out of pcap / pcapng captures.

dpkt reads the file formats; the link, IP and UDP headers are decoded here with a few
`unpack_from` calls, because building dpkt's layer objects for every packet costs more than
the rest of the pipeline. Anything that is not a whole, unfragmented UDP datagram is counted
and skipped; a capture cut short (tcpdump killed) ends where its last whole record ends.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import dpkt

from recorder.errors import CaptureError, UnsupportedError

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",  # nanosecond resolution
    b"\xa1\xb2\x3c\x4d",
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

# Link-layer header types (tcpdump.org/linktypes.html), including the platform DLT_RAW values.
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_BSD = 12
LINKTYPE_RAW_OPENBSD = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = {0x8100, 0x88A8, 0x9100}
# BSD address families in DLT_NULL / DLT_LOOP headers; IPv6 differs between the BSDs.
AF_INET = 2
AF_INET6 = {10, 24, 28, 30}
IPPROTO_UDP = 17
# IPv6 extension headers that may precede UDP (RFC 8200 section 4); 44 is the fragment header.
IPV6_EXTENSIONS = {0, 43, 60}
IPV6_FRAGMENT = 44

_U16 = struct.Struct("!H")
_UDP = struct.Struct("!HHH")


@dataclass(slots=True)
class CaptureStats:
    records: int = 0
    udp: int = 0
    not_ip: int = 0
    not_udp: int = 0
    fragments: int = 0
    truncated_records: int = 0
    truncated_file: bool = False
    link_type: int = -1


# (time, source address bytes, source port, destination port, UDP payload)
Datagram = tuple[float, bytes, int, int, bytes]


def read_udp(path: str | Path, stats: CaptureStats | None = None) -> Iterator[Datagram]:
    """Yield every UDP datagram of the capture at `path`, counting what is skipped in `stats`."""
    stats = stats if stats is not None else CaptureStats()
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed by the generator's finally
    except OSError as error:
        raise CaptureError(f"cannot read capture {path}: {error.strerror or error}") from None
    try:
        reader = _reader(file, path)
        stats.link_type = reader.datalink()
        ip_offset = _link_decoder(stats.link_type)
        records = iter(reader)
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except (dpkt.dpkt.Error, struct.error, ValueError):
                stats.truncated_file = True
                break
            stats.records += 1
            timestamp, buf = record
            found = ip_offset(buf)
            if found is None:
                stats.not_ip += 1
                continue
            datagram = _udp(float(timestamp), buf, found[0], found[1], stats)
            if datagram is not None:
                stats.udp += 1
                yield datagram
    finally:
        file.close()


def _reader(file: BinaryIO, path: str | Path) -> dpkt.pcap.Reader | dpkt.pcapng.Reader:
    magic = file.read(4)
    file.seek(0)
    try:
        if magic in PCAP_MAGICS:
            return dpkt.pcap.Reader(file)
        if magic == PCAPNG_MAGIC:
            return dpkt.pcapng.Reader(file)
    except (dpkt.dpkt.Error, struct.error, ValueError) as error:
        raise CaptureError(f"{path}: damaged capture header ({error})") from None
    raise CaptureError(f"{path} is not a pcap or pcapng capture")


# A link decoder returns (offset of the IP header, IP version) or None if not IP.
LinkDecoder = Callable[[bytes], "tuple[int, int] | None"]


def _link_decoder(link_type: int) -> LinkDecoder:
    decoders: dict[int, LinkDecoder] = {
        LINKTYPE_ETHERNET: _ethernet,
        LINKTYPE_LINUX_SLL: lambda buf: _ethertype(buf, 14, 16),
        LINKTYPE_LINUX_SLL2: lambda buf: _ethertype(buf, 0, 20),
        LINKTYPE_RAW: _raw,
        LINKTYPE_RAW_BSD: _raw,
        LINKTYPE_RAW_OPENBSD: _raw,
        LINKTYPE_IPV4: _raw,
        LINKTYPE_IPV6: _raw,
        LINKTYPE_NULL: _null,
        LINKTYPE_LOOP: _loop,
    }
    try:
        return decoders[link_type]
    except KeyError:
        raise UnsupportedError(
            f"capture link type {link_type} is not supported "
            "(Ethernet, Linux cooked v1/v2, raw IP, BSD loopback are)"
        ) from None


def _ethertype(buf: bytes, at: int, header: int) -> tuple[int, int] | None:
    if len(buf) < header:
        return None
    ethertype = _U16.unpack_from(buf, at)[0]
    if ethertype == ETHERTYPE_IPV4:
        return header, 4
    if ethertype == ETHERTYPE_IPV6:
        return header, 6
    return None


def _ethernet(buf: bytes) -> tuple[int, int] | None:
    at = 12
    while len(buf) >= at + 2 and _U16.unpack_from(buf, at)[0] in ETHERTYPE_VLAN:
        at += 4
    return _ethertype(buf, at, at + 2)


def _raw(buf: bytes) -> tuple[int, int] | None:
    if not buf:
        return None
    version = buf[0] >> 4
    return (0, version) if version in (4, 6) else None


def _family(value: int) -> tuple[int, int] | None:
    if value == AF_INET:
        return 4, 4
    if value in AF_INET6:
        return 4, 6
    return None


def _null(buf: bytes) -> tuple[int, int] | None:
    # The family is in the capturing host's byte order, which the file does not record.
    if len(buf) < 4:
        return None
    return _family(int.from_bytes(buf[:4], "little")) or _family(int.from_bytes(buf[:4], "big"))


def _loop(buf: bytes) -> tuple[int, int] | None:
    return _family(int.from_bytes(buf[:4], "big")) if len(buf) >= 4 else None


def _udp(
    timestamp: float, buf: bytes, offset: int, version: int, stats: CaptureStats
) -> Datagram | None:
    size = len(buf)
    if version == 4:
        if size < offset + 20:
            stats.truncated_records += 1
            return None
        header = (buf[offset] & 0x0F) * 4
        if buf[offset + 9] != IPPROTO_UDP:
            stats.not_udp += 1
            return None
        if _U16.unpack_from(buf, offset + 6)[0] & 0x3FFF:  # MF flag or fragment offset
            stats.fragments += 1
            return None
        source = buf[offset + 12 : offset + 16]
        udp = offset + header
    else:
        if size < offset + 40:
            stats.truncated_records += 1
            return None
        next_header = buf[offset + 6]
        source = buf[offset + 8 : offset + 24]
        udp = offset + 40
        while next_header in IPV6_EXTENSIONS and size >= udp + 2:
            next_header, udp = buf[udp], udp + (buf[udp + 1] + 1) * 8
        if next_header == IPV6_FRAGMENT:
            stats.fragments += 1
            return None
        if next_header != IPPROTO_UDP:
            stats.not_udp += 1
            return None
    if size < udp + 8:
        stats.truncated_records += 1
        return None
    source_port, destination_port, length = _UDP.unpack_from(buf, udp)
    if length < 8 or udp + length > size:
        stats.truncated_records += 1
        return None
    return timestamp, source, source_port, destination_port, buf[udp + 8 : udp + length]
