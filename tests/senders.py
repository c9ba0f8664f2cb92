"""Real RTP senders for live tests: GStreamer and FFmpeg as subprocesses over loopback, paced in
real time, plus the SDP the recorder is given for each.

- `gst_vp8_opus`: the committed VP8 + Opus fixture sources through GStreamer's payloaders and
  `rtpsession` (the session element `rtpbin` is made of), with RTCP sender reports every
  ~0.5 s, sent from a bound port (symmetric RTCP: with `feedback`, the session also reads the
  recorder's RTCP on that port). Optionally SRTP/SRTCP through `srtpenc`.
- `ffmpeg_vp8_opus`: `ffmpeg -re -i source.ivf -re -i source.ogg -c copy -f rtp` (RTCP sender
  reports to port + 1), optionally `srtp://` with `-srtp_out_suite`.
- `gst_live_vp8`: a live test pattern encoded by `vp8enc` with a long keyframe interval, which
  sends a keyframe when a PLI or FIR reaches the port its RTCP comes from (`rtpsession` turns
  the feedback into a force-key-unit event that the payloader passes up to the encoder).

Why `rtpsession` and not `rtpbin`: a sender in `rtpbin` sends its first SR only after ~2.5 s
(the 5 s RFC 3550 minimum interval, halved for the first report), and `rtpbin` does not expose
`rtcp-min-interval` on the command line; `rtpsession` does. `rtcp-sync-send-time=false` makes
the SR's NTP <-> RTP mapping follow capture time, not the moment a buffer passes the session
(a frame or an audio packet ahead of the synced `udpsink`), so the two sessions agree.
"""

from __future__ import annotations

import base64
import os
import selectors
import shlex
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vp8-opus"
VIDEO_PT, AUDIO_PT = 96, 111
RTP_MTU = 1200
CLIP_SECONDS = 4.0  # the fixture clips
SRTP_SUITE = "AES_CM_128_HMAC_SHA1_80"
SRTP_KEY_LENGTH = 30  # 16-byte master key + 14-byte master salt
RTCP_INTERVAL_NS = 500_000_000
# With a udpsrc feeding RTCP back into an rtpsession, GStreamer 1.22 now and then never forwards
# EOS on the RTCP pad after the media ended, so gst-launch does not exit: a sender still running
# this long after its clip is stopped.
END_GRACE = 1.0
STOP_TIMEOUT = 5.0

GST_LAUNCH = "gst-launch-1.0 -q"
FFMPEG = "ffmpeg -nostdin -v error -y"


# --------------------------------------------------------------------------- ports and keys


