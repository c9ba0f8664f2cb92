"""`rtp-recorder record` fed live over loopback by real senders (GStreamer, FFmpeg), plain and
SRTP, directly and through a fault-injecting relay; keyframe recovery from a sender that only
makes keyframes when asked; A/V sync from sender reports; hostile input into a running record.

Senders are paced in real time, so each test takes about a clip's length (4 s). Where a test
covers both containers it runs both recordings at once, from two senders on their own ports.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import avsync, senders
from tests.judges import decode_errors, framemd5, source_md5
from tests.relay import Faults, Relay, Route

CONTAINERS = ("webm", "mp4")
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
# After a sender has sent its last packet: time for the last datagrams to arrive before stop.
TAIL = 0.5
FPS = 30


# --------------------------------------------------------------------------- running `record`


class Recorder:
    """One `rtp-recorder record` process, started on an SDP; ready once every port is bound."""

    def __init__(self, output: Path, sdp: str, *options: str) -> None:
        self.output = output
        self.stderr: list[str] = []
        self.started = 0.0  # monotonic time of the "recording" line: every port is bound
        self.stopped = 0.0
        self._ready = threading.Event()
        sdp_path = output.with_suffix(".sdp")
        sdp_path.write_text(sdp)
        command = [sys.executable, "-m", "recorder.cli", "record", "--sdp", str(sdp_path)]
        command += ["-o", str(output), *options]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not self._ready.wait(STARTUP_TIMEOUT):
            self.kill()
            raise AssertionError(f"record did not start: {''.join(self.stderr)}")

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if not self._ready.is_set() and line.startswith("rtp-recorder: recording "):
                self.started = time.monotonic()
                self._ready.set()
            self.stderr.append(line)

    def stop(self, stop_signal: signal.Signals = signal.SIGINT) -> dict[str, Any]:
        """Stop it as a user would; it must exit 0 with one JSON summary line on stdout and
        leave the finished file only."""
        assert self.process.poll() is None, f"record exited early: {''.join(self.stderr)}"
        self.stopped = time.monotonic()
        self.process.send_signal(stop_signal)
        # Wait before reading: a recorder that hangs fails the test instead of blocking it. The
        # summary is one line, far below what a pipe holds.
        self.process.wait(timeout=STOP_TIMEOUT)
        assert self.process.stdout is not None
        stdout = self.process.stdout.read()
        self._reader.join(timeout=5)
        stderr = "".join(self.stderr)
        assert self.process.returncode == 0, f"record failed ({self.process.returncode}): {stderr}"
        assert "Traceback" not in stderr
        lines = stdout.splitlines()
        assert len(lines) == 1, stdout
        summary = json.loads(lines[0])
        assert Path(summary["output"]) == self.output and self.output.exists()
        assert not list(self.output.parent.glob(f".{self.output.name}*")), "temporary file left"
        return summary

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def stream(summary: dict[str, Any], media: str) -> dict[str, Any]:
    [found] = [entry for entry in summary["streams"] if entry["media"] == media]
    return found


def in_source_order(decoded: list[str], source: list[str]) -> bool:
    """Every decoded frame is a source frame, and they come in source order, none twice."""
    position = -1
    for md5 in decoded:
        try:
            position = source.index(md5, position + 1)
        except ValueError:
            return False
    return True


@dataclass
class Live:
    """A recording and the sender feeding it."""

    recorder: Recorder
    sender: senders.Sender
    summary: dict[str, Any] = field(default_factory=dict)


def record_live(
    tmp_path: Path,
    containers: tuple[str, ...],
    sdp: Callable[[int, int], str],
    sender: Callable[[int, int], senders.Sender],
    *options: str,
) -> dict[str, Live]:
    """For each container at once: ports, `record` on them, then the sender; stop each record
    `TAIL` after its sender is done. Sender and SDP are given (video port, audio port)."""
    runs: dict[str, Live] = {}
    try:
        for container in containers:
            video, audio = senders.free_port_pairs(2)
            recorder = Recorder(tmp_path / f"live.{container}", sdp(video, audio), *options)
            runs[container] = Live(recorder, sender(video, audio))
        for run in runs.values():
            run.sender.finish()
        time.sleep(TAIL)
        for run in runs.values():
            run.summary = run.recorder.stop()
    finally:
        for run in runs.values():
            run.sender.stop()
            run.recorder.kill()
    return runs


def assert_source_frames(path: Path) -> None:
    """The decoded video and audio of `path` are the fixture source's, frame for frame."""
    video, video_errors = framemd5(path, "video")
    audio, audio_errors = framemd5(path, "audio")
    assert not video_errors and not audio_errors, video_errors + audio_errors
    assert video == source_md5("video"), f"{path.name}: video differs from the source"
    assert audio == source_md5("audio"), f"{path.name}: audio differs from the source"


