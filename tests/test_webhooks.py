"""Webhook delivery (recorder.events) against httpx.MockTransport receivers.

The clock and the jitter are injected, so retries, backoff and the maximum age are checked to
the second without waiting; the tests that need the background loop use the real clock and
short intervals. The signature is checked with the receiver snippet of the README itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recorder import store as store_module
from recorder.config import load_service_config
from recorder.events import (
    BACKOFF_CAP,
    DEFAULT_MAX_AGE,
    WebhookDispatcher,
    WebhookTarget,
    backoff_delay,
    envelope,
)
from recorder.service import ConfigError, ServiceConfig
from recorder.store import Event, Store
from tests.test_config import _args, _toml

ROOT = Path(__file__).resolve().parent.parent
URL = "https://hooks.example/recorder"
OTHER = "https://indexer.example/hooks"
THIRD = "http://audit.example/in"
SECRET = "hmac-key"


def readme_verify() -> Callable[..., bool]:
    """`verify` from the README's Webhooks section: what we tell receivers to run."""
    section = (ROOT / "README.md").read_text().split("## Webhooks", 1)[1]
    code = re.search(r"```python\n(.+?)\n```", section, re.S)
    assert code, "the README's Webhooks section has no python snippet"
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)  # our own README's code
    return namespace["verify"]  # type: ignore[no-any-return]


