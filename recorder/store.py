"""Embedded state: one SQLite file (stdlib sqlite3, WAL journal).

Tables (schema version 3):

    meta          key/value bookkeeping: `schema_version`
    recordings    one row per recording: parameters, state, times
    connections   participants of a recording, with their media descriptions (ports included)
    archives      every media file: single archives and split pieces, temp and final paths
    events        the webhook outbox: lifecycle events, undelivered while `delivered_at` is NULL;
                  `uid` is the event's public id (the webhook's `id`)
    deliveries    per event and webhook target (its URL): attempts, next attempt, last error,
                  delivered or given up (`failed_at`); no row yet means "not tried"

A lifecycle event is inserted in the same transaction as the state change that causes it (every
mutating method takes `events=`), so after a crash the outbox never announces a change that was
not made, nor misses one that was.

Threading: the store is used from the asyncio thread; calls are short synchronous statements
(lifecycle changes, not packets). The one connection is opened with `check_same_thread=False`
so that a call from a worker thread (a sync FastAPI route) works too, and a re-entrant lock
serialises every statement and transaction, so such a call cannot interleave with a transaction
of the event loop. Never `await` inside `transaction()`: another coroutine of the same thread
would re-enter the lock and find itself inside the transaction.

Times are UNIX seconds (REAL); JSON columns hold compact JSON text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recorder.errors import RecorderError
from recorder.ids import encode_crockford

SCHEMA_VERSION = 3

RECORDING_STATES = ("running", "stopping", "stopped", "failed", "recovered")
# Recordings in these states were in progress: after a crash they are the ones to recover.
ACTIVE_RECORDING_STATES = ("running", "stopping")
CONNECTION_STATES = ("active", "ended")
ARCHIVE_KINDS = ("single", "split")
ARCHIVE_STATES = ("writing", "available", "failed", "recovered")
EVENT_TYPES = (
    "recording.started",
    "recording.report",
    "archive.started",
    "archive.available",
    "archive.failed",
    "split-archive.available",
    "split-archive.end",
)
# A state that is final: the row no longer changes state (a second stop or a late failure of a
# finished recording is a bug of the caller, reported as StateError).
_FINAL_RECORDING_STATES = frozenset({"stopped", "failed", "recovered"})
_FINAL_ARCHIVE_STATES = frozenset({"available", "failed", "recovered"})

# SQLite waits this long for a lock held by another process (an operator's `sqlite3` shell)
# instead of failing at once.
BUSY_TIMEOUT_MS = 5000


class StoreError(RecorderError):
    """The state file cannot be used, or a change is not allowed."""


class NotFoundError(StoreError, LookupError):
    """No recording, connection or archive with that id."""


class ConflictError(StoreError):
    """The row exists already: an active recording of the same channel and session, a
    connection id already in the recording, or an archive file already registered."""


class StateError(StoreError):
    """A state change the lifecycle does not allow (out of a final state)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A lifecycle event to put in the outbox; `recording_id` defaults to the row changed."""

    type: str
    payload: Mapping[str, Any]
    recording_id: str | None = None


@dataclass(frozen=True, slots=True)
class RecordingRow:
    id: str
    channel_id: str
    session_id: str | None
    state: str
    format: str
    split_duration: int | None
    split_only: bool
    expire_time: int | None
    recording_metadata: Any
    created_at: float
    started_at: float | None
    stopped_at: float | None
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    recording_id: str
    connection_id: str
    client_id: str | None
    bundle_id: str | None
    recording_block: bool
    media: dict[str, Any]
    state: str
    created_at: float
    ended_at: float | None


@dataclass(frozen=True, slots=True)
class ArchiveRow:
    id: int
    recording_id: str
    connection_id: str
    kind: str
    split_index: int | None
    temp_path: str
    final_path: str
    state: str
    size: int | None
    started_at: float | None
    stopped_at: float | None
    metadata: Any


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    recording_id: str | None
    type: str
    payload: Any
    created_at: float
    delivered_at: float | None
    # The public id (the webhook's `id`): the row id is only unique within one state file, and
    # a receiver deduplicating on it would drop the events of a recorder whose state was reset.
    uid: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One event's delivery to one webhook target."""

    event_id: int
    target: str
    attempts: int
    since: float  # start of the current delivery window: the maximum age counts from here
    next_attempt_at: float
    last_attempt_at: float | None
    last_error: str | None
    delivered_at: float | None
    failed_at: float | None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """An event that is next in line for a target, with its delivery state so far (a target
    that never tried it: no attempts, due since the event was created)."""

    event: EventRow
    attempts: int
    since: float
    next_attempt_at: float
    last_error: str | None


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """A delivery given up after the maximum age; it waits for a manual retry."""

    event: EventRow
    target: str
    attempts: int
    since: float
    last_attempt_at: float | None
    last_error: str | None
    failed_at: float