# --------------------------------------------------------------------------- plain and SRTP


SENDERS = {"gst": senders.gst_vp8_opus, "ffmpeg": senders.ffmpeg_vp8_opus}


@pytest.mark.parametrize("sender", SENDERS)
def test_live_senders_are_recorded_bit_exact(tmp_path: Path, sender: str) -> None:
    runs = record_live(tmp_path, CONTAINERS, senders.session_sdp, SENDERS[sender])
    for container, run in runs.items():
        assert run.summary["format"] == container
        assert_source_frames(run.recorder.output)
        for media in ("video", "audio"):
            counters = stream(run.summary, media)
            assert counters["lost"] == 0 and counters["malformed_packets"] == 0
            assert counters["rtcp_packets"] > 0  # the senders' SRs reached the RTCP port


@pytest.mark.parametrize("sender", SENDERS)
def test_srtp_senders_are_recorded_bit_exact(tmp_path: Path, sender: str) -> None:
    key = senders.new_key()
    runs = record_live(
        tmp_path,
        CONTAINERS,
        lambda video, audio: senders.session_sdp(video, audio, key=key),
        lambda video, audio: SENDERS[sender](video, audio, key=key),
    )
    for run in runs.values():
        assert_source_frames(run.recorder.output)
        for media in ("video", "audio"):
            counters = stream(run.summary, media)
            assert counters["srtp_failures"] == 0 and counters["srtp_replays"] == 0
            assert counters["rtcp_packets"] > 0 and counters["rtcp_malformed"] == 0


# --------------------------------------------------------------------------- faulty network


NETWORK_FAULTS = Faults(
    loss=0.05, reorder=0.02, duplicate=0.01, jitter_ms=8, reorder_depth=3, reorder_hold_ms=20
)
# Relay seeds, one per container. The relay's decisions depend only on the seed and each
# route's packet sequence, so these always give the video route (173 packets) some of every
# fault: seed 8 drops 7, reorders 5 and duplicates 2; seed 20 drops 7, reorders 4,
# duplicates 3.
NETWORK_SEEDS = (8, 20)


def test_through_a_faulty_network_every_frame_is_a_source_frame_in_order(tmp_path: Path) -> None:
    relays: list[Relay] = []

    def through_relay(video: int, audio: int) -> senders.Sender:
        """The sender sends to a relay in front of each of the recorder's ports."""
        routes = [Route(0, port) for port in (video, video + 1, audio, audio + 1)]
        relay = network.enter_context(Relay(routes, NETWORK_FAULTS, NETWORK_SEEDS[len(relays)]))
        relays.append(relay)
        ports = [route.listen for route in routes]
        return senders.gst_vp8_opus(
            ports[0], ports[2], video_rtcp_port=ports[1], audio_rtcp_port=ports[3]
        )

    with contextlib.ExitStack() as network:
        runs = record_live(tmp_path, CONTAINERS, senders.session_sdp, through_relay)
    source = source_md5("video")
    for (container, run), relay in zip(runs.items(), relays, strict=True):
        faults = relay.routes[0].counts  # the video RTP route
        assert faults["dropped"] and faults["reordered"] and faults["duplicated"], faults
        path = run.recorder.output
        assert decode_errors(path) == "", container
        video, _ = framemd5(path, "video")
        audio, _ = framemd5(path, "audio")
        assert in_source_order(video, source), f"{container}: a frame that is not the source's"
        # Loss costs the rest of a group of pictures (a file cannot make a keyframe on
        # request); a good part of the clip must still be there, and most of the audio.
        assert len(video) >= len(source) // 4, (container, len(video))
        assert 150 <= len(audio) <= 200, (container, len(audio))
        counters = stream(run.summary, "video")
        assert counters["lost"] > 0, counters
        assert counters["duplicates"] + counters["late"] >= faults["duplicated"], counters


