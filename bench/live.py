"""Part 2: N concurrent VP8 + Opus connections sent in real time into `rtp-recorder serve`.

Per step, a fresh `serve` is started and its recordings created through the API (at most 100
connections per `POST /v1/recordings`, the API's limit). The captures are then replayed to
every connection in real time: one sending socket per medium, a distinct SSRC per connection and
medium written into each packet, connections spread over 20 start offsets (0-1.9 s) so
keyframes do not all coincide. RTCP the recorder sends back is read, counted and dropped. The
load generator is bench/sender.c (compiled here with gcc, sendmmsg batches) so that it takes
little of the 2 cores the recorder is measured on; without gcc, the same loop in Python
(one sendto per packet, most of a core at 500 connections) in this process.

Measured over the sending window: packets sent and counted by the recorder (per-stream
`packets` and `lost` of `GET /v1/recordings/{id}`), drops of the recorder's sockets (the drops
column of /proc/net/udp for its ports, which also shows in /proc/net/snmp `RcvbufErrors`; that
system-wide delta is given too), recorder CPU (/proc/<pid>/stat) and RSS (/proc/<pid>/statm)
before the recordings exist and while they run. After the send, the recorder's counters are
read until two reads 0.5 s apart agree (what it had queued is worked through). The steps stop
at the first N that is not clean (loss, a backlog left 2 s after the send, or a sender more
than 0.25 s behind schedule), then the largest clean N is bisected down to 10 connections.

`soak` is one such step held for 10 minutes, for RSS over time.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    busy_cpu_seconds,
    median,
    tree_usage,
    udp_counters,
)
from bench.inputs import CACHE, Capture
from bench.replay import AUDIO, VIDEO, Flow, connection
from bench.service import Service, media_ports, stream_counters

STEPS = [50, 100, 200, 500, 1000]
QUICK_STEPS = [20, 50]
GROUPS = 20
GROUP_SPACING = 0.1  # seconds between the start offsets of the groups
PER_RECORDING = 100
PORT_RANGE = (10000, 16999)
TARGET_CONNECTIONS = 500
SENDER_PORTS = (18000, 19998)
DRAIN_LIMIT = 30.0  # seconds the recorder gets to work through its queues after the send
# A recorder still working through a backlog this long after the last packet did not keep up
# (its 4 MiB socket buffers hold ~8 s of a connection's video): no loss yet is not clean.
BACKLOG_LIMIT = 2.0
BISECT_STEP = 10  # the search for the largest clean N stops at this resolution
SOAK_SECONDS = 600.0
LATE_LIMIT = 0.25  # seconds behind schedule the sender may fall before a step is void
SENDER_SOURCE = Path(__file__).resolve().parent / "sender.c"
# The records of the schedule file bench/sender.c reads (the format is described there).
SCHEDULE_HEAD = struct.Struct("<8sIIII")
SCHEDULE_CONNECTION = struct.Struct("<I4s4sHH")
SCHEDULE_EVENT = struct.Struct("<QHBB")


def socket_drops(first: int, last: int) -> int:
    """Sum of the drops column of /proc/net/udp over sockets bound to ports first..last."""
    total = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        port = int(fields[1].split(":")[1], 16)
        if first <= port <= last:
            total += int(fields[-1])
    return total


def bind_pair() -> tuple[socket.socket, socket.socket]:
    """Non-blocking UDP sockets on 127.0.0.1 ports P (even) and P + 1, P in SENDER_PORTS."""
    for _ in range(200):
        port = random.randrange(*SENDER_PORTS, 2)
        pair = []
        try:
            for candidate in (port, port + 1):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                pair.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                sock.bind(("127.0.0.1", candidate))
                sock.setblocking(False)
        except OSError:
            for sock in pair:
                sock.close()
            continue
        return pair[0], pair[1]
    raise RuntimeError("no free sender port pair")


class Sender:
    """Real-time replay of one connection's timeline to many connections: the sockets, SSRCs
    and groups both load generators share. `run(sample, sample_every)` sends everything on
    schedule, calling `sample()` about every `sample_every` seconds, and returns the wall time
    taken; then `sent`, `send_errors`, `max_late`, `feedback` and `user`, `sys` (the sender's
    own CPU seconds) hold its figures."""

    name = ""

    def __init__(
        self, ports: list[tuple[str, int, int]], events: list[tuple[float, int, bytes]]
    ) -> None:
        self.events = events
        self.socks: dict[int, socket.socket] = {}
        self.rtcp_socks: list[socket.socket] = []
        for kind in (VIDEO, AUDIO):
            # The recorder sends RTCP to the source port + 1: both are ours, and read.
            rtp, rtcp = bind_pair()
            self.socks[kind] = rtp
            self.rtcp_socks += [rtp, rtcp]
        used: set[int] = set()
        self.groups: list[list[tuple[bytes, bytes, tuple[str, int], tuple[str, int]]]] = [
            [] for _ in range(GROUPS)
        ]
        for number, (_, video_port, audio_port) in enumerate(ports):
            ssrcs = []
            for _ in range(2):
                ssrc = random.getrandbits(32)
                while ssrc in used:
                    ssrc = random.getrandbits(32)
                used.add(ssrc)
                ssrcs.append(struct.pack("!I", ssrc))
            self.groups[number % GROUPS].append(
                (ssrcs[0], ssrcs[1], ("127.0.0.1", video_port), ("127.0.0.1", audio_port))
            )
        self.sent = 0
        self.send_errors = 0
        self.max_late = 0.0
        self.feedback = 0
        self.user = 0.0
        self.sys = 0.0

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    def run(self, sample: Any, sample_every: float = 1.0) -> float:
        raise NotImplementedError

    def _drain(self) -> None:
        for sock in self.rtcp_socks:
            while True:
                try:
                    sock.recv(2048)
                except BlockingIOError:
                    break
                self.feedback += 1

    def close(self) -> None:
        self._drain()
        for sock in self.rtcp_socks:
            sock.close()


class PythonSender(Sender):
    """The sender as a Python loop, one `sendto` per packet: the fallback without gcc. At a
    few hundred connections it needs most of a core itself."""

    name = "python"

    def run(self, sample: Any, sample_every: float = 1.0) -> float:
        before = resource.getrusage(resource.RUSAGE_SELF)
        wall = self._run(sample, sample_every)
        after = resource.getrusage(resource.RUSAGE_SELF)
        # Includes the sample() calls made meanwhile, as the figures before bench/sender.c did.
        self.user = after.ru_utime - before.ru_utime
        self.sys = after.ru_stime - before.ru_stime
        return wall

    def _run(self, sample: Any, sample_every: float) -> float:
        events = self.events
        count = len(events)
        offsets = [g * GROUP_SPACING for g in range(GROUPS)]
        pointers = [0] * GROUPS
        video_send = self.socks[VIDEO].sendto
        audio_send = self.socks[AUDIO].sendto
        start = time.perf_counter() + 0.05
        next_sample = sample_every
        while True:
            now = time.perf_counter() - start
            pending = False
            upcoming = float("inf")
            for group in range(GROUPS):
                members = self.groups[group]
                pointer = pointers[group]
                offset = offsets[group]
                while pointer < count:
                    due = events[pointer][0] + offset
                    if due > now:
                        upcoming = min(upcoming, due)
                        break
                    late = now - due
                    if late > self.max_late:
                        self.max_late = late
                    _, kind, packet = events[pointer]
                    head, tail = packet[:8], packet[12:]
                    for video_ssrc, audio_ssrc, video_to, audio_to in members:
                        try:
                            if kind == VIDEO:
                                video_send(head + video_ssrc + tail, video_to)
                            else:
                                audio_send(head + audio_ssrc + tail, audio_to)
                        except (BlockingIOError, OSError):
                            self.send_errors += 1
                            continue
                        self.sent += 1
                    pointer += 1
                pointers[group] = pointer
                if pointer < count:
                    pending = True
            if not pending:
                return time.perf_counter() - start
            if now >= next_sample:
                next_sample += sample_every
                self._drain()
                sample()
            wait = upcoming - (time.perf_counter() - start)
            if wait > 0:
                time.sleep(min(wait, 0.005))


def compile_sender() -> tuple[Path | None, str]:
    """bench/sender.c built with gcc into bench/.cache/ (once per version of the source):
    (binary, "") or (None, why not)."""
    source = SENDER_SOURCE.read_bytes()
    binary = CACHE / "sender" / f"sender-{hashlib.sha1(source).hexdigest()[:12]}"
    if binary.exists():
        return binary, ""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None, "gcc not found"
    binary.parent.mkdir(parents=True, exist_ok=True)
    building = binary.with_name(f"{binary.name}.{os.getpid()}")
    done = subprocess.run(
        [gcc, "-O2", "-std=c11", "-Wall", "-Wextra", "-o", str(building), str(SENDER_SOURCE)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        building.unlink(missing_ok=True)
        lines = done.stderr.strip().splitlines() or ["no output"]
        error = next((line for line in lines if "error" in line), lines[0])
        return None, f"gcc failed ({done.returncode}): {error}"
    building.replace(binary)  # atomic: a concurrent run sees the whole binary or none
    return binary, ""


class CSender(Sender):
    """The same replay by bench/sender.c: this process writes the schedule (the timeline's
    packets, each connection's SSRCs, group and ports, the groups' offsets) to a file and hands
    the sockets down; the child sends with sendmmsg and reports its figures as JSON. Its CPU
    comes from os.wait4, the child's own rusage."""

    name = "c"

    def __init__(
        self,
        ports: list[tuple[str, int, int]],
        events: list[tuple[float, int, bytes]],
        binary: Path,
    ) -> None:
        super().__init__(ports, events)
        self.binary = binary
        self.report: dict[str, Any] = {}
        # Written now, before the step's measurements start. The directory goes with close()
        # (or, should the step fail, when this object is collected).
        CACHE.mkdir(parents=True, exist_ok=True)
        self.scratch = tempfile.TemporaryDirectory(dir=CACHE, prefix="sender-")
        self.schedule = Path(self.scratch.name) / "schedule.bin"
        self._write_schedule(self.schedule)

    def _write_schedule(self, path: Path) -> None:
        """The file bench/sender.c reads (its format is described there). Connections are
        written group by group in each group's order, the order the Python loop sends in."""
        connections = [
            (group, member) for group, members in enumerate(self.groups) for member in members
        ]
        parts = [
            SCHEDULE_HEAD.pack(b"RTPSEND1", GROUPS, len(connections), len(self.events), 0),
            *(struct.pack("<Q", round(g * GROUP_SPACING * 1e9)) for g in range(GROUPS)),
        ]
        for group, (video_ssrc, audio_ssrc, video_to, audio_to) in connections:
            parts.append(
                SCHEDULE_CONNECTION.pack(group, video_ssrc, audio_ssrc, video_to[1], audio_to[1])
            )
        for due, kind, packet in self.events:
            parts.append(SCHEDULE_EVENT.pack(round(due * 1e9), len(packet), kind, 0))
            parts.append(packet)
        path.write_bytes(b"".join(parts))

    def run(self, sample: Any, sample_every: float = 1.0) -> float:
        fds = [sock.fileno() for sock in self.rtcp_socks]
        media = [self.socks[VIDEO].fileno(), self.socks[AUDIO].fileno()]
        cmd = [str(self.binary), str(self.schedule), *map(str, media), *map(str, fds)]
        out = Path(self.scratch.name) / "out"
        err = Path(self.scratch.name) / "err"
        with out.open("w") as stdout, err.open("w") as stderr:
            proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, pass_fds=fds)
        try:
            status, usage = self._wait(proc, sample, sample_every)
        finally:
            if proc.returncode is None:  # interrupted: the child does not outlive us
                proc.kill()
                os.waitpid(proc.pid, 0)
                proc.returncode = -9
        if status != 0:
            raise RuntimeError(f"{self.binary.name} exited {status}: {err.read_text()}")
        self.report = json.loads(out.read_text())
        self.sent = self.report["sent"]
        self.send_errors = self.report["send_errors"]
        self.max_late = self.report["max_late"]
        self.feedback += self.report["feedback"]
        self.user = usage.ru_utime
        self.sys = usage.ru_stime
        return float(self.report["wall"])

    @staticmethod
    def _wait(
        proc: subprocess.Popen[bytes], sample: Any, sample_every: float
    ) -> tuple[int, resource.struct_rusage]:
        """Waits for the child, calling sample() about every sample_every seconds meanwhile:
        its exit status and its own rusage."""
        next_sample = time.perf_counter() + sample_every
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                return proc.returncode, usage
            now = time.perf_counter()
            if now >= next_sample:
                next_sample += sample_every
                sample()
            time.sleep(min(0.05, max(0.0, next_sample - time.perf_counter())))

    def close(self) -> None:
        super().close()
        self.scratch.cleanup()


