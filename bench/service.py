"""`rtp-recorder serve` in a scratch directory, driven through its HTTP API."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, recorder_command
from bench.inputs import CACHE

START_TIMEOUT = 30.0


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connection_body(connection_id: str) -> dict[str, Any]:
    return {
        "connection_id": connection_id,
        "audio": {"codec": "OPUS", "payload_type": 111, "channels": 2},
        "video": {"codec": "VP8", "payload_type": 96},
    }


class Service:
    """One `serve` process with its own archive, temporary and state paths."""

    def __init__(self, name: str, port_range: tuple[int, int], workers: str | None = None) -> None:
        self.workdir = CACHE / "serve" / name
        self.port_range = port_range
        self.workers = workers  # --workers; None: the recorder's default (one per core)
        self.api_port = free_tcp_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=120.0)

    @property
    def archive_dir(self) -> Path:
        return self.workdir / "archive"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Service:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)
        first, last = self.port_range
        cmd = [
            *recorder_command(), "serve", "--host", "127.0.0.1", "--port", str(self.api_port),
            "--archive-dir", "archive", "--archive-tmp-dir", "archive_tmp",
            "--state", "state.sqlite3", "--rtp-port-range", f"{first}-{last}",
            "--rtp-listen", "127.0.0.1", "--min-free-space", "0",
        ]  # fmt: skip
        if self.workers is not None:
            cmd += ["--workers", self.workers]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.log = (self.workdir / "serve.log").open("wb")
        self.proc = subprocess.Popen(
            cmd, cwd=self.workdir, stdout=self.log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited: {(self.workdir / 'serve.log').read_text()}")
            try:
                if self.client.get("/healthz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("serve did not become healthy")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def remove_files(self) -> None:
        """The archives are large; only the numbers are kept."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def create(self, channel: str, connections: list[str], format_: str = "webm") -> dict:
        body = {
            "channel_id": channel,
            "format": format_,
            "connections": [connection_body(cid) for cid in connections],
        }
        response = self.client.post("/v1/recordings", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"POST /v1/recordings: {response.status_code} {response.text}")
        return dict(response.json())

    def get(self, recording_id: str) -> dict:
        response = self.client.get(f"/v1/recordings/{recording_id}")
        response.raise_for_status()
        return dict(response.json())

    def stop(self, recording_id: str) -> dict:
        response = self.client.post(f"/v1/recordings/{recording_id}/stop")
        if response.status_code != 202:
            raise RuntimeError(f"stop: {response.status_code} {response.text}")
        return dict(response.json())

    def event_times(self, recording_id: str, event_type: str) -> list[float]:
        """created_at of the store's events of this type that mention the recording."""
        uri = f"file:{self.workdir / 'state.sqlite3'}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=30) as db:
            rows = db.execute(
                "SELECT created_at FROM events WHERE type = ? AND "
                "(recording_id = ? OR instr(payload, ?) > 0) ORDER BY id",
                (event_type, recording_id, recording_id),
            ).fetchall()
        return [float(row[0]) for row in rows]


def media_ports(recording: dict) -> list[tuple[str, int, int]]:
    """(connection_id, video port, audio port) of each connection of a recording view."""
    return [
        (c["connection_id"], c["video"]["port"], c["audio"]["port"])
        for c in recording["connections"]
    ]


def stream_counters(recording: dict) -> dict[str, int]:
    totals = {"packets": 0, "lost": 0, "frames": 0, "dropped_frames": 0}
    for connection in recording["connections"]:
        for stream in connection["stats"]:
            for name in totals:
                totals[name] += int(stream.get(name) or 0)
    return totals
