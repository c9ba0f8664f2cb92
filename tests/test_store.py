"""The SQLite state: schema and migration, round trips, constraints, and events written in the
same transaction as the change that causes them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from recorder.store import (
    SCHEMA_VERSION,
    ConflictError,
    Event,
    NotFoundError,
    StateError,
    Store,
    StoreError,
)

RID = "WHEJ888HQ55KDCFE3TZ4VPFQHR"
RID2 = "CZZ8A8KZB16A1DF5PKERBHGFNR"
MEDIA = {
    "audio": {"codec": "opus", "payload_type": 111, "port": 40000},
    "video": {"codec": "VP8", "payload_type": 96, "port": 40002, "rtcp_port": 40003},
}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store.open(tmp_path / "state.sqlite3")
    yield opened
    opened.close()


def _recording(store: Store, recording_id: str = RID, **changes: object) -> None:
    fields: dict[str, object] = {
        "channel_id": "sora",
        "session_id": "S1",
        "format": "webm",
        "created_at": 1000.0,
    }
    fields.update(changes)
    store.create_recording(recording_id, **fields)  # type: ignore[arg-type]


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


# ---------------------------------------------------------------------------------------------
# Schema


def test_a_new_file_gets_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.sqlite3"
    store = Store.open(path)
    try:
        assert store.schema_version() == SCHEMA_VERSION == 3
    finally:
        store.close()
    assert {"meta", "recordings", "connections", "archives", "events"} <= _tables(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_version_1_file_is_migrated(tmp_path: Path) -> None:
    # What the schema-version-1 store created: the `meta` table alone.
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO meta VALUES ('schema_version', '1'), ('other', 'kept')")
    db.close()
    store = Store.open(path)
    try:
        assert store.schema_version() == 3
        _recording(store)
        assert store.get_recording(RID) is not None
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'other'").fetchone() == ("kept",)
    # Opening again migrates nothing and keeps the data.
    store = Store.open(path)
    try:
        assert store.schema_version() == 3 and store.get_recording(RID) is not None
    finally:
        store.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    Store.open(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=r"has schema version 99; .* knows up to 3"):
        Store.open(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"not a database" * 1000)
    with pytest.raises(StoreError, match=r"state file .*state\.sqlite3: file is not a database"):
        Store.open(path)


# ---------------------------------------------------------------------------------------------
# Recordings


def test_recording_round_trip(store: Store) -> None:
    metadata = {"spam": "egg", "録画": [1, 2.5, None, True], "nested": {"a": {}}}
    row = store.create_recording(
        RID,
        "sora",
        session_id="S1",
        format="mp4",
        split_duration=60,
        split_only=True,
        expire_time=3600,
        recording_metadata=metadata,
        created_at=1000.5,
        started_at=1000.5,
        expires_at=4600.5,
    )
    assert row == store.get_recording(RID)
    assert (row.id, row.channel_id, row.session_id, row.state, row.format) == (
        RID,
        "sora",
        "S1",
        "running",
        "mp4",
    )
    assert (row.split_duration, row.split_only, row.expire_time) == (60, True, 3600)
    assert row.recording_metadata == metadata
    assert (row.created_at, row.started_at, row.stopped_at, row.expires_at) == (
        1000.5,
        1000.5,
        None,
        4600.5,
    )
    assert store.get_recording(RID2) is None


def test_defaults_and_absent_metadata(store: Store) -> None:
    row = store.create_recording(RID, "sora", format="webm")
    assert row.session_id is None and row.recording_metadata is None
    assert row.split_only is False and row.split_duration is None and row.expire_time is None
    assert row.created_at > 1.6e9


def test_one_active_recording_per_channel_and_session(store: Store) -> None:
    _recording(store)
    with pytest.raises(ConflictError, match="channel 'sora' \\(session 'S1'\\) is already"):
        _recording(store, RID2)
    with pytest.raises(ConflictError, match=f"recording {RID} exists"):
        _recording(store, session_id="S2")
    _recording(store, RID2, session_id="S2")  # another session of the channel
    store.set_recording_state(RID, "stopping")
    with pytest.raises(ConflictError):
        _recording(store, "R3")
    store.set_recording_state(RID, "stopped")
    _recording(store, "R3")  # the channel and session may record again
    assert store.active_recording("sora", "S1").id == "R3"  # type: ignore[union-attr]
    assert store.active_recording("sora", "nope") is None


def test_no_session_counts_as_one_session(store: Store) -> None:
    _recording(store, session_id=None)
    with pytest.raises(ConflictError):
        _recording(store, RID2, session_id=None)
    assert store.active_recording("sora", None).id == RID  # type: ignore[union-attr]


def test_list_recordings_filters(store: Store) -> None:
    _recording(store, "A", channel_id="one", created_at=3.0)
    _recording(store, "B", channel_id="two", created_at=1.0)
    _recording(store, "C", channel_id="one", session_id="S2", created_at=2.0)
    store.set_recording_state("C", "stopping")
    store.set_recording_state("B", "failed")
    assert [r.id for r in store.list_recordings()] == ["B", "C", "A"]
    assert [r.id for r in store.list_recordings(channel_id="one")] == ["C", "A"]
    assert [r.id for r in store.list_recordings(state="running")] == ["A"]
    assert [r.id for r in store.list_recordings(state=["failed", "running"])] == ["B", "A"]
    assert [r.id for r in store.list_recordings(state="stopping", channel_id="two")] == []
    assert [r.id for r in store.running_recordings()] == ["C", "A"]
    with pytest.raises(ValueError, match="recording state must be one of"):
        store.list_recordings(state="paused")


def test_recording_state_changes(store: Store) -> None:
    _recording(store)
    row = store.set_recording_state(RID, "stopping", stopped_at=1500.0)
    assert (row.state, row.stopped_at) == ("stopping", 1500.0)
    row = store.set_recording_state(RID, "stopped")
    assert (row.state, row.stopped_at) == ("stopped", 1500.0)  # kept when not given
    assert store.set_recording_state(RID, "stopped").state == "stopped"
    with pytest.raises(StateError, match=f"recording {RID} is stopped, not running"):
        store.set_recording_state(RID, "running")
    with pytest.raises(NotFoundError, match="no recording 'R9'"):
        store.set_recording_state("R9", "stopped")
    with pytest.raises(ValueError, match="recording state"):
        store.set_recording_state(RID, "done")


# ---------------------------------------------------------------------------------------------
# Connections


def test_connection_round_trip(store: Store) -> None:
    _recording(store)
    row = store.add_connection(
        RID, "c1", client_id="alice", bundle_id="b", media=MEDIA, created_at=1001.0
    )
    assert row == store.get_connection(RID, "c1")
    assert (row.client_id, row.bundle_id, row.recording_block) == ("alice", "b", False)
    assert (row.media, row.state, row.created_at, row.ended_at) == (MEDIA, "active", 1001.0, None)
    blocked = store.add_connection(RID, "c0", recording_block=True, created_at=1002.0)
    assert blocked.recording_block is True and blocked.media == {} and blocked.client_id is None
    assert [c.connection_id for c in store.list_connections(RID)] == ["c1", "c0"]
    assert store.get_connection(RID, "c9") is None
    with pytest.raises(ConflictError, match=f"recording {RID} has a connection 'c1' already"):
        store.add_connection(RID, "c1")
    with pytest.raises(NotFoundError):
        store.add_connection("R9", "c1")


def test_connection_ends(store: Store) -> None:
    _recording(store)
    store.add_connection(RID, "c1")
    store.add_connection(RID, "c2")
    row = store.set_connection_state(RID, "c1", "ended", ended_at=1100.0)
    assert (row.state, row.ended_at) == ("ended", 1100.0)
    assert store.set_connection_state(RID, "c2", "ended").ended_at is not None
    assert [c.connection_id for c in store.list_connections(RID, state="ended")] == ["c1", "c2"]
    assert store.list_connections(RID, state="active") == []
    with pytest.raises(StateError, match="connection 'c1' has ended"):
        store.set_connection_state(RID, "c1", "active")
    with pytest.raises(NotFoundError, match="has no connection 'c9'"):
        store.set_connection_state(RID, "c9", "ended")


# ---------------------------------------------------------------------------------------------
# Archives


def test_archive_round_trip(store: Store, tmp_path: Path) -> None:
    _recording(store)
    store.add_connection(RID, "c1")
    single = store.add_archive(
        RID,
        "c1",
        kind="single",
        temp_path=tmp_path / "tmp" / RID / "archive-c1.webm",
        final_path=tmp_path / "archive" / RID / "archive-c1.webm",
        started_at=1001.0,
    )
    assert (single.kind, single.split_index, single.state) == ("single", None, "writing")
    assert single.temp_path == str(tmp_path / "tmp" / RID / "archive-c1.webm")
    piece = store.add_archive(
        RID, "c1", kind="split", split_index=1, temp_path="t1", final_path="f1", started_at=1001.0
    )
    assert piece.split_index == 1 and piece.id != single.id
    assert store.get_archive(single.id) == single and store.get_archive(12345) is None

    done = store.update_archive(
        piece.id, state="available", size=823263, stopped_at=1011.0, metadata={"split": "0001"}
    )
    assert (done.state, done.size, done.started_at, done.stopped_at) == (
        "available",
        823263,
        1001.0,
        1011.0,
    )
    assert done.metadata == {"split": "0001"} and done.final_path == "f1"
    assert store.update_archive(piece.id, final_path="f1b").metadata == {"split": "0001"}

    assert [a.id for a in store.list_archives(RID)] == [single.id, piece.id]
    assert [a.id for a in store.list_archives(RID, "c1")] == [single.id, piece.id]
    assert store.list_archives(RID, "c2") == []
    assert [a.id for a in store.unfinished_archives()] == [single.id]
    assert [a.id for a in store.unfinished_archives(RID)] == [single.id]
    assert store.unfinished_archives(RID2) == []

    with pytest.raises(StateError, match=f"archive {piece.id} is available, not failed"):
        store.update_archive(piece.id, state="failed")
    with pytest.raises(NotFoundError):
        store.update_archive(999, size=1)


def test_archive_constraints(store: Store) -> None:
    _recording(store)
    store.add_connection(RID, "c1")
    paths = {"temp_path": "t", "final_path": "f"}
    store.add_archive(RID, "c1", kind="single", **paths)
    store.add_archive(RID, "c1", kind="split", split_index=1, **paths)
    with pytest.raises(ConflictError, match="has that single archive already"):
        store.add_archive(RID, "c1", kind="single", **paths)
    with pytest.raises(ConflictError, match="has that split archive already"):
        store.add_archive(RID, "c1", kind="split", split_index=1, **paths)
    store.add_archive(RID, "c1", kind="split", split_index=2, **paths)
    with pytest.raises(ValueError, match="a split archive has a split_index"):
        store.add_archive(RID, "c1", kind="split", **paths)
    with pytest.raises(ValueError, match="a split archive has a split_index"):
        store.add_archive(RID, "c1", kind="single", split_index=3, **paths)
    with pytest.raises(ValueError, match="archive kind"):
        store.add_archive(RID, "c1", kind="dual", **paths)
    with pytest.raises(NotFoundError, match="has no connection 'c2'"):
        store.add_archive(RID, "c2", kind="single", **paths)


# ---------------------------------------------------------------------------------------------
# Events: the outbox, written with the change that causes them


def test_events_go_with_their_change(store: Store) -> None:
    _recording(store, events=[Event("recording.started", {"recording_id": RID})])
    store.add_connection(RID, "c1")
    archive = store.add_archive(
        RID,
        "c1",
        kind="single",
        temp_path="t",
        final_path="f",
        events=[Event("archive.started", {"connection_id": "c1"})],
    )
    store.update_archive(
        archive.id,
        state="available",
        events=[Event("archive.available", {"connection_id": "c1", "size": 1})],
    )
    store.set_recording_state(
        RID, "stopped", events=[Event("recording.report", {"archives": [{"id": "c1"}]})]
    )
    pending = store.pending_events()
    assert [(e.type, e.recording_id) for e in pending] == [
        ("recording.started", RID),
        ("archive.started", RID),
        ("archive.available", RID),
        ("recording.report", RID),
    ]
    assert pending[3].payload == {"archives": [{"id": "c1"}]}
    assert all(e.delivered_at is None and e.created_at > 1.6e9 for e in pending)
    assert [e.id for e in store.pending_events(limit=2)] == [e.id for e in pending[:2]]

    store.mark_event_delivered(pending[0].id, delivered_at=2000.0)
    store.mark_event_delivered(pending[0].id, delivered_at=3000.0)  # first delivery counts
    assert [e.id for e in store.pending_events()] == [e.id for e in pending[1:]]
    assert store.list_events(RID)[0].delivered_at == 2000.0
    with pytest.raises(NotFoundError):
        store.mark_event_delivered(999)


def test_events_on_their_own(store: Store) -> None:
    _recording(store)
    store.add_events([Event("split-archive.end", {"split_last_index": "0042"}, RID)])
    store.add_events([Event("archive.failed", {"reason": "disk"})])
    assert [(e.type, e.recording_id) for e in store.pending_events()] == [
        ("split-archive.end", RID),
        ("archive.failed", None),
    ]


def test_a_bad_event_fails_the_call_before_anything_is_written(store: Store) -> None:
    _recording(store)
    with pytest.raises(ValueError, match="event type must be one of"):
        store.set_recording_state(
            RID, "stopped", events=[Event("recording.report", {}), Event("recording.done", {})]
        )
    with pytest.raises(ValueError):
        store.set_recording_state(RID, "stopped", events=[Event("recording.report", {"x": 1e999})])
    with pytest.raises(TypeError):
        store.add_connection(RID, "c1", events=[Event("archive.started", {"x": {1, 2}})])
    assert store.get_recording(RID).state == "running"  # type: ignore[union-attr]
    assert store.get_connection(RID, "c1") is None
    assert store.pending_events() == []


def test_a_failure_inside_the_transaction_leaves_neither_change_nor_event(store: Store) -> None:
    _recording(store)
    # The second event names a recording that does not exist: the foreign key fails the insert
    # after the state was updated and the first event inserted; all of it is rolled back.
    with pytest.raises(sqlite3.IntegrityError):
        store.set_recording_state(
            RID,
            "stopped",
            stopped_at=2000.0,
            events=[Event("recording.report", {}), Event("archive.failed", {}, "NO-SUCH-ID")],
        )
    row = store.get_recording(RID)
    assert row is not None and (row.state, row.stopped_at) == ("running", None)
    assert store.pending_events() == []


def test_an_exception_in_a_callers_transaction_rolls_everything_back(store: Store) -> None:
    _recording(store)
    store.add_connection(RID, "c1")
    with pytest.raises(RuntimeError, match="crash"), store.transaction():
        store.set_connection_state(
            RID, "c1", "ended", events=[Event("archive.available", {"c": 1})]
        )
        store.set_recording_state(RID, "stopped", events=[Event("recording.report", {})])
        assert store.get_recording(RID).state == "stopped"  # type: ignore[union-attr]
        raise RuntimeError("crash")
    assert store.get_recording(RID).state == "running"  # type: ignore[union-attr]
    assert store.get_connection(RID, "c1").state == "active"  # type: ignore[union-attr]
    assert store.pending_events() == []
    # The store is usable afterwards, and a transaction that completes commits everything.
    with store.transaction():
        store.set_connection_state(RID, "c1", "ended", events=[Event("archive.available", {})])
        store.set_recording_state(RID, "stopped", events=[Event("recording.report", {})])
    assert store.get_recording(RID).state == "stopped"  # type: ignore[union-attr]
    assert len(store.pending_events()) == 2


def test_a_failed_inner_step_can_be_caught_without_losing_the_outer_ones(store: Store) -> None:
    _recording(store)
    with store.transaction():
        store.add_connection(RID, "c1")
        with pytest.raises(ConflictError):
            store.add_connection(RID, "c1", events=[Event("archive.started", {})])
        store.add_connection(RID, "c2")
    assert [c.connection_id for c in store.list_connections(RID)] == ["c1", "c2"]
    assert store.pending_events() == []


# ---------------------------------------------------------------------------------------------
# Durability and threads


def test_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = Store.open(path)
    _recording(store, events=[Event("recording.started", {})])
    store.add_connection(RID, "c1", media=MEDIA)
    store.add_archive(RID, "c1", kind="single", temp_path="t", final_path="f")
    store.close()
    store = Store.open(path)
    try:
        assert [r.id for r in store.running_recordings()] == [RID]
        assert store.get_connection(RID, "c1").media == MEDIA  # type: ignore[union-attr]
        assert len(store.unfinished_archives()) == 1
        assert [e.type for e in store.pending_events()] == ["recording.started"]
    finally:
        store.close()


def test_committed_state_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    script = f"""
import os
from pathlib import Path
from recorder.store import Event, Store
store = Store.open(Path({str(path)!r}))
store.create_recording({RID!r}, "sora", format="webm", events=[Event("recording.started", {{}})])
store.add_connection({RID!r}, "c1")
store.add_archive({RID!r}, "c1", kind="single", temp_path="t", final_path="f")
os._exit(9)  # no close, no checkpoint: as kill -9
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 9, done.stderr
    store = Store.open(path)
    try:
        assert [r.id for r in store.running_recordings()] == [RID]
        assert [a.connection_id for a in store.unfinished_archives()] == ["c1"]
        assert [e.type for e in store.pending_events()] == ["recording.started"]
    finally:
        store.close()


def test_calls_from_another_thread_work(store: Store) -> None:
    _recording(store)
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(store.get_recording(RID)))
    worker.start()
    worker.join()
    assert seen[0] == store.get_recording(RID)
