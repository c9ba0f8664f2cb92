"""The live-test harness itself, checked with plain sockets: the fault-injecting relay, the real
senders and the A/V sync measurement must do what the live tests rely on."""

from __future__ import annotations

import itertools
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pylibsrtp
import pytest

from tests import avsync, senders
from tests.relay import HOST, Faults, Relay, Route

PACKETS = 400


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((HOST, 0))
    return sock


def _collect(sock: socket.socket, quiet: float = 0.3) -> list[bytes]:
    """Everything that arrives until the socket stays quiet for `quiet` seconds."""
    sock.settimeout(quiet)
    received = []
    while True:
        try:
            received.append(sock.recv(65536))
        except TimeoutError:
            return received


def _send_numbered(relay: Relay, route: Route, count: int = PACKETS) -> socket.socket:
    sender = _socket()
    for index in range(count):
        sender.sendto(struct.pack("!I", index) + bytes(100), (HOST, route.listen))
        if index % 20 == 19:
            time.sleep(0.002)  # paced a little, as a real sender would be
    return sender


def _run(faults: Faults, seed: int, count: int = PACKETS) -> tuple[list[int], dict[str, int]]:
    receiver = _socket()
    route = Route(0, receiver.getsockname()[1])
    with Relay([route], faults, seed) as relay:
        sender = _send_numbered(relay, route, count)
        time.sleep(0.2)
        relay.stop(drain=True)
        received = [struct.unpack_from("!I", data)[0] for data in _collect(receiver)]
    sender.close()
    receiver.close()
    return received, dict(relay.counts)


def test_without_faults_every_packet_arrives_once_in_order() -> None:
    received, counts = _run(Faults(), seed=1)
    assert received == list(range(PACKETS))
    assert counts["received"] == counts["sent"] == PACKETS
    assert not counts.get("dropped") and not counts.get("reordered")


def test_faults_happen_at_about_their_rates_and_are_counted() -> None:
    faults = Faults(
        loss=0.05, reorder=0.05, duplicate=0.05, jitter_ms=5, reorder_depth=3, reorder_hold_ms=500
    )
    received, counts = _run(faults, seed=7)
    for name in ("dropped", "reordered", "duplicated"):
        assert 5 <= counts[name] <= 40, (name, counts)
    assert counts["delayed"] > PACKETS // 2
    assert counts["sent"] == PACKETS - counts["dropped"] + counts["duplicated"]
    assert len(received) == counts["sent"]
    # Lost packets are missing, duplicated ones twice, and nothing is made up.
    seen = {index: received.count(index) for index in set(received)}
    assert PACKETS - len(seen) == counts["dropped"]
    assert sum(seen.values()) - len(seen) == counts["duplicated"]
    assert set(seen) <= set(range(PACKETS))
    # Reordered packets arrive after 1-3 later packets: displaced, but not far.
    first = sorted(set(received), key=received.index)
    inversions = sum(1 for a, b in itertools.pairwise(first) if b < a)
    assert 0 < inversions <= counts["reordered"]
    assert all(abs(first.index(i) - rank) <= 4 for rank, i in enumerate(sorted(first)))


def test_the_same_seed_makes_the_same_decisions() -> None:
    faults = Faults(loss=0.1, reorder=0.1, duplicate=0.1, reorder_hold_ms=1000)
    first, _ = _run(faults, seed=3)
    again, _ = _run(faults, seed=3)
    other, _ = _run(faults, seed=4)
    assert first == again
    assert first != other


def test_a_held_packet_is_released_when_no_later_packet_comes() -> None:
    received, counts = _run(Faults(reorder=1.0, reorder_depth=5, reorder_hold_ms=30), 0, 1)
    assert received == [0]
    assert counts["reordered"] == 1


def test_feedback_reaches_the_sender_source_address_unharmed() -> None:
    recorder = _socket()
    route = Route(0, recorder.getsockname()[1])
    with Relay([route], Faults(loss=0.5, reorder=0.5, duplicate=0.5), seed=2) as relay:
        sender = _socket()
        recorder.settimeout(0.1)
        for _ in range(50):  # until one gets through the loss
            sender.sendto(b"SR", (HOST, route.listen))
            try:
                data, upstream = recorder.recvfrom(100)
                break
            except TimeoutError:
                continue
        assert data == b"SR"
        for index in range(20):
            recorder.sendto(b"PLI%d" % index, upstream)
        # From the port the sender sends to (symmetric RTCP), all of it, in order, once.
        received = []
        sender.settimeout(1)
        for _ in range(20):
            data, source = sender.recvfrom(100)
            assert source == (HOST, route.listen)
            received.append(data)
        assert received == [b"PLI%d" % index for index in range(20)]
        assert relay.counts["returned"] == 20
    recorder.close()
    sender.close()