def make_sender(
    ports: list[tuple[str, int, int]], events: list[tuple[float, int, bytes]], kind: str
) -> Sender:
    """kind "c": bench/sender.c (compiled beforehand by choose_sender), "python": the loop."""
    if kind == "c":
        binary, _ = compile_sender()
        assert binary is not None
        return CSender(ports, events, binary)
    return PythonSender(ports, events)


def choose_sender(wanted: str = "auto") -> tuple[str, str]:
    """(the sender to use, a note): "c" unless asked for "python" or gcc cannot build it."""
    if wanted == "python":
        return "python", "Python sender as asked (--sender python)"
    binary, why = compile_sender()
    if binary is not None:
        return "c", f"built with gcc -O2 as bench/.cache/sender/{binary.name}"
    if wanted == "c":
        raise RuntimeError(f"--sender c: bench/sender.c could not be built: {why}")
    return "python", f"fallback to the Python sender: bench/sender.c could not be built: {why}"


def recorded_totals(service: Service, recordings: list[dict]) -> dict[str, int]:
    totals = {"packets": 0, "lost": 0, "frames": 0, "dropped_frames": 0}
    for recording in recordings:
        counters = stream_counters(service.get(recording["recording_id"]))
        for name in totals:
            totals[name] += counters[name]
    return totals


