"""Capture files: link types, pcap vs pcapng, IPv6, and damaged or foreign files."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from recorder.capture import CaptureStats, read_udp
from recorder.errors import CaptureError, UnsupportedError
from tests.captures import LINK_TYPES, datagrams, write_capture
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