# --------------------------------------------------------------------------- real senders


@pytest.fixture(scope="module")
def avsync_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return avsync.make_source(tmp_path_factory.mktemp("avsync"))


@dataclass
class Received:
    """What one sender sent, per medium: RTP datagrams (SRTP removed) with their arrival times,
    and (arrival, RTCP datagram) pairs (SRTCP removed)."""

    rtp: dict[str, list[bytes]] = field(default_factory=dict)
    arrivals: dict[str, list[float]] = field(default_factory=dict)
    rtcp: dict[str, list[tuple[float, bytes]]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def sent(avsync_source: Path) -> dict[str, Received]:
    """Every clip sender at once (they are paced in real time, so this takes one clip's time),
    into plain sockets."""
    key = senders.new_key()
    ports = senders.free_port_pairs(10)
    pairs = iter(ports)
    launched = {}
    starts = {
        "gst": lambda v, a: senders.gst_vp8_opus(v, a),
        "ffmpeg": lambda v, a: senders.ffmpeg_vp8_opus(v, a),
        "gst srtp": lambda v, a: senders.gst_vp8_opus(v, a, key=key),
        "ffmpeg srtp": lambda v, a: senders.ffmpeg_vp8_opus(v, a, key=key),
        "avsync": lambda v, a: avsync.send(v, a, avsync_source),
    }
    with senders.UdpSink([port + rtcp for port in ports for rtcp in (0, 1)]) as sink:
        for name, start in starts.items():
            video, audio = next(pairs), next(pairs)
            launched[name] = (start(video, audio), {"video": video, "audio": audio})
        for sender, _ in launched.values():
            sender.finish()
        time.sleep(0.3)
    results = {}
    for name, (_, media_ports) in launched.items():
        received = results[name] = Received()
        for media, port in media_ports.items():
            srtp = _srtp_session(key) if "srtp" in name else None
            packets = sink.received(port)
            received.arrivals[media] = [at for at, _, _ in packets]
            received.rtp[media] = [
                (data if srtp is None else srtp.unprotect(data)) for _, data, _ in packets
            ]
            received.rtcp[media] = [
                (at, data if srtp is None else srtp.unprotect_rtcp(data))
                for at, data, _ in sink.received(port + 1)
            ]
    return results


def _srtp_session(key: bytes) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    return pylibsrtp.Session(policy=policy)


def _sender_reports(rtcp: list[tuple[float, bytes]]) -> list[tuple[float, float, int]]:
    """(arrival, NTP seconds, RTP timestamp) of each SR."""
    reports = []
    for at, data in rtcp:
        for packet_type, _, packet in senders.rtcp_packets(data):
            if packet_type == 200:
                seconds, fraction, rtp_timestamp = struct.unpack_from("!III", packet, 8)
                reports.append((at, seconds + fraction / 2**32, rtp_timestamp))
    return reports


@pytest.mark.parametrize("name", ["gst", "ffmpeg", "gst srtp", "ffmpeg srtp"])
def test_clip_senders_send_every_frame_and_sender_reports(
    sent: dict[str, Received], name: str
) -> None:
    rtp, rtcp = sent[name].rtp, sent[name].rtcp
    video_frames = sum(1 for packet in rtp["video"] if packet[1] & 0x80)  # marker: last packet
    assert video_frames == 120  # source.ivf
    assert len(rtp["audio"]) == 200  # source.ogg, one Opus packet per datagram
    assert {packet[1] & 0x7F for packet in rtp["video"]} == {senders.VIDEO_PT}
    assert {packet[1] & 0x7F for packet in rtp["audio"]} == {senders.AUDIO_PT}
    # SRTCP decrypted above; an SR per stream, the first within a second for GStreamer.
    for media in ("video", "audio"):
        reports = _sender_reports(rtcp[media])
        assert reports, f"{name} {media}: no SR"
        if name.startswith("gst"):
            assert reports[0][0] - sent[name].arrivals[media][0] < 1.0


def test_avsync_sender_reports_agree_while_audio_arrives_late(sent: dict[str, Received]) -> None:
    """What makes the A/V sync test meaningful: the SRs put the flash and the beep at the same
    NTP time, while the beep arrives AUDIO_DELAY after the flash."""
    rtp, rtcp, arrivals = sent["avsync"].rtp, sent["avsync"].rtcp, sent["avsync"].arrivals
    video_start = struct.unpack_from("!I", rtp["video"][0], 4)[0]
    audio_start = struct.unpack_from("!I", rtp["audio"][0], 4)[0]
    video_sr, audio_sr = _sender_reports(rtcp["video"]), _sender_reports(rtcp["audio"])
    assert len(video_sr) >= 3 and len(audio_sr) >= 3

    def ntp(report: tuple[float, float, int], timestamp: int, rate: int) -> float:
        difference = (timestamp - report[2] + 2**31) % 2**32 - 2**31
        return report[1] + difference / rate

    for flash_frame, flash_time in zip(avsync.FLASH_FRAMES, avsync.FLASH_TIMES, strict=True):
        flash = ntp(video_sr[-1], video_start + flash_frame * 3000, 90000)
        beep = ntp(audio_sr[-1], audio_start + round(flash_time * 48000), 48000)
        assert abs(flash - beep) < 0.001
    late = arrivals["audio"][0] - arrivals["video"][0]
    assert late == pytest.approx(avsync.AUDIO_DELAY, abs=0.05)


def test_live_sender_sends_a_keyframe_when_asked_by_pli_or_fir() -> None:
    [port] = senders.free_port_pairs(1)
    with senders.UdpSink([port, port + 1]) as sink, senders.gst_live_vp8(port):

        def keyframes() -> list[float]:
            return [
                at
                for at, data, _ in sink.received(port)
                if senders.vp8_keyframe_start(senders.rtp_payload(data))
            ]

        deadline = time.monotonic() + 10
        while not (sink.received(port) and sink.received(port + 1)):
            assert time.monotonic() < deadline, "no RTP and RTCP from the live sender"
            time.sleep(0.05)
        media_ssrc = struct.unpack_from("!I", sink.received(port)[0][1], 8)[0]
        feedback_address = sink.received(port + 1)[0][2]  # symmetric RTCP
        time.sleep(1.0)
        assert len(keyframes()) == 1  # the first frame only: the interval is 10 s
        requests = [senders.pli(1, media_ssrc), senders.fir(1, media_ssrc, 0)]
        for request in requests:
            count, sent_at = len(keyframes()), time.monotonic()
            sink.send(port + 1, senders.receiver_report(1) + request, feedback_address)
            while len(keyframes()) == count and time.monotonic() - sent_at < 2:
                time.sleep(0.01)
            assert len(keyframes()) == count + 1, f"no keyframe after {request.hex()}"
            assert keyframes()[-1] - sent_at < 0.3
            time.sleep(0.5)


# --------------------------------------------------------------------------- A/V measurement


def test_avsync_measures_the_source_in_sync(avsync_source: Path) -> None:
    offsets = avsync.measure_offset(avsync_source / "source.ivf", avsync_source / "source.ogg")
    assert len(offsets) == len(avsync.FLASH_TIMES)
    assert all(abs(offset) <= 0.001 for offset in offsets), offsets
    assert avsync.flash_times(avsync_source / "source.ivf") == list(avsync.FLASH_TIMES)


@pytest.mark.parametrize("shift", [0.1, -0.25])
def test_avsync_measures_a_deliberate_shift(avsync_source: Path, shift: float) -> None:
    """Audio delayed by `shift` in a WebM made by FFmpeg (which itself puts the video ~7 ms late:
    it shifts every track by the Opus CodecDelay but takes it off the audio only)."""
    shifted = avsync_source / f"shifted{shift}.webm"
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", avsync_source / "source.ivf"]
    command += ["-itsoffset", str(shift), "-i", avsync_source / "source.ogg", "-c", "copy", shifted]
    subprocess.run(command, check=True, timeout=60)
    offsets = avsync.measure_offset(shifted)
    assert offsets == pytest.approx([-shift + 0.0065] * len(avsync.FLASH_TIMES), abs=0.002)


def test_injected_datagrams_come_from_the_address_the_recorder_latched() -> None:
    recorder = _socket()
    route = Route(0, recorder.getsockname()[1])
    with Relay([route]) as relay:
        sender = _socket()
        sender.sendto(b"RTP", (HOST, route.listen))
        recorder.settimeout(2)
        _, forwarded_from = recorder.recvfrom(100)
        assert route.last == b"RTP"
        relay.inject(route, b"junk")
        data, injected_from = recorder.recvfrom(100)
        assert (data, injected_from) == (b"junk", forwarded_from)
        assert relay.counts["injected"] == 1
    recorder.close()
    sender.close()
