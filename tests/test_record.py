"""`rtp-recorder record`: live UDP in, a finished file out, RTCP feedback back to the sender.

These tests replay the packets of a real capture (fixtures/vp8-opus/gst.pcap) from a Python
socket, which keeps them fast and exact; tests/test_live.py drives real senders.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recorder.rtcp import Feedback, ReceiverReport, SourceDescription, parse_compound
from recorder.rtp import RtpPacket
from tests.captures import datagrams as capture_datagrams
from tests.judges import FIXTURES, decode_errors, framemd5, source_md5

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 10.0
# The capture's ports (fixtures/vp8-opus/gst.sdp) and the ones the tests record on.
CAPTURE_VIDEO, CAPTURE_AUDIO = 5004, 5006
SPEED = 4.0  # replay four times faster than captured
CAPTURE = FIXTURES / "gst.pcap"


def _free_port_pair() -> int:
    """An even port P with P..P+3 free (video RTP/RTCP, audio RTP/RTCP)."""
    for _ in range(50):
        base = random.randrange(20000, 30000, 4)
        sockets = []
        try:
            for port in range(base, base + 4):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no free UDP ports")


def _sdp(tmp_path: Path, base: int, extra: str = "") -> Path:
    text = (FIXTURES / "gst.sdp").read_text()
    text = text.replace(f"m=video {CAPTURE_VIDEO}", f"m=video {base}")
    text = text.replace(f"m=audio {CAPTURE_AUDIO}", f"m=audio {base + 2}") + extra
    path = tmp_path / "session.sdp"
    path.write_text(text)
    return path


def _start(sdp: Path, output: Path, *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "recorder.cli", "record", "--sdp", str(sdp), "-o", str(output),
         "--listen", "127.0.0.1", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line.startswith("rtp-recorder: recording "), line + process.stderr.read()
    return process


def _stop(process: subprocess.Popen[str], stop_signal: int = signal.SIGINT) -> dict:
    process.send_signal(stop_signal)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return json.loads(out)


def _flow(port: int) -> list[tuple[float, bytes]]:
    """(capture time, payload) of every datagram to `port` in fixtures/vp8-opus/gst.pcap."""
    return [(t, data) for t, _, _, dport, data in capture_datagrams(CAPTURE) if dport == port]


def _replay(base: int, skip_video: int = 0) -> socket.socket:
    """Send the capture's RTP to the recorder from one socket per medium; return the video one."""
    video = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    audio = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    video.bind(("127.0.0.1", 0))
    audio.bind(("127.0.0.1", 0))
    items = sorted(
        [(t, video, base, d) for t, d in _flow(CAPTURE_VIDEO)[skip_video:]]
        + [(t, audio, base + 2, d) for t, d in _flow(CAPTURE_AUDIO)],
        key=lambda item: item[0],
    )
    start = time.monotonic()
    first = items[0][0]
    for sent_at, sock, port, data in items:
        delay = (sent_at - first) / SPEED - (time.monotonic() - start)
        if delay > 0:
            time.sleep(delay)
        sock.sendto(data, ("127.0.0.1", port))
    audio.close()
    return video


@pytest.mark.parametrize("container", ["webm", "mp4"])
def test_records_a_replayed_capture_bit_exactly(tmp_path: Path, container: str) -> None:
    base = _free_port_pair()
    output = tmp_path / f"out.{container}"
    process = _start(_sdp(tmp_path, base), output)
    _replay(base).close()
    time.sleep(0.3)
    summary = _stop(process, signal.SIGTERM if container == "mp4" else signal.SIGINT)
    assert not list(tmp_path.glob(".*.part"))
    assert summary["size"] == output.stat().st_size
    video, audio = summary["streams"]
    assert video["packets"] == 173 and audio["packets"] == 200
    assert video["lost"] == audio["lost"] == 0
    assert summary["network"]["internal_errors"] == 0
    assert decode_errors(output) == ""
    assert framemd5(output, "video")[0] == source_md5("video")
    assert framemd5(output, "audio")[0] == source_md5("audio")


