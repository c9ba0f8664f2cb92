"""Webhook delivery: every lifecycle event of the outbox POSTed to every target that wants it.

The outbox is the store's `events` table, written in the same transaction as the state change
that causes each event (recorder.store), so an event exists before its first attempt and a
crash loses none. This module only reads it and records what happened to each attempt:

- Body: one JSON object, the event's envelope `id` (unique per event, stable across attempts
  and restarts), `type`, `timestamp` (when the event happened, RFC 3339 UTC) and, when the
  payload has none, `recording_id`; then the payload the lifecycle stored (seed 000's fields).
- Headers: `X-Recorder-Event` (the type), `X-Recorder-Delivery` (new for every HTTP attempt, to
  correlate logs; receivers deduplicate on the body's `id`), `X-Recorder-Timestamp` (UNIX
  seconds at sending) and `X-Recorder-Signature: sha256=<hex HMAC-SHA256 of
  "<timestamp>.<body>" with the target's secret>` (left out for a target without a secret).
- 2xx is delivered. Anything else (another status, a redirect, a connection error, a timeout)
  is retried after an exponential backoff with jitter: the n-th failure waits a random time in
  [d/2, d] with d = min(cap, base * 2^(n-1)), 1 s base and 5 min cap by default; `Retry-After`
  of a 429 / 503 is honoured up to the cap. When the event is older than the maximum age
  (24 h by default) after a failed attempt, its delivery to that target is given up and kept as
  failed, until retried by hand (`Store.retry_failed_delivery`, the API's
  POST /v1/webhooks/{event_id}/retry), which opens a new window of the same length.
- Order: per target, an event is sent only when the earlier events of its recording (those the
  target wants) are delivered or given up; different recordings never wait for each other. A
  given-up event no longer holds its recording back: a manual retry may never come.
- Bounds: at most `max_in_flight` attempts per target at a time (so a dead target cannot starve
  the others), one pooled `httpx.AsyncClient` with connect / read timeouts and an overall
  deadline per attempt. Everything runs as tasks on the service's event loop; the store calls
  are short statements, never a network wait, so a slow receiver never slows ingest.
- Wake-up: the store calls `wake()` after each commit that wrote events; the store is polled
  every `poll_interval` as well, for events written by any other path (another process).

Delivery is at least once: a receiver that answered 2xx just before a crash, whose answer was
not recorded, gets that event again after the restart, with the same `id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from recorder import __version__
from recorder.layout import rfc3339
from recorder.store import EVENT_TYPES, DueDelivery, EventRow, Store

EVENT_HEADER = "X-Recorder-Event"
DELIVERY_HEADER = "X-Recorder-Delivery"
TIMESTAMP_HEADER = "X-Recorder-Timestamp"
SIGNATURE_HEADER = "X-Recorder-Signature"
SIGNATURE_PREFIX = "sha256="

DEFAULT_MAX_AGE = 24 * 3600.0
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
# The fallback poll: events written without a wake-up (another process) wait at most this.
POLL_INTERVAL = 1.0
MAX_IN_FLIGHT = 4  # per target
CONNECT_TIMEOUT = 5.0
TIMEOUT = 10.0  # each read / write / pool wait
# A receiver trickling its answer byte by byte passes every read timeout; this bounds it.
ATTEMPT_DEADLINE = 30.0
# At a clean shutdown, what is due (the final events of the recordings just stopped) gets this
# long to go out; the rest goes after the next start.
SHUTDOWN_GRACE = 3.0
# Events that no configured target wants leave the outbox at start and this often.
SETTLE_INTERVAL = 60.0
# How many heads (one per recording) a target looks at per pass.
SCAN_LIMIT = 1000
MAX_ERROR_LENGTH = 300

log = logging.getLogger("recorder.webhooks")


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A receiver: its URL (also its key in the store), HMAC key, and the event types it
    wants (None: all)."""

    url: str
    secret: str | None = field(default=None, repr=False)
    events: frozenset[str] | None = None

    def wants(self, event_type: str) -> bool:
        return self.events is None or event_type in self.events


def check_event_types(types: Iterable[str]) -> frozenset[str]:
    """The types as a set; ValueError naming the first unknown one."""
    chosen = frozenset(types)
    for name in sorted(chosen):
        if name not in EVENT_TYPES:
            raise ValueError(f"{name!r} is not an event type ({', '.join(EVENT_TYPES)})")
    return chosen