# --------------------------------------------------------------------------- keyframe recovery


SENDER_HEAD_START = 3.0
RECORD_SECONDS = 3.0


def test_recording_mid_stream_gets_a_keyframe_within_a_second(tmp_path: Path) -> None:
    """The sender makes a keyframe every 10 s unless asked; recording starts 3 s into its
    stream and lasts 3 s, so only a keyframe request answered at once yields ~3 s of video."""
    live: dict[str, tuple[int, senders.Sender]] = {}
    recorders: dict[str, Recorder] = {}
    summaries: dict[str, dict[str, Any]] = {}
    try:
        for container in CONTAINERS:
            [video] = senders.free_port_pairs(1)
            live[container] = (video, senders.gst_live_vp8(video))
        time.sleep(SENDER_HEAD_START)
        for container, (video, _) in live.items():
            sdp = senders.session_sdp(video, None)
            recorders[container] = Recorder(tmp_path / f"mid.{container}", sdp)
        time.sleep(RECORD_SECONDS)
        for container, recorder in recorders.items():
            summaries[container] = recorder.stop()
    finally:
        for _, sender in live.values():
            sender.stop()
        for recorder in recorders.values():
            recorder.kill()
    for container, recorder in recorders.items():
        video, errors = framemd5(recorder.output, "video")
        assert not errors, errors
        recorded_for = recorder.stopped - recorder.started
        first_keyframe_after = recorded_for - len(video) / FPS
        assert first_keyframe_after <= 1.0, (container, recorded_for, len(video))
        counters = stream(summaries[container], "video")
        assert counters["plis_sent"] >= 1 and counters["keyframes"] >= 1, counters


# --------------------------------------------------------------------------- A/V sync


@pytest.fixture(scope="module")
def avsync_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return avsync.make_source(tmp_path_factory.mktemp("avsync"))


def test_audio_and_video_are_in_sync_from_sender_reports(
    tmp_path: Path, avsync_source: Path
) -> None:
    """The sender sends its audio 0.3 s late on the wire; its SRs say the flash and the beep
    were captured together, and so must the recording show them (within one frame)."""
    runs = record_live(
        tmp_path,
        CONTAINERS,
        senders.session_sdp,
        lambda video, audio: avsync.send(video, audio, avsync_source),
    )
    for container, run in runs.items():
        offsets = avsync.measure_offset(run.recorder.output)
        assert len(offsets) == len(avsync.FLASH_TIMES), (container, offsets)
        assert all(abs(offset) <= 0.033 for offset in offsets), (container, offsets)


# --------------------------------------------------------------------------- hostile input


