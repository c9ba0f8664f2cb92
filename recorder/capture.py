"""UDP datagrams out of pcap / pcapng captures.

pcap files (what tcpdump writes) are read here, over one `mmap` of the file: per record one
`unpack_from` for its header and, for IPv4 UDP behind an Ethernet or Linux cooked header (what
tcpdump captures on Linux), one more for the link, IP and UDP headers together. Every other
record takes the general path, which decodes each layer with its own checks. pcapng files are
read by dpkt, imported only for them. Anything that is not a whole, unfragmented UDP datagram is
counted and skipped; a capture cut short (tcpdump killed) ends where its last whole record ends.

`read_udp` yields the datagrams; `feed_udp` hands them to a function (`Router.feed`) with no
generator step or tuple per datagram, as views into the mapped file rather than copies.
"""

from __future__ import annotations

import contextlib
import mmap
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from recorder.errors import CaptureError, UnsupportedError

# pcap file magic (as bytes) -> (byte order of the file's integers, nanosecond timestamps).
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
PCAP_FILE_HEADER_SIZE = 24
PCAP_RECORD_HEADER_SIZE = 16
NANOSECONDS = 1_000_000_000
# Bytes of a pcap capture read between two yields of `_scan`; the pages of a mapped file
# that were read are handed back there.
CHUNK_BYTES = 16 << 20

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
# An IPv4 header of 20 bytes (version 4, IHL 5): one without options.
IPV4_PLAIN = 0x45
# The MF flag and the fragment offset of IPv4's flags/fragment field.
IPV4_FRAGMENT_MASK = 0x3FFF
IPV4_HEADER_SIZE = 20
UDP_HEADER_SIZE = 8

# Link types with an ethertype: (offset of the ethertype, length of the link header).
# Ethernet here is the untagged frame; VLAN tags take the general path.
_ETHERTYPE_LINKS = {
    LINKTYPE_ETHERNET: (12, 14),
    LINKTYPE_LINUX_SLL: (14, 16),
    LINKTYPE_LINUX_SLL2: (0, 20),
}
# After the link header: IPv4 version/IHL; flags/fragment offset, TTL and protocol as one
# field; the source address; the UDP source port, destination port and length.
_IPV4_UDP = "B5xI2x4s4xHHH"
# In that field, what must equal IPPROTO_UDP: fragment bits (none may be set) and protocol.
_IPV4_FRAGMENT_PROTOCOL_MASK = IPV4_FRAGMENT_MASK << 16 | 0xFF

_U16 = struct.Struct("!H")
_UDP = struct.Struct("!HHH")


@dataclass(slots=True)
class CaptureStats:
    """What a capture held; complete once the capture has been read to its end."""

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
# Called by `feed_udp` per datagram with the arguments of `recorder.ingest.Router.feed`:
# (destination port, UDP payload, time, (source address bytes, source port)).
DatagramSink = Callable[[int, Any, float, tuple[bytes, int]], object]
# Datagrams of a pcapng capture read between two yields of `_scan`.
PCAPNG_BATCH = 1024


def read_udp(path: str | Path, stats: CaptureStats | None = None) -> Iterator[Datagram]:
    """Yield every UDP datagram of the capture at `path`, counting what is skipped in `stats`."""
    batch: list[Datagram] = []

    def collect(port: int, payload: bytes, arrival: float, source: tuple[bytes, int]) -> None:
        batch.append((arrival, source[0], source[1], port, payload))

    for _ in _scan(path, collect, stats, False):
        yield from batch
        batch.clear()


def feed_udp(path: str | Path, sink: DatagramSink, stats: CaptureStats | None = None) -> None:
    """Call `sink` with every UDP datagram of the capture at `path`, in order.

    What `read_udp` yields, without a generator step and a tuple per datagram: the replay of
    a capture calls `Router.feed` from here. Payloads are read-only memoryviews into the
    mapped file (no copy) where it could be mapped; a view keeps its pages readable as long
    as it is referenced.
    """
    for _ in _scan(path, sink, stats, True):
        pass


def _scan(
    path: str | Path, sink: DatagramSink, stats: CaptureStats | None, views: bool
) -> Iterator[None]:
    """Call `sink` per datagram; yield between chunks of the file (see `read_udp`)."""
    stats = stats if stats is not None else CaptureStats()
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed by the reader it is handed to
    except OSError as error:
        raise CaptureError(f"cannot read capture {path}: {error.strerror or error}") from None
    with file:
        magic = file.read(4)
        pcap = PCAP_MAGICS.get(magic)
        if pcap is not None:
            buffer = _contents(file)
        elif magic == PCAPNG_MAGIC:
            yield from _pcapng(file, path, stats, sink)
            return
        else:
            raise CaptureError(f"{path} is not a pcap or pcapng capture")
    yield from _pcap(buffer, path, pcap[0], pcap[1], stats, sink, views)


def _contents(file: BinaryIO) -> mmap.mmap | bytes:
    """The whole file, mapped (not copied) when it is a regular file."""
    try:
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # a pipe, a device, an empty file
        file.seek(0)
        return file.read()


