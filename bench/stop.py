"""Part 3: stop request -> the archive file and its JSON exist in archive_dir.

For each length (10 s, 10 min, 1 h of media; 10 s and 30 s with --quick) a fresh recording with
one VP8 + Opus connection is started through the API (`POST /v1/recordings`) and fed the
captures' packets, looped with continued sequence numbers and RTP timestamps when longer than
the capture, faster than real time: packets go out back to back, and whenever `WINDOW` of them
are not yet counted by the recorder (`GET /v1/recordings/{id}`, its per-stream `packets`) the
feeder waits, so the receive buffers never overflow. Then `POST .../stop` is sent and a thread
watches `archive_dir/<recording_id>/` for `archive-<connection>.webm` and `.json` (every
0.5 ms); the store's `archive.available` event time is read from the state database after.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import median, udp_counters
from bench.inputs import Capture
from bench.replay import VIDEO, Flow, connection
from bench.service import Service, media_ports, stream_counters

TARGET_MS = 200.0
WINDOW = 800  # packets in flight (sent, not yet counted by the recorder)
LENGTHS = ((10, "10 s"), (600, "10 min"), (3600, "1 h"))
QUICK_LENGTHS = ((10, "10 s"), (30, "30 s"))
PORT_RANGE = (17000, 17999)


class FileWatch(threading.Thread):
    def __init__(self, paths: list[Path]) -> None:
        super().__init__(daemon=True)
        self.paths = paths
        self.seen_at: float | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            if all(path.exists() for path in self.paths):
                self.seen_at = time.time()
                return
            time.sleep(0.0005)


def feed(
    service: Service, recording_id: str, video: Flow, audio: Flow, seconds: float
) -> dict[str, Any]:
    [(_, video_port, audio_port)] = media_ports(service.get(recording_id))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    addresses = {VIDEO: ("127.0.0.1", video_port), 1: ("127.0.0.1", audio_port)}
    sendto = sock.sendto
    sent = recorded = polls = 0
    started = time.perf_counter()
    for _, kind, packet in connection(video, audio, seconds):
        sendto(packet, addresses[kind])
        sent += 1
        if sent - recorded >= WINDOW:
            while sent - recorded > WINDOW // 2:
                recorded = stream_counters(service.get(recording_id))["packets"]
                polls += 1
                if sent - recorded > WINDOW // 2:
                    time.sleep(0.002)
    feed_s = time.perf_counter() - started
    deadline = time.monotonic() + 30
    counters = stream_counters(service.get(recording_id))
    while counters["packets"] < sent and time.monotonic() < deadline:
        time.sleep(0.05)
        counters = stream_counters(service.get(recording_id))
    sock.close()
    return {"sent": sent, "feed_s": round(feed_s, 2), "polls": polls, **counters}


def one(
    service: Service,
    video: Flow,
    audio: Flow,
    seconds: int,
    label: str,
    run: int,
    sync_first: bool = False,
) -> dict[str, Any]:
    """One recording fed `seconds` of media, then stopped. With `sync_first`, the page cache
    is written back (os.sync) before the stop request: what is left is the recorder's own
    finalization, without the fsync of data the kernel had not written yet."""
    cid = f"c{run}"
    recording = service.create(f"stop-{seconds}-{run}", [cid])
    recording_id = recording["recording_id"]
    kernel_before = udp_counters()["RcvbufErrors"]
    fed = feed(service, recording_id, video, audio, seconds)
    drops = udp_counters()["RcvbufErrors"] - kernel_before
    directory = service.archive_dir / recording_id
    watch = FileWatch([directory / f"archive-{cid}.webm", directory / f"archive-{cid}.json"])
    watch.start()
    if sync_first:
        os.sync()
    time.sleep(0.2)  # the watcher is polling, the recorder idle
    requested = time.time()
    service.stop(recording_id)
    answered = time.time()
    watch.join(timeout=60)
    watch.done.set()
    events = service.event_times(recording_id, "archive.available")
    archive = directory / f"archive-{cid}.webm"
    size = archive.stat().st_size
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", archive],
        capture_output=True,
        text=True,
        check=False,
    )
    view = service.get(recording_id)
    for path in directory.glob("*.webm"):
        path.unlink()  # keep the disk free; the numbers are what matter
    return {
        "label": label,
        "seconds": seconds,
        **fed,
        "kernel_drops": drops,
        "file_mb": round(size / 1e6, 1),
        "file_duration_s": float(probe.stdout.strip() or "nan"),
        "state": view["state"],
        "latency_ms": None if watch.seen_at is None else (watch.seen_at - requested) * 1000,
        "event_ms": (events[0] - requested) * 1000 if events else None,
        "response_ms": (answered - requested) * 1000,
    }


def run(
    captures: dict[str, Capture],
    quick: bool,
    repeat: int = 3,
    log: Any = print,
    workers: str | None = None,
) -> dict[str, Any]:
    video = Flow.load(captures["vp8"], VIDEO)
    audio = Flow.load(captures["opus"], 1)
    rows = []
    lengths = QUICK_LENGTHS if quick else LENGTHS
    with Service("stop", PORT_RANGE, workers) as service:
        for seconds, label in lengths:
            runs = [one(service, video, audio, seconds, label, n) for n in range(repeat)]
            for item in runs:
                log(
                    f"  stop {label}: {item['sent']} packets fed in {item['feed_s']} s, "
                    f"lost {item['sent'] - item['packets'] + item['lost']}, "
                    f"files after {item['latency_ms']:.1f} ms, event after "
                    f"{item['event_ms']:.1f} ms, response {item['response_ms']:.1f} ms"
                )
            synced = one(service, video, audio, seconds, label, repeat, sync_first=True)
            log(f"  stop {label} after os.sync(): files after {synced['latency_ms']:.1f} ms")
            latency = median([item["latency_ms"] for item in runs])
            rows.append(
                {
                    "label": label,
                    "media_s": seconds,
                    "packets_sent": runs[0]["sent"],
                    "feed_s": median([item["feed_s"] for item in runs]),
                    "feed_packets_per_s": round(
                        runs[0]["sent"] / median([item["feed_s"] for item in runs])
                    ),
                    "lost": max(
                        item["sent"] - item["packets"] + item["lost"] + item["kernel_drops"]
                        for item in runs
                    ),
                    "file_mb": runs[0]["file_mb"],
                    "latency_ms_median": round(latency, 1),
                    "latency_ms_runs": [round(item["latency_ms"], 1) for item in runs],
                    "event_ms_median": round(median([item["event_ms"] for item in runs]), 1),
                    "response_ms_median": round(median([item["response_ms"] for item in runs]), 1),
                    "latency_ms_after_sync": round(synced["latency_ms"], 1),
                    "file_duration_s": runs[0]["file_duration_s"],
                    "meets_target": latency <= TARGET_MS,
                    "missed_by_ms": None if latency <= TARGET_MS else round(latency - TARGET_MS),
                    "runs": [*runs, {**synced, "sync_first": True}],
                }
            )
        service.remove_files()
    return {
        "feeding": (
            f"one VP8+Opus connection per recording, packets back to back with at most {WINDOW} "
            "not yet counted by the recorder (polled through GET /v1/recordings/{id}); loops "
            "of the 10-minute captures continue sequence numbers and RTP timestamps"
        ),
        "target_ms": TARGET_MS,
        "rows": rows,
    }
