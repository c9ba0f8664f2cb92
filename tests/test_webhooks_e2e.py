"""Webhooks end to end: `rtp-recorder serve` subprocesses, the fixture capture replayed to the
ports the API hands out, and a real HTTP receiver (uvicorn, in a thread of the test).

The receiver refuses the first deliveries, holds one request it has processed while the
recorder is killed (-9), then goes down while the recorder restarts, recovers the recording
that was running, and records another one; when it comes back, every event must arrive: each
id at least once and processed once, in order per recording, correctly signed, and
`archive.available` / `split-archive.available` for exactly the files that exist.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.captures import datagrams
from tests.judges import CAPTURES
from tests.test_webhooks import readme_verify

SECRET = "e2e-webhook-key"
STARTUP_TIMEOUT = 20.0
CAPTURE_PORTS = {"video": 5004, "audio": 5006}
SPEED = 4.0  # the 4 s fixture clip in 1 s
CONNECTION = {
    "video": {"codec": "VP8", "payload_type": 96},
    "audio": {"codec": "opus", "payload_type": 111, "fmtp": {"sprop-stereo": "1"}},
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# --------------------------------------------------------------------------- the receiver


class Receiver:
    """A webhook receiver as the README tells one to be written: verify the signature on the
    raw body, skip ids already processed, answer 2xx. Plus knobs for the test: refuse the next
    `reject` deliveries, hold the next processed request until `release`, go down and up."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._verify = readme_verify()
        self._lock = threading.Lock()
        self.arrivals: list[str] = []  # ids of correctly signed requests, as they came
        self.processed: list[dict[str, Any]] = []  # each event once, in processing order
        self._processed_ids: set[str] = set()
        self.duplicates = 0
        self.bad_signatures = 0
        self.reject = 0
        self.hold_next = threading.Event()
        self.holding = threading.Event()
        self.release = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def _handle(self, headers: dict[str, str], body: bytes) -> tuple[int, bool]:
        """(status, hold the answer)"""
        timestamp = headers.get("x-recorder-timestamp", "")
        signature = headers.get("x-recorder-signature", "")
        with self._lock:
            if not self._verify(SECRET.encode(), body, timestamp, signature):
                self.bad_signatures += 1
                return 401, False
            event = json.loads(body)
            assert headers["x-recorder-event"] == event["type"]
            self.arrivals.append(event["id"])
            if self.reject:
                self.reject -= 1
                return 500, False
            if event["id"] in self._processed_ids:
                self.duplicates += 1
                return 200, False
            self._processed_ids.add(event["id"])
            self.processed.append(event)
            hold = self.hold_next.is_set()
            self.hold_next.clear()
            return 200, hold

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
        status, hold = self._handle(headers, body)
        if hold:
            # Processed, but the answer is not given while the recorder gets killed.
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def up(self) -> None:
        sock = socket.socket()
        # The port again right after the last server on it closed.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(
            self.app, interface="asgi3", lifespan="off", log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        _until(lambda: self._server is not None and self._server.started, 10, "the receiver")

    def down(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(10)
        assert not self._thread.is_alive()
        self._server = self._thread = None

    def count(self, recording_id: str, event_type: str) -> int:
        with self._lock:
            return sum(
                1
                for event in self.processed
                if event.get("recording_id") == recording_id and event["type"] == event_type
            )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    started.up()
    yield started
    started.release.set()
    started.down()


# --------------------------------------------------------------------------- the recorder


class Recorder:
    """`rtp-recorder serve` on fixed directories, state and ports; `start` again after a kill."""

    def __init__(self, root: Path, webhook_url: str) -> None:
        self.root = root
        self.api_port = _free_port()
        first = 20000 + (os.getpid() * 64) % 9984  # even, below the ephemeral range
        self.rtp_ports = (first, first + 63)
        self.webhook_url = webhook_url
        self.process: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    @property
    def archive_dir(self) -> Path:
        return self.root / "archive"

    @property
    def state(self) -> Path:
        return self.root / "state.sqlite3"

    def start(self) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("RTP_RECORDER_")}
        environment["RTP_RECORDER_WEBHOOK_SECRET"] = SECRET
        command = [
            sys.executable,
            "-m",
            "recorder.cli",
            "serve",
            "--port",
            str(self.api_port),
            "--archive-dir",
            str(self.archive_dir),
            "--archive-tmp-dir",
            str(self.root / "archive_tmp"),
            "--state",
            str(self.state),
            "--rtp-port-range",
            f"{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            "--rtp-listen",
            "127.0.0.1",
            "--min-free-space",
            "0",
            "--webhook-url",
            self.webhook_url,
        ]
        log = self.root / f"serve-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                command, cwd=self.root, stdout=output, stderr=subprocess.STDOUT, env=environment
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early: {log.read_text()}")
            try:
                httpx.get(f"http://127.0.0.1:{self.api_port}/healthz", timeout=1.0)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError("serve did not answer in time") from None
                time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        assert self.process.returncode == -signal.SIGKILL

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(20)
        assert self.process.returncode == 0, self.logs[-1].read_text()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method, f"http://127.0.0.1:{self.api_port}{path}", json=body, timeout=10
        )
        assert response.is_success, response.text
        return response.json()

    def record(self, channel_id: str, connection_id: str, **options: Any) -> dict[str, Any]:
        body = {
            "channel_id": channel_id,
            "connections": [{"connection_id": connection_id, **CONNECTION}],
            **options,
        }
        return self.api("POST", "/v1/recordings", body)  # type: ignore[no-any-return]

    def events(self) -> list[dict[str, Any]]:
        """The outbox as the state file holds it (read-only, beside the running server)."""
        with sqlite3.connect(f"file:{self.state}?mode=ro", uri=True) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT uid, recording_id, type, delivered_at FROM events ORDER BY id"
            ).fetchall()
        return [dict(row) for row in rows]


