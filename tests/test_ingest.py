"""`Router`: source latching, allow-list, RTCP, and a source replaced mid-stream."""

from __future__ import annotations

import struct
import tempfile
from itertools import pairwise
from pathlib import Path

import pytest

from recorder.archive import Archive
from recorder.errors import UnsupportedError
from recorder.ingest import Router, recorded_sections
from recorder.rtcp import bye, unix_to_ntp
from recorder.rtp import RtpPacket
from recorder.sdp import load_sdp
from tests.captures import datagrams as capture_datagrams
from tests.judges import FIXTURES
from tests.test_archive import RecordingWriter

SENDER = ("127.0.0.1", 40000)


def tmp_sdp(text: str) -> Path:
    path = Path(tempfile.mkdtemp()) / "session.sdp"
    path.write_text(text)
    return path


VIDEO_PORT = 5004


def _video_router() -> tuple[Router, RecordingWriter]:
    sdp = load_sdp(FIXTURES / "gst.sdp")
    sections = [s for s in recorded_sections(sdp.media) if s[0].kind == "video"]
    writer = RecordingWriter()
    return Router(sections, Archive([writer])), writer


def _video_packets() -> list[tuple[float, bytes]]:
    return [(t, data) for t, _, _, port, data in capture_datagrams(FIXTURES / "gst.pcap")
            if port == VIDEO_PORT]  # fmt: skip


def _rewrite(data: bytes, ssrc: int, sequence_offset: int, timestamp_offset: int) -> bytes:
    first, second, sequence, timestamp = struct.unpack_from("!BBHI", data)
    header = struct.pack(
        "!BBHII",
        first,
        second,
        (sequence + sequence_offset) & 0xFFFF,
        (timestamp + timestamp_offset) & 0xFFFFFFFF,
        ssrc,
    )
    return header + data[12:]


def test_a_new_ssrc_after_silence_continues_the_timeline_from_a_keyframe() -> None:
    router, writer = _video_router()
    packets = _video_packets()
    half = len(packets) // 2
    for arrival, data in packets[:half]:
        router.feed(VIDEO_PORT, data, arrival, SENDER)
    last_arrival = packets[half - 1][0]
    # The sender restarts 0.7 s later: new SSRC, sequence numbers and RTP clock origin. Before
    # the old SSRC has been quiet for long enough, the new one is only counted.
    router.feed(VIDEO_PORT, _rewrite(packets[half][1], 0xABCDEF01, 1000, 12345678),
                last_arrival + 0.1, SENDER)  # fmt: skip
    for arrival, data in packets[half:]:
        router.feed(VIDEO_PORT, _rewrite(data, 0xABCDEF01, 1000, 12345678),
                    arrival + 0.7, SENDER)  # fmt: skip
    router.flush()
    [route] = router.routes
    assert route.other_ssrcs == 1 and route.ssrc_switches == 1
    assert route.stream is not None and route.stream.ssrc == 0xABCDEF01
    pts = [pts for _, pts, _ in writer.written]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    # The timeline goes on across the switch: the gap is the 0.7 s pause plus a frame, not
    # the jump of the new RTP clock.
    gaps = [b - a for a, b in pairwise(pts)]
    assert max(gaps) < 0.8 * 90000
    # The new source is written from its first keyframe on.
    first_new = next(i for i, g in enumerate(gaps) if g == max(gaps)) + 1
    assert writer.written[first_new][2].keyframe


def test_sender_report_and_bye_reach_the_stream() -> None:
    router, _ = _video_router()
    packets = _video_packets()
    arrival, data = packets[0]
    router.feed(VIDEO_PORT, data, arrival, SENDER)
    packet = RtpPacket.parse(data)
    sr = struct.pack("!BBHIQIII", 0x80, 200, 6, packet.ssrc, unix_to_ntp(1000.5),
                     packet.timestamp, 1, 100)  # fmt: skip
    # RTCP from an ephemeral port (GStreamer's udpsink without bind-port).
    rtcp_source = (SENDER[0], 51234)
    router.feed(VIDEO_PORT + 1, sr, arrival, rtcp_source)
    [route] = router.routes
    assert route.track.sync is not None
    assert abs(route.track.sync[0] - 1000.5) < 1e-6 and route.track.sync[1] == packet.timestamp
    # Feedback goes where RTCP came from and to RTP port + 1, where such senders listen.
    assert route.feedback_addresses() == [rtcp_source, (SENDER[0], SENDER[1] + 1)]
    router.feed(VIDEO_PORT + 1, bye(packet.ssrc), arrival, (SENDER[0], 40404))
    assert not route.ended and route.foreign == 1  # another RTCP port of the same host
    router.feed(VIDEO_PORT + 1, bye(packet.ssrc), arrival, rtcp_source)
    assert route.ended
    router.feed(VIDEO_PORT + 1, b"\x80\xc8\x00\x09garbage", arrival, rtcp_source)
    assert route.rtcp == 3 and route.rtcp_malformed == 1


def test_rtcp_from_another_host_is_dropped() -> None:
    router, _ = _video_router()
    arrival, data = _video_packets()[0]
    router.feed(VIDEO_PORT, data, arrival, SENDER)
    router.feed(VIDEO_PORT + 1, bye(RtpPacket.parse(data).ssrc), arrival, ("10.1.1.1", 40001))
    [route] = router.routes
    assert route.foreign == 1 and not route.ended and route.rtcp_source is None


def test_allow_list_is_checked_before_the_latch() -> None:
    sdp = load_sdp(FIXTURES / "gst.sdp")
    writer = RecordingWriter()
    router = Router(recorded_sections(sdp.media), Archive([writer]), allow=["192.0.2.0/24"])
    for arrival, data in _video_packets()[:5]:
        router.feed(VIDEO_PORT, data, arrival, ("198.51.100.7", 5000))
        router.feed(VIDEO_PORT, data, arrival, ("192.0.2.9", 5000))
    route = router.routes[0]
    assert route.denied == 5 and route.foreign == 0
    assert route.source == ("192.0.2.9", 5000)
    assert route.stream is not None and route.stream.packets == 5


def test_audio_and_video_on_one_port_are_told_apart_by_payload_type() -> None:
    # A bundled transport: both m= sections on one port (rtcp-mux), as an SFU may forward.
    text = (FIXTURES / "gst.sdp").read_text().replace("m=audio 5006", "m=audio 5004")
    text = text.replace("VP8/90000", "VP8/90000\r\na=rtcp-mux") + "a=rtcp-mux\r\n"
    sdp = tmp_sdp(text)
    writer = RecordingWriter()
    router = Router(recorded_sections(load_sdp(sdp).media), Archive([writer]))
    assert router.ports == [5004]
    items = [(t, data) for t, _, _, port, data in capture_datagrams(FIXTURES / "gst.pcap")
             if port in (5004, 5006)]  # fmt: skip
    for arrival, data in items:
        router.feed(5004, data, arrival, SENDER)
    router.flush()
    video, audio = router.routes
    assert (video.stream.packets, audio.stream.packets) == (173, 200)  # type: ignore[union-attr]
    assert video.other_payload_types == audio.other_payload_types == 0
    assert {track for track, _, _ in writer.written} == {1, 2}


def test_sections_with_one_port_and_one_payload_type_are_refused() -> None:
    text = (FIXTURES / "gst.sdp").read_text()
    text = text.replace("m=audio 5006 RTP/AVP 111", "m=audio 5004 RTP/AVP 96")
    text = text.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:96 opus/48000/2")
    with pytest.raises(UnsupportedError, match="cannot be told apart"):
        recorded_sections(load_sdp(tmp_sdp(text)).media)
