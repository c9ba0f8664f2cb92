"""Part 1: `rtp-recorder convert` against the equivalent GStreamer pipeline, CPU per packet.

For each pair (VP8 -> WebM, H.264 -> fragmented MP4, Opus -> WebM; plus GStreamer's plain
mp4mux as a second reference for H.264) the same pcap is converted `runs` times by each tool,
alternating, and the child's user + sys CPU is read with os.wait4. The same is done on the
first second of the capture (the head pcap) to tell start-up from per-packet cost:

    total    = median CPU of a full run / packets
    marginal = (median CPU of a full run - median CPU of a head run) / (packets - head packets)

The ratio ours / GStreamer is given for both; the issue's target (<= 1.5x, stretch 1.0x) is
judged on the marginal figure, which is what the GStreamer numbers in the issue are.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, ChildRun, median, recorder_command, run_child
from bench.inputs import CACHE, Capture

TARGET_RATIO = 1.5
STRETCH_RATIO = 1.0


@dataclass(frozen=True, slots=True)
class Variant:
    pair: str  # e.g. "VP8 -> WebM"
    tool: str  # "rtp-recorder" or "GStreamer"
    capture: str  # input name
    container: str  # output extension
    mux: str  # GStreamer muxer (empty for ours)

    @property
    def key(self) -> str:
        return f"{self.capture}:{self.tool}:{self.mux or self.container}"


VARIANTS = (
    Variant("VP8 -> WebM", "rtp-recorder", "vp8", "webm", ""),
    Variant("VP8 -> WebM", "GStreamer", "vp8", "webm", "webmmux"),
    Variant("H.264 -> fMP4", "rtp-recorder", "h264", "mp4", ""),
    Variant("H.264 -> fMP4", "GStreamer", "h264", "mp4", "mp4mux fragment-duration=1000"),
    Variant("H.264 -> MP4", "GStreamer", "h264", "mp4", "mp4mux"),
    Variant("Opus -> WebM", "rtp-recorder", "opus", "webm", ""),
    Variant("Opus -> WebM", "GStreamer", "opus", "webm", "webmmux"),
)
# Ours against this GStreamer variant (the same container).
PAIRS = {
    "VP8 -> WebM": ("vp8:rtp-recorder:webm", "vp8:GStreamer:webmmux"),
    "H.264 -> fMP4": ("h264:rtp-recorder:mp4", "h264:GStreamer:mp4mux fragment-duration=1000"),
    "Opus -> WebM": ("opus:rtp-recorder:webm", "opus:GStreamer:webmmux"),
}


def command(variant: Variant, capture: Capture, pcap: str, output: Path) -> list[str]:
    if variant.tool == "rtp-recorder":
        return [*recorder_command(), "convert", pcap, "--sdp", capture.sdp, "-o", str(output)]
    medium = capture.medium
    pipeline = (
        f"filesrc location={pcap} ! pcapparse dst-port={capture.port}"
        f" ! {medium.gst_caps} ! rtpjitterbuffer ! {medium.gst_depay}"
        f" ! {variant.mux} ! filesink location={output}"
    )
    return ["gst-launch-1.0", "-q", *shlex.split(pipeline)]


def check_output(variant: Variant, capture: Capture, result: ChildRun, output: Path) -> str:
    """One line on what came out; raises if the run failed or lost packets."""
    if result.returncode != 0:
        raise RuntimeError(f"{variant.key} failed ({result.returncode}): {result.stderr[-1500:]}")
    if variant.tool == "rtp-recorder":
        summary = json.loads(result.stdout)
        [stream] = summary["streams"]
        if stream["packets"] != capture.packets or stream["lost"]:
            raise RuntimeError(f"{variant.key}: {stream['packets']} packets, {stream['lost']} lost")
    probe = subprocess.run(
        [
            "ffprobe", "-v", "error", "-count_packets", "-show_entries",
            "stream=nb_read_packets:format=duration", "-of", "json", str(output),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        raise RuntimeError(f"{variant.key}: ffprobe cannot read {output}: {probe.stderr[-500:]}")
    info = json.loads(probe.stdout)
    frames = int(info["streams"][0]["nb_read_packets"])
    duration = float(info["format"].get("duration", "nan"))
    return f"{frames} frames of {capture.frames}, {duration:.1f} s, {output.stat().st_size} bytes"


def run(captures: dict[str, Capture], runs: int, log: Any = print) -> dict[str, Any]:
    out_dir = CACHE / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    samples: dict[str, dict[str, list[float]]] = {
        v.key: {"full": [], "head": [], "wall": [], "rss": []} for v in VARIANTS
    }
    checks: dict[str, str] = {}
    for round_number in range(runs):
        # Alternate: every variant once per round, in the same order, head run then full run.
        for variant in VARIANTS:
            capture = captures[variant.capture]
            output = out_dir / f"{variant.capture}.{variant.tool}.{variant.container}"
            for which, pcap in (("head", capture.head_pcap), ("full", capture.pcap)):
                output.unlink(missing_ok=True)
                result = run_child(command(variant, capture, pcap, output), ROOT)
                if which == "full" and round_number == 0:
                    checks[variant.key] = check_output(variant, capture, result, output)
                elif result.returncode != 0:
                    raise RuntimeError(f"{variant.key} failed: {result.stderr[-1500:]}")
                samples[variant.key][which].append(result.cpu)
                if which == "full":
                    samples[variant.key]["wall"].append(result.wall)
                    samples[variant.key]["rss"].append(result.max_rss_kb)
            log(
                f"  round {round_number + 1}/{runs} {variant.pair:14} {variant.tool:12} "
                f"{samples[variant.key]['full'][-1]:.3f} s CPU"
            )
    rows = []
    by_key: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        capture = captures[variant.capture]
        sample = samples[variant.key]
        full, head = median(sample["full"]), median(sample["head"])
        row = {
            "pair": variant.pair,
            "tool": variant.tool,
            "pipeline": shlex.join(
                command(variant, capture, Path(capture.pcap).name, Path(f"out.{variant.container}"))
            )
            .replace(shlex.join(recorder_command()), "rtp-recorder")
            .replace(capture.sdp, Path(capture.sdp).name),
            "packets": capture.packets,
            "runs": runs,
            "cpu_s_median": round(full, 4),
            "cpu_s_runs": [round(value, 4) for value in sample["full"]],
            "startup_cpu_s_median": round(head, 4),
            "wall_s_median": round(median(sample["wall"]), 3),
            "max_rss_mb": round(max(sample["rss"]) / 1024, 1),
            "us_per_packet_total": round(full / capture.packets * 1e6, 2),
            "us_per_packet_marginal": round(
                (full - head) / (capture.packets - capture.head_packets) * 1e6, 2
            ),
            "output": checks.get(variant.key, ""),
        }
        rows.append(row)
        by_key[variant.key] = row
    ratios = []
    for pair, (ours_key, theirs_key) in PAIRS.items():
        ours, theirs = by_key[ours_key], by_key[theirs_key]
        marginal = ours["us_per_packet_marginal"] / theirs["us_per_packet_marginal"]
        total = ours["us_per_packet_total"] / theirs["us_per_packet_total"]
        ratios.append(
            {
                "pair": pair,
                "ours_us": ours["us_per_packet_marginal"],
                "gstreamer_us": theirs["us_per_packet_marginal"],
                "ratio_marginal": round(marginal, 2),
                "ratio_total": round(total, 2),
                "target": TARGET_RATIO,
                "meets_target": marginal <= TARGET_RATIO,
                "missed_by": (
                    None if marginal <= TARGET_RATIO else f"{marginal / TARGET_RATIO:.1f}x over"
                ),
            }
        )
    seconds = next(iter(captures.values())).seconds
    return {
        "inputs": {
            name: {
                "seconds": capture.seconds,
                "packets": capture.packets,
                "frames": capture.frames,
                "kbit_s": capture.bitrate_kbps,
                "head_packets": capture.head_packets,
                "capture": capture.tcpdump,
            }
            for name, capture in captures.items()
        },
        "input_seconds": seconds,
        "rows": rows,
        "ratios": ratios,
    }


def profile(capture: Capture, top: int = 15) -> dict[str, Any]:
    """cProfile of one `convert` run: the functions with the most own time, per packet."""
    import pstats

    out_dir = CACHE / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    stats_file = out_dir / f"{capture.name}.prof"
    container = "mp4" if capture.name == "h264" else "webm"
    output = out_dir / f"{capture.name}.profile.{container}"
    cmd = [
        sys.executable, "-m", "cProfile", "-o", str(stats_file), "-m", "recorder.cli", "convert",
        capture.pcap, "--sdp", capture.sdp, "-o", str(output),
    ]  # fmt: skip
    result = run_child(cmd, ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"profiling failed: {result.stderr[-1500:]}")
    stats = pstats.Stats(str(stats_file))
    entries = []
    total = 0.0
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        total += own
        entries.append((own, cumulative, calls, f"{_short(filename)}:{line}({name})"))
    entries.sort(reverse=True)
    return {
        "capture": capture.name,
        "packets": capture.packets,
        "profiled_cpu_s": round(result.cpu, 3),
        "total_own_s": round(total, 3),
        "top": [
            {
                "function": where,
                "own_us_per_packet": round(own / capture.packets * 1e6, 2),
                "cumulative_us_per_packet": round(cumulative / capture.packets * 1e6, 2),
                "calls_per_packet": round(calls / capture.packets, 2),
                "share": round(own / total, 3),
            }
            for own, cumulative, calls, where in entries[:top]
        ],
    }


def _short(filename: str) -> str:
    for marker in ("/recorder/", "/api/", "/site-packages/", "/lib/python3"):
        if marker in filename:
            return marker.strip("/") + "/" + filename.split(marker, 1)[1]
    return filename
