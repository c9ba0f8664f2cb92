"""The benchmark's inputs: long RTP captures made by real encoders and real payloaders.

For each medium (VP8 and H.264 video at 1280x720, 30 fps, ~1.5 Mbit/s; Opus at 64 kbit/s):

1. FFmpeg encodes a source file (IVF, Matroska, Ogg) of the asked length from a lavfi test
   source (``testsrc2`` / two sines); libvpx with two threads is not bit-exact between runs.
2. GStreamer's payloader (rtpvp8pay, rtph264pay, rtpopuspay) sends it over loopback UDP with
   ``sync=false``, i.e. as fast as the pipeline runs (a 10-minute file takes seconds), while
   ``tcpdump -i lo --immediate-mode -B 262144`` captures it. Nothing reads the receiving socket;
   tcpdump sees packets before any socket queue, and its 256 MiB ring holds a whole file.
3. The capture is checked: tcpdump reports 0 packets dropped by kernel, every packet is RTP of
   one SSRC and payload type, the sequence numbers are contiguous, and the number of distinct
   RTP timestamps equals the number of frames (``ffprobe -count_packets``) of the source: no
   packet is missing, first, middle or last.
4. Because the capture ran faster than real time, its record times are restamped to the
   schedule a real-time sender produces: the first packet's capture time plus the RTP
   timestamp's offset (packets of one frame 20 us apart). Frames (the payloaders' bytes,
   Ethernet/IP/UDP headers included) and their order are unchanged.

Everything lives in ``bench/.cache/<seconds>s/`` (gitignored) and is reused while its
``inputs.json`` exists; delete the directory to rebuild. A 600 s set takes ~6 minutes to make
(VP8 encoding dominates).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import pcap

CACHE = Path(__file__).resolve().parent / ".cache"
HOST = "127.0.0.1"
MTU = 1200
PACKET_SPACING = 20e-6  # between the packets of one frame in the restamped capture
HEAD_SECONDS = 1.0  # the short capture that measures start-up cost
INPUTS_VERSION = 1
TCPDUMP_START_TIMEOUT = 10.0
SENDER_TIMEOUT = 600.0


class InputError(Exception):
    """A tool is missing, failed, or its output failed a check."""


@dataclass(frozen=True, slots=True)
class Medium:
    name: str  # vp8, h264, opus
    kind: str  # video, audio
    encoding: str  # as in the SDP rtpmap
    payload_type: int
    clock_rate: int
    channels: int | None
    source: str  # the encoded file's name
    encode: str  # ffmpeg options after the input, before the output
    lavfi: str
    sender: str  # the GStreamer pipeline up to (excluding) the sink; {src} is the source
    gst_caps: str  # caps for pcapparse's output in the GStreamer reference pipeline
    gst_depay: str  # depayloader [! parser] of the GStreamer reference pipeline


VIDEO_LAVFI = "testsrc2=size=1280x720:rate=30"
MEDIA: dict[str, Medium] = {
    medium.name: medium
    for medium in (
        Medium(
            "vp8",
            "video",
            "VP8",
            96,
            90000,
            None,
            "source.vp8.ivf",
            "-pix_fmt yuv420p -c:v libvpx -deadline realtime -cpu-used 8 -threads 2 -b:v 1500k"
            " -g 60 -keyint_min 60 -lag-in-frames 0 -auto-alt-ref 0 -f ivf",
            VIDEO_LAVFI,
            "filesrc location={src} ! ivfparse"
            f" ! rtpvp8pay pt=96 mtu={MTU} picture-id-mode=15-bit",
            "application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,payload=96",
            "rtpvp8depay",
        ),
        Medium(
            "h264",
            "video",
            "H264",
            102,
            90000,
            None,
            "source.h264.mkv",
            # Constrained baseline, no B-frames, one slice per frame, as WebRTC sends.
            "-pix_fmt yuv420p -c:v libx264 -profile:v baseline -preset veryfast -threads 2"
            " -b:v 1500k -maxrate 1500k -bufsize 1500k -g 60 -keyint_min 60 -bf 0 -f matroska",
            VIDEO_LAVFI,
            "filesrc location={src} ! matroskademux ! h264parse"
            f" ! rtph264pay pt=102 mtu={MTU} config-interval=-1 aggregate-mode=zero-latency",
            "application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=102",
            "rtph264depay ! h264parse",
        ),
        Medium(
            "opus",
            "audio",
            "opus",
            111,
            48000,
            2,
            "source.opus.ogg",
            "-c:a libopus -b:a 64k -vbr off -frame_duration 20 -f ogg",
            "aevalsrc='0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t)':s=48000",
            "filesrc location={src} ! oggdemux ! opusparse ! rtpopuspay pt=111",
            "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=111",
            "rtpopusdepay ! opusparse",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Capture:
    """One medium's checked, restamped capture and what the benchmark needs to know of it."""

    name: str
    seconds: int
    pcap: str  # path
    head_pcap: str  # the first HEAD_SECONDS of it
    sdp: str  # path
    port: int
    packets: int
    head_packets: int
    frames: int
    bytes: int  # RTP bytes
    ssrc: int
    fmtp: str
    tcpdump: str  # tcpdump's closing report

    @property
    def medium(self) -> Medium:
        return MEDIA[self.name]

    @property
    def bitrate_kbps(self) -> float:
        return round(self.bytes * 8 / self.seconds / 1000, 1)