def envelope(event: EventRow) -> dict[str, Any]:
    """What a receiver gets for `event`: `id`, `type`, `timestamp`, then the payload."""
    body: dict[str, Any] = {
        # The uid exists from schema version 3 on; the row id stands in only for a row read
        # from an older file through some other path.
        "id": event.uid or str(event.id),
        "type": event.type,
        "timestamp": rfc3339(event.created_at),
    }
    payload = event.payload if isinstance(event.payload, Mapping) else {}
    if "recording_id" not in payload and event.recording_id is not None:
        body["recording_id"] = event.recording_id
    for key, value in payload.items():
        # The envelope's own fields win: a receiver must be able to trust `id` and `type`.
        body.setdefault(key, value)
    return body


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Recorder-Signature` value: HMAC-SHA256 of `<timestamp>.<body>`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def backoff_delay(
    failures: int,
    draw: Callable[[], float] = random.random,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
) -> float:
    """Seconds to wait after the `failures`-th failed attempt: in [d/2, d], d doubling from
    `base` up to `cap`. Half fixed so retries always back off; half random so the many
    events a receiver outage held back do not all come back in the same second."""
    ceiling = min(cap, base * math.pow(2, min(max(failures, 1) - 1, 64)))
    return ceiling / 2 + draw() * ceiling / 2


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    # Only the delta-seconds form: an HTTP date needs a clock shared with the receiver.
    return float(value) if value.isdigit() else None


def _describe(error: BaseException) -> str:
    text = str(error)
    described = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return described[:MAX_ERROR_LENGTH]


class WebhookDispatcher:
    """Delivers the outbox of `store` to `targets` while started (`start` … `stop`).

    `clock` (wall time, seconds) and `draw` (uniform in [0, 1)) are injectable so tests can
    drive retries without waiting; `transport` is the httpx transport (tests: MockTransport).
    """

    def __init__(
        self,
        store: Store,
        targets: Sequence[WebhookTarget],
        *,
        max_age: float = DEFAULT_MAX_AGE,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        draw: Callable[[], float] = random.random,
        max_in_flight: int = MAX_IN_FLIGHT,
        poll_interval: float = POLL_INTERVAL,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        timeout: float = TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        attempt_deadline: float = ATTEMPT_DEADLINE,
    ) -> None:
        urls = [target.url for target in targets]
        if len(set(urls)) != len(urls):
            raise ValueError("two webhook targets with one URL")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.store = store
        self.targets = tuple(targets)
        self.max_age = max_age
        self.max_in_flight = max_in_flight
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._transport = transport
        self._clock = clock
        self._draw = draw
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._attempt_deadline = attempt_deadline
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wakeup: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        # (target URL, event row id) -> the attempt under way
        self._in_flight: dict[tuple[str, int], asyncio.Task[None]] = {}
        # Something may have become due since the last pass (a wake-up, a finished attempt).
        self._dirty = True
        # Due heads the last pass could not start (the in-flight bound).
        self._held_back = 0
        self._settled_at = -math.inf
        # The most attempts ever under way at once, per target (tests check the bound).
        self.peak_in_flight: dict[str, int] = {target.url: 0 for target in self.targets}

    # -- life -------------------------------------------------------------------------------

    async def open(self) -> None:
        """The HTTP client and the store's wake-up, without the background loop (tests drive
        `deliver_due` themselves)."""
        if self._client is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wakeup = asyncio.Event()
        connections = self.max_in_flight * max(1, len(self.targets))
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            follow_redirects=False,  # a redirect is not a delivery, and may leak the body
            headers={"User-Agent": f"rtp-recorder/{__version__}"},
        )
        self.store.add_event_listener(self.wake)

    async def start(self) -> None:
        await self.open()
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, grace: float = 0.0) -> None:
        """Give what is due up to `grace` seconds, then cancel the attempts under way (they
        are tried again after the next start) and close the client."""
        deadline = time.monotonic() + grace
        while self._runner is not None and not self.idle and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self.store.remove_event_listener(self.wake)
        tasks = [task for task in (self._runner, *self._in_flight.values()) if task is not None]
        for task in tasks:
            task.cancel()
        # gather: the tasks' own cancellations are results, a cancellation of `stop` is not.
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = None
        self._in_flight.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def idle(self) -> bool:
        """Nothing under way and nothing due that the last pass left waiting."""
        return not self._in_flight and not self._held_back and not self._dirty

    def wake(self) -> None:
        """Look at the outbox now. Safe from any thread (the store calls it after commits)."""
        self._dirty = True
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            wakeup.set()
        else:
            loop.call_soon_threadsafe(wakeup.set)

    async def _run(self) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
        while True:
            wakeup.clear()
            next_due: float | None = None
            try:
                next_due = self.scan()
            except Exception:
                log.exception("webhook outbox pass failed")
            wait = self.poll_interval
            if next_due is not None:
                wait = min(wait, max(0.0, next_due - self._clock()))
            # asyncio.timeout, not wait_for: before Python 3.12, wait_for swallows a
            # cancellation that arrives as the event is set, and `stop` would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await wakeup.wait()

    # -- one pass ---------------------------------------------------------------------------

    def scan(self) -> float | None:
        """Start every attempt that is due and allowed; return when the next one is due."""
        if self._client is None:
            raise RuntimeError("the webhook dispatcher is not open")
        self._dirty = False
        now = self._clock()
        if now - self._settled_at >= SETTLE_INTERVAL:
            self._settled_at = now
            self.store.settle_events({target.url: target.events for target in self.targets})
        next_due = math.inf
        held_back = 0
        for target in self.targets:
            busy = sum(1 for url, _ in self._in_flight if url == target.url)
            for due in self.store.due_deliveries(target.url, target.events, SCAN_LIMIT):
                key = (target.url, due.event.id)
                if key in self._in_flight:
                    continue
                if due.next_attempt_at > now:
                    next_due = min(next_due, due.next_attempt_at)
                    continue
                if busy >= self.max_in_flight:
                    held_back += 1
                    continue
                busy += 1
                self.peak_in_flight[target.url] = max(self.peak_in_flight[target.url], busy)
                task = asyncio.get_running_loop().create_task(self._attempt(target, due))
                self._in_flight[key] = task
        self._held_back = held_back
        return None if next_due == math.inf else next_due

    def next_attempt_at(self) -> float | None:
        """When the earliest attempt not under way is due (None: nothing left to send)."""
        times = [
            due.next_attempt_at
            for target in self.targets
            for due in self.store.due_deliveries(target.url, target.events, SCAN_LIMIT)
            if (target.url, due.event.id) not in self._in_flight
        ]
        return min(times, default=None)

    async def deliver_due(self) -> int:
        """One pass, waiting for the attempts it started; how many it started (for tests and
        for tools that deliver without the background loop)."""
        before = set(self._in_flight.values())
        self.scan()
        started = [task for task in self._in_flight.values() if task not in before]
        await asyncio.gather(*started, return_exceptions=True)
        return len(started)

    # -- one attempt ------------------------------------------------------------------------

    async def _attempt(self, target: WebhookTarget, due: DueDelivery) -> None:
        event = due.event
        try:
            error, retry_after = await self._post(target, event)
            self._record(target, due, error, retry_after)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The store failed (it is closing, the disk is full): nothing is recorded, so the
            # attempt is simply made again.
            log.exception("webhook %s to %s: recording the attempt failed", event.uid, target.url)
        finally:
            self._in_flight.pop((target.url, event.id), None)
            # The recording's next event may be due now.
            self.wake()

    async def _post(
        self, target: WebhookTarget, event: EventRow
    ) -> tuple[str | None, float | None]:
        """(None, None) when delivered, else (what went wrong, Retry-After seconds if any)."""
        assert self._client is not None
        body = encode(envelope(event))
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: event.type,
            DELIVERY_HEADER: str(uuid.uuid4()),
            TIMESTAMP_HEADER: timestamp,
        }
        if target.secret is not None:
            headers[SIGNATURE_HEADER] = sign(target.secret, timestamp, body)
        try:
            async with asyncio.timeout(self._attempt_deadline):
                response = await self._client.post(target.url, content=body, headers=headers)
        except TimeoutError:
            return f"no answer within {self._attempt_deadline:g} s", None
        except httpx.HTTPError as error:
            return _describe(error), None
        if 200 <= response.status_code < 300:
            return None, None
        retry_after = _retry_after(response) if response.status_code in (429, 503) else None
        return f"HTTP {response.status_code} {response.reason_phrase}".strip(), retry_after

    def _record(
        self,
        target: WebhookTarget,
        due: DueDelivery,
        error: str | None,
        retry_after: float | None,
    ) -> None:
        event = due.event
        now = self._clock()
        if error is None:
            wanting = [t.url for t in self.targets if t.wants(event.type)]
            self.store.record_delivery_success(
                event.id, target.url, delivered_at=now, required_targets=wanting
            )
            return
        failures = due.attempts + 1
        delay = backoff_delay(failures, self._draw, self.backoff_base, self.backoff_cap)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_cap))
        give_up_at = due.since + self.max_age
        failed = now >= give_up_at
        # The last retry lands on the deadline itself rather than past it.
        next_attempt_at = now if failed else min(now + delay, give_up_at)
        self.store.record_delivery_failure(
            event.id,
            target.url,
            attempted_at=now,
            error=error,
            next_attempt_at=next_attempt_at,
            failed=failed,
        )
        if failed:
            log.warning(
                "webhook %s %s to %s given up after %d attempts: %s",
                event.type,
                event.uid,
                target.url,
                failures,
                error,
            )
        else:
            log.info(
                "webhook %s %s to %s failed (%s), attempt %d; next in %.1f s",
                event.type,
                event.uid,
                target.url,
                error,
                failures,
                next_attempt_at - now,
            )