def _replay(view: dict[str, Any]) -> None:
    """The fixture capture to the connection's ports, paced at SPEED times real time."""
    [connection] = view["connections"]
    ports = {kind: connection[kind]["port"] for kind in ("audio", "video")}
    by_port = {port: kind for kind, port in CAPTURE_PORTS.items()}
    items = [(t, by_port[p], d) for t, _, _, p, d in datagrams(CAPTURES["gst"][0]) if p in by_port]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.monotonic()
    try:
        for sent_at, kind, data in items:
            delay = (sent_at - items[0][0]) / SPEED - (time.monotonic() - start)
            if delay > 0:
                time.sleep(delay)
            sender.sendto(data, ("127.0.0.1", ports[kind]))
    finally:
        sender.close()


# --------------------------------------------------------------------------- the test


def test_every_event_arrives_through_rejections_an_outage_and_a_kill(
    tmp_path: Path, receiver: Receiver
) -> None:
    recorder = Recorder(tmp_path, receiver.url)
    try:
        _scenario(recorder, receiver)
    except BaseException:
        for log in recorder.logs:
            print(f"--- {log.name}\n{log.read_text()}")
        raise
    finally:
        if recorder.process is not None and recorder.process.poll() is None:
            recorder.process.kill()


def _scenario(recorder: Recorder, receiver: Receiver) -> None:
    # 1. A whole recording, single and split files, while the receiver refuses the first two
    #    deliveries: they are retried, and nothing of the recording overtakes them.
    receiver.reject = 2
    recorder.start()
    first = recorder.record("room-1", "alice", split_duration=2)
    r1 = first["recording_id"]
    _replay(first)
    time.sleep(0.5)
    recorder.api("POST", f"/v1/recordings/{r1}/stop")
    _until(lambda: receiver.count(r1, "recording.report") == 1, 20, "the first recording")

    # 2. A second recording: its first event is processed, but the answer held back while
    #    the recorder is killed with its archive half written.
    receiver.hold_next.set()
    second = recorder.record("room-2", "bob")
    r2 = second["recording_id"]
    assert receiver.holding.wait(10)
    _replay(second)
    time.sleep(0.7)  # the archive starts, fragments reach the temp file
    recorder.kill()
    receiver.release.set()
    receiver.down()

    # 3. The restart recovers the second recording; a third is recorded while the receiver is
    #    still down. Nothing can be delivered: it all waits in the outbox.
    recorder.start()
    third = recorder.record("room-3", "carol")
    r3 = third["recording_id"]
    _replay(third)
    time.sleep(0.5)
    recorder.api("POST", f"/v1/recordings/{r3}/stop")
    waiting = [event for event in recorder.events() if event["delivered_at"] is None]
    assert {event["recording_id"] for event in waiting} == {r2, r3}

    # 4. The receiver comes back: the outbox empties.
    receiver.up()
    _until(
        lambda: all(event["delivered_at"] is not None for event in recorder.events()),
        30,
        "every event to be delivered",
    )
    recorder.stop()
    events = recorder.events()

    # Every event, each processed once, in the order it happened per recording.
    processed_ids = [event["id"] for event in receiver.processed]
    assert sorted(processed_ids) == sorted(event["uid"] for event in events)
    assert set(receiver.arrivals) == set(processed_ids)
    for rid in (r1, r2, r3):
        outbox = [event["uid"] for event in events if event["recording_id"] == rid]
        got = [event["id"] for event in receiver.processed if event["recording_id"] == rid]
        assert got == outbox, rid
    assert receiver.bad_signatures == 0
    # The held event came again after the restart: at least once, deduplicated by id.
    assert receiver.duplicates >= 1
    assert len(receiver.arrivals) >= len(events) + 2  # + the two refused

    types = {rid: [e["type"] for e in receiver.processed if e["recording_id"] == rid]
             for rid in (r1, r2, r3)}  # fmt: skip
    assert types[r1][0] == "recording.started" and types[r1][-1] == "recording.report"
    assert {"archive.started", "archive.available", "split-archive.available"} <= set(types[r1])
    assert types[r2] == [
        "recording.started",
        "archive.started",
        "archive.available",
        "recording.report",
    ]
    [recovered] = [e for e in receiver.processed if e["recording_id"] == r2 and "state" in e]
    assert recovered["state"] == "recovered"

    # archive.available for every archive file there is, and only for those; likewise split.
    archive_dir = recorder.archive_dir
    for event_type, pattern in (
        ("archive.available", "*/archive-*.webm"),
        ("split-archive.available", "*/split-archive-*_*.webm"),
    ):
        announced = {
            Path(event["file_path"]).resolve()
            for event in receiver.processed
            if event["type"] == event_type
        }
        on_disk = {path.resolve() for path in archive_dir.glob(pattern)}
        assert announced == on_disk, event_type
        assert on_disk
    assert not [e for e in receiver.processed if e["type"] == "archive.failed"]
