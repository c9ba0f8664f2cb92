"""Worker processes: connections recorded in other processes, behind the same lifecycle.

Real spawned workers, real UDP from the GStreamer capture, files judged by FFmpeg; a worker
killed with SIGKILL mid-recording.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from recorder.connection import ConnectionSettings, FinishedFile, MediaRequest, PortPool
from recorder.errors import NoMediaError, RecorderError
from recorder.lifecycle import ConnectionSpec, MediaSpec, RecordingManager, RecordingSpec
from recorder.service import ServiceConfig
from recorder.store import Store
from recorder.workers import ConnectionEvents, ConnectionLost, WorkerPool
from tests.captures import send_capture
from tests.judges import CAPTURES, decode_errors, framemd5, source_md5

MEDIA = [
    MediaRequest("video", "VP8", 96),
    MediaRequest("audio", "opus", 111, fmtp={"sprop-stereo": "1"}),
]
GST = CAPTURES["gst"][0]


class Heard:
    """What the owner of a connection is told."""

    def __init__(self) -> None:
        self.splits: list[FinishedFile] = []
        self.opened: list[int] = []
        self.lost: list[str] = []

    def events(self) -> ConnectionEvents:
        return ConnectionEvents(self.splits.append, self.opened.append, self.lost.append)


def _settings(tmp_path: Path, pool: PortPool, **options: object) -> ConnectionSettings:
    values: dict[str, object] = {
        "container": "webm",
        "tmp_dir": tmp_path / "tmp",
        "final_dir": tmp_path / "archive",
        "ports": {"video": pool.take("127.0.0.1"), "audio": pool.take("127.0.0.1")},
        "single_name": "archive-a.webm",
        "listen": "127.0.0.1",
        **options,
    }
    return ConnectionSettings(MEDIA, **values)  # type: ignore[arg-type]


async def _until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_a_worker_records_a_connection_bit_exact_with_split_pieces(tmp_path: Path) -> None:
    heard = Heard()

    async def scenario() -> tuple[FinishedFile | None, list[dict[str, object]], int]:
        pool = WorkerPool(1)
        try:
            await pool.open()
            [worker] = pool.workers
            settings = _settings(
                tmp_path,
                PortPool(33000, 33099),
                split_name=lambda index: f"split-a_{index}.webm",  # not picklable
            )
            with pytest.raises(Exception, match="pickle"):
                await pool.start(settings, heard.events())
            settings.split_name = "split-a_{}.webm".format  # a bound method pickles
            settings.split_duration = 1.5
            handle = await pool.start(settings, heard.events())
            assert handle.ports == settings.ports and handle.worker is worker
            assert not handle.archive_started
            await send_capture(GST, handle.ports)
            await _until(lambda: handle.archive_started)  # the worker's notice
            await pool.refresh([handle])
            assert [s["packets"] for s in handle.status().stats] == [173, 200]
            finished = await pool.stop(handle)
            return finished, handle.status().stats, worker.process.pid
        finally:
            await pool.close()

    finished, stats, pid = asyncio.run(scenario())
    assert pid != os.getpid()
    assert finished is not None and finished.path == tmp_path / "archive" / "archive-a.webm"
    assert framemd5(finished.path, "video")[0] == source_md5("video")
    assert framemd5(finished.path, "audio")[0] == source_md5("audio")
    assert [s["packets"] for s in stats] == [173, 200]
    # Pieces were opened and finished in the worker, and heard of here, in order.
    assert heard.opened == [1, 2] and [piece.index for piece in heard.splits] == [1, 2]
    decoded = []
    for piece in heard.splits:
        assert piece.path.parent == tmp_path / "archive" and decode_errors(piece.path) == ""
        decoded += framemd5(piece.path, "video")[0]
    assert decoded == source_md5("video")
    assert list((tmp_path / "tmp").iterdir()) == []
    assert heard.lost == []


def test_errors_in_a_worker_come_back_as_the_callers_exceptions(tmp_path: Path) -> None:
    async def scenario() -> None:
        pool = WorkerPool(1)
        try:
            ports = PortPool(33100, 33199)
            squatter = _settings(tmp_path, ports)
            first = await pool.start(squatter, Heard().events())
            # The same ports again: the worker cannot bind them, and says so.
            with pytest.raises(RecorderError, match=r"cannot listen on 127\.0\.0\.1:"):
                await pool.start(squatter, Heard().events())
            # Nothing was sent: no decodable media, with the counters of the stop.
            with pytest.raises(NoMediaError):
                await pool.stop(first)
            assert [s["packets"] for s in first.status().stats] == [0, 0]
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_a_killed_worker_loses_only_its_connections_and_is_replaced(tmp_path: Path) -> None:
    heard = [Heard(), Heard()]

    async def scenario() -> list[multiprocessing.process.BaseProcess]:
        pool = WorkerPool(2)
        try:
            await pool.open()
            ports = PortPool(33200, 33299)
            handles = [
                await pool.start(_settings(tmp_path / str(n), ports), heard[n].events())
                for n in range(2)
            ]
            # Each worker got one: new connections go to the worker with the fewest.
            assert handles[0].worker is not handles[1].worker
            doomed = handles[0].worker
            os.kill(doomed.process.pid, signal.SIGKILL)
            await _until(lambda: heard[0].lost and pool.replaced == 1)
            assert "exited (status -9)" in heard[0].lost[0] and heard[1].lost == []
            with pytest.raises(ConnectionLost):
                await pool.stop(handles[0])
            assert len(pool.workers) == 2 and doomed not in pool.workers
            # The survivor records on; the replacement takes new connections.
            third = await pool.start(_settings(tmp_path / "2", ports), Heard().events())
            assert third.worker not in (doomed, handles[1].worker)
            await send_capture(GST, handles[1].ports, speed=8.0)
            finished = await pool.stop(handles[1])
            assert finished is not None and decode_errors(finished.path) == ""
            with pytest.raises(NoMediaError):
                await pool.stop(third)
            return [worker.process for worker in (doomed, *pool.workers)]
        finally:
            await pool.close()

    processes = asyncio.run(scenario())
    assert len(processes) == 3 and not any(process.is_alive() for process in processes)


def _manager(tmp_path: Path, workers: int) -> RecordingManager:
    config = ServiceConfig(
        archive_dir=tmp_path / "archive",
        archive_tmp_dir=tmp_path / "archive_tmp",
        state=tmp_path / "state.sqlite3",
        rtp_port_range=(33300, 33399),
        rtp_listen="127.0.0.1",
        min_free_space=0,
        workers=workers,
    )
    config.validate()
    return RecordingManager(config, Store.open(config.state))


def _connection(cid: str) -> ConnectionSpec:
    return ConnectionSpec(
        cid,
        audio=MediaSpec("opus", 111, fmtp={"sprop-stereo": "1"}),
        video=MediaSpec("VP8", 96),
    )


def _ports(view: dict) -> dict[str, int]:
    return {kind: view[kind]["port"] for kind in ("audio", "video")}


def test_a_recording_survives_the_death_of_one_connections_worker(tmp_path: Path) -> None:
    manager = _manager(tmp_path, workers=2)

    async def scenario() -> tuple[str, dict]:
        await manager.open()
        try:
            created = await manager.create_recording(
                RecordingSpec(
                    "room",
                    split_duration=2,
                    connections=[_connection("alice"), _connection("bob")],
                )
            )
            rid = created["recording_id"]
            alice, bob = created["connections"]
            await asyncio.gather(send_capture(GST, _ports(alice)), send_capture(GST, _ports(bob)))
            await asyncio.sleep(0.5)
            await manager.refresh(rid)
            view = manager.get_recording(rid)
            assert [c["stats"][0]["packets"] for c in view["connections"]] == [200, 200]
            running = manager._running[rid].connections
            worker = running["alice"].recorder.worker  # type: ignore[union-attr]
            assert worker is not running["bob"].recorder.worker  # type: ignore[union-attr]
            os.kill(worker.process.pid, signal.SIGKILL)
            await _until(lambda: running["alice"].state == "ended")
            # The others record on, and the recording takes new connections.
            assert manager.get_recording(rid)["state"] == "running"
            carol = await manager.add_connection(rid, _connection("carol"))
            assert carol["state"] == "recording"
            stopped = await manager.stop_recording(rid)
            return rid, stopped
        finally:
            await manager.close()

    rid, stopped = asyncio.run(scenario())
    states = {c["connection_id"]: c["state"] for c in stopped["connections"]}
    assert states == {"alice": "ended", "bob": "ended", "carol": "failed"}
    directory = tmp_path / "archive" / rid
    # Alice's files were recovered as after a crash: what was written plays, documented.
    single = directory / "archive-alice.webm"
    assert decode_errors(single) == ""
    decoded = framemd5(single, "video")[0]
    assert len(decoded) >= 60 and decoded == source_md5("video")[: len(decoded)]
    assert json.loads((directory / "archive-alice.json").read_text())["state"] == "recovered"
    assert (directory / "split-archive-end-alice.json").exists()
    # Bob's were finished normally.
    assert framemd5(directory / "archive-bob.webm", "video")[0] == source_md5("video")
    assert json.loads((directory / "archive-bob.json").read_text())["state"] == "available"
    events = [(e.type, e.payload.get("connection_id")) for e in manager.store.list_events(rid)]
    assert ("archive.available", "alice") in events and ("archive.available", "bob") in events
    assert events[-1] == ("recording.report", None)
    report = json.loads((directory / f"report-{rid}.json").read_text())
    assert report["recording_id"] == rid
    assert not any(directory.parent.parent.glob("archive_tmp/*/*.webm"))