def _pcap(
    buffer: mmap.mmap | bytes,
    path: str | Path,
    order: str,
    nanoseconds: bool,
    stats: CaptureStats,
    sink: DatagramSink,
    views: bool,
) -> Iterator[None]:
    # What payloads are sliced from: the file itself (bytes), or a view of it (no copy).
    payloads = memoryview(buffer) if views else buffer
    try:
        end = len(buffer)
        if end < PCAP_FILE_HEADER_SIZE:
            raise CaptureError(
                f"{path}: damaged capture header "
                f"(got {end}, {PCAP_FILE_HEADER_SIZE} needed at least)"
            )
        link_type = struct.unpack_from(order + "I", buffer, 20)[0]
        stats.link_type = link_type
        decode = _link_decoder(link_type)
        record_header = struct.Struct(order + "III4x").unpack_from  # the original length unused
        if link_type in _ETHERTYPE_LINKS:
            ethertype_at, ip_at = _ETHERTYPE_LINKS[link_type]
            link = f"!{ethertype_at}xH{ip_at - ethertype_at - 2}x"
            fast = struct.Struct(link + _IPV4_UDP).unpack_from
            # Smallest record holding the headers, and the offsets of the UDP payload.
            fast_size = ip_at + IPV4_HEADER_SIZE + UDP_HEADER_SIZE
            udp_at = ip_at + IPV4_HEADER_SIZE
        else:
            fast = None
            fast_size = sys.maxsize  # no record takes the fast path
            udp_at = 0
        payload_at = udp_at + UDP_HEADER_SIZE
        mapped = isinstance(buffer, mmap.mmap)
        records = udp = 0
        position = PCAP_FILE_HEADER_SIZE
        released = 0
        chunk_end = position + CHUNK_BYTES
        try:
            while position < end:
                if position >= chunk_end:
                    if mapped:
                        released = _release(buffer, released, position)  # type: ignore[arg-type]
                    yield
                    chunk_end = position + CHUNK_BYTES
                if position + PCAP_RECORD_HEADER_SIZE > end:
                    stats.truncated_file = True
                    break
                seconds, fraction, size = record_header(buffer, position)
                start = position + PCAP_RECORD_HEADER_SIZE
                position = start + size
                records += 1
                if nanoseconds:
                    # As exact as the decimal sum dpkt computed: int / int rounds once.
                    arrival = (seconds * NANOSECONDS + fraction) / NANOSECONDS
                else:
                    arrival = seconds + fraction / 1e6
                if size >= fast_size and position <= end:
                    ethertype, version, fragment, source, source_port, port, length = fast(
                        buffer, start
                    )  # type: ignore[misc]
                    if (
                        ethertype == ETHERTYPE_IPV4
                        and version == IPV4_PLAIN
                        and fragment & _IPV4_FRAGMENT_PROTOCOL_MASK == IPPROTO_UDP
                        and UDP_HEADER_SIZE <= length <= size - udp_at
                    ):
                        udp += 1
                        sink(
                            port,
                            payloads[start + payload_at : start + udp_at + length],
                            arrival,
                            (source, source_port),
                        )
                        continue
                # A record cut by the end of the file is decoded as far as it goes.
                datagram = _datagram(arrival, buffer[start:position], decode, stats)
                if datagram is not None:
                    udp += 1
                    sink(datagram[3], datagram[4], arrival, (datagram[1], datagram[2]))
        finally:
            stats.records += records
            stats.udp += udp
        yield
    finally:
        if isinstance(payloads, memoryview):
            payloads.release()
        if isinstance(buffer, mmap.mmap):
            # Payload views that are still referenced keep it mapped until the last one goes.
            with contextlib.suppress(BufferError):
                buffer.close()


def _release(buffer: mmap.mmap, start: int, end: int) -> int:
    """Unmap the pages of `buffer` from `start` to about `end`; return where that stopped.

    The file's pages stay in the page cache, and come back on access (a payload view still
    in use): this only keeps them from counting in the process's memory, which would
    otherwise grow to the size of the capture.
    """
    end -= end % mmap.PAGESIZE
    if end > start:
        buffer.madvise(mmap.MADV_DONTNEED, start, end - start)
    return max(start, end)


def _pcapng(
    file: BinaryIO, path: str | Path, stats: CaptureStats, sink: DatagramSink
) -> Iterator[None]:
    import dpkt

    file.seek(0)
    try:
        reader = dpkt.pcapng.Reader(file)
    except (dpkt.dpkt.Error, struct.error, ValueError) as error:
        raise CaptureError(f"{path}: damaged capture header ({error})") from None
    stats.link_type = reader.datalink()
    decode = _link_decoder(stats.link_type)
    records = iter(reader)
    while True:
        try:
            timestamp, buf = next(records)
        except StopIteration:
            break
        except (dpkt.dpkt.Error, struct.error, ValueError):
            stats.truncated_file = True
            break
        stats.records += 1
        datagram = _datagram(float(timestamp), buf, decode, stats)
        if datagram is not None:
            stats.udp += 1
            arrival, source, source_port, port, payload = datagram
            sink(port, payload, arrival, (source, source_port))
            if not stats.udp % PCAPNG_BATCH:
                yield
    yield


def _datagram(
    timestamp: float, buf: bytes, decode: LinkDecoder, stats: CaptureStats
) -> Datagram | None:
    """The general path: one record, each layer decoded and checked on its own."""
    found = decode(buf)
    if found is None:
        stats.not_ip += 1
        return None
    return _udp(timestamp, buf, found[0], found[1], stats)


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
        if _U16.unpack_from(buf, offset + 6)[0] & IPV4_FRAGMENT_MASK:
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