@dataclass
class Junk:
    """Forged datagrams, seeded; `sent` counts each kind."""

    rng: random.Random
    sent: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, number: int = 1) -> None:
        self.sent[kind] = self.sent.get(kind, 0) + number

    def random_datagram(self) -> bytes:
        data = bytearray(self.rng.randbytes(self.rng.randint(1, 1400)))
        # Any RTP/RTCP version but 2: never a packet by accident.
        data[0] = (data[0] & 0x3F) | self.rng.choice((0x00, 0x40, 0xC0))
        return bytes(data)

    def truncated_rtp(self, real: bytes) -> bytes:
        """The real stream's header (its SSRC) cut short or promising more than there is."""
        data = bytearray(real)
        choice = self.rng.randrange(3)
        if choice == 0:
            return bytes(data[: self.rng.randint(1, 11)])  # shorter than the fixed header
        if choice == 1:
            data[0] |= 0x0F  # 15 CSRCs that are not there
            return bytes(data[: 12 + self.rng.randint(0, 59)])
        data[0] = (data[0] & 0xC0) | 0x20  # padding, no CSRC, no extension
        data = data[: self.rng.randint(13, 100)]
        data[-1] = 255  # more padding than packet
        return bytes(data)

    def other_ssrc(self, real: bytes) -> bytes:
        ssrc = struct.unpack_from("!I", real, 8)[0]
        other = (ssrc + self.rng.randint(1, 2**32 - 2)) % 2**32
        return real[:8] + struct.pack("!I", other) + real[12:]

    def other_payload_type(self, real: bytes) -> bytes:
        return real[:1] + bytes([(real[1] & 0x80) | 100]) + real[2:]

    def bad_srtp_tag(self, real: bytes) -> bytes:
        """A later sequence number (no replay) with a tag that cannot match."""
        sequence = (struct.unpack_from("!H", real, 2)[0] + 1000 + self.rng.randint(0, 999)) % 2**16
        tag = bytes(byte ^ 0xFF for byte in real[-10:])
        return real[:2] + struct.pack("!H", sequence) + real[4:-10] + tag

    def truncated_rtcp(self) -> bytes:
        """An SR header promising 6 words more than the datagram holds."""
        return struct.pack("!BBHI", 0x80, 200, 6, self.rng.getrandbits(32))


FLOOD_PACKETS = 20000


def test_hostile_input_is_counted_and_dropped_while_a_real_sender_records(
    tmp_path: Path,
) -> None:
    key = senders.new_key()
    video, audio = senders.free_port_pairs(2)
    # Video plain (its junk reaches the RTP parser), audio SRTP (its junk meets the auth tag).
    sdp = senders.session_sdp(video, audio, key=key, encrypt=("audio",))
    recorder = Recorder(tmp_path / "hostile.webm", sdp)
    targets = {"video": video, "video rtcp": video + 1, "audio": audio, "audio rtcp": audio + 1}
    routes = {name: Route(0, port) for name, port in targets.items()}
    junk = Junk(random.Random(4))
    outsider = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # another port of the host
    outsider.bind((senders.HOST, 0))
    try:
        with Relay(list(routes.values())) as relay:
            sender = senders.gst_vp8_opus(
                routes["video"].listen,
                routes["audio"].listen,
                video_rtcp_port=routes["video rtcp"].listen,
                audio_rtcp_port=routes["audio rtcp"].listen,
                key=key,
                encrypt=("audio",),
            )
            with sender:
                deadline = time.monotonic() + 5
                while routes["video"].counts["received"] < 30 or not routes["audio"].last:
                    assert time.monotonic() < deadline, "the sender did not start"
                    time.sleep(0.02)
                _send_junk(relay, routes, junk, outsider, video, audio)
                flood_started = time.monotonic()
                for index in range(FLOOD_PACKETS):
                    relay.inject(routes["video"], junk.other_ssrc(routes["video"].last))
                    if index % 500 == 499:
                        time.sleep(0.02)
                flood_seconds = time.monotonic() - flood_started
                sender.finish()
                time.sleep(TAIL)
                assert recorder.process.poll() is None, "record died"
                summary = recorder.stop()
    finally:
        outsider.close()
        recorder.kill()
    assert flood_seconds < 2.5, "the flood overlapped the end of the real stream"
    assert summary["network"]["internal_errors"] == 0

    # The real encrypted audio is untouched; the real video survived in order.
    path = recorder.output
    audio_md5, audio_errors = framemd5(path, "audio")
    assert not audio_errors and audio_md5 == source_md5("audio")
    video_md5, video_errors = framemd5(path, "video")
    assert not video_errors and in_source_order(video_md5, source_md5("video"))
    assert len(video_md5) >= 30

    # Every kind of junk was counted where it belongs.
    sent = junk.sent
    video_counters, audio_counters = stream(summary, "video"), stream(summary, "audio")
    # Random datagrams on an RTP port may look like RTCP (RFC 5761 demultiplexing): either
    # count will do. RTCP garbage from a port other than the sender's may be refused as foreign
    # or fail to parse: either will do.
    assert video_counters["malformed_packets"] + video_counters["rtcp_malformed"] >= (
        sent["random"] + sent["truncated"] + sent["rtcp garbage video"]
    ), (sent, video_counters)
    assert video_counters["rtcp_malformed"] >= sent["rtcp garbage video"], (sent, video_counters)
    assert video_counters["other_ssrcs"] >= sent["other ssrc"] + FLOOD_PACKETS // 2, (
        sent,
        video_counters,
    )
    assert video_counters["other_payload_types"] >= sent["other pt"], (sent, video_counters)
    assert video_counters["foreign_packets"] >= sent["foreign"], (sent, video_counters)
    assert video_counters["foreign_packets"] + video_counters["rtcp_malformed"] >= (
        sent["foreign"] + sent["rtcp garbage video"] + sent["foreign rtcp video"]
    ), (sent, video_counters)
    assert audio_counters["srtp_failures"] >= sent["bad tag"] + sent["rtcp garbage audio"], (
        sent,
        audio_counters,
    )
    assert audio_counters["srtp_failures"] + audio_counters["foreign_packets"] >= (
        sent["bad tag"] + sent["rtcp garbage audio"] + sent["foreign rtcp audio"]
    ), (sent, audio_counters)
    assert video_counters["ssrc_switches"] == 0 and audio_counters["ssrc_switches"] == 0


