"""`rtp-recorder convert` on bad input: one line on stderr, non-zero exit, no traceback, no file.

Malformed packets inside a good capture are counted, not fatal.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.captures import datagrams, write_capture
from tests.conftest import cli
from tests.judges import CAPTURES, FIXTURES, decode_errors, framemd5, source_md5

PCAP, SDP = CAPTURES["gst"]
# H.266 (RFC 9328) is a real payload format we do not record.
H266_SDP = "v=0\r\nm=video 5004 RTP/AVP 102\r\na=rtpmap:102 H266/90000\r\n"


def _fails_in_one_line(done, output: Path | None = None) -> str:  # type: ignore[no-untyped-def]
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("rtp-recorder: error: ")
    assert "Traceback" not in done.stderr
    if output is not None:
        assert not output.exists()
        assert not any(output.parent.glob(f".{output.name}*")), "temporary file left behind"
    return lines[0]


def test_summary_is_one_json_line(tmp_path: Path) -> None:
    done = cli("convert", PCAP, "--sdp", SDP, "-o", tmp_path / "out.mp4")
    assert done.returncode == 0
    assert done.stderr == ""
    assert len(done.stdout.splitlines()) == 1
    summary = json.loads(done.stdout)
    assert {"output", "format", "duration", "size", "streams", "capture"} <= summary.keys()
    for stream in summary["streams"]:
        for key in ("packets", "lost", "duplicates", "frames", "dropped_frames", "keyframes"):
            assert isinstance(stream[key], int)


def test_random_bytes_are_not_a_capture(tmp_path: Path) -> None:
    junk = tmp_path / "random.pcap"
    junk.write_bytes(random.Random(1).randbytes(4096))
    output = tmp_path / "out.webm"
    line = _fails_in_one_line(cli("convert", junk, "--sdp", SDP, "-o", output), output)
    assert "is not a pcap or pcapng capture" in line


def test_random_bytes_behind_a_pcap_header(tmp_path: Path) -> None:
    junk = tmp_path / "random.pcap"
    junk.write_bytes(PCAP.read_bytes()[:24] + random.Random(2).randbytes(8192))
    output = tmp_path / "out.webm"
    line = _fails_in_one_line(cli("convert", junk, "--sdp", SDP, "-o", output), output)
    assert "no RTP stream in the capture" in line


def test_a_non_rtp_flow_on_the_sdp_port(tmp_path: Path) -> None:
    """Real MPEG-TS over UDP from FFmpeg, sent to the port the SDP assigns to VP8."""
    output = tmp_path / "out.webm"
    done = cli("convert", FIXTURES / "mpegts.pcap", "--sdp", SDP, "-o", output)
    line = _fails_in_one_line(done, output)
    assert "are not valid RTP" in line
    assert "RTP version is 1, expected 2" in line


def test_garbage_datagrams_inside_a_good_capture_are_counted(tmp_path: Path) -> None:
    rng = random.Random(3)
    items = datagrams(PCAP)
    garbage = [
        (
            items[index][0],
            items[index][1],
            # From the sender's own address, so the garbage meets the parsers rather than the
            # source latch (which a foreign source port would hit).
            items[index][2],
            items[index][3],
            rng.randbytes(rng.randint(0, 1300)),
        )
        for index in rng.sample(range(len(items)), 60)
    ]
    capture = write_capture(tmp_path / "noisy.pcap", sorted(items + garbage, key=lambda i: i[0]))
    output = tmp_path / "out.webm"
    done = cli("convert", capture, "--sdp", SDP, "-o", output)
    assert done.returncode == 0, done.stderr
    streams = json.loads(done.stdout)["streams"]
    # Random bytes that happen to parse as RTP carry another SSRC or payload type; all of the
    # garbage ends up in exactly one counter, and the recording is untouched.
    dropped = sum(
        s["malformed_packets"]
        + s["other_ssrcs"]
        + s["other_payload_types"]
        + s["rtcp_packets"]
        + s["foreign_packets"]
        for s in streams
    )
    assert dropped == len(garbage)
    assert sum(sum(s["errors"].values()) for s in streams if "errors" in s) == sum(
        s["malformed_packets"] for s in streams
    )
    assert framemd5(output, "video")[0] == source_md5("video")
    assert decode_errors(output) == ""


def test_unsupported_codec(tmp_path: Path) -> None:
    sdp = tmp_path / "h266.sdp"
    sdp.write_text(H266_SDP)
    output = tmp_path / "out.mp4"
    line = _fails_in_one_line(cli("convert", PCAP, "--sdp", sdp, "-o", output), output)
    assert "codec H266 is not supported" in line


def test_no_stream_on_the_sdp_ports(tmp_path: Path) -> None:
    sdp = tmp_path / "elsewhere.sdp"
    sdp.write_text(SDP.read_text().replace("5004", "6004").replace("5006", "6006"))
    output = tmp_path / "out.webm"
    line = _fails_in_one_line(cli("convert", PCAP, "--sdp", sdp, "-o", output), output)
    assert "no RTP stream in the capture for port(s) 6004, 6006" in line


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing-dir/out.webm", "No such file or directory"),
        ("out.avi", "use a .webm or .mp4 name or --format"),
        (".", "Is a directory"),
    ],
)
def test_unwritable_or_unknown_output(tmp_path: Path, name: str, message: str) -> None:
    target = tmp_path / name if name != "." else tmp_path / "a-directory.webm"
    if name == ".":
        target.mkdir()
    line = _fails_in_one_line(cli("convert", PCAP, "--sdp", SDP, "-o", target))
    assert message in line


def test_missing_inputs(tmp_path: Path) -> None:
    output = tmp_path / "out.webm"
    line = _fails_in_one_line(cli("convert", tmp_path / "nope.pcap", "--sdp", SDP, "-o", output))
    assert "cannot read capture" in line
    line = _fails_in_one_line(cli("convert", PCAP, "--sdp", tmp_path / "nope.sdp", "-o", output))
    assert "cannot read SDP" in line


def test_sdp_without_media(tmp_path: Path) -> None:
    sdp = tmp_path / "empty.sdp"
    sdp.write_text("v=0\r\ns=-\r\n")
    line = _fails_in_one_line(cli("convert", PCAP, "--sdp", sdp, "-o", tmp_path / "o.webm"))
    assert "SDP has no m= line" in line


def test_format_flag_overrides_the_name(tmp_path: Path) -> None:
    output = tmp_path / "recording.bin"
    done = cli("convert", PCAP, "--sdp", SDP, "-o", output, "--format", "mp4")
    assert done.returncode == 0, done.stderr
    assert output.read_bytes()[4:8] == b"ftyp"


def test_usage_errors_exit_2() -> None:
    done = cli("convert")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_console_script_is_declared() -> None:
    scripts = entry_points(group="console_scripts")
    assert scripts["rtp-recorder"].value == "recorder.cli:main"


def test_convert_does_not_import_the_service(tmp_path: Path) -> None:
    # Start-up is most of a short conversion's CPU: `convert` must not pay for `serve`, nor
    # for codecs and containers it does not use (here VP8 + Opus into WebM).
    output = tmp_path / "out.webm"
    unused = (
        "recorder.config", "recorder.service", "recorder.store", "fastapi", "httpx", "dpkt",
        "recorder.codecs.h264", "recorder.codecs.h265", "recorder.codecs.vp9",
        "recorder.codecs.av1", "recorder.mux.mp4",
    )  # fmt: skip
    code = (
        "import sys; from recorder.cli import main; "
        f"status = main(['convert', {str(PCAP)!r}, '--sdp', {str(SDP)!r}, '-o', {str(output)!r}]); "
        f"heavy = sorted(m for m in {unused!r} if m in sys.modules); "
        "print(status, heavy, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip() == "0 []"
