"""Capture files: link types, pcap vs pcapng, IPv6, and damaged or foreign files."""

from __future__ import annotations

import struct
from decimal import Decimal
from pathlib import Path

import dpkt
import pytest

from recorder.capture import CaptureStats, feed_udp, read_udp
from recorder.errors import CaptureError, UnsupportedError
from tests.captures import LINK_TYPES, datagrams, ip_packet, write_capture
from tests.conftest import cli
from tests.judges import CAPTURES

PCAP, SDP = CAPTURES["gst"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("reference") / "reference.webm"
    assert cli("convert", PCAP, "--sdp", SDP, "-o", out).returncode == 0
    return out.read_bytes()


@pytest.mark.parametrize("pcapng", [False, True], ids=["pcap", "pcapng"])
@pytest.mark.parametrize("link", sorted(LINK_TYPES))
def test_every_link_type_and_format_records_the_same_file(
    tmp_path: Path, reference: bytes, link: str, pcapng: bool
) -> None:
    capture = write_capture(tmp_path / "capture", datagrams(PCAP), link=link, pcapng=pcapng)
    output = tmp_path / "out.webm"
    done = cli("convert", capture, "--sdp", SDP, "-o", output)
    assert done.returncode == 0, done.stderr
    assert output.read_bytes() == reference


def test_ipv6_datagrams_are_read(tmp_path: Path, reference: bytes) -> None:
    capture = write_capture(tmp_path / "v6.pcap", datagrams(PCAP), version=6)
    output = tmp_path / "out.webm"
    assert cli("convert", capture, "--sdp", SDP, "-o", output).returncode == 0
    assert output.read_bytes() == reference


def test_the_real_cooked_capture_is_linux_sll2() -> None:
    stats = CaptureStats()
    assert len(list(read_udp(CAPTURES["ffmpeg"][0], stats))) == stats.udp == stats.records
    assert stats.link_type == 276


def test_skipped_packets_are_counted(tmp_path: Path) -> None:
    good = datagrams(PCAP)[:3]
    path = tmp_path / "mixed.pcap"
    with open(path, "wb") as file:
        writer = dpkt.pcap.Writer(file, linktype=LINK_TYPES["raw"])
        tcp = dpkt.ip.IP(src=b"\x7f\0\0\1", dst=b"\x7f\0\0\1", p=dpkt.ip.IP_PROTO_TCP)
        tcp.data = dpkt.tcp.TCP(sport=1, dport=2)
        writer.writepkt(bytes(tcp), ts=1.0)
        fragment = dpkt.ip.IP(src=b"\x7f\0\0\1", dst=b"\x7f\0\0\1", p=17)
        fragment.mf = 1
        writer.writepkt(bytes(fragment), ts=1.0)
        writer.writepkt(b"\x60", ts=1.0)  # IPv6 version nibble, nothing else
        writer.writepkt(b"\x00\x01", ts=1.0)  # not IP at all
    with open(path, "ab") as file:
        raw = write_capture(tmp_path / "good.pcap", good, link="raw").read_bytes()
        file.write(raw[24:])  # the records, without a second file header
    stats = CaptureStats()
    assert len(list(read_udp(path, stats))) == 3
    assert (stats.not_udp, stats.fragments, stats.truncated_records, stats.not_ip) == (1, 1, 1, 1)


def test_capture_cut_mid_record_ends_at_the_last_whole_record(tmp_path: Path) -> None:
    data = PCAP.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 200])  # the last record (~385 bytes) loses its end
    stats = CaptureStats()
    items = list(read_udp(cut, stats))
    assert len(items) == len(datagrams(PCAP)) - 1
    assert stats.truncated_records == 1  # the last record's UDP length overruns what is left
    output = tmp_path / "out.webm"
    assert cli("convert", cut, "--sdp", SDP, "-o", output).returncode == 0


def test_capture_cut_inside_a_record_header_is_flagged(tmp_path: Path) -> None:
    data = write_capture(tmp_path / "x.pcapng", datagrams(PCAP)[:10], pcapng=True).read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[:-30])
    stats = CaptureStats()
    assert len(list(read_udp(cut, stats))) == 9
    assert stats.truncated_file


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is not a pcap or pcapng capture"),
        (b"\x00" * 64, "is not a pcap or pcapng capture"),
        (b"\xd4\xc3\xb2\xa1\x02", "damaged capture header"),
    ],
)
def test_not_a_capture(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "junk"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match=message):
        list(read_udp(path))


