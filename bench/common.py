"""What every part of the benchmark shares: running a child and charging its CPU, the machine."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def recorder_command() -> list[str]:
    """`rtp-recorder` as installed next to this interpreter (not a pyenv shim, whose shell
    start-up would be charged to the recorder), else `python -m recorder.cli`."""
    script = Path(sys.executable).parent / "rtp-recorder"
    if script.exists():
        return [str(script)]
    found = shutil.which("rtp-recorder")
    if found and "shims" not in found:
        return [found]
    return [sys.executable, "-m", "recorder.cli"]


@dataclass(slots=True)
class ChildRun:
    cpu: float  # user + sys seconds of the child (and any children it waited for)
    user: float
    sys: float
    wall: float
    max_rss_kb: int
    returncode: int
    stdout: str
    stderr: str


def run_child(cmd: Sequence[str], cwd: Path, timeout: float = 3600.0) -> ChildRun:
    """Run `cmd` and return its own rusage (os.wait4), not that of anything else we started."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=out, stderr=err)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            cpu=usage.ru_utime + usage.ru_stime,
            user=usage.ru_utime,
            sys=usage.ru_stime,
            wall=wall,
            max_rss_kb=usage.ru_maxrss,
            returncode=proc.returncode,
            stdout=out.read(),
            stderr=err.read(),
        )


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def process_cpu(pid: int) -> float:
    """user + sys seconds of a running process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss_kb(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE // 1024


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it (serve and its worker processes)."""
    found = [pid]
    for parent in found:
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                found += [int(child) for child in task.read_text().split()]
            except OSError:
                continue  # the thread ended meanwhile
    return found


def tree_usage(pid: int) -> dict[int, tuple[float, int]]:
    """(CPU seconds, RSS KiB) of each live process of the tree; ended ones are left out."""
    usage = {}
    for member in process_tree(pid):
        try:
            usage[member] = (process_cpu(member), process_rss_kb(member))
        except OSError:
            continue
    return usage


def busy_cpu_seconds() -> float:
    """CPU seconds spent not idle by the whole machine (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def udp_counters() -> dict[str, int]:
    """The kernel's Udp line of /proc/net/snmp (InDatagrams, RcvbufErrors, ...)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = [line for line in lines if line[0] == "Udp:"][:2]
    return {name: int(value) for name, value in zip(names[1:], values[1:], strict=True)}


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    except OSError:
        return "missing"
    return out.splitlines()[0].strip() if out else "unknown"


def machine() -> dict[str, object]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor() or "unknown",
    )
    meminfo = Path("/proc/meminfo").read_text().split()
    memory_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024 / 1024
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "recorder", "api"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "gstreamer": "GStreamer " + _version(["gst-launch-1.0", "--version"]).split()[-1],
        "ffmpeg": "FFmpeg " + _version(["ffmpeg", "-version"]).split()[2],
        "commit": commit,
        "recorder_files_modified": len([line for line in dirty if line.strip()]),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])