def free_port() -> int:
    """A UDP port free on every address right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("0.0.0.0", 0))
        return probe.getsockname()[1]


def free_port_pairs(count: int) -> list[int]:
    """`count` even UDP ports each free together with port + 1 (RTP and its RTCP port)."""
    found: list[int] = []
    while len(found) < count:
        port = free_port() & ~1
        if port in found or port < 1024:
            continue
        probes = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        try:
            probes[0].bind(("0.0.0.0", port))
            probes[1].bind(("0.0.0.0", port + 1))
        except OSError:
            continue
        else:
            found.append(port)
        finally:
            for probe in probes:
                probe.close()
    return found


def new_key() -> bytes:
    """A fresh master key ‖ salt for AES_CM_128_HMAC_SHA1_80."""
    return os.urandom(SRTP_KEY_LENGTH)


def key_base64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


# --------------------------------------------------------------------------- SDP


def session_sdp(
    video_port: int | None,
    audio_port: int | None,
    *,
    key: bytes | None = None,
    encrypt: tuple[str, ...] = ("video", "audio"),
    host: str = HOST,
) -> str:
    """The SDP the recorder is given: the ports it listens on (RTCP on port + 1), VP8 and Opus
    with the payload types the senders here use, `a=crypto` on the encrypted sections."""
    lines = ["v=0", f"o=- 0 0 IN IP4 {host}", "s=rtp-recorder live test", f"c=IN IP4 {host}"]
    lines.append("t=0 0")
    media = [("video", video_port, VIDEO_PT, "VP8/90000"), ("audio", audio_port, AUDIO_PT, None)]
    for kind, port, pt, rtpmap in media:
        if port is None:
            continue
        profile = "RTP/SAVP" if key is not None and kind in encrypt else "RTP/AVP"
        lines.append(f"m={kind} {port} {profile} {pt}")
        if rtpmap is None:
            lines += [f"a=rtpmap:{pt} opus/48000/2", f"a=fmtp:{pt} sprop-stereo=1"]
        else:
            lines.append(f"a=rtpmap:{pt} {rtpmap}")
        if key is not None and kind in encrypt:
            lines.append(f"a=crypto:1 {SRTP_SUITE} inline:{key_base64(key)}")
    return "\r\n".join(lines) + "\r\n"


def write_sdp(
    path: Path, video_port: int | None, audio_port: int | None, **options: object
) -> Path:
    path.write_text(session_sdp(video_port, audio_port, **options))  # type: ignore[arg-type]
    return path


# --------------------------------------------------------------------------- process handles


class Sender:
    """A running sender subprocess. Its output goes to a temporary file (a pipe nobody reads
    could fill up and stall it); `log` reads it back."""

    def __init__(self, name: str, command: list[str], cwd: Path, duration: float | None) -> None:
        self.name = name
        self.command = command
        self.duration = duration  # seconds of media, None for a live source
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by __exit__)
        self.started = time.monotonic()
        self.stopped_by_us = False
        self.process = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self._log.close()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def finish(self) -> None:
        """Wait until the clip has been sent; raise if the sender failed."""
        assert self.duration is not None, f"{self.name} is live: stop() it"
        deadline = self.started + self.duration + END_GRACE
        try:
            self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            return
        if self.process.returncode != 0:
            raise AssertionError(f"{self.name} failed ({self.process.returncode}):\n{self.log}")

    def stop(self) -> None:
        """Interrupt (gst-launch and ffmpeg both stop cleanly on SIGINT), then kill."""
        if self.process.poll() is not None:
            return
        self.stopped_by_us = True
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _gst_session(
    name: str,
    payloader: str,
    port: int,
    rtcp_port: int,
    key: bytes | None,
    delay: float = 0.0,
    feedback: bool = False,
) -> str:
    """One `rtpsession` branch: payloader → session → (srtpenc) → udpsink, RTCP likewise, and
    with `feedback` a udpsrc on the port the RTCP leaves from, feeding RTCP back in."""
    # Sent from an even port and its odd neighbour, as RFC 3550 section 11 has it: a receiver
    # that has seen only RTP yet (FFmpeg sends RTCP every 5 s, GStreamer about every 0.5 s
    # here) can still address RTCP to the sender at RTP source port + 1. Two udpsinks left to
    # pick their own ports get unrelated ones, and feedback sent before the sender's first
    # RTCP packet is lost.
    [rtp_bind] = free_port_pairs(1)
    rtcp_bind = rtp_bind + 1
    rtp_sink = f"udpsink host={HOST} port={port} bind-port={rtp_bind} sync=true"
    if delay:
        # Sent late, but stamped and reported (SR) as captured: only SR-based sync is right.
        rtp_sink += f" ts-offset={int(delay * 1e9)}"
    # bind-port: the recorder answers RTCP to where it came from, and the udpsrc below (with
    # `feedback`) listens on that same port; both elements set SO_REUSEADDR.
    rtcp_sink = f"udpsink host={HOST} port={rtcp_port} bind-port={rtcp_bind} sync=false async=false"
    parts = [
        f"rtpsession name={name} rtcp-min-interval={RTCP_INTERVAL_NS} rtcp-sync-send-time=false",
        f"{payloader} ! {name}.send_rtp_sink",
    ]
    if key is None:
        parts += [f"{name}.send_rtp_src ! {rtp_sink}", f"{name}.send_rtcp_src ! {rtcp_sink}"]
    else:
        # The recorder's SRTCP would need an srtpdec keyed per SSRC through signals, which
        # gst-launch cannot do: an SRTP sender here sends RTCP but reads none back.
        feedback = False
        crypto = "rtp-cipher=aes-128-icm rtp-auth=hmac-sha1-80"
        crypto += " rtcp-cipher=aes-128-icm rtcp-auth=hmac-sha1-80"
        parts += [
            f"srtpenc name={name}_srtp key={key.hex()} {crypto}",
            f"{name}.send_rtp_src ! {name}_srtp.rtp_sink_0 {name}_srtp.rtp_src_0 ! {rtp_sink}",
            f"{name}.send_rtcp_src ! {name}_srtp.rtcp_sink_0 {name}_srtp.rtcp_src_0",
            f"! {rtcp_sink}",
        ]
    if feedback:
        # The udpsink above binds 0.0.0.0 and this udpsrc 127.0.0.1, on the same port. Linux
        # delivers a unicast datagram to the socket bound to its exact address before any
        # wildcard one; between two wildcard sockets it picks one that last received on the
        # current CPU, so the feedback went to the udpsink (unread) in ~1 run in 4.
        source = f"udpsrc address={HOST} port={rtcp_bind} caps=application/x-rtcp"
        parts.append(f"{source} ! {name}.recv_rtcp_sink")
    return " ".join(parts)


def gst_vp8_opus(
    video_port: int,
    audio_port: int,
    *,
    video_rtcp_port: int | None = None,
    audio_rtcp_port: int | None = None,
    key: bytes | None = None,
    encrypt: tuple[str, ...] = ("video", "audio"),
    audio_delay: float = 0.0,
    source_dir: Path = FIXTURES,
    duration: float = CLIP_SECONDS,
    feedback: bool = False,
) -> Sender:
    """GStreamer sending `source_dir`/source.ivf (VP8) and source.ogg (Opus) in real time.

    RTCP always leaves from a bound port, so the recorder's RTCP goes somewhere that exists;
    `feedback` also reads it back into the sessions, which a stored clip has no use for (it
    cannot make a keyframe on request) and which now and then keeps gst-launch from exiting at
    the end (`END_GRACE`)."""
    video = (
        "filesrc location=source.ivf ! ivfparse"
        f" ! rtpvp8pay pt={VIDEO_PT} mtu={RTP_MTU} picture-id-mode=15-bit"
    )
    audio = f"filesrc location=source.ogg ! oggdemux ! opusparse ! rtpopuspay pt={AUDIO_PT}"
    video_rtcp_port = video_rtcp_port or video_port + 1
    audio_rtcp_port = audio_rtcp_port or audio_port + 1
    video_key = key if "video" in encrypt else None
    audio_key = key if "audio" in encrypt else None
    video_session = _gst_session(
        "v", video, video_port, video_rtcp_port, video_key, feedback=feedback
    )
    audio_session = _gst_session(
        "a", audio, audio_port, audio_rtcp_port, audio_key, audio_delay, feedback
    )
    pipeline = f"{GST_LAUNCH} {video_session} {audio_session}"
    name = "gstreamer" + (" srtp" if key else "")
    return Sender(name, shlex.split(pipeline), source_dir, duration + audio_delay)


def ffmpeg_vp8_opus(
    video_port: int,
    audio_port: int,
    *,
    key: bytes | None = None,
    source_dir: Path = FIXTURES,
    duration: float = CLIP_SECONDS,
) -> Sender:
    """FFmpeg sending the fixture sources with `-c copy`; RTCP goes to each port + 1."""
    scheme, srtp = "rtp", ""
    if key is not None:
        scheme = "srtp"
        srtp = f" -srtp_out_suite {SRTP_SUITE} -srtp_out_params {key_base64(key)}"
    command = (
        f"{FFMPEG} -re -i source.ivf -re -i source.ogg"
        f" -map 0:v -c copy -f rtp -payload_type {VIDEO_PT}{srtp}"
        f" {scheme}://{HOST}:{video_port}?pkt_size={RTP_MTU}"
        f" -map 1:a -c copy -f rtp -payload_type {AUDIO_PT}{srtp}"
        f" {scheme}://{HOST}:{audio_port}?pkt_size={RTP_MTU}"
        # Without -sdp_file FFmpeg prints the SDP on stdout; it is not needed here.
        f" -sdp_file {os.devnull}"
    )
    name = "ffmpeg" + (" srtp" if key else "")
    return Sender(name, shlex.split(command), source_dir, duration)


def gst_live_vp8(
    video_port: int,
    *,
    rtcp_port: int | None = None,
    keyframe_interval: int = 300,
    size: str = "320x240",
    fps: int = 30,
) -> Sender:
    """A live VP8 test pattern with a keyframe every `keyframe_interval` frames (default 10 s at
    30 fps) unless a PLI / FIR asks for one; runs until stopped."""
    width, height = size.split("x")
    video = (
        f"videotestsrc is-live=true pattern=ball"
        f" ! video/x-raw,width={width},height={height},framerate={fps}/1"
        f" ! vp8enc deadline=1 cpu-used=8 target-bitrate=300000"
        f" keyframe-max-dist={keyframe_interval}"
        f" ! rtpvp8pay pt={VIDEO_PT} mtu={RTP_MTU} picture-id-mode=15-bit"
    )
    session = _gst_session("v", video, video_port, rtcp_port or video_port + 1, None, feedback=True)
    return Sender("gstreamer live", shlex.split(f"{GST_LAUNCH} {session}"), Path.cwd(), None)


# --------------------------------------------------------------------------- receiving side


class UdpSink:
    """Bound sockets that keep every datagram with its arrival time and source, and can answer
    from the port a datagram arrived on (what the recorder does with RTCP)."""

    def __init__(self, ports: list[int]) -> None:
        self.packets: list[tuple[float, int, bytes, tuple[str, int]]] = []
        self._sockets: dict[int, socket.socket] = {}
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind((HOST, port))
            sock.setblocking(False)
            self._sockets[port] = sock
            self._selector.register(sock, selectors.EVENT_READ, port)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def __enter__(self) -> UdpSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self._sockets.values():
            self._selector.unregister(sock)
            sock.close()
        self._selector.close()

    def received(self, port: int) -> list[tuple[float, bytes, tuple[str, int]]]:
        with self._lock:
            return [(at, data, source) for at, p, data, source in self.packets if p == port]

    def send(self, port: int, data: bytes, target: tuple[str, int]) -> None:
        self._sockets[port].sendto(data, target)

    def _read(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                while True:
                    try:
                        data, source = sock.recvfrom(65536)
                    except BlockingIOError:
                        break
                    with self._lock:
                        self.packets.append((time.monotonic(), key.data, data, source))


def rtp_payload(packet: bytes) -> bytes:
    """The payload of a well-formed RTP packet (CSRCs, extension and padding removed)."""
    offset = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        offset += 4 + 4 * struct.unpack_from("!H", packet, offset + 2)[0]
    end = len(packet) - (packet[-1] if packet[0] & 0x20 else 0)
    return packet[offset:end]


def vp8_keyframe_start(payload: bytes) -> bool:
    """Whether an RTP VP8 payload (RFC 7741) starts a keyframe: the first packet of a frame
    (S = 1, partition 0) whose frame tag has P = 0 (RFC 6386 section 9.1)."""
    first = payload[0]
    offset = 1
    if first & 0x80:  # X: extension byte I L T K
        extension = payload[1]
        offset = 2
        if extension & 0x80:  # I: picture ID, 15 bits when M is set
            offset += 2 if payload[offset] & 0x80 else 1
        if extension & 0x40:  # L: TL0PICIDX
            offset += 1
        if extension & 0x30:  # T or K: TID / KEYIDX byte
            offset += 1
    starts_partition_zero = first & 0x10 and first & 0x07 == 0
    return bool(starts_partition_zero and not payload[offset] & 0x01)


def rtcp_packets(data: bytes) -> list[tuple[int, int, bytes]]:
    """(packet type, count / FMT, whole packet) of each packet of a compound RTCP datagram."""
    packets = []
    offset = 0
    while offset + 4 <= len(data):
        first, packet_type, length = struct.unpack_from("!BBH", data, offset)
        end = offset + 4 * (length + 1)
        packets.append((packet_type, first & 0x1F, data[offset:end]))
        offset = end
    return packets


def receiver_report(ssrc: int) -> bytes:
    """An RR with no report blocks (RFC 3550 6.4.2): the minimal head of a compound packet."""
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


def pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """RFC 4585 6.3.1: PSFB (PT 206) with FMT 1, no FCI."""
    return struct.pack("!BBHII", 0x80 | 1, 206, 2, sender_ssrc, media_ssrc)


def fir(sender_ssrc: int, media_ssrc: int, sequence: int) -> bytes:
    """RFC 5104 4.3.1: PSFB (PT 206) with FMT 4, media SSRC 0, one FCI entry."""
    return struct.pack("!BBHIIIB3x", 0x80 | 4, 206, 4, sender_ssrc, 0, media_ssrc, sequence)