def _tree_rss_kb(pid: int) -> int:
    return sum(rss for _, rss in tree_usage(pid).values())


def step(
    connections: int,
    events: list[tuple[float, int, bytes]],
    per_connection: int,
    workers: str | None = None,
    sender_kind: str = "python",
) -> dict[str, Any]:
    with Service(f"live-{connections}", PORT_RANGE, workers) as service:
        pid = service.pid
        # serve and its worker processes: CPU and memory are the whole tree's.
        rss_idle = _tree_rss_kb(pid)
        created = time.perf_counter()
        recordings = []
        for first in range(0, connections, PER_RECORDING):
            ids = [f"c{n}" for n in range(first, min(first + PER_RECORDING, connections))]
            recordings.append(service.create(f"live-{connections}-{first}", ids))
        create_s = time.perf_counter() - created
        ports = [item for recording in recordings for item in media_ports(recording)]
        rss_ready = _tree_rss_kb(pid)
        sender = make_sender(ports, events, sender_kind)
        samples: list[tuple[float, float, int]] = []
        per_process: list[dict[int, tuple[float, int]]] = []

        def sample() -> None:
            usage = tree_usage(pid)
            per_process.append(usage)
            cpu = sum(seconds for seconds, _ in usage.values())
            rss = sum(kb for _, kb in usage.values())
            samples.append((time.perf_counter(), cpu, rss))

        kernel_before = udp_counters()
        drops_before = socket_drops(*PORT_RANGE)
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        busy_before = busy_cpu_seconds()
        sample()
        wall = sender.run(sample)
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        busy = busy_cpu_seconds() - busy_before
        sample()
        # The recorder works through what is queued: counted until two reads agree.
        drained = time.perf_counter()
        totals = recorded_totals(service, recordings)
        while time.perf_counter() - drained < DRAIN_LIMIT:
            time.sleep(0.5)
            again = recorded_totals(service, recordings)
            if again == totals:
                break
            totals = again
        drain_s = time.perf_counter() - drained
        sender.close()
        drops = socket_drops(*PORT_RANGE) - drops_before
        kernel_after = udp_counters()
        stopped = time.perf_counter()
        for recording in recordings:
            service.stop(recording["recording_id"])
        stop_s = time.perf_counter() - stopped
        service.remove_files()
    start_t, start_cpu, _ = samples[0]
    end_t, end_cpu, _ = samples[-1]
    # CPU of each process over the run, the API process (serve itself) first.
    first, last = per_process[0], per_process[-1]
    process_cpu_pct = [
        round((last[member][0] - first[member][0]) / (end_t - start_t) * 100, 1)
        for member in sorted(set(first) & set(last), key=lambda m: (m != pid, m))
    ]
    rss = [kb for _, _, kb in samples]
    warm_up = min(60.0, (end_t - start_t) / 4)
    warm = next(i for i, (t, _, _) in enumerate(samples) if t - start_t >= warm_up)
    cpu = end_cpu - start_cpu
    # This process: the sender itself if it is the Python one, else its sample() calls.
    self_cpu = (self_after.ru_utime + self_after.ru_stime) - (
        self_before.ru_utime + self_before.ru_stime
    )
    sender_cpu = sender.cpu
    ours = self_cpu + (sender_cpu if isinstance(sender, CSender) else 0.0)
    expected = per_connection * connections
    rcvbuf = kernel_after["RcvbufErrors"] - kernel_before["RcvbufErrors"]
    recorded = totals["packets"]
    zero_loss = (
        sender.sent == expected and recorded == expected and drops == 0 and totals["lost"] == 0
    )
    kept_up = drain_s <= BACKLOG_LIMIT
    other_cpu = max(0.0, busy - cpu - ours)
    return {
        "connections": connections,
        "seconds": round(wall, 1),
        "packets_per_s": round(expected / wall),
        "sent": sender.sent,
        "expected": expected,
        "send_errors": sender.send_errors,
        "recorded": recorded,
        "socket_drops": drops,
        "rcvbuf_errors": rcvbuf,
        "recorder_lost": totals["lost"],
        "dropped_frames": totals["dropped_frames"],
        "recorder_cpu_pct": round(cpu / (end_t - start_t) * 100, 1),
        "recorder_processes": len(last),
        "process_cpu_pct": process_cpu_pct,
        "recorder_us_per_packet": round(cpu / max(recorded, 1) * 1e6, 1),
        "rss_mb": round(max(rss) / 1024, 1),
        "rss_idle_mb": round(rss_idle / 1024, 1),
        "rss_ready_mb": round(rss_ready / 1024, 1),
        "rss_mb_per_connection": round((max(rss) - rss_idle) / 1024 / connections, 3),
        # From a quarter of the run (at most a minute in) to the last sample taken while
        # sending: after the warm-up. The sample after the send (the drain's status polling
        # through the API) is reported on its own.
        "rss_growth_mb": round((rss[-2 if len(rss) > warm + 1 else -1] - rss[warm]) / 1024, 1),
        "rss_after_send_mb": round(rss[-1] / 1024, 1),
        "rss_growth_from_s": round(samples[warm][0] - start_t),
        "sender": sender.name,
        "sender_cpu_pct": round(sender_cpu / wall * 100, 1),
        "sender_cpu_user_s": round(sender.user, 2),
        "sender_cpu_sys_s": round(sender.sys, 2),
        "sender_us_per_packet": round(sender_cpu / max(sender.sent, 1) * 1e6, 2),
        "sender_max_late_s": round(sender.max_late, 3),
        "sender_kept_up": sender.max_late <= LATE_LIMIT,
        "other_cpu_pct": round(other_cpu / wall * 100, 1),
        "recorder_kept_up": kept_up,
        "create_s": round(create_s, 2),
        "drain_s": round(drain_s, 1),
        "rss_series_mb": [
            [round(t - start_t), round(kb / 1024, 1)]
            for t, _, kb in [*samples[: -1 : max(1, len(samples) // 20)], samples[-1]]
        ],
        "stop_all_s": round(stop_s, 2),
        "feedback_packets": sender.feedback,
        "zero_loss": zero_loss,
        "clean": zero_loss and kept_up and sender.max_late <= LATE_LIMIT,
    }


def run(
    captures: dict[str, Capture],
    steps: list[int],
    seconds: float,
    log: Any = print,
    workers: str | None = None,
    sender: str = "auto",
) -> dict[str, Any]:
    """`sender`: "auto" (bench/sender.c if gcc builds it, else the Python loop), "c" or
    "python"."""
    sender_kind, sender_note = choose_sender(sender)
    log(f"  live: sender {sender_kind}: {sender_note}")
    video = Flow.load(captures["vp8"], VIDEO)
    audio = Flow.load(captures["opus"], AUDIO)
    events = list(connection(video, audio, seconds))
    per_connection = len(events)
    rows: list[dict[str, Any]] = []
    plan = list(steps)
    tried: set[int] = set()
    while plan:
        n = plan.pop(0)
        tried.add(n)
        log(f"  live N={n}: {seconds:g} s, {per_connection} packets per connection ...")
        row = step(n, events, per_connection, workers, sender_kind)
        rows.append(row)
        log(
            f"  live N={n}: sent {row['sent']}, recorded {row['recorded']}, socket drops "
            f"{row['socket_drops']}, lost {row['recorder_lost']}, recorder CPU "
            f"{row['recorder_cpu_pct']}% {row['process_cpu_pct']} "
            f"({row['recorder_us_per_packet']} us/pkt), RSS "
            f"{row['rss_mb']} MB, sender ({row['sender']}) CPU {row['sender_cpu_pct']}% "
            f"({row['sender_us_per_packet']} us/pkt), late {row['sender_max_late_s']} s, backlog "
            f"{row['drain_s']} s, other CPU {row['other_cpu_pct']}%"
        )
        clean = [r["connections"] for r in rows if r["clean"]]
        lossy = [r["connections"] for r in rows if r["connections"] not in clean]
        if lossy:
            # Past the limit: the larger steps are skipped; bisect between the largest clean
            # N below the smallest lossy one and that one.
            high = min(lossy)
            low = max((c for c in clean if c < high), default=0)
            middle = (low + high) // 2
            plan = [middle] if low and high - low > BISECT_STEP and middle not in tried else []
    clean = [r["connections"] for r in rows if r["clean"]]
    largest = max(clean) if clean else 0
    rows.sort(key=lambda r: r["connections"])
    if sender_kind == "c":
        generator = (
            "by a compiled load generator (`bench/sender.c`: the packets of a schedule file "
            "written by Python, `sendmmsg` batches, child of the benchmark process)"
        )
    else:
        generator = "by a Python loop (one `sendto` per packet) in the benchmark process"
    return {
        "method": (
            f"Each step: a fresh `serve`; N VP8+Opus connections ({per_connection} packets "
            f"each over {seconds:g} s, ~{per_connection / seconds:.0f} packets/s) sent in real "
            f"time {generator} on the same 2 cores (its loopback sends are charged to it: "
            "sender CPU, the sender process's own user + sys time). Zero loss: every packet "
            "sent was counted by the recorder, no socket drops, no loss reported. Clean: zero "
            "loss, the recorder done with its backlog within "
            f"{BACKLOG_LIMIT:g} s of the last packet, the sender never more than "
            f"{LATE_LIMIT:g} s behind. Other CPU: the machine's busy time not spent by the "
            "recorder, the sender or the benchmark process (other processes on this shared "
            "machine)."
        ),
        "seconds_per_step": seconds,
        "workers": workers or "auto",
        "sender": sender_kind,
        "sender_note": sender_note,
        "packets_per_connection": per_connection,
        "rows": rows,
        "largest_zero_loss": largest,
        "target": TARGET_CONNECTIONS,
        "target_verdict": (
            "met"
            if largest >= TARGET_CONNECTIONS
            else f"missed: {largest} of {TARGET_CONNECTIONS} "
            f"({TARGET_CONNECTIONS / max(largest, 1):.1f}x short)"
        ),
        "median_us_per_packet": median([r["recorder_us_per_packet"] for r in rows]),
    }
