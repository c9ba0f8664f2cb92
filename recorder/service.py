"""`RecorderService`: the one facade the HTTP API calls.

It owns the process-wide resources (directories, the state store) for the lifetime of the API
application; recording control lands here with the lifecycle work.
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from recorder import __version__
from recorder.errors import RecorderError
from recorder.events import (
    DEFAULT_MAX_AGE,
    SHUTDOWN_GRACE,
    WebhookDispatcher,
    WebhookTarget,
    check_event_types,
    envelope,
)
from recorder.layout import rfc3339
from recorder.lifecycle import LifecycleError, RecordingManager
from recorder.recovery import recover
from recorder.store import NotFoundError, Store


class ConfigError(RecorderError):
    """The service configuration cannot work.

    `options` names the settings (ServiceConfig fields) the message is about, so whoever read
    them from the environment or a file can say where the offending value came from.
    """

    def __init__(self, message: str, options: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.options = options


FORMATS = ("webm", "mp4")
# The reference's PLI interval: 20 s by default, 1 s at least, 240 s at most (seed 000).
PLI_INTERVAL_MIN = 1.0
PLI_INTERVAL_MAX = 240.0
# RTP takes the even port and RTCP the odd one above it (RFC 3550 section 11), so a range
# starts on an even port; ports below 1024 need privileges a sidecar should not have.
RTP_PORT_MIN = 1024
RTP_PORT_MAX = 65535
GIB = 1024**3
# More recording processes than this is a configuration mistake, not a big machine.
MAX_WORKERS = 256


@dataclass(slots=True)
class ServiceConfig:
    """Everything `rtp-recorder serve` is configured with, typed (recorder.config fills it)."""

    host: str = "127.0.0.1"  # API address
    port: int = 8080  # API port
    archive_dir: Path = Path("archive")
    archive_tmp_dir: Path = Path("archive_tmp")
    state: Path = Path("state.sqlite3")
    rtp_port_range: tuple[int, int] = (40000, 40999)  # first and last UDP port, both included
    rtp_listen: str = "0.0.0.0"  # address the RTP/RTCP ports are bound on
    default_format: str = "webm"  # one of FORMATS, when a recording names none
    max_expire_time: int = 86400  # seconds; the largest expire_time a recording may ask for
    min_free_space: int = GIB  # bytes free under archive dirs below which recording stops
    # Secrets stay out of repr(), which ends up in logs and tracebacks.
    api_token: str | None = field(default=None, repr=False)  # required by all but GET /healthz
    allow_insecure_bind: bool = False  # serve a non-loopback API address without a token
    pli_interval: float = 20.0  # seconds between periodic keyframe requests
    # Processes that record connections: None is one per core, 0 records in this process.
    workers: int | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)  # HMAC-SHA256 key
    # More receivers, each with its own secret and event filter (the TOML [[webhooks]] array).
    webhooks: tuple[WebhookTarget, ...] = ()
    # Seconds an event keeps being retried before its delivery is kept as failed.
    webhook_max_age: float = DEFAULT_MAX_AGE

    def webhook_targets(self) -> tuple[WebhookTarget, ...]:
        """Every receiver: --webhook-url (all events) first, then the [[webhooks]] entries."""
        first = (
            ()
            if self.webhook_url is None
            else (WebhookTarget(self.webhook_url, self.webhook_secret),)
        )
        return (*first, *self.webhooks)

    def validate(self) -> None:
        # Finished archives are moved out of the temporary directory atomically; the two must
        # be different places (the reference product refuses the same directory too).
        if self.archive_dir.resolve() == self.archive_tmp_dir.resolve():
            raise ConfigError(
                "--archive-dir and --archive-tmp-dir must be different directories",
                ("archive_dir", "archive_tmp_dir"),
            )
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port} is not a port (1-65535)", ("port",))
        first, last = self.rtp_port_range
        if not RTP_PORT_MIN <= first < last <= RTP_PORT_MAX:
            raise ConfigError(
                f"--rtp-port-range {first}-{last} must satisfy "
                f"{RTP_PORT_MIN} <= start < end <= {RTP_PORT_MAX}",
                ("rtp_port_range",),
            )
        if first % 2:
            raise ConfigError(
                f"--rtp-port-range {first}-{last} must start on an even port (RTP even, RTCP odd)",
                ("rtp_port_range",),
            )
        try:
            ipaddress.ip_address(self.rtp_listen)
        except ValueError:
            raise ConfigError(
                f"--rtp-listen {self.rtp_listen!r} is not an IP address", ("rtp_listen",)
            ) from None
        if self.default_format not in FORMATS:
            raise ConfigError(
                f"--default-format {self.default_format!r} is not one of {', '.join(FORMATS)}",
                ("default_format",),
            )
        if self.max_expire_time < 1:
            raise ConfigError("--max-expire-time must be at least 1 second", ("max_expire_time",))
        if self.min_free_space < 0:
            raise ConfigError("--min-free-space cannot be negative", ("min_free_space",))
        if self.workers is not None and not 0 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"--workers {self.workers} is outside 0-{MAX_WORKERS}", ("workers",))
        # `not a <= x <= b` also refuses NaN.
        if not PLI_INTERVAL_MIN <= self.pli_interval <= PLI_INTERVAL_MAX:
            raise ConfigError(
                f"--pli-interval {self.pli_interval:g} is outside "
                f"{PLI_INTERVAL_MIN:g}-{PLI_INTERVAL_MAX:g} seconds",
                ("pli_interval",),
            )
        if self.api_token is not None and not _is_header_token(self.api_token):
            # Never echo the token: the message ends up in logs.
            raise ConfigError(
                "--api-token must be non-empty visible ASCII without spaces", ("api_token",)
            )
        if self.webhook_url is not None and not _is_http_url(self.webhook_url):
            raise ConfigError(
                f"--webhook-url {self.webhook_url!r} is not an http:// or https:// URL",
                ("webhook_url",),
            )
        self._validate_webhooks()
        if self.api_token is None and not self.allow_insecure_bind and not _is_loopback(self.host):
            raise ConfigError(
                f"--host {self.host} is reachable from other machines: set --api-token or "
                "pass --allow-insecure-bind to serve the API without authentication",
                ("host", "api_token", "allow_insecure_bind"),
            )

    def _validate_webhooks(self) -> None:
        # Written so that NaN and infinity fail too.
        if not (math.isfinite(self.webhook_max_age) and self.webhook_max_age > 0):
            raise ConfigError(
                f"webhook_max_age {self.webhook_max_age:g} must be a positive number of seconds",
                ("webhook_max_age",),
            )
        if self.webhook_secret == "":
            raise ConfigError("--webhook-secret must not be empty", ("webhook_secret",))
        # The URL is a target's key in the outbox (its delivery state): one URL, one target.
        seen = {self.webhook_url}
        for number, target in enumerate(self.webhooks, 1):
            where = f"[[webhooks]] entry {number}"
            if not _is_http_url(target.url):
                raise ConfigError(
                    f"{where}: url {target.url!r} is not an http:// or https:// URL",
                    ("webhooks",),
                )
            if target.url in seen:
                raise ConfigError(f"{where}: url {target.url!r} is configured twice", ("webhooks",))
            seen.add(target.url)
            if target.secret == "":
                raise ConfigError(f"{where}: secret must not be empty", ("webhooks",))
            try:
                check_event_types(target.events or ())
            except ValueError as error:
                raise ConfigError(f"{where}: events: {error}", ("webhooks",)) from None


def _is_http_url(text: str) -> bool:
    try:
        url = urlsplit(text)
        return url.scheme in ("http", "https") and bool(url.hostname)
    except ValueError:
        return False


def _is_header_token(token: str) -> bool:
    # It travels in an Authorization header: printable ASCII, no spaces (RFC 6750 section 2.1
    # is stricter; this is what a header can carry unambiguously).
    return bool(token) and all("!" <= character <= "~" for character in token)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # A host name could resolve anywhere; treat it as reachable from outside.
        return False


class RecorderService:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self._store: Store | None = None
        self._manager: RecordingManager | None = None
        self._webhooks: WebhookDispatcher | None = None
        self.recovered: list[str] = []

    @property
    def manager(self) -> RecordingManager:
        """The recordings; exists between `start` and `stop`."""
        if self._manager is None:
            raise RuntimeError("the recorder service is not running")
        return self._manager

    def start(self) -> None:
        self.config.validate()
        for directory in (self.config.archive_dir, self.config.archive_tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._store = Store.open(self.config.state)
        # Recordings the last process left running are finished before new ones start.
        self.recovered = recover(self._store, self.config.archive_dir)
        self._manager = RecordingManager(self.config, self._store)

    def stop(self) -> None:
        """Close the state. Recordings must have been stopped first (`astop` does that)."""
        self._manager = None
        if self._store is not None:
            self._store.close()
            self._store = None

    # The webhook delivery runs on the event loop, so the application's lifespan starts and
    # stops the service through these; `start` / `stop` alone run it without webhooks.

    async def astart(self) -> None:
        """`start`, the worker processes, then delivery of the outbox to the webhooks."""
        self.start()
        assert self._store is not None and self._manager is not None
        try:
            await self._manager.open()
            targets = self.config.webhook_targets()
            if targets:
                dispatcher = WebhookDispatcher(
                    self._store, targets, max_age=self.config.webhook_max_age
                )
                await dispatcher.start()
                self._webhooks = dispatcher
        except BaseException:
            await self._manager.close()
            self.stop()
            raise

    async def astop(self) -> None:
        """`stop`, giving the last events (those of the recordings it stops) a moment to go
        out first; what does not make it goes after the next start."""
        # Running recordings are finalized (files, metadata, report) before the state closes.
        if self._manager is not None:
            await self._manager.close()
            self._manager = None
        if self._webhooks is not None:
            await self._webhooks.stop(SHUTDOWN_GRACE)
            self._webhooks = None
        self.stop()

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the recorder service is not running")
        return self._store

    def failed_webhooks(self) -> list[dict[str, Any]]:
        """Deliveries given up after the maximum age, oldest event first."""
        return [
            {
                "event_id": envelope(failed.event)["id"],
                "type": failed.event.type,
                "recording_id": failed.event.recording_id,
                "timestamp": rfc3339(failed.event.created_at),
                "url": failed.target,
                "attempts": failed.attempts,
                "last_error": failed.last_error,
                "last_attempt_at": (
                    None if failed.last_attempt_at is None else rfc3339(failed.last_attempt_at)
                ),
                "failed_at": rfc3339(failed.failed_at),
            }
            for failed in self.store.failed_deliveries()
        ]

    def retry_webhook(self, event_id: str) -> dict[str, Any]:
        """Send a failed event again to the configured targets it failed for, with a fresh
        maximum age."""
        targets = [target.url for target in self.config.webhook_targets()]
        try:
            retried = self.store.retry_failed_delivery(event_id, targets)
        except NotFoundError:
            raise LifecycleError(f"no event {event_id!r}", "EVENT-NOT-FOUND", 404) from None
        if not retried:
            raise LifecycleError(
                f"event {event_id!r} has no failed delivery to a configured webhook",
                "EVENT-NOT-FAILED",
                409,
            )
        if self._webhooks is not None:
            self._webhooks.wake()
        return {"event_id": event_id, "retried": retried}

    def health(self) -> dict[str, Any]:
        store = self._store
        directories_ok = all(
            os.access(directory, os.W_OK)
            for directory in (self.config.archive_dir, self.config.archive_tmp_dir)
        )
        state_ok = store is not None and store.schema_version() >= 1
        return {
            "status": "ok" if directories_ok and state_ok else "degraded",
            "version": __version__,
            "archive_dir": str(self.config.archive_dir.resolve()),
            "archive_tmp_dir": str(self.config.archive_tmp_dir.resolve()),
            "archive_dir_writable": directories_ok,
            "state": str(self.config.state.resolve()),
            "state_ok": state_ok,
        }