def run(cmd: list[str], cwd: Path, timeout: float = SENDER_TIMEOUT) -> str:
    try:
        done = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise InputError(f"timed out after {timeout:.0f} s: {shlex.join(cmd)}") from error
    if done.returncode != 0:
        raise InputError(f"exit {done.returncode}: {shlex.join(cmd)}\n{done.stderr[-2000:]}")
    return done.stdout


def require_tools() -> None:
    missing = [t for t in ("ffmpeg", "ffprobe", "gst-launch-1.0", "tcpdump") if not shutil.which(t)]
    if missing:
        raise InputError(
            f"missing {', '.join(missing)} (Debian: apt-get install ffmpeg tcpdump "
            "gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
            "gstreamer1.0-plugins-bad)"
        )


def encode(medium: Medium, seconds: int, directory: Path) -> Path:
    target = directory / medium.source
    if target.exists():
        return target
    partial = directory / f".{medium.source}.part"
    run(
        [
            "ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", medium.lavfi,
            "-t", str(seconds), *shlex.split(medium.encode), "-bitexact", str(partial),
        ],
        directory,
        timeout=3600,
    )  # fmt: skip
    partial.rename(target)
    return target


def count_frames(path: Path) -> int:
    out = run(
        [
            "ffprobe", "-v", "error", "-count_packets", "-select_streams", "0",
            "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path),
        ],
        path.parent,
    )  # fmt: skip
    return int(out.strip())