# ---------------------------------------------------------------------------------------------
# Schema: migration N brings a file from version N - 1 to N, each in its own transaction.


def _migrate_to_1(db: sqlite3.Connection) -> None:
    # Version 1 is the `meta` table alone, created before migrating (it holds the version).
    pass


def _migrate_to_2(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE recordings (
            id TEXT PRIMARY KEY,
            channel_id TEXT NOT NULL,
            session_id TEXT,
            state TEXT NOT NULL CHECK (state IN
                ('running', 'stopping', 'stopped', 'failed', 'recovered')),
            format TEXT NOT NULL,
            split_duration INTEGER,
            split_only INTEGER NOT NULL DEFAULT 0,
            expire_time INTEGER,
            recording_metadata TEXT,
            created_at REAL NOT NULL,
            started_at REAL,
            stopped_at REAL,
            expires_at REAL
        )
        """
    )
    # At most one running or stopping recording per channel and session (the API's
    # STARTED-RECORDING), enforced here so that two concurrent requests cannot both win.
    db.execute(
        """
        CREATE UNIQUE INDEX recordings_one_active
        ON recordings (channel_id, COALESCE(session_id, ''))
        WHERE state IN ('running', 'stopping')
        """
    )
    db.execute("CREATE INDEX recordings_by_state ON recordings (state, created_at)")
    db.execute(
        """
        CREATE TABLE connections (
            recording_id TEXT NOT NULL REFERENCES recordings (id),
            connection_id TEXT NOT NULL,
            client_id TEXT,
            bundle_id TEXT,
            recording_block INTEGER NOT NULL DEFAULT 0,
            media TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL CHECK (state IN ('active', 'ended')),
            created_at REAL NOT NULL,
            ended_at REAL,
            PRIMARY KEY (recording_id, connection_id)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE archives (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            recording_id TEXT NOT NULL,
            connection_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('single', 'split')),
            split_index INTEGER CHECK ((kind = 'single') = (split_index IS NULL)),
            temp_path TEXT NOT NULL,
            final_path TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('writing', 'available', 'failed', 'recovered')),
            size INTEGER,
            started_at REAL,
            stopped_at REAL,
            metadata TEXT,
            FOREIGN KEY (recording_id, connection_id)
                REFERENCES connections (recording_id, connection_id)
        )
        """
    )
    # One file per name: the single archive and each split index of a connection once.
    db.execute(
        """
        CREATE UNIQUE INDEX archives_one_file
        ON archives (recording_id, connection_id, kind, COALESCE(split_index, 0))
        """
    )
    db.execute("CREATE INDEX archives_by_state ON archives (state)")
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            recording_id TEXT REFERENCES recordings (id),
            type TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at REAL NOT NULL,
            delivered_at REAL
        )
        """
    )
    db.execute("CREATE INDEX events_pending ON events (id) WHERE delivered_at IS NULL")


def new_event_uid() -> str:
    """A random UUIDv4 in 26 Crockford Base32 characters, the form of our recording ids."""
    return encode_crockford(uuid.uuid4().int)


def _migrate_to_3(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE events ADD COLUMN uid TEXT")
    for (event_id,) in db.execute("SELECT id FROM events").fetchall():
        db.execute("UPDATE events SET uid = ? WHERE id = ?", (new_event_uid(), event_id))
    db.execute("CREATE UNIQUE INDEX events_by_uid ON events (uid)")
    # Ordering per recording scans the pending events of one recording in id order.
    db.execute(
        "CREATE INDEX events_pending_by_recording ON events (recording_id, id) "
        "WHERE delivered_at IS NULL"
    )
    db.execute(
        """
        CREATE TABLE deliveries (
            event_id INTEGER NOT NULL REFERENCES events (id),
            target TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            since REAL NOT NULL,
            next_attempt_at REAL NOT NULL,
            last_attempt_at REAL,
            last_error TEXT,
            delivered_at REAL,
            failed_at REAL,
            PRIMARY KEY (event_id, target)
        )
        """
    )
    db.execute(
        "CREATE INDEX deliveries_failed ON deliveries (failed_at) WHERE failed_at IS NOT NULL"
    )


_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _migrate_to_1,
    2: _migrate_to_2,
    3: _migrate_to_3,
}


# ---------------------------------------------------------------------------------------------