def _send_junk(
    relay: Relay,
    routes: dict[str, Route],
    junk: Junk,
    outsider: socket.socket,
    video: int,
    audio: int,
) -> None:
    """Everything but the flood, paced so that none of it is lost to a full socket buffer."""
    for index in range(60):
        relay.inject(routes["video"], junk.random_datagram())
        junk.count("random")
        relay.inject(routes["video"], junk.truncated_rtp(routes["video"].last))
        junk.count("truncated")
        relay.inject(routes["video"], junk.other_ssrc(routes["video"].last))
        junk.count("other ssrc")
        relay.inject(routes["video"], junk.other_payload_type(routes["video"].last))
        junk.count("other pt")
        relay.inject(routes["audio"], junk.bad_srtp_tag(routes["audio"].last))
        junk.count("bad tag")
        for media in ("video", "audio"):
            garbage = junk.random_datagram() if index % 2 else junk.truncated_rtcp()
            relay.inject(routes[f"{media} rtcp"], garbage)
            junk.count(f"rtcp garbage {media}")
        # From another port of the sender's host: a copy of its RTP, and RTCP garbage.
        outsider.sendto(routes["video"].last, (senders.HOST, video))
        junk.count("foreign")
        for media, port in (("video", video + 1), ("audio", audio + 1)):
            outsider.sendto(junk.random_datagram(), (senders.HOST, port))
            junk.count(f"foreign rtcp {media}")
        if index % 10 == 9:
            time.sleep(0.01)


def test_a_receive_buffer_smaller_than_asked_is_reported_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from recorder import live

    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    monkeypatch.setattr(live, "RECEIVE_BUFFER", 2 * rmem_max)
    monkeypatch.setattr(live, "SO_RCVBUFFORCE", -1)  # as without CAP_NET_ADMIN: refused
    monkeypatch.setattr(live, "_small_buffer_reported", False)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as one,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as two,
        caplog.at_level("WARNING", logger="recorder.live"),
    ):
        assert live._size_receive_buffer(one) == rmem_max
        assert live._size_receive_buffer(two) == rmem_max
    [warning] = caplog.records
    assert f"raise net.core.rmem_max to {2 * rmem_max}" in warning.getMessage()
