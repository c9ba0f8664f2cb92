"""The /v1 recording and webhook routes and /metrics; `install(app)` adds them and their needs.

Routes only translate: a validated body becomes the manager's spec, the manager's dict becomes
the response, and a `LifecycleError` becomes the JSON error shape of `api.errors`.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import INVALID_PARAMETER, error_response
from api.models import (
    MAX_ID_LENGTH,
    RECORDING_STATES,
    ArchivingItem,
    Connection,
    ConnectionView,
    ErrorBody,
    NewRecording,
    RecordingView,
)
from recorder.lifecycle import LifecycleError, RecordingManager
from recorder.service import RecorderService

# Far above any legitimate body (100 connections and 64 KiB of metadata are ~100 KiB), far
# below what would let a client make the process buffer and parse megabytes per request.
MAX_BODY_BYTES = 1024 * 1024
METRIC_PREFIX = "rtp_recorder_"

RecordingId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The recording's id")
]
ConnectionId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The connection's id")
]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def _manager(request: Request) -> RecordingManager:
    return request.app.state.service.manager  # type: ignore[no-any-return]


Manager = Annotated[RecordingManager, Depends(_manager)]

router = APIRouter(prefix="/v1", tags=["recordings"])


@router.post(
    "/recordings",
    status_code=201,
    response_model=None,
    summary="Start a recording",
    responses={201: {"model": RecordingView}, **_errors(400, 409, 413, 503, 507)},
)
async def create_recording(body: NewRecording, manager: Manager) -> dict[str, Any]:
    """Open UDP ports for every connection; the response says where each medium goes."""
    return await manager.create_recording(body.to_spec())


@router.post(
    "/recordings/{recording_id}/connections",
    status_code=201,
    response_model=None,
    summary="Add a connection to a running recording",
    responses={201: {"model": ConnectionView}, **_errors(400, 404, 409, 413, 503, 507)},
)
async def add_connection(
    recording_id: RecordingId, body: Connection, manager: Manager
) -> dict[str, Any]:
    return await manager.add_connection(recording_id, body.to_spec())


@router.delete(
    "/recordings/{recording_id}/connections/{connection_id}",
    response_model=None,
    summary="End a connection's archive (the participant left)",
    responses={200: {"model": ConnectionView}, **_errors(400, 404, 409)},
)
async def remove_connection(
    recording_id: RecordingId, connection_id: ConnectionId, manager: Manager
) -> dict[str, Any]:
    return await manager.remove_connection(recording_id, connection_id)


@router.post(
    "/recordings/{recording_id}/stop",
    status_code=202,
    response_model=None,
    summary="Stop a recording",
    responses={202: {"model": RecordingView}, **_errors(400, 404)},
)
async def stop_recording(recording_id: RecordingId, manager: Manager) -> dict[str, Any]:
    """Accepted: files are finalized and announced by events as they become available."""
    return await manager.stop_recording(recording_id)


@router.get(
    "/recordings",
    response_model=None,
    summary="List recordings",
    responses={200: {"model": list[RecordingView]}, **_errors(400)},
)
async def list_recordings(
    manager: Manager,
    state: Annotated[
        Literal[RECORDING_STATES] | None,  # type: ignore[valid-type]
        Query(description="Only recordings in this state"),
    ] = None,
    channel_id: Annotated[
        str | None,
        Query(min_length=1, max_length=MAX_ID_LENGTH, description="Only this channel's"),
    ] = None,
) -> list[dict[str, Any]]:
    await manager.refresh()
    return manager.list_recordings(state=state, channel_id=channel_id)


@router.get(
    "/recordings/{recording_id}",
    response_model=None,
    summary="A recording: state, connections, archives, counters",
    responses={200: {"model": RecordingView}, **_errors(400, 404)},
)
async def get_recording(recording_id: RecordingId, manager: Manager) -> dict[str, Any]:
    await manager.refresh(recording_id)
    return manager.get_recording(recording_id)


@router.get(
    "/archiving",
    response_model=None,
    summary="What is being recorded right now, per connection",
    responses={200: {"model": list[ArchivingItem]}},
)
async def archiving(manager: Manager) -> list[dict[str, Any]]:
    await manager.refresh()
    return manager.archiving()


def _service(request: Request) -> RecorderService:
    return request.app.state.service  # type: ignore[no-any-return]


Service = Annotated[RecorderService, Depends(_service)]
EventId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The event's `id`")
]

webhooks = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@webhooks.get(
    "/failed",
    response_model=None,
    summary="Webhook deliveries given up after the maximum age",
)
async def failed_webhooks(service: Service) -> list[dict[str, Any]]:
    """One item per event and receiver: `event_id`, `type`, `recording_id`, `timestamp`,
    `url`, `attempts`, `last_error`, `last_attempt_at`, `failed_at`."""
    return service.failed_webhooks()


@webhooks.post(
    "/{event_id}/retry",
    status_code=202,
    response_model=None,
    summary="Send a failed event again",
    responses=_errors(400, 404, 409),
)
async def retry_webhook(event_id: EventId, service: Service) -> dict[str, Any]:
    """Accepted: the event is due again at once for every configured receiver it failed for,
    retried as before for up to the maximum age. 404 `EVENT-NOT-FOUND`, 409 `EVENT-NOT-FAILED`."""
    return service.retry_webhook(event_id)


async def metrics(request: Request) -> Response:
    service = getattr(request.app.state, "service", None)
    if service is not None:
        with contextlib.suppress(RuntimeError):  # not started, or stopped
            await service.manager.refresh()
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class ManagerCollector(Collector):
    """The manager's counters and gauges, read at scrape time (nothing is kept in between)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        # Registering must not call collect(): the service has not started yet.
        return []

    def collect(self) -> Iterator[Metric]:
        service = getattr(self.app.state, "service", None)
        try:
            manager: RecordingManager = service.manager  # type: ignore[union-attr]
        except (AttributeError, RuntimeError):
            # Not started (or already stopped): nothing to report but the process metrics.
            return
        for key, value in sorted(manager.metrics().items()):
            name = METRIC_PREFIX + re.sub(r"[^a-zA-Z0-9_]", "_", key)
            # Prometheus' convention: `_total` is a counter, anything else a gauge.
            if name.endswith("_total"):
                yield CounterMetricFamily(name.removesuffix("_total"), key, value=value)
            else:
                yield GaugeMetricFamily(name, key, value=value)
        # From the rows: building every recording's view per scrape grows with the history.
        by_state = Counter(row.state for row in manager.store.list_recordings())
        recordings = GaugeMetricFamily(
            METRIC_PREFIX + "recordings",
            "Recordings in the state store, by state",
            labels=["state"],
        )
        # Every state always, so a series does not vanish when its count drops to zero.
        for state in sorted(set(RECORDING_STATES) | set(by_state)):
            recordings.add_metric([state], by_state.get(state, 0))
        yield recordings


class BodyLimit:
    """Refuses request bodies over `limit` bytes with 413 before anything parses them.

    Content-Length is trusted only to refuse early; the body is counted as it arrives either
    way (chunked requests have no length), and the app sees it only once it is complete.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        first: Message | None = None
        while first is None:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: the app sees that as it would have without us.
                first = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def replay() -> Message:
            nonlocal first
            if first is not None:
                message, first = first, None
                return message
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, INVALID_PARAMETER, f"request body larger than {self.limit} bytes"
        )
        await response(scope, receive, send)


async def _lifecycle_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, LifecycleError)
    return error_response(error.status, error.error_type, str(error))


def install(app: FastAPI) -> None:
    """Add the /v1 routes, /metrics, the body limit and the LifecycleError mapping to `app`."""
    app.include_router(router)
    app.include_router(webhooks)
    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
        tags=["metrics"],
    )
    app.add_exception_handler(LifecycleError, _lifecycle_error)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    # One registry per app: the global one would mix apps (tests make many) and refuse a
    # second collector under the same names.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ManagerCollector(app))
    ProcessCollector(registry=registry)
    app.state.metrics_registry = registry