class Clock:
    """Wall time that moves only when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Request:
    url: str
    headers: httpx.Headers
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


Answer = Callable[[Request], Awaitable[httpx.Response] | httpx.Response]


@dataclass
class Receivers:
    """Every request any target got, answered by `answer` (200 by default)."""

    answer: Answer = field(default=lambda request: httpx.Response(200))
    requests: list[Request] = field(default_factory=list)

    async def handle(self, http: httpx.Request) -> httpx.Response:
        request = Request(str(http.url), http.headers, await http.aread())
        self.requests.append(request)
        answer = self.answer(request)
        return await answer if isinstance(answer, Awaitable) else answer

    def to(self, url: str) -> list[Request]:
        return [request for request in self.requests if request.url == url]

    def ids(self, url: str = URL) -> list[str]:
        return [request.json["id"] for request in self.to(url)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "state.sqlite3")
    yield opened
    opened.close()


def _recording(store: Store, rid: str, *types: str) -> None:
    store.create_recording(
        rid, f"channel-{rid}", format="webm", events=[Event("recording.started", {})]
    )
    for number, event_type in enumerate(types):
        store.add_events([Event(event_type, {"recording_id": rid, "n": number}, rid)])


def _dispatcher(
    store: Store,
    receivers: Receivers,
    targets: list[WebhookTarget] | None = None,
    clock: Callable[[], float] = time.time,
    **options: Any,
) -> WebhookDispatcher:
    return WebhookDispatcher(
        store,
        targets if targets is not None else [WebhookTarget(URL, SECRET)],
        transport=httpx.MockTransport(receivers.handle),
        clock=clock,
        draw=lambda: 1.0,  # the top of the jitter range: delays are exactly d
        **options,
    )


async def _deliver_all(dispatcher: WebhookDispatcher, clock: Clock, passes: int = 200) -> None:
    """Passes until nothing is left, moving the clock to each next attempt."""
    for _ in range(passes):
        if await dispatcher.deliver_due():
            continue
        next_due = dispatcher.next_attempt_at()
        if next_due is None:
            return
        clock.now = max(clock.now, next_due)
    raise AssertionError("the outbox did not empty")


def _run(coroutine: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coroutine

    return asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# What a receiver gets


def test_envelope_headers_and_signature(store: Store) -> None:
    _recording(store, "R1", "archive.started", "archive.available")
    receivers = Receivers()
    verify = readme_verify()

    async def scenario() -> None:
        dispatcher = _dispatcher(store, receivers)
        await dispatcher.open()
        await _deliver_all(dispatcher, Clock())
        await dispatcher.stop()

    _run(scenario())
    events = store.list_events("R1")
    assert [r.json["type"] for r in receivers.requests] == [e.type for e in events]
    assert store.pending_events() == []
    deliveries: set[str] = set()
    for request, event in zip(receivers.requests, events, strict=True):
        body = request.json
        # The envelope first, then the stored payload.
        assert list(body)[:3] == ["id", "type", "timestamp"]
        assert body["id"] == event.uid and len(body["id"]) == 26
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["timestamp"])
        assert body["recording_id"] == "R1"
        assert {k: body[k] for k in event.payload} == event.payload
        headers = request.headers
        assert headers["content-type"] == "application/json"
        assert headers["x-recorder-event"] == event.type
        assert headers["user-agent"].startswith("rtp-recorder/")
        deliveries.add(headers["x-recorder-delivery"])
        timestamp, signature = headers["x-recorder-timestamp"], headers["x-recorder-signature"]
        assert abs(int(timestamp) - time.time()) < 60
        assert verify(SECRET.encode(), request.body, timestamp, signature)
        assert not verify(b"other-key", request.body, timestamp, signature)
        assert not verify(SECRET.encode(), request.body + b" ", timestamp, signature)
        assert not verify(SECRET.encode(), request.body, str(int(timestamp) - 3600), signature)
    assert len({r.json["id"] for r in receivers.requests}) == len(events) == len(deliveries)


def test_the_envelope_keeps_its_own_fields_and_the_payloads_recording() -> None:
    row = store_module.EventRow(
        7, "R", "archive.failed", {"id": "x", "recording_id": "P"}, 0.0, None, "U"
    )
    body = envelope(row)
    assert (body["id"], body["type"], body["recording_id"]) == ("U", "archive.failed", "P")
    assert body["timestamp"] == "1970-01-01T00:00:00.000000Z"


# ---------------------------------------------------------------------------------------------
# Retries


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    top = [backoff_delay(n, lambda: 1.0) for n in range(1, 12)]
    assert top == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    bottom = [backoff_delay(n, lambda: 0.0) for n in range(1, 12)]
    assert bottom == [d / 2 for d in top]
    assert backoff_delay(10_000, lambda: 0.5) == 0.75 * BACKOFF_CAP


def test_failures_are_retried_on_schedule_until_a_2xx(store: Store) -> None:
    _recording(store, "R1")
    [event] = store.list_events("R1")
    clock = Clock()
    statuses = [500, 404, 302, 500, 500, 204]
    receivers = Receivers(lambda request: httpx.Response(statuses.pop(0)))

    async def scenario() -> list[tuple[float, float]]:
        dispatcher = _dispatcher(store, receivers, clock=clock)
        await dispatcher.open()
        schedule = []
        while statuses:
            assert await dispatcher.deliver_due() == 1
            if not statuses:
                break
            [row] = store.list_deliveries(event.id)
            schedule.append((row.last_attempt_at or 0.0, row.next_attempt_at))
            # Not before it is due, however often the store is looked at.
            clock.now = row.next_attempt_at - 0.01
            assert await dispatcher.deliver_due() == 0
            clock.now = row.next_attempt_at
        await dispatcher.stop()
        return schedule

    schedule = _run(scenario())
    assert [round(due - at, 6) for at, due in schedule] == [1, 2, 4, 8, 16]
    [row] = store.list_deliveries(event.id)
    assert row.attempts == 6 and row.delivered_at is not None and row.failed_at is None
    assert store.pending_events() == []
    assert len(receivers.requests) == 6
    # The same event every time; a new delivery id for every attempt.
    assert {r.body for r in receivers.requests} == {receivers.requests[0].body}
    assert len({r.headers["x-recorder-delivery"] for r in receivers.requests}) == 6


def test_why_an_attempt_failed_is_kept(store: Store) -> None:
    _recording(store, "R1")
    [event] = store.list_events("R1")
    clock = Clock()

    async def hang(request: Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    def connect_error(request: Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    def read_timeout(request: Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out")

    answers: list[Answer] = [
        lambda request: httpx.Response(503, headers={"Retry-After": "120"}),
        lambda request: httpx.Response(429, headers={"Retry-After": "99999"}),
        lambda request: httpx.Response(302, headers={"Location": "https://elsewhere/"}),
        connect_error,
        read_timeout,
        hang,
    ]
    receivers = Receivers(lambda request: answers.pop(0)(request))

    async def scenario() -> list[tuple[str | None, float]]:
        dispatcher = _dispatcher(store, receivers, clock=clock, attempt_deadline=0.2)
        await dispatcher.open()
        seen = []
        while answers:
            assert await dispatcher.deliver_due() == 1
            [row] = store.list_deliveries(event.id)
            seen.append((row.last_error, round(row.next_attempt_at - clock.now, 6)))
            clock.now = row.next_attempt_at
        await dispatcher.stop()
        return seen

    seen = _run(scenario())
    assert seen == [
        ("HTTP 503 Service Unavailable", 120),  # Retry-After beyond the backoff
        ("HTTP 429 Too Many Requests", BACKOFF_CAP),  # ... but never beyond the cap
        ("HTTP 302 Found", 4),  # redirects are not followed
        ("ConnectError: connection refused", 8),
        ("ReadTimeout: timed out", 16),
        ("no answer within 0.2 s", 32),
    ]
    assert len(receivers.to("https://elsewhere/")) == 0


def test_after_the_maximum_age_a_delivery_is_failed_and_stops_blocking(store: Store) -> None:
    _recording(store, "R1", "archive.started")
    started, later = store.list_events("R1")
    clock = Clock()
    receivers = Receivers(
        lambda r: httpx.Response(500 if r.json["type"] == "recording.started" else 200)
    )

    async def scenario() -> list[float]:
        dispatcher = _dispatcher(store, receivers, clock=clock, max_age=3600)
        await dispatcher.open()
        attempts = []
        while not store.failed_deliveries():
            assert await dispatcher.deliver_due() == 1
            attempts.append(clock.now)
            assert receivers.requests[-1].json["type"] == "recording.started"
            [row] = store.list_deliveries(started.id)
            clock.now = row.next_attempt_at
        # Given up: the recording's next event goes.
        assert await dispatcher.deliver_due() == 1
        assert await dispatcher.deliver_due() == 0
        await dispatcher.stop()
        return attempts

    attempts = _run(scenario())
    # Waits of 1 + 2 + ... + 256 = 511 s, then 300 s each (the cap) up to 3511 s: the 21st
    # attempt is at the deadline itself, and fails for good.
    assert len(attempts) == 21
    assert attempts[-1] == started.created_at + 3600
    [failed] = store.failed_deliveries()
    assert (failed.event.uid, failed.target, failed.attempts) == (started.uid, URL, 21)
    assert failed.last_error == "HTTP 500 Internal Server Error"
    assert receivers.requests[-1].json["id"] == later.uid
    # Failed for one target: it stays in the outbox (undelivered), the later one does not.
    assert [e.id for e in store.pending_events()] == [started.id]


def test_an_event_older_than_the_maximum_age_still_gets_one_attempt(store: Store) -> None:
    _recording(store, "R1")
    clock = Clock()
    clock.now += 2 * DEFAULT_MAX_AGE  # the recorder was down for two days
    receivers = Receivers(lambda request: httpx.Response(500))

    async def scenario() -> None:
        dispatcher = _dispatcher(store, receivers, clock=clock)
        await dispatcher.open()
        assert await dispatcher.deliver_due() == 1
        assert await dispatcher.deliver_due() == 0
        await dispatcher.stop()

    _run(scenario())
    assert len(receivers.requests) == 1 and len(store.failed_deliveries()) == 1


# ---------------------------------------------------------------------------------------------
# Order, targets and filters


def test_each_recordings_events_in_order_and_recordings_do_not_block_each_other(
    store: Store,
) -> None:
    _recording(store, "A", "archive.started", "archive.available", "recording.report")
    _recording(store, "B", "archive.started", "archive.available", "recording.report")
    clock = Clock()
    rejected = {"count": 0}
    outcome: list[tuple[str, str, int]] = []  # (recording, type, status) in arrival order

    def answer(request: Request) -> httpx.Response:
        body = request.json
        status = 200
        if body["recording_id"] == "A" and body["type"] == "archive.started":
            rejected["count"] += 1
            status = 500 if rejected["count"] <= 4 else 200
        outcome.append((body["recording_id"], body["type"], status))
        return httpx.Response(status)

    receivers = Receivers(answer)

    async def scenario() -> None:
        dispatcher = _dispatcher(store, receivers, clock=clock)
        await dispatcher.open()
        await _deliver_all(dispatcher, clock)
        await dispatcher.stop()

    _run(scenario())
    order = ["recording.started", "archive.started", "archive.available", "recording.report"]
    for rid in ("A", "B"):
        delivered = [t for r, t, status in outcome if r == rid and status == 200]
        assert delivered == order
        # Nothing of a recording is sent past an event that has not gone through yet.
        sent = [t for r, t, _ in outcome if r == rid]
        assert sent == sorted(sent, key=order.index)
    # B went all the way through while A's archive.started was still being refused.
    b_done = outcome.index(("B", "recording.report", 200))
    a_unblocked = outcome.index(("A", "archive.started", 200))
    assert b_done < a_unblocked
    assert store.pending_events() == []


def test_targets_with_their_own_secrets_and_event_filters(store: Store) -> None:
    _recording(store, "R1", "archive.started", "archive.available", "recording.report")
    targets = [
        WebhookTarget(URL, SECRET),
        WebhookTarget(OTHER, "other-key", frozenset({"archive.available"})),
        WebhookTarget(THIRD, None, frozenset({"recording.report", "archive.available"})),
    ]
    clock = Clock()
    down = {OTHER}
    receivers = Receivers(lambda r: httpx.Response(503 if r.url in down else 200))
    verify = readme_verify()

    async def scenario() -> None:
        dispatcher = _dispatcher(store, receivers, targets, clock=clock)
        await dispatcher.open()
        await _deliver_all_but(dispatcher, clock, OTHER)
        # OTHER is down: the event it wants waits for it, the others are out of the outbox.
        assert [e.type for e in store.pending_events()] == ["archive.available"]
        down.clear()
        await _deliver_all(dispatcher, clock)
        await dispatcher.stop()

    _run(scenario())
    assert store.pending_events() == []
    types = [e.type for e in store.list_events("R1")]
    assert [r.json["type"] for r in receivers.to(URL)] == types
    assert {r.json["type"] for r in receivers.to(OTHER)} == {"archive.available"}
    assert [r.json["type"] for r in receivers.to(THIRD)] == [
        "archive.available",
        "recording.report",
    ]
    for url, secret in ((URL, SECRET), (OTHER, "other-key")):
        for request in receivers.to(url):
            headers = request.headers
            stamp, signature = headers["x-recorder-timestamp"], headers["x-recorder-signature"]
            # The injected clock ran ahead of real time: the freshness check is not the point.
            assert verify(secret.encode(), request.body, stamp, signature, tolerance=10**9)
    assert all("x-recorder-signature" not in r.headers for r in receivers.to(THIRD))


async def _deliver_all_but(dispatcher: WebhookDispatcher, clock: Clock, stuck: str) -> None:
    # Delivers until only `stuck` has anything left (it keeps failing).
    for _ in range(50):
        await dispatcher.deliver_due()
        left = {
            target.url
            for target in dispatcher.targets
            if store_due(dispatcher.store, target.url, target.events)
        }
        if left <= {stuck}:
            return
        clock.now += BACKOFF_CAP
    raise AssertionError("still delivering")


def store_due(store: Store, url: str, events: frozenset[str] | None) -> bool:
    return bool(store.due_deliveries(url, events))


def test_events_nobody_wants_or_only_a_removed_target_wanted_leave_the_outbox(
    store: Store,
) -> None:
    _recording(store, "R1", "archive.started", "archive.available")
    started, archive_started, available = store.list_events("R1")
    # archive.started was delivered to a target that is no longer configured; the one left
    # wants archive.available only.
    store.record_delivery_success(archive_started.id, OTHER, required_targets=[OTHER, URL])
    receivers = Receivers()

    async def scenario() -> None:
        dispatcher = _dispatcher(
            store, receivers, [WebhookTarget(URL, None, frozenset({"archive.available"}))]
        )
        await dispatcher.open()
        # The first pass settles the two events, then sends the one the target wants.
        assert await dispatcher.deliver_due() == 1
        assert await dispatcher.deliver_due() == 0
        await dispatcher.stop()

    _run(scenario())
    assert store.pending_events() == [] and receivers.ids() == [available.uid]
    assert started.id not in [d.event_id for d in store.list_deliveries(started.id)]


# ---------------------------------------------------------------------------------------------
# The background loop: wake-ups, polling, bounds, shutdown


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def test_a_commit_wakes_the_worker(store: Store) -> None:
    receivers = Receivers()

    async def scenario() -> float:
        # A poll so slow that only the wake-up can explain a quick delivery.
        dispatcher = _dispatcher(store, receivers, poll_interval=60)
        await dispatcher.start()
        await asyncio.sleep(0.1)
        _recording(store, "R1", "archive.started")
        took = await _until(lambda: len(receivers.requests) == 2)
        await dispatcher.stop()
        return took

    assert _run(scenario()) < 1.0
    assert store.pending_events() == []


def test_a_write_from_a_worker_thread_wakes_the_worker(store: Store) -> None:
    receivers = Receivers()

    async def scenario() -> None:
        dispatcher = _dispatcher(store, receivers, poll_interval=60)
        await dispatcher.start()
        await asyncio.to_thread(_recording, store, "R1")
        await _until(lambda: len(receivers.requests) == 1, timeout=1.0)
        await dispatcher.stop()

    _run(scenario())


def test_events_another_process_writes_are_found_by_polling(store: Store, tmp_path: Path) -> None:
    receivers = Receivers()

    async def scenario() -> None:
        dispatcher = _dispatcher(store, receivers, poll_interval=0.2)
        await dispatcher.start()
        other = Store.open(tmp_path / "state.sqlite3")  # its commits wake nobody here
        try:
            _recording(other, "R1", "archive.started")
        finally:
            other.close()
        await _until(lambda: len(receivers.requests) == 2, timeout=2.0)
        await dispatcher.stop()

    _run(scenario())


def test_in_flight_is_bounded_and_a_slow_receiver_blocks_neither_loop_nor_others(
    store: Store,
) -> None:
    for number in range(10):
        _recording(store, f"R{number}")
    slow = {"now": 0, "peak": 0}

    async def answer(request: Request) -> httpx.Response:
        if request.url == URL:
            slow["now"] += 1
            slow["peak"] = max(slow["peak"], slow["now"])
            await asyncio.sleep(0.3)
            slow["now"] -= 1
        return httpx.Response(200)

    receivers = Receivers(answer)
    targets = [WebhookTarget(URL, SECRET), WebhookTarget(OTHER, SECRET)]

    async def scenario() -> tuple[float, float]:
        dispatcher = _dispatcher(store, receivers, targets, max_in_flight=3)
        gaps = []

        async def heartbeat() -> None:
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                gaps.append(time.monotonic() - before)

        beating = asyncio.create_task(heartbeat())
        await dispatcher.start()
        fast = await _until(lambda: len(receivers.to(OTHER)) == 10)
        await _until(lambda: len(receivers.to(URL)) == 10 and not store.pending_events())
        await dispatcher.stop()
        beating.cancel()
        return fast, max(gaps)

    fast, longest_gap = _run(scenario())
    assert slow["peak"] == 3  # 10 recordings, at most 3 at a time
    assert fast < 0.3  # the fast receiver did not wait for the slow one
    assert longest_gap < 0.1


def test_stop_abandons_attempts_under_way_and_the_next_start_sends_them_again(
    store: Store,
) -> None:
    _recording(store, "R1")

    async def hang(request: Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200)

    hanging = Receivers(hang)
    working = Receivers()

    async def scenario() -> None:
        first = _dispatcher(store, hanging)
        await first.start()
        await _until(lambda: len(hanging.requests) == 1)
        started = time.monotonic()
        await first.stop(grace=0.2)
        assert time.monotonic() - started < 1.0
        second = _dispatcher(store, working)
        await second.start()
        await _until(lambda: not store.pending_events())
        await second.stop()

    _run(scenario())
    # At least once: the same event again, with the same id.
    assert hanging.ids() == working.ids() == [store.list_events("R1")[0].uid]


def test_stop_gives_what_is_due_a_grace_period(store: Store) -> None:
    receivers = Receivers()

    async def scenario() -> None:
        dispatcher = _dispatcher(store, receivers, poll_interval=60)
        await dispatcher.start()
        _recording(store, "R1", "archive.started", "archive.available", "recording.report")
        await dispatcher.stop(grace=2.0)

    _run(scenario())
    assert len(receivers.requests) == 4 and store.pending_events() == []


# ---------------------------------------------------------------------------------------------
# State, configuration and the API


def test_a_version_2_state_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    store_module._migrate_to_2(db)
    db.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    db.execute(
        "INSERT INTO recordings (id, channel_id, state, format, created_at) "
        "VALUES ('R1', 'c', 'running', 'webm', 1)"
    )
    for event_type in ("recording.started", "archive.started"):
        db.execute(
            "INSERT INTO events (recording_id, type, payload, created_at) "
            "VALUES ('R1', ?, '{}', 1)",
            (event_type,),
        )
    db.close()
    store = Store.open(path)
    try:
        assert store.schema_version() == 3
        events = store.pending_events()
        assert [e.type for e in events] == ["recording.started", "archive.started"]
        assert len({e.uid for e in events}) == 2 and all(len(e.uid or "") == 26 for e in events)
        assert [d.event.id for d in store.due_deliveries(URL)] == [events[0].id]
    finally:
        store.close()


def test_webhooks_from_the_toml_file(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        'webhook_max_age = 600\n[[webhooks]]\nurl = "https://b.example/x"\nsecret = "k2"\n'
        'events = ["archive.available", "split-archive.available"]\n'
        '[[webhooks]]\nurl = "http://c.example/y"\n',
    )
    config = load_service_config(
        _args("--config", str(path), "--webhook-url", URL, "--webhook-secret", "k1"), {}
    )
    assert config.webhook_max_age == 600
    assert config.webhook_targets() == (
        WebhookTarget(URL, "k1"),
        WebhookTarget(
            "https://b.example/x", "k2", frozenset({"archive.available", "split-archive.available"})
        ),
        WebhookTarget("http://c.example/y"),
    )
    assert "k1" not in repr(config) and "k2" not in repr(config)
    assert ServiceConfig().webhook_targets() == () and ServiceConfig().webhook_max_age == 86400


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('webhooks = "x"', ":webhooks: expected an array of tables ([[webhooks]]), got str"),
        ("webhooks = [1]", ":webhooks: entry 1: expected a table, got an integer"),
        ("[[webhooks]]\nsecret = 'k'", ":webhooks: entry 1: url is missing"),
        ("[[webhooks]]\nurl = 'http://a/'\nfilter = []", "entry 1: unknown key 'filter'"),
        ("[[webhooks]]\nurl = 'http://a/'\nsecret = 5", "entry 1: secret: expected a string"),
        ("[[webhooks]]\nurl = 'http://a/'\nevents = 'x'", "events: expected an array"),
        (
            "[[webhooks]]\nurl = 'http://a/'\nevents = ['archive.done']",
            "entry 1: 'archive.done' is not an event type",
        ),
        ("[[webhooks]]\nurl = 'ftp://a/'", "[[webhooks]] entry 1: url 'ftp://a/' is not an http"),
        (
            "[[webhooks]]\nurl = 'http://a/'\n[[webhooks]]\nurl = 'http://a/'",
            "[[webhooks]] entry 2: url 'http://a/' is configured twice",
        ),
        ("[[webhooks]]\nurl = 'http://a/'\nsecret = ''", "entry 1: secret must not be empty"),
        ("webhook_max_age = 0", "webhook_max_age 0 must be a positive number of seconds"),
        ("webhook_max_age = 'soon'", "'soon' is not a number of seconds"),
        ("webhook_max_ag = 1", "unknown setting (did you mean webhook_max_age?)"),
    ],
)
def test_bad_webhook_settings_are_refused(tmp_path: Path, toml: str, message: str) -> None:
    path = _toml(tmp_path, toml)
    with pytest.raises(ConfigError) as refused:
        load_service_config(_args("--config", str(path)), {})
    assert message in str(refused.value)
    assert str(path) in str(refused.value)


def test_the_flag_url_counts_against_duplicates() -> None:
    config = ServiceConfig(webhook_url=URL, webhooks=(WebhookTarget(URL),))
    with pytest.raises(ConfigError, match="configured twice"):
        config.validate()
    with pytest.raises(ConfigError, match="--webhook-secret must not be empty"):
        ServiceConfig(webhook_url=URL, webhook_secret="").validate()


def test_failed_deliveries_are_listed_and_retried_through_the_api(tmp_path: Path) -> None:
    # A receiver nobody listens on: every attempt the app makes fails at once.
    dead = "http://127.0.0.1:9/hooks"
    state = tmp_path / "state.sqlite3"
    store = Store.open(state)
    _recording(store, "R1", "archive.available")
    started, _ = store.list_events("R1")
    now = time.time()
    store.record_delivery_failure(
        started.id, dead, attempted_at=now, error="HTTP 500", next_attempt_at=now, failed=True
    )
    store.record_delivery_failure(
        started.id, OTHER, attempted_at=now, error="HTTP 500", next_attempt_at=now, failed=True
    )
    store.close()
    config = ServiceConfig(
        archive_dir=tmp_path / "archive",
        archive_tmp_dir=tmp_path / "archive_tmp",
        state=state,
        webhook_url=dead,
        webhook_secret=SECRET,
        workers=0,
    )
    with TestClient(create_app(config)) as client:
        listed = client.get("/v1/webhooks/failed")
        assert listed.status_code == 200
        by_url = {item["url"]: item for item in listed.json()}
        assert set(by_url) == {dead, OTHER}  # OTHER is no longer configured: listed all the same
        item = by_url[dead]
        assert item["event_id"] == started.uid and item["type"] == "recording.started"
        assert item["recording_id"] == "R1" and item["attempts"] == 1
        assert item["last_error"] == "HTTP 500" and item["failed_at"].endswith("Z")

        retried = client.post(f"/v1/webhooks/{started.uid}/retry")
        assert retried.status_code == 202
        assert retried.json() == {"event_id": started.uid, "retried": [dead]}
        assert [f["url"] for f in client.get("/v1/webhooks/failed").json()] == [OTHER]

        again = client.post(f"/v1/webhooks/{started.uid}/retry")
        assert again.status_code == 409 and again.json()["error_type"] == "EVENT-NOT-FAILED"
        missing = client.post("/v1/webhooks/NOPE/retry")
        assert missing.status_code == 404
        assert missing.json() == {"error_type": "EVENT-NOT-FOUND", "detail": "no event 'NOPE'"}
        assert client.post(f"/v1/webhooks/{'x' * 300}/retry").status_code == 400
    store = Store.open(state)
    try:
        deliveries = {d.target: d for d in store.list_deliveries(started.id)}
        # A fresh window: retried (and failing again against the dead port), not given up.
        assert deliveries[dead].failed_at is None
        assert deliveries[dead].since >= now
        assert deliveries[OTHER].failed_at is not None
    finally:
        store.close()