def test_asks_the_sender_for_a_keyframe_and_reports_reception(tmp_path: Path) -> None:
    base = _free_port_pair()
    output = tmp_path / "out.webm"
    process = _start(_sdp(tmp_path, base), output)
    # Start the video mid-GOP: no keyframe for the first second, so the recorder must ask.
    video_packets = [data for _, data in _flow(CAPTURE_VIDEO)]
    first_key = next(n for n, data in enumerate(video_packets) if n > 0 and _is_vp8_key(data))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    # The sender's RTCP port: RTP source port + 1 (no rtcp-mux in the SDP).
    feedback = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    feedback.bind(("127.0.0.1", sender.getsockname()[1] + 1))
    feedback.settimeout(3.0)
    for data in video_packets[1:first_key]:
        sender.sendto(data, ("127.0.0.1", base))
        time.sleep(0.005)
    compound = parse_compound(feedback.recv(2048))
    # The sender answers with a keyframe (the rest of the capture starts with one).
    for data in video_packets[first_key:]:
        sender.sendto(data, ("127.0.0.1", base))
        time.sleep(0.002)
    time.sleep(0.3)
    summary = _stop(process)
    sender.close()
    feedback.close()
    assert isinstance(compound[0], ReceiverReport)
    assert isinstance(compound[1], SourceDescription)
    [pli] = [packet for packet in compound if isinstance(packet, Feedback)]
    assert (pli.packet_type, pli.fmt) == (206, 1)
    assert pli.media_ssrc == RtpPacket.parse(video_packets[1]).ssrc
    assert compound[0].reports[0].ssrc == pli.media_ssrc
    assert summary["streams"][0]["plis_sent"] >= 1
    video = summary["streams"][0]
    assert video["keyframes"] == 3 and video["gated_frames"] > 0


def _is_vp8_key(datagram: bytes) -> bool:
    payload = RtpPacket.parse(datagram).payload
    # RFC 7741: S bit set, PID 0, then (after the descriptor) the frame tag's P bit clear.
    if not payload[0] & 0x10:
        return False
    size = 1
    if payload[0] & 0x80:
        extension = payload[1]
        size = 2 + (extension & 0x80 and (2 if payload[2] & 0x80 else 1)) + bool(extension & 0x40)
        size += bool(extension & 0x30)
    return not payload[size] & 0x01


def test_only_the_first_source_and_allowed_hosts_are_recorded(tmp_path: Path) -> None:
    base = _free_port_pair()
    output = tmp_path / "out.webm"
    process = _start(_sdp(tmp_path, base), output, "--allow", "127.0.0.0/8")
    intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder.bind(("127.0.0.1", 0))
    _replay(base).close()
    # Once the sender's address is latched, the same packets from elsewhere are dropped.
    for _, data in _flow(CAPTURE_VIDEO)[:20]:
        intruder.sendto(data, ("127.0.0.1", base))
    intruder.sendto(b"\x80" + bytes(40), ("127.0.0.1", base + 2))
    time.sleep(0.3)
    summary = _stop(process)
    video, audio = summary["streams"]
    assert video["foreign_packets"] == 20 and audio["foreign_packets"] == 1
    assert framemd5(output, "video")[0] == source_md5("video")


def test_a_host_outside_the_allow_list_is_never_latched(tmp_path: Path) -> None:
    base = _free_port_pair()
    output = tmp_path / "out.webm"
    process = _start(_sdp(tmp_path, base), output, "--allow", "10.0.0.0/8", "--duration", "1.5")
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _, data in _flow(CAPTURE_VIDEO)[:30]:
        sender.sendto(data, ("127.0.0.1", base))
    _, err = process.communicate(timeout=30)
    sender.close()
    # Nothing was admitted: no media, a one-line error, no file.
    assert process.returncode == 1
    assert err.count("\n") == 1 and "no decodable media" in err
    assert not output.exists() and not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keyframe-interval", "0.5"], "keyframe interval 0.5 s is outside 1-240 s"),
        (["--allow", "not-an-address"], "--allow 'not-an-address' is not an address or CIDR"),
        (["--duration", "-1"], "--duration must be positive"),
    ],
)
def test_bad_options_fail_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    base = _free_port_pair()
    done = subprocess.run(
        [sys.executable, "-m", "recorder.cli", "record", "--sdp", str(_sdp(tmp_path, base)),
         "-o", str(tmp_path / "out.webm"), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == f"rtp-recorder: error: {message}\n"


def test_a_busy_port_fails_in_one_line(tmp_path: Path) -> None:
    base = _free_port_pair()
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", base + 2))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "recorder.cli", "record", "--sdp", str(_sdp(tmp_path, base)),
             "-o", str(tmp_path / "out.webm"), "--listen", "127.0.0.1"],
            capture_output=True, text=True, cwd=ROOT, timeout=30,
        )  # fmt: skip
    finally:
        busy.close()
    assert done.returncode == 1
    assert done.stderr.startswith(f"rtp-recorder: error: cannot listen on 127.0.0.1:{base + 2}")
    assert done.stderr.count("\n") == 1
    assert not list(tmp_path.glob("*.webm")) and not list(tmp_path.glob(".*.part"))