def test_unsupported_link_type(tmp_path: Path) -> None:
    path = tmp_path / "ppp.pcap"
    with open(path, "wb") as file:
        dpkt.pcap.Writer(file, linktype=9)  # PPP
    with pytest.raises(UnsupportedError, match="link type 9 is not supported"):
        list(read_udp(path))


def _pcap(records: list[tuple[int, int, bytes]], order: str = "<", nano: bool = False) -> bytes:
    """A pcap file of Ethernet records (seconds, fraction, frame) in either byte order."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = bytearray(struct.pack(f"{order}IHHiIII", magic, 2, 4, 0, 0, 65535, 1))
    for seconds, fraction, frame in records:
        out += struct.pack(f"{order}IIII", seconds, fraction, len(frame), len(frame)) + frame
    return bytes(out)


def _ethernet_frame(item: tuple[float, bytes, int, int, bytes], vlan: bool = False) -> bytes:
    _, source, source_port, port, payload = item
    packet = ip_packet(source, source_port, port, payload, 4)
    tag = struct.pack("!HH", 0x8100, 7) if vlan else b""
    return bytes(12) + tag + b"\x08\x00" + packet


@pytest.mark.parametrize("order", ["<", ">"], ids=["little-endian", "big-endian"])
@pytest.mark.parametrize("nano", [False, True], ids=["microseconds", "nanoseconds"])
def test_byte_order_and_timestamp_resolution(tmp_path: Path, order: str, nano: bool) -> None:
    items = datagrams(PCAP)[:20]
    scale = 10**9 if nano else 10**6
    times = [(1_700_000_000 + index, 999_999_999 * index // 19 % scale) for index in range(20)]
    path = tmp_path / "capture.pcap"
    records = [(*time, _ethernet_frame(item)) for time, item in zip(times, items, strict=True)]
    path.write_bytes(_pcap(records, order, nano))
    read = list(read_udp(path))
    assert [item[1:] for item in read] == [item[1:] for item in items]
    # The exact value, rounded once (nanoseconds need more digits than a float sum keeps).
    assert [item[0] for item in read] == [
        float(Decimal(seconds) + Decimal(fraction) / scale) for seconds, fraction in times
    ]


def test_records_off_the_fast_path_read_the_same(tmp_path: Path) -> None:
    # VLAN tags, IPv4 options and Ethernet padding after the datagram take the general path.
    items = datagrams(PCAP)[:30]
    frames = []
    for index, item in enumerate(items):
        frame = _ethernet_frame(item, vlan=index % 3 == 0)
        if index % 3 == 1:
            at = 14  # IHL 6: four bytes of options (NOP NOP NOP EOL)
            header = bytearray(frame[at : at + 20])
            header[0] = 0x46
            header[2:4] = struct.pack("!H", len(frame) - at + 4)
            frame = frame[:at] + bytes(header) + b"\x01\x01\x01\x00" + frame[at + 20 :]
        if index % 3 == 2:
            frame += bytes(6)
        frames.append(frame)
    path = tmp_path / "capture.pcap"
    path.write_bytes(_pcap([(1, 0, frame) for frame in frames]))
    stats = CaptureStats()
    assert [item[1:] for item in read_udp(path, stats)] == [item[1:] for item in items]
    assert (stats.records, stats.udp) == (30, 30)


@pytest.mark.parametrize("pcapng", [False, True], ids=["pcap", "pcapng"])
def test_feed_udp_calls_the_sink_with_router_feed_s_arguments(tmp_path: Path, pcapng: bool) -> None:
    capture = write_capture(tmp_path / "capture", datagrams(PCAP), pcapng=pcapng)
    fed: list[tuple[float, bytes, int, int, bytes]] = []
    views = []

    def sink(port: int, payload: bytes, arrival: float, source: tuple[bytes, int]) -> None:
        fed.append((arrival, source[0], source[1], port, bytes(payload)))
        views.append(isinstance(payload, memoryview))

    stats = CaptureStats()
    feed_udp(capture, sink, stats)
    assert fed == datagrams(capture)
    assert stats.udp == stats.records == len(fed)
    # pcap payloads are views into the mapped file, not copies; dpkt's pcapng ones are bytes.
    assert all(views) if not pcapng else not any(views)