def _json(value: Any) -> str:
    # allow_nan=False: what we store must be valid JSON for any reader (and for webhooks).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _optional_json(value: Any) -> str | None:
    return None if value is None else _json(value)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _check(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _now(value: float | None) -> float:
    return time.time() if value is None else value


# (recording_id, type, payload as JSON text)
_PreparedEvent = tuple[str | None, str, str]


def _prepare(events: Iterable[Event]) -> list[_PreparedEvent]:
    """Check and serialise events before the transaction: a bad event type or a payload that
    is not JSON fails the call before anything is written."""
    prepared = []
    for event in events:
        _check(event.type, EVENT_TYPES, "event type")
        prepared.append((event.recording_id, event.type, _json(dict(event.payload))))
    return prepared


class Store:
    """The state file. One instance per process, used from the event loop thread (see above)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self.path = path
        self._lock = threading.RLock()
        # Open savepoints of the current transaction (0: none open).
        self._depth = 0
        # Called after a commit that put events in the outbox (the webhook worker's wake-up).
        self._event_listeners: list[Callable[[], None]] = []
        self._events_written = False

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating if needed) the state file and bring its schema up to date."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the sqlite3 module issues no implicit BEGIN; transactions are
        # the explicit ones of `transaction()`.
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed transaction survives a power cut, not only a process crash.
            # Commits happen per lifecycle change (a few a minute), and the outbox promise
            # ("persisted before the first attempt") depends on it.
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            store = cls(connection, path)
            store._migrate()
        except sqlite3.DatabaseError as error:
            connection.close()
            raise StoreError(f"state file {path}: {error}") from None
        except BaseException:
            connection.close()
            raise
        return store

    def _migrate(self) -> None:
        db = self._connection
        with self.transaction():
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"state file {self.path} has schema version {version}; this version of "
                    f"rtp-recorder knows up to {SCHEMA_VERSION}"
                )
            # All steps in one transaction: a failure leaves the file at its old version.
            for target in range(version + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[target](db)
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def schema_version(self) -> int:
        with self._lock:
            row = self._connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    # -----------------------------------------------------------------------------------------
    # Transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together or not at all.

        Re-entrant: the outermost level is a `BEGIN IMMEDIATE` transaction (the write lock is
        taken at once, so it cannot fail half-way for a lock), inner levels are savepoints, so
        a method that opens its own transaction joins the caller's.
        """
        with self._lock:
            db = self._connection
            depth = self._depth
            savepoint = f"level_{depth}"
            db.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
            self._depth = depth + 1
            try:
                yield
            except BaseException:
                self._depth = depth
                if depth == 0:
                    db.execute("ROLLBACK")
                    self._events_written = False
                else:
                    db.execute(f"ROLLBACK TO {savepoint}")
                    db.execute(f"RELEASE {savepoint}")
                raise
            self._depth = depth
            try:
                db.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
            except BaseException:
                # A failed COMMIT (disk full, I/O error) can leave the transaction open; the
                # next caller must not find itself inside it.
                if depth == 0 and db.in_transaction:
                    db.execute("ROLLBACK")
                    self._events_written = False
                raise
            if depth == 0 and self._events_written:
                self._events_written = False
                self._notify()

    def add_event_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after each commit that put events in the outbox (from the
        committing thread; it must be quick and must not use the store)."""
        self._event_listeners.append(listener)

    def remove_event_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._event_listeners:
            self._event_listeners.remove(listener)

    def _notify(self) -> None:
        for listener in list(self._event_listeners):
            # A listener's failure is its own; the transaction has committed already.
            with suppress(Exception):
                listener()

    def _query(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._connection.cursor()
            cursor.row_factory = sqlite3.Row
            return cursor.execute(sql, parameters).fetchall()

    def _insert_events(self, events: Sequence[_PreparedEvent], recording_id: str | None) -> None:
        at = time.time()
        for event_recording_id, event_type, payload in events:
            self._connection.execute(
                "INSERT INTO events (recording_id, type, payload, created_at, uid) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    event_recording_id if event_recording_id is not None else recording_id,
                    event_type,
                    payload,
                    at,
                    new_event_uid(),
                ),
            )
            # A savepoint rolled back later leaves a spurious wake-up at most: harmless.
            self._events_written = True

    # -----------------------------------------------------------------------------------------
    # Recordings

    def create_recording(
        self,
        recording_id: str,
        channel_id: str,
        *,
        session_id: str | None = None,
        format: str,
        split_duration: int | None = None,
        split_only: bool = False,
        expire_time: int | None = None,
        recording_metadata: Any = None,
        created_at: float | None = None,
        started_at: float | None = None,
        expires_at: float | None = None,
        state: str = "running",
        events: Sequence[Event] = (),
    ) -> RecordingRow:
        """Insert a recording; `ConflictError` if its id is taken or its channel and session
        already have a running or stopping recording."""
        _check(state, RECORDING_STATES, "recording state")
        created = _now(created_at)
        prepared = _prepare(events)
        with self.transaction():
            try:
                self._connection.execute(
                    """
                    INSERT INTO recordings (id, channel_id, session_id, state, format,
                        split_duration, split_only, expire_time, recording_metadata,
                        created_at, started_at, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    (
                        recording_id,
                        channel_id,
                        session_id,
                        state,
                        format,
                        split_duration,
                        int(split_only),
                        expire_time,
                        _optional_json(recording_metadata),
                        created,
                        started_at,
                        expires_at,
                    ),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(
                    f"channel {channel_id!r} (session {session_id!r}) is already recording"
                    if self.get_recording(recording_id) is None
                    else f"recording {recording_id} exists"
                ) from None
            self._insert_events(prepared, recording_id)
        return self._recording(recording_id)

    def get_recording(self, recording_id: str) -> RecordingRow | None:
        rows = self._query("SELECT * FROM recordings WHERE id = ?", (recording_id,))
        return _recording_row(rows[0]) if rows else None

    def _recording(self, recording_id: str) -> RecordingRow:
        row = self.get_recording(recording_id)
        if row is None:
            raise NotFoundError(f"no recording {recording_id!r}")
        return row

    def list_recordings(
        self, state: str | Iterable[str] | None = None, channel_id: str | None = None
    ) -> list[RecordingRow]:
        """Recordings oldest first, optionally only those in `state` (one or several) and of
        `channel_id`."""
        clauses: list[str] = []
        parameters: list[Any] = []
        if state is not None:
            states = [state] if isinstance(state, str) else list(state)
            for value in states:
                _check(value, RECORDING_STATES, "recording state")
            clauses.append(f"state IN ({', '.join('?' * len(states))})")
            parameters.extend(states)
        if channel_id is not None:
            clauses.append("channel_id = ?")
            parameters.append(channel_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(f"SELECT * FROM recordings {where} ORDER BY created_at, id", parameters)
        return [_recording_row(row) for row in rows]

    def active_recording(self, channel_id: str, session_id: str | None) -> RecordingRow | None:
        """The running or stopping recording of this channel and session, if any."""
        rows = self._query(
            """
            SELECT * FROM recordings WHERE channel_id = ? AND COALESCE(session_id, '') = ?
            AND state IN ('running', 'stopping')
            """,
            (channel_id, session_id or ""),
        )
        return _recording_row(rows[0]) if rows else None

    def running_recordings(self) -> list[RecordingRow]:
        """Recordings that were running or stopping: at start-up, those the previous process
        left unfinished, to recover."""
        return self.list_recordings(state=ACTIVE_RECORDING_STATES)

    def set_recording_state(
        self,
        recording_id: str,
        state: str,
        *,
        started_at: float | None = None,
        stopped_at: float | None = None,
        events: Sequence[Event] = (),
    ) -> RecordingRow:
        """Change a recording's state (and the times given), with its events, atomically."""
        _check(state, RECORDING_STATES, "recording state")
        prepared = _prepare(events)
        with self.transaction():
            current = self._recording(recording_id)
            if current.state in _FINAL_RECORDING_STATES and state != current.state:
                raise StateError(f"recording {recording_id} is {current.state}, not {state}")
            self._connection.execute(
                """
                UPDATE recordings SET state = ?, started_at = COALESCE(?, started_at),
                    stopped_at = COALESCE(?, stopped_at) WHERE id = ?
                """,
                (state, started_at, stopped_at, recording_id),
            )
            self._insert_events(prepared, recording_id)
        return self._recording(recording_id)

    # -----------------------------------------------------------------------------------------
    # Connections

    def add_connection(
        self,
        recording_id: str,
        connection_id: str,
        *,
        client_id: str | None = None,
        bundle_id: str | None = None,
        recording_block: bool = False,
        media: Mapping[str, Any] | None = None,
        created_at: float | None = None,
        events: Sequence[Event] = (),
    ) -> ConnectionRow:
        """Add an active connection; `ConflictError` if the recording has that id already.

        `media` is the connection's description (audio / video with codec, payload type,
        ports, …), stored as given.
        """
        created = _now(created_at)
        prepared = _prepare(events)
        with self.transaction():
            self._recording(recording_id)
            try:
                self._connection.execute(
                    """
                    INSERT INTO connections (recording_id, connection_id, client_id, bundle_id,
                        recording_block, media, state, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, 'active', ?)
                    """,
                    (
                        recording_id,
                        connection_id,
                        client_id,
                        bundle_id,
                        int(recording_block),
                        _json(dict(media or {})),
                        created,
                    ),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(
                    f"recording {recording_id} has a connection {connection_id!r} already"
                ) from None
            self._insert_events(prepared, recording_id)
        return self._connection_row(recording_id, connection_id)

    def get_connection(self, recording_id: str, connection_id: str) -> ConnectionRow | None:
        rows = self._query(
            "SELECT * FROM connections WHERE recording_id = ? AND connection_id = ?",
            (recording_id, connection_id),
        )
        return _connection_row(rows[0]) if rows else None

    def _connection_row(self, recording_id: str, connection_id: str) -> ConnectionRow:
        row = self.get_connection(recording_id, connection_id)
        if row is None:
            raise NotFoundError(f"recording {recording_id} has no connection {connection_id!r}")
        return row

    def list_connections(self, recording_id: str, state: str | None = None) -> list[ConnectionRow]:
        """A recording's connections in the order they were added."""
        sql = "SELECT * FROM connections WHERE recording_id = ?"
        parameters: list[Any] = [recording_id]
        if state is not None:
            sql += " AND state = ?"
            parameters.append(_check(state, CONNECTION_STATES, "connection state"))
        rows = self._query(sql + " ORDER BY created_at, rowid", parameters)
        return [_connection_row(row) for row in rows]

    def set_connection_state(
        self,
        recording_id: str,
        connection_id: str,
        state: str,
        *,
        ended_at: float | None = None,
        events: Sequence[Event] = (),
    ) -> ConnectionRow:
        """Mark a connection active or ended (with `ended_at`), with its events, atomically."""
        _check(state, CONNECTION_STATES, "connection state")
        prepared = _prepare(events)
        with self.transaction():
            current = self._connection_row(recording_id, connection_id)
            if current.state == "ended" and state != "ended":
                raise StateError(f"connection {connection_id!r} has ended")
            if state == "ended" and ended_at is None and current.ended_at is None:
                ended_at = time.time()
            self._connection.execute(
                """
                UPDATE connections SET state = ?, ended_at = COALESCE(?, ended_at)
                WHERE recording_id = ? AND connection_id = ?
                """,
                (state, ended_at, recording_id, connection_id),
            )
            self._insert_events(prepared, recording_id)
        return self._connection_row(recording_id, connection_id)

    # -----------------------------------------------------------------------------------------
    # Archives

    def add_archive(
        self,
        recording_id: str,
        connection_id: str,
        *,
        kind: str,
        split_index: int | None = None,
        temp_path: str | Path,
        final_path: str | Path,
        started_at: float | None = None,
        metadata: Any = None,
        events: Sequence[Event] = (),
    ) -> ArchiveRow:
        """Register a file being written (state `writing`); `ConflictError` if the connection
        has that file already. A split piece has a `split_index`, a single archive none."""
        _check(kind, ARCHIVE_KINDS, "archive kind")
        if (kind == "split") != (split_index is not None):
            raise ValueError("a split archive has a split_index and a single archive none")
        prepared = _prepare(events)
        with self.transaction():
            self._connection_row(recording_id, connection_id)
            try:
                cursor = self._connection.execute(
                    """
                    INSERT INTO archives (recording_id, connection_id, kind, split_index,
                        temp_path, final_path, state, started_at, metadata)
                    VALUES (?, ?, ?, ?, ?, ?, 'writing', ?, ?)
                    """,
                    (
                        recording_id,
                        connection_id,
                        kind,
                        split_index,
                        str(temp_path),
                        str(final_path),
                        started_at,
                        _optional_json(metadata),
                    ),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(
                    f"recording {recording_id} connection {connection_id!r} has that "
                    f"{kind} archive already"
                ) from None
            archive_id = cursor.lastrowid
            assert archive_id is not None
            self._insert_events(prepared, recording_id)
        return self._archive(archive_id)

    def update_archive(
        self,
        archive_id: int,
        *,
        state: str | None = None,
        size: int | None = None,
        started_at: float | None = None,
        stopped_at: float | None = None,
        final_path: str | Path | None = None,
        metadata: Any = None,
        events: Sequence[Event] = (),
    ) -> ArchiveRow:
        """Change what is given (None leaves a field as it is), with its events, atomically."""
        if state is not None:
            _check(state, ARCHIVE_STATES, "archive state")
        prepared = _prepare(events)
        with self.transaction():
            current = self._archive(archive_id)
            if (
                state is not None
                and current.state in _FINAL_ARCHIVE_STATES
                and state != current.state
            ):
                raise StateError(f"archive {archive_id} is {current.state}, not {state}")
            self._connection.execute(
                """
                UPDATE archives SET state = COALESCE(?, state), size = COALESCE(?, size),
                    started_at = COALESCE(?, started_at), stopped_at = COALESCE(?, stopped_at),
                    final_path = COALESCE(?, final_path),
                    metadata = COALESCE(?, metadata)
                WHERE id = ?
                """,
                (
                    state,
                    size,
                    started_at,
                    stopped_at,
                    None if final_path is None else str(final_path),
                    _optional_json(metadata),
                    archive_id,
                ),
            )
            self._insert_events(prepared, current.recording_id)
        return self._archive(archive_id)

    def get_archive(self, archive_id: int) -> ArchiveRow | None:
        rows = self._query("SELECT * FROM archives WHERE id = ?", (archive_id,))
        return _archive_row(rows[0]) if rows else None

    def _archive(self, archive_id: int) -> ArchiveRow:
        row = self.get_archive(archive_id)
        if row is None:
            raise NotFoundError(f"no archive {archive_id}")
        return row

    def list_archives(
        self, recording_id: str, connection_id: str | None = None
    ) -> list[ArchiveRow]:
        """A recording's archives in the order they were started."""
        sql = "SELECT * FROM archives WHERE recording_id = ?"
        parameters: list[Any] = [recording_id]
        if connection_id is not None:
            sql += " AND connection_id = ?"
            parameters.append(connection_id)
        rows = self._query(sql + " ORDER BY id", parameters)
        return [_archive_row(row) for row in rows]

    def unfinished_archives(self, recording_id: str | None = None) -> list[ArchiveRow]:
        """Archives still `writing`: after a crash, the temp files to recover."""
        sql = "SELECT * FROM archives WHERE state = 'writing'"
        parameters: list[Any] = []
        if recording_id is not None:
            sql += " AND recording_id = ?"
            parameters.append(recording_id)
        rows = self._query(sql + " ORDER BY id", parameters)
        return [_archive_row(row) for row in rows]

    # -----------------------------------------------------------------------------------------
    # Events (the webhook outbox)

    def add_events(self, events: Sequence[Event]) -> None:
        """Put events in the outbox on their own (or in the caller's open transaction)."""
        prepared = _prepare(events)
        with self.transaction():
            self._insert_events(prepared, None)

    def pending_events(self, limit: int | None = None) -> list[EventRow]:
        """Undelivered events, oldest first."""
        sql = "SELECT * FROM events WHERE delivered_at IS NULL ORDER BY id"
        parameters: list[Any] = []
        if limit is not None:
            sql += " LIMIT ?"
            parameters.append(limit)
        return [_event_row(row) for row in self._query(sql, parameters)]

    def list_events(self, recording_id: str) -> list[EventRow]:
        """A recording's events, delivered or not, oldest first."""
        rows = self._query(
            "SELECT * FROM events WHERE recording_id = ? ORDER BY id", (recording_id,)
        )
        return [_event_row(row) for row in rows]

    def mark_event_delivered(self, event_id: int, delivered_at: float | None = None) -> None:
        with self.transaction():
            cursor = self._connection.execute(
                "UPDATE events SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL",
                (_now(delivered_at), event_id),
            )
            if cursor.rowcount == 0 and not self._query(
                "SELECT 1 FROM events WHERE id = ?", (event_id,)
            ):
                raise NotFoundError(f"no event {event_id}")

    def get_event(self, uid: str) -> EventRow | None:
        """The event with this public id."""
        rows = self._query("SELECT * FROM events WHERE uid = ?", (uid,))
        return _event_row(rows[0]) if rows else None

    # -----------------------------------------------------------------------------------------
    # Deliveries (one row per event and webhook target, created at the first attempt)

    def due_deliveries(
        self, target: str, types: Iterable[str] | None = None, limit: int = 1000
    ) -> list[DueDelivery]:
        """For `target`, the next event of each recording: the oldest one (of `types`, all when
        None) that is neither delivered to it nor given up, whether due now or later.

        An event without a recording is a line of its own. Later events of a recording wait
        behind this one, which is how a target sees each recording's events in order.
        """
        type_clause, parameters = "", [target]
        if types is not None:
            wanted = sorted(set(types))
            if not wanted:
                return []
            type_clause = f"AND e.type IN ({', '.join('?' * len(wanted))})"
            parameters += wanted
        parameters.append(limit)
        rows = self._query(
            f"""
            SELECT * FROM (
                SELECT e.*, d.attempts, d.since, d.next_attempt_at, d.last_error,
                    ROW_NUMBER() OVER (
                        PARTITION BY COALESCE(e.recording_id, '#' || e.id) ORDER BY e.id
                    ) AS position
                FROM events e
                LEFT JOIN deliveries d ON d.event_id = e.id AND d.target = ?
                WHERE e.delivered_at IS NULL AND d.delivered_at IS NULL AND d.failed_at IS NULL
                {type_clause}
            )
            WHERE position = 1 ORDER BY id LIMIT ?
            """,
            parameters,
        )
        return [
            DueDelivery(
                event=_event_row(row),
                attempts=row["attempts"] or 0,
                since=row["since"] if row["since"] is not None else row["created_at"],
                next_attempt_at=(
                    row["next_attempt_at"]
                    if row["next_attempt_at"] is not None
                    else row["created_at"]
                ),
                last_error=row["last_error"],
            )
            for row in rows
        ]

    def record_delivery_failure(
        self,
        event_id: int,
        target: str,
        *,
        attempted_at: float,
        error: str,
        next_attempt_at: float,
        failed: bool = False,
    ) -> DeliveryRow:
        """Count a failed attempt: retry at `next_attempt_at`, or give up (`failed`)."""
        with self.transaction():
            event = self._event_by_id(event_id)
            self._connection.execute(
                """
                INSERT INTO deliveries (event_id, target, attempts, since, next_attempt_at,
                    last_attempt_at, last_error, failed_at)
                VALUES (?, ?, 1, ?, ?, ?, ?, ?)
                ON CONFLICT (event_id, target) DO UPDATE SET
                    attempts = attempts + 1, next_attempt_at = excluded.next_attempt_at,
                    last_attempt_at = excluded.last_attempt_at,
                    last_error = excluded.last_error, failed_at = excluded.failed_at
                """,
                (
                    event_id,
                    target,
                    event.created_at,
                    next_attempt_at,
                    attempted_at,
                    error,
                    attempted_at if failed else None,
                ),
            )
        return self._delivery(event_id, target)

    def record_delivery_success(
        self,
        event_id: int,
        target: str,
        *,
        delivered_at: float | None = None,
        required_targets: Sequence[str] = (),
    ) -> bool:
        """Mark the event delivered to `target`; once every one of `required_targets` (the
        targets that want this event) has it, the event leaves the outbox. True if it did."""
        at = _now(delivered_at)
        with self.transaction():
            event = self._event_by_id(event_id)
            self._connection.execute(
                """
                INSERT INTO deliveries (event_id, target, attempts, since, next_attempt_at,
                    last_attempt_at, delivered_at)
                VALUES (?, ?, 1, ?, ?, ?, ?)
                ON CONFLICT (event_id, target) DO UPDATE SET
                    attempts = attempts + 1, last_attempt_at = excluded.last_attempt_at,
                    delivered_at = COALESCE(delivered_at, excluded.delivered_at),
                    failed_at = NULL
                """,
                (event_id, target, event.created_at, at, at, at),
            )
            return self._settle(event_id, {target, *required_targets}, at)

    def _settle(self, event_id: int, required: set[str], at: float) -> bool:
        delivered = {
            row["target"]
            for row in self._query(
                "SELECT target FROM deliveries WHERE event_id = ? AND delivered_at IS NOT NULL",
                (event_id,),
            )
        }
        if not required <= delivered:
            return False
        self._connection.execute(
            "UPDATE events SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL",
            (at, event_id),
        )
        return True

    def settle_events(
        self, targets: Mapping[str, Iterable[str] | None], at: float | None = None
    ) -> int:
        """Take out of the outbox every pending event that each target wanting it (by its
        type filter: None wants all) has received, none included. Returns how many.

        Needed when the configured targets change: an event may be waiting only for a target
        that is gone, or for none at all.
        """
        now = _now(at)
        filters = {
            target: None if types is None else set(types) for target, types in targets.items()
        }
        settled = 0
        with self.transaction():
            delivered: dict[int, set[str]] = {}
            for row in self._query(
                """
                SELECT d.event_id, d.target FROM deliveries d JOIN events e ON e.id = d.event_id
                WHERE e.delivered_at IS NULL AND d.delivered_at IS NOT NULL
                """
            ):
                delivered.setdefault(row["event_id"], set()).add(row["target"])
            for row in self._query("SELECT id, type FROM events WHERE delivered_at IS NULL"):
                wanted = {
                    t for t, types in filters.items() if types is None or row["type"] in types
                }
                if wanted <= delivered.get(row["id"], set()):
                    self._connection.execute(
                        "UPDATE events SET delivered_at = ? WHERE id = ?", (now, row["id"])
                    )
                    settled += 1
        return settled

    def failed_deliveries(self, limit: int | None = None) -> list[FailedDelivery]:
        """Deliveries given up after the maximum age, oldest event first."""
        sql = """
            SELECT e.*, d.target, d.attempts, d.since, d.last_attempt_at, d.last_error,
                d.failed_at
            FROM deliveries d JOIN events e ON e.id = d.event_id
            WHERE d.failed_at IS NOT NULL ORDER BY e.id, d.target
        """
        parameters: list[Any] = []
        if limit is not None:
            sql += " LIMIT ?"
            parameters.append(limit)
        return [
            FailedDelivery(
                event=_event_row(row),
                target=row["target"],
                attempts=row["attempts"],
                since=row["since"],
                last_attempt_at=row["last_attempt_at"],
                last_error=row["last_error"],
                failed_at=row["failed_at"],
            )
            for row in self._query(sql, parameters)
        ]

    def retry_failed_delivery(
        self, uid: str, targets: Iterable[str] | None = None, at: float | None = None
    ) -> list[str]:
        """Give the event's failed deliveries (to `targets`, all when None) a new window:
        due now, attempts and maximum age counted afresh. Returns the targets reset;
        `NotFoundError` if no event has this public id."""
        now = _now(at)
        with self.transaction():
            event = self.get_event(uid)
            if event is None:
                raise NotFoundError(f"no event {uid!r}")
            failed = [
                row["target"]
                for row in self._query(
                    "SELECT target FROM deliveries WHERE event_id = ? AND failed_at IS NOT NULL "
                    "ORDER BY target",
                    (event.id,),
                )
            ]
            if targets is not None:
                allowed = set(targets)
                failed = [target for target in failed if target in allowed]
            for target in failed:
                self._connection.execute(
                    """
                    UPDATE deliveries SET failed_at = NULL, attempts = 0, since = ?,
                        next_attempt_at = ? WHERE event_id = ? AND target = ?
                    """,
                    (now, now, event.id, target),
                )
        return failed

    def list_deliveries(self, event_id: int) -> list[DeliveryRow]:
        rows = self._query(
            "SELECT * FROM deliveries WHERE event_id = ? ORDER BY target", (event_id,)
        )
        return [_delivery_row(row) for row in rows]

    def _delivery(self, event_id: int, target: str) -> DeliveryRow:
        rows = self._query(
            "SELECT * FROM deliveries WHERE event_id = ? AND target = ?", (event_id, target)
        )
        if not rows:
            raise NotFoundError(f"event {event_id} has no delivery to {target}")
        return _delivery_row(rows[0])

    def _event_by_id(self, event_id: int) -> EventRow:
        rows = self._query("SELECT * FROM events WHERE id = ?", (event_id,))
        if not rows:
            raise NotFoundError(f"no event {event_id}")
        return _event_row(rows[0])


def _recording_row(row: sqlite3.Row) -> RecordingRow:
    return RecordingRow(
        id=row["id"],
        channel_id=row["channel_id"],
        session_id=row["session_id"],
        state=row["state"],
        format=row["format"],
        split_duration=row["split_duration"],
        split_only=bool(row["split_only"]),
        expire_time=row["expire_time"],
        recording_metadata=_loads(row["recording_metadata"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
        expires_at=row["expires_at"],
    )


def _connection_row(row: sqlite3.Row) -> ConnectionRow:
    return ConnectionRow(
        recording_id=row["recording_id"],
        connection_id=row["connection_id"],
        client_id=row["client_id"],
        bundle_id=row["bundle_id"],
        recording_block=bool(row["recording_block"]),
        media=_loads(row["media"]),
        state=row["state"],
        created_at=row["created_at"],
        ended_at=row["ended_at"],
    )


def _archive_row(row: sqlite3.Row) -> ArchiveRow:
    return ArchiveRow(
        id=row["id"],
        recording_id=row["recording_id"],
        connection_id=row["connection_id"],
        kind=row["kind"],
        split_index=row["split_index"],
        temp_path=row["temp_path"],
        final_path=row["final_path"],
        state=row["state"],
        size=row["size"],
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
        metadata=_loads(row["metadata"]),
    )


def _event_row(row: sqlite3.Row) -> EventRow:
    return EventRow(
        id=row["id"],
        recording_id=row["recording_id"],
        type=row["type"],
        payload=_loads(row["payload"]),
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
        uid=row["uid"],
    )


def _delivery_row(row: sqlite3.Row) -> DeliveryRow:
    return DeliveryRow(
        event_id=row["event_id"],
        target=row["target"],
        attempts=row["attempts"],
        since=row["since"],
        next_attempt_at=row["next_attempt_at"],
        last_attempt_at=row["last_attempt_at"],
        last_error=row["last_error"],
        delivered_at=row["delivered_at"],
        failed_at=row["failed_at"],
    )
