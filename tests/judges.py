"""Real tools that judge our output: FFmpeg, ffprobe, GStreamer, mkvinfo."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vp8-opus"
# (capture, SDP) of each real sender.
CAPTURES = {
    "gst": (FIXTURES / "gst.pcap", FIXTURES / "gst.sdp"),
    "ffmpeg": (FIXTURES / "ffmpeg.pcap", FIXTURES / "ffmpeg.sdp"),
}
SOURCE_WIDTH, SOURCE_HEIGHT = 320, 240
SOURCE_FPS = 30
SOURCE_DURATION = 4.0
TOOL_TIMEOUT = 60


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise AssertionError(f"{tool} is not installed: run the tests through tests/run.sh")
    return path


def run(*command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    require(str(command[0]))
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=check,
    )


def source_md5(kind: str) -> list[str]:
    """The md5 column of the source's framemd5 ("video" or "audio")."""
    return md5_column((FIXTURES / f"source.{kind}.framemd5").read_text())


def framemd5(path: Path, kind: str) -> tuple[list[str], str]:
    """Decoded-frame md5s of one stream of `path` by FFmpeg, and what FFmpeg said on stderr."""
    stream = {"video": "0:v", "audio": "0:a"}[kind]
    result = run("ffmpeg", "-v", "error", "-i", path, "-map", stream, "-f", "framemd5", "-")
    return md5_column(result.stdout), result.stderr.strip()


def md5_column(text: str) -> list[str]:
    return [
        line.rsplit(",", 1)[1].strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]


def decode_errors(path: Path) -> str:
    """Everything `ffmpeg -v error -i FILE -f null -` prints: empty for a clean file."""
    result = run("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-", check=False)
    return result.stderr + ("" if result.returncode == 0 else f"[exit {result.returncode}]")


def ffprobe(path: Path) -> dict[str, Any]:
    result = run(
        "ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path
    )
    return json.loads(result.stdout)


def gstreamer_video_md5(path: Path, width: int, height: int) -> list[str]:
    """GStreamer's decoded I420 frames, hashed like FFmpeg's framemd5 of yuv420p."""
    raw = path.with_suffix(path.suffix + ".i420")
    run(
        "gst-launch-1.0", "-q", "filesrc", f"location={path}", "!", "decodebin", "!",
        "video/x-raw", "!", "videoconvert", "!", "video/x-raw,format=I420", "!",
        "filesink", f"location={raw}",
    )  # fmt: skip
    data = raw.read_bytes()
    size = width * height * 3 // 2
    return [hashlib.md5(data[i : i + size]).hexdigest() for i in range(0, len(data), size)]


def gstreamer_buffers(path: Path, kind: str) -> int:
    """How many decoded buffers of `kind` GStreamer's decodebin produces from `path`."""
    result = run(
        "gst-launch-1.0", "-v", "filesrc", f"location={path}", "!", "decodebin", "!",
        f"{kind}/x-raw", "!", "fakesink", "sync=false", "silent=false",
    )  # fmt: skip
    return result.stdout.count("chain   ***")


def mkvinfo(path: Path) -> str:
    return run("mkvinfo", "--all", path).stdout