class Tcpdump:
    def __init__(self, output: Path, port: int) -> None:
        self.cmd = [
            "tcpdump", "-i", "lo", "-B", "262144", "--immediate-mode", "-w", str(output),
            f"udp and dst port {port}",
        ]  # fmt: skip
        self.lines: list[str] = []
        self._listening = threading.Event()
        self._proc: subprocess.Popen[str] | None = None

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self.lines.append(line.rstrip())
            if "listening on" in line:
                self._listening.set()

    def __enter__(self) -> Tcpdump:
        self._proc = subprocess.Popen(
            self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._listening.wait(TCPDUMP_START_TIMEOUT):
            self._stop()
            raise InputError(f"tcpdump did not start: {shlex.join(self.cmd)}\n{self.log}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        assert self._proc is not None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


def capture(medium: Medium, source: Path, directory: Path) -> tuple[Path, int, str, str]:
    """Send `source` through the payloader to a bound loopback port under tcpdump; return the
    raw capture, the port, tcpdump's report and the payloader's output caps."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never read
    sink.bind((HOST, 0))
    port = sink.getsockname()[1]
    raw = directory / f"{medium.name}.raw.pcap"
    try:
        with Tcpdump(raw, port) as tcpdump:
            pipeline = medium.sender.format(src=source.name)
            out = run(
                [
                    "gst-launch-1.0", "-v", *shlex.split(pipeline),
                    "!", "udpsink", f"host={HOST}", f"port={port}", "sync=false",
                ],
                directory,
            )  # fmt: skip
            time.sleep(1.0)  # lets tcpdump write the tail
    finally:
        sink.close()
    report = " ".join(line for line in tcpdump.lines if "packets" in line)
    dropped = re.search(r"(\d+) packets? dropped by kernel", report)
    if dropped is None or int(dropped.group(1)) != 0:
        raise InputError(f"{medium.name}: tcpdump dropped packets or did not say:\n{report}")
    caps = ""
    for line in out.splitlines():
        if "application/x-rtp" in line and "udpsink" in line:
            caps = line
    return raw, port, report, caps


def restamp(medium: Medium, raw: Path, port: int, frames: int, directory: Path) -> dict:
    """Check the raw capture and write it with real-time record times; return its facts."""
    records = list(pcap.read(raw))
    if not records:
        raise InputError(f"{medium.name}: the capture is empty")
    first = pcap.parse_rtp(records[0].payload)
    timestamps = set()
    expected_sequence = first.sequence
    rtp_bytes = 0
    out: list[tuple[float, bytes]] = []
    base_time = records[0].time
    extended = previous = first.timestamp
    burst = 0
    for number, record in enumerate(records):
        if record.dst_port != port:
            raise InputError(f"{medium.name}: record {number} to port {record.dst_port}")
        payload = record.payload
        rtp = pcap.parse_rtp(payload)
        if rtp.ssrc != first.ssrc or rtp.payload_type != medium.payload_type:
            raise InputError(f"{medium.name}: record {number} has another SSRC or payload type")
        if rtp.sequence != expected_sequence:
            raise InputError(
                f"{medium.name}: sequence {rtp.sequence} after {expected_sequence - 1}: "
                f"{(rtp.sequence - expected_sequence) % 65536} packet(s) lost in the capture"
            )
        expected_sequence = (expected_sequence + 1) & 0xFFFF
        delta = (rtp.timestamp - previous) & 0xFFFFFFFF
        if delta >= 1 << 31:
            raise InputError(f"{medium.name}: RTP timestamp went back at record {number}")
        burst = burst + 1 if delta == 0 and number else 0
        extended += delta
        previous = rtp.timestamp
        timestamps.add(extended)
        rtp_bytes += len(payload)
        when = base_time + (extended - first.timestamp) / medium.clock_rate
        out.append((when + burst * PACKET_SPACING, record.frame))
    if len(timestamps) != frames:
        raise InputError(
            f"{medium.name}: {len(timestamps)} distinct RTP timestamps for {frames} source frames"
        )
    if medium.kind == "video" and not pcap.parse_rtp(records[-1].payload).marker:
        raise InputError(f"{medium.name}: the last packet does not end a frame")
    final = directory / f"{medium.name}.pcap"
    pcap.write(final, out)
    head = [item for item in out if item[0] - base_time < HEAD_SECONDS]
    pcap.write(directory / f"{medium.name}.head.pcap", head)
    return {
        "packets": len(out),
        "head_packets": len(head),
        "bytes": rtp_bytes,
        "ssrc": first.ssrc,
        "last_time": out[-1][0] - base_time,
    }


def fmtp_for(medium: Medium, caps: str) -> str:
    if medium.encoding == "opus":
        return "sprop-stereo=1"
    if medium.encoding != "H264":
        return ""
    params = ["packetization-mode=1"]
    for key in ("profile-level-id", "sprop-parameter-sets"):
        # GStreamer prints caps strings quoted or bare, with `\` escaping `=` and `,`.
        found = re.search(rf'{key}=\(string\)("(?:[^"\\]|\\.)*"|[^,\s]+)', caps)
        if found:
            value = found.group(1).strip('"').replace("\\", "")
            params.append(f"{key}={value}")
    return ";".join(params)


def write_sdp(medium: Medium, port: int, fmtp: str, path: Path) -> None:
    rtpmap = f"{medium.encoding}/{medium.clock_rate}"
    if medium.channels:
        rtpmap += f"/{medium.channels}"
    lines = [
        "v=0",
        f"o=- 0 0 IN IP4 {HOST}",
        f"s=rtp-recorder bench ({medium.name})",
        f"c=IN IP4 {HOST}",
        "t=0 0",
        f"m={medium.kind} {port} RTP/AVP {medium.payload_type}",
        f"a=rtpmap:{medium.payload_type} {rtpmap}",
    ]
    if fmtp:
        lines.append(f"a=fmtp:{medium.payload_type} {fmtp}")
    path.write_text("\r\n".join([*lines, ""]))


def build(medium: Medium, seconds: int, directory: Path, log: bool = True) -> Capture:
    started = time.monotonic()
    source = encode(medium, seconds, directory)
    frames = count_frames(source)
    raw, port, report, caps = capture(medium, source, directory)
    facts = restamp(medium, raw, port, frames, directory)
    raw.unlink()
    fmtp = fmtp_for(medium, caps)
    sdp = directory / f"{medium.name}.sdp"
    write_sdp(medium, port, fmtp, sdp)
    result = Capture(
        name=medium.name,
        seconds=seconds,
        pcap=str(directory / f"{medium.name}.pcap"),
        head_pcap=str(directory / f"{medium.name}.head.pcap"),
        sdp=str(sdp),
        port=port,
        packets=facts["packets"],
        head_packets=facts["head_packets"],
        frames=frames,
        bytes=facts["bytes"],
        ssrc=facts["ssrc"],
        fmtp=fmtp,
        tcpdump=report,
    )
    if log:
        print(
            f"  {medium.name}: {frames} frames -> {result.packets} packets, "
            f"{result.bitrate_kbps} kbit/s, checked ({time.monotonic() - started:.0f} s)",
            flush=True,
        )
    return result


def ensure(seconds: int, names: tuple[str, ...] = tuple(MEDIA)) -> dict[str, Capture]:
    """The captures of `seconds` length, built (and cached) if missing."""
    directory = CACHE / f"{seconds}s"
    manifest = directory / "inputs.json"
    known: dict[str, Capture] = {}
    if manifest.exists():
        data = json.loads(manifest.read_text())
        if data.get("version") == INPUTS_VERSION:
            known = {name: Capture(**facts) for name, facts in data["captures"].items()}
    missing = [name for name in names if name not in known]
    if missing:
        require_tools()
        directory.mkdir(parents=True, exist_ok=True)
        print(f"making {seconds} s inputs in {directory} ({', '.join(missing)})", flush=True)
        for name in missing:
            known[name] = build(MEDIA[name], seconds, directory)
            text = {"version": INPUTS_VERSION, "captures": {k: asdict(v) for k, v in known.items()}}
            manifest.write_text(json.dumps(text, indent=2) + "\n")
    return {name: known[name] for name in names}


def rtp_flow(capture: Capture) -> list[tuple[float, bytes]]:
    """(seconds since the first packet, RTP packet) of a capture, in capture order."""
    records = list(pcap.read(Path(capture.pcap)))
    start = records[0].time
    return [(record.time - start, record.payload) for record in records]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Make (or check) the benchmark's inputs.")
    parser.add_argument("--seconds", type=int, default=600)
    args = parser.parse_args()
    for item in ensure(args.seconds).values():
        print(json.dumps(asdict(item)))
