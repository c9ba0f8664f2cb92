"""`RecordingManager`: recordings and connections into files, documents and events."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from recorder.lifecycle import (
    ConnectionSpec,
    LifecycleError,
    MediaSpec,
    RecordingManager,
    RecordingSpec,
)
from recorder.recovery import recover
from recorder.service import ServiceConfig
from recorder.store import Store
from tests.captures import send_capture
from tests.judges import CAPTURES, decode_errors, framemd5, source_md5


def _manager(tmp_path: Path, ports: tuple[int, int] = (32000, 32099)) -> RecordingManager:
    config = ServiceConfig(
        archive_dir=tmp_path / "archive",
        archive_tmp_dir=tmp_path / "archive_tmp",
        state=tmp_path / "state.sqlite3",
        rtp_port_range=ports,
        rtp_listen="127.0.0.1",
        min_free_space=0,
        workers=0,
    )
    config.validate()
    return RecordingManager(config, Store.open(config.state))


def _vp8_opus(connection_id: str, **options: object) -> ConnectionSpec:
    return ConnectionSpec(
        connection_id,
        audio=MediaSpec("opus", 111, fmtp={"sprop-stereo": "1"}),
        video=MediaSpec("VP8", 96),
        **options,  # type: ignore[arg-type]
    )


def _ports(view: dict) -> dict[str, int]:
    return {kind: view[kind]["port"] for kind in ("audio", "video") if view[kind]}


def test_two_connections_one_leaving_early_dual_output(tmp_path: Path) -> None:
    manager = _manager(tmp_path)

    async def scenario() -> tuple[dict, dict]:
        created = await manager.create_recording(
            RecordingSpec(
                "room-1",
                format="webm",
                split_duration=2,
                recording_metadata={"title": "standup"},
                connections=[
                    _vp8_opus("alice"),
                    _vp8_opus("bob"),
                    ConnectionSpec("carol", recording_block=True, video=MediaSpec("VP8", 96)),
                ],
            )
        )
        alice, bob, carol = created["connections"]
        assert carol["state"] == "blocked" and carol["video"]["port"] is None
        gst = CAPTURES["gst"][0]
        await asyncio.gather(send_capture(gst, _ports(alice)), send_capture(gst, _ports(bob)))
        await asyncio.sleep(0.5)
        left = await manager.remove_connection(created["recording_id"], "bob")
        assert left["state"] == "ended"
        stopped = await manager.stop_recording(created["recording_id"])
        return created, stopped

    created, stopped = asyncio.run(scenario())
    rid = created["recording_id"]
    assert len(rid) == 26 and stopped["state"] == "stopped"
    directory = tmp_path / "archive" / rid
    names = sorted(path.name for path in directory.iterdir())
    for cid in ("alice", "bob"):
        assert f"archive-{cid}.webm" in names and f"archive-{cid}.json" in names
        assert f"split-archive-{cid}_0001.webm" in names
        assert f"split-archive-{cid}_0001.json" in names
        assert f"split-archive-end-{cid}.json" in names
        single = directory / f"archive-{cid}.webm"
        assert decode_errors(single) == ""
        assert framemd5(single, "video")[0] == source_md5("video")
        pieces = sorted(directory.glob(f"split-archive-{cid}_*.webm"))
        decoded = [md5 for piece in pieces for md5 in framemd5(piece, "video")[0]]
        assert decoded == source_md5("video")
        doc = json.loads((directory / f"archive-{cid}.json").read_text())
        assert doc["connection_id"] == cid and doc["recording_id"] == rid
        assert doc["size"] == single.stat().st_size
        assert (doc["video_width"], doc["video_height"]) == (320, 240)
        assert doc["recording_metadata"] == {"title": "standup"}
    assert not any("carol" in name for name in names)
    report = json.loads((directory / f"report-{rid}.json").read_text())
    assert report["recording_id"] == rid
    assert list((tmp_path / "archive_tmp" / rid).iterdir()) == []
    events = [event.type for event in manager.store.list_events(rid)]
    assert events[0] == "recording.started" and events[-1] == "recording.report"
    assert events.count("archive.started") == 2 and events.count("archive.available") == 2
    assert events.count("split-archive.available") == 4 and events.count("split-archive.end") == 2
    # Every archive.available comes after its archive.started.
    for cid in ("alice", "bob"):
        payloads = [(e.type, e.payload) for e in manager.store.list_events(rid)]
        started = next(i for i, (t, p) in enumerate(payloads)
                       if t == "archive.started" and p["connection_id"] == cid)  # fmt: skip
        available = next(i for i, (t, p) in enumerate(payloads)
                         if t == "archive.available" and p["connection_id"] == cid)  # fmt: skip
        assert started < available


@pytest.mark.parametrize(
    ("spec", "error_type"),
    [
        (RecordingSpec("../etc"), "INVALID-PARAMETER"),
        (RecordingSpec("r", connections=[_vp8_opus("a/b")]), "INVALID-PARAMETER"),
        (RecordingSpec("r", split_only=True), "INVALID-PARAMETER"),
        (RecordingSpec("r", expire_time=10**9), "INVALID-PARAMETER"),
        (RecordingSpec("r", format="mp3"), "INVALID-PARAMETER"),
        (
            RecordingSpec("r", connections=[ConnectionSpec("c", video=MediaSpec("H265", 96))]),
            "WEBM-H265-UNSUPPORTED",
        ),
        (
            RecordingSpec("r", connections=[ConnectionSpec("c", video=MediaSpec("MPV", 96))]),
            "INVALID-PARAMETER",
        ),
        (RecordingSpec("r", connections=[_vp8_opus("c"), _vp8_opus("c")]), "CONNECTION-EXISTS"),
        (
            RecordingSpec("r", connections=[ConnectionSpec("c", audio=MediaSpec("VP8", 96))]),
            "INVALID-PARAMETER",
        ),
        (
            RecordingSpec(
                "r",
                connections=[
                    ConnectionSpec(
                        "c",
                        video=MediaSpec(
                            "VP8", 96, srtp_suite="AES_CM_128_HMAC_SHA1_80", srtp_key="c2hvcnQ="
                        ),
                    )
                ],
            ),
            "INVALID-PARAMETER",
        ),
    ],
)
def test_bad_requests_are_refused_with_their_error_type(
    tmp_path: Path, spec: RecordingSpec, error_type: str
) -> None:
    manager = _manager(tmp_path)
    with pytest.raises(LifecycleError) as raised:
        asyncio.run(manager.create_recording(spec))
    assert raised.value.error_type == error_type
    assert manager.list_recordings() == []


def test_one_recording_per_channel_and_ports_run_out(tmp_path: Path) -> None:
    manager = _manager(tmp_path, ports=(32100, 32103))  # two port pairs: one connection

    async def scenario() -> None:
        first = await manager.create_recording(RecordingSpec("room", connections=[_vp8_opus("a")]))
        with pytest.raises(LifecycleError) as raised:
            await manager.create_recording(RecordingSpec("room"))
        assert raised.value.error_type == "STARTED-RECORDING"
        with pytest.raises(LifecycleError) as raised:
            await manager.add_connection(first["recording_id"], _vp8_opus("b"))
        assert raised.value.error_type == "NO-PORTS-AVAILABLE"
        with pytest.raises(LifecycleError) as raised:
            await manager.remove_connection(first["recording_id"], "zed")
        assert raised.value.error_type == "CONNECTION-NOT-FOUND"
        with pytest.raises(LifecycleError) as raised:
            manager.get_recording("0" * 26)
        assert raised.value.error_type == "RECORDING-NOT-FOUND"
        stopped = await manager.stop_recording(first["recording_id"])
        # Nothing was sent: the archive failed, the recording still ends with its report.
        assert stopped["state"] == "stopped"
        assert stopped["connections"][0]["state"] == "failed"
        await manager.close()

    asyncio.run(scenario())


def test_expire_time_stops_the_recording(tmp_path: Path) -> None:
    manager = _manager(tmp_path)

    async def scenario() -> str:
        created = await manager.create_recording(
            RecordingSpec("room", expire_time=1, connections=[_vp8_opus("a")])
        )
        await asyncio.sleep(1.5)
        return created["recording_id"]

    rid = asyncio.run(scenario())
    assert manager.get_recording(rid)["state"] == "stopped"
    assert (tmp_path / "archive" / rid / f"report-{rid}.json").exists()


def test_split_only_writes_pieces_and_their_end_document(tmp_path: Path) -> None:
    manager = _manager(tmp_path)

    async def scenario() -> str:
        created = await manager.create_recording(
            RecordingSpec(
                "room",
                format="mp4",
                split_duration=2,
                split_only=True,
                connections=[_vp8_opus("a")],
            )
        )
        await send_capture(CAPTURES["gst"][0], _ports(created["connections"][0]))
        await asyncio.sleep(0.5)
        await manager.stop_recording(created["recording_id"])
        return created["recording_id"]

    rid = asyncio.run(scenario())
    directory = tmp_path / "archive" / rid
    names = sorted(path.name for path in directory.iterdir())
    assert names == [
        f"report-{rid}.json",
        "split-archive-a_0001.json",
        "split-archive-a_0001.mp4",
        "split-archive-a_0002.json",
        "split-archive-a_0002.mp4",
        "split-archive-end-a.json",
    ]
    end = json.loads((directory / "split-archive-end-a.json").read_text())
    assert end["split_last_index"] == "0002"
    archives = manager.store.list_archives(rid)
    assert [(a.kind, a.split_index, a.state) for a in archives] == [
        ("split", 1, "available"),
        ("split", 2, "available"),
    ]
    events = [event.type for event in manager.store.list_events(rid)]
    assert events.count("archive.started") == 1 and "archive.available" not in events
    decoded = [md5 for n in (1, 2) for md5 in framemd5(directory / f"split-archive-a_000{n}.mp4",
                                                      "video")[0]]  # fmt: skip
    assert decoded == source_md5("video")


@pytest.mark.parametrize("container", ["webm", "mp4"])
def test_a_recording_left_running_is_recovered_from_its_temp_files(
    tmp_path: Path, container: str
) -> None:
    # The abandoned recording keeps its ports bound: each case gets its own range.
    manager = _manager(tmp_path, ports=(32200, 32249) if container == "webm" else (32250, 32299))

    async def scenario() -> str:
        created = await manager.create_recording(
            RecordingSpec(
                "room",
                format=container,
                split_duration=2,
                connections=[_vp8_opus("a")],
            )
        )
        await send_capture(CAPTURES["gst"][0], _ports(created["connections"][0]))
        await asyncio.sleep(0.5)
        return created["recording_id"]

    # The process "dies" here: the recording is never stopped, its files stay in the temp
    # directory as the writers left them, and the next start finds it running in the store.
    rid = asyncio.run(scenario())
    assert recover(manager.store, tmp_path / "archive") == [rid]
    directory = tmp_path / "archive" / rid
    single = directory / f"archive-a.{container}"
    assert decode_errors(single) == ""
    decoded = framemd5(single, "video")[0]
    # Everything up to the last complete fragment / cluster: the head of the source.
    assert len(decoded) >= 60 and decoded == source_md5("video")[: len(decoded)]
    doc = json.loads((directory / "archive-a.json").read_text())
    assert doc["state"] == "recovered" and doc["size"] == single.stat().st_size
    assert manager.get_recording(rid)["state"] == "recovered"
    assert (directory / f"report-{rid}.json").exists()
    events = [event.type for event in manager.store.list_events(rid)]
    assert "archive.available" in events and events[-1] == "recording.report"
    # The split series that the crash ended gets its end document too.
    assert "split-archive.end" in events
    end = json.loads((directory / "split-archive-end-a.json").read_text())
    assert int(end["split_last_index"]) >= 1


def test_crossing_the_disk_floor_finalizes_running_archives_as_failed(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    free = {"bytes": 10 * 2**30}
    manager._free_space = lambda directory: free["bytes"]  # type: ignore[method-assign]
    manager.config.min_free_space = 2**30

    async def scenario() -> str:
        created = await manager.create_recording(
            RecordingSpec("room", connections=[_vp8_opus("a")])
        )
        await send_capture(CAPTURES["gst"][0], _ports(created["connections"][0]))
        free["bytes"] = 2**20  # the disk fills up
        await asyncio.sleep(1.5)
        with pytest.raises(LifecycleError) as raised:
            await manager.create_recording(RecordingSpec("other"))
        assert raised.value.error_type == "INSUFFICIENT-DISK-SPACE"
        return created["recording_id"]

    rid = asyncio.run(scenario())
    view = manager.get_recording(rid)
    assert view["state"] == "failed"
    [archive] = view["connections"][0]["archives"]
    assert archive["state"] == "failed"
    single = tmp_path / "archive" / rid / "archive-a.webm"
    assert decode_errors(single) == ""  # finalized cleanly: it plays
    events = manager.store.list_events(rid)
    [failed] = [event for event in events if event.type == "archive.failed"]
    assert "below the configured minimum" in failed.payload["reason"]


def test_a_disk_error_while_finishing_fails_the_archive_not_the_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = _manager(tmp_path)

    def broken_disk(*args: object) -> None:
        raise OSError(5, "Input/output error")

    async def scenario() -> tuple[str, dict]:
        created = await manager.create_recording(
            RecordingSpec("room", connections=[_vp8_opus("a")])
        )
        await send_capture(CAPTURES["gst"][0], _ports(created["connections"][0]))
        await asyncio.sleep(0.3)
        monkeypatch.setattr("recorder.connection.ConnectionRecorder._finish", broken_disk)
        return created["recording_id"], await manager.stop_recording(created["recording_id"])

    rid, stopped = asyncio.run(scenario())
    assert stopped["state"] == "stopped" and stopped["connections"][0]["state"] == "failed"
    [archive] = stopped["connections"][0]["archives"]
    assert archive["state"] == "failed"
    events = manager.store.list_events(rid)
    [failed] = [event for event in events if event.type == "archive.failed"]
    assert failed.payload["reason"] == (
        "finishing the archive failed: [Errno 5] Input/output error"
    )
    assert events[-1].type == "recording.report"
    assert (tmp_path / "archive" / rid / f"report-{rid}.json").exists()
    # The ports came back to the pool.
    assert manager.ports.free == 50
