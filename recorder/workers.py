"""Where connections are recorded: in the API process, or spread over worker processes.

A Python process records on one core. With `--workers N` (by default one per core the process
may run on) `serve` starts N worker processes, and each owns the connections handed to it: it
binds their ports, receives and records their RTP on its own event loop, and writes, finishes
and moves their files, exactly as the API process does itself with `--workers 0`
(`LocalHost`). The API process keeps everything else: the port pool (so workers hold disjoint
ports), the store, the lifecycle and its events, the JSON documents, the webhooks.

The two sides talk over a socket pair in pickled tuples: requests that get one reply each
(`start`, `stop`, `status`, `exit`) and notices from a worker (an archive started, a split piece
opened or finished), which arrive in the order the worker sent them, so a piece finished while
a connection stops is heard of before the stop's reply. Counters are not streamed: the API asks
for them (`refresh`) when a view needs them.

A worker that dies takes only its own connections with it: the lifecycle finishes their files
as the recovery at start would (`on_lost`), and a new worker takes its place. A worker whose
API process dies exits at once, leaving its files to the next start's recovery, as a crash
of the whole service would.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import itertools
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, Protocol

from recorder import errors
from recorder.connection import (
    ConnectionRecorder,
    ConnectionSettings,
    ConnectionStatus,
    FinishedFile,
)
from recorder.errors import RecorderError

log = logging.getLogger("recorder.workers")

TICK = 0.1
# Seconds a new worker gets to import the recorder and answer; a loaded machine is slow.
START_TIMEOUT = 60.0
# Seconds a worker gets to finish at shutdown before it is killed (its connections were
# already stopped one by one, so this is only the process exiting).
EXIT_TIMEOUT = 10.0
# Socket buffer of the request/notice channel: a status reply for a thousand connections is
# a few hundred kilobytes, and neither side should block on the other's reading.
CHANNEL_BUFFER = 4 * 1024 * 1024
# Exit status of a worker that found its API process gone.
EXIT_ORPHANED = 3
PR_SET_PDEATHSIG = 1


class ConnectionLost(RecorderError):
    """The worker recording a connection died; its files are as the crash left them."""


@dataclass(slots=True)
class ConnectionEvents:
    """What the owner of a connection hears of it while it records."""

    on_split: Callable[[FinishedFile], None]  # a split piece was finished and moved
    on_piece_open: Callable[[int], None]  # a split piece's file was opened
    on_lost: Callable[[str], None]  # the worker died (never called for LocalHost)


class Handle(Protocol):
    """A running connection as its owner sees it, wherever it records."""

    ports: dict[str, int]

    @property
    def archive_started(self) -> bool: ...

    def status(self) -> ConnectionStatus: ...


class ConnectionHost(Protocol):
    async def open(self) -> None: ...

    async def start(self, settings: ConnectionSettings, events: ConnectionEvents) -> Any: ...

    async def stop(self, handle: Any) -> FinishedFile | None: ...

    async def refresh(self, handles: Iterable[Any]) -> None: ...

    def tick(self, now: float) -> None: ...

    async def close(self) -> None: ...


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def connection_host(workers: int) -> ConnectionHost:
    return LocalHost() if workers == 0 else WorkerPool(workers)


# -- in the API process ----------------------------------------------------------------------


class LocalHost:
    """Connections recorded on the caller's event loop, ticked by the caller's clock."""

    def __init__(self) -> None:
        self._recorders: dict[int, ConnectionRecorder] = {}

    async def open(self) -> None:
        pass

    async def start(
        self, settings: ConnectionSettings, events: ConnectionEvents
    ) -> ConnectionRecorder:
        recorder = ConnectionRecorder(
            settings, on_split=events.on_split, on_piece_open=events.on_piece_open
        )
        await recorder.start()
        self._recorders[id(recorder)] = recorder
        return recorder

    async def stop(self, handle: ConnectionRecorder) -> FinishedFile | None:
        self._recorders.pop(id(handle), None)
        return handle.stop()

    async def refresh(self, handles: Iterable[ConnectionRecorder]) -> None:
        pass  # a local connection's status is read live

    def tick(self, now: float) -> None:
        for recorder in list(self._recorders.values()):
            # One connection's failure must not stop the clock of the others.
            with contextlib.suppress(Exception):
                recorder.tick(now)

    async def close(self) -> None:
        pass


# -- worker processes, seen from the API process ----------------------------------------------


class RemoteConnection:
    """A connection recorded by a worker; its status is as of the last reply or notice."""

    __slots__ = ("_status", "events", "key", "ports", "stopping", "worker")

    def __init__(
        self, key: int, worker: _Worker, ports: dict[str, int], events: ConnectionEvents
    ) -> None:
        self.key = key
        self.worker = worker
        self.ports = ports
        self.events = events
        self.stopping = False
        self._status = ConnectionStatus()

    @property
    def archive_started(self) -> bool:
        return self._status.archive_started

    def status(self) -> ConnectionStatus:
        return self._status

    def update(self, status: ConnectionStatus) -> None:
        self._status = status


class _Worker:
    """One worker process and the API side of its channel."""

    def __init__(
        self,
        pool: WorkerPool,
        number: int,
        process: multiprocessing.process.BaseProcess,
        channel: Connection,
    ) -> None:
        self.pool = pool
        self.number = number
        self.process = process
        self.channel = channel
        self.alive = True
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.connections: dict[int, RemoteConnection] = {}

    def request(self, kind: str, *arguments: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.pool.loop.create_future()
        if not self.alive:
            future.set_exception(ConnectionLost(f"worker {self.number} is not running"))
            return future
        request_id = next(self.pool.ids)
        self.pending[request_id] = future
        try:
            # Pickled whole before anything is written: a value that does not pickle leaves
            # the channel as it was.
            self.channel.send((kind, request_id, *arguments))
        except OSError:
            self.died()
        except BaseException:
            del self.pending[request_id]
            raise
        return future

    def on_readable(self) -> None:
        try:
            while self.alive and self.channel.poll():
                self._dispatch(self.channel.recv())
        except (EOFError, OSError):
            self.died()

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "reply":
            _, request_id, ok, value = message
            future = self.pending.pop(request_id, None)
            if future is None or future.done():
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(_error(*value))
            return
        connection = self.connections.get(message[1])
        if connection is None:
            return
        try:
            if kind == "started":
                connection.update(message[2])
            elif kind == "piece":
                connection.events.on_piece_open(message[2])
            elif kind == "split":
                connection.update(message[3])
                connection.events.on_split(message[2])
        except Exception:
            # The owner's bookkeeping failed; the channel must go on for the others.
            log.exception("handling %s of connection %s failed", kind, message[1])

    def died(self) -> None:
        if not self.alive:
            return
        self.alive = False
        loop = self.pool.loop
        with contextlib.suppress(Exception):
            loop.remove_reader(self.channel.fileno())
        self.channel.close()
        self.process.join(0.5)
        reason = f"worker process {self.number} exited (status {self.process.exitcode})"
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(reason))
        self.pending.clear()
        self.pool.lost(self, reason)
        for connection in list(self.connections.values()):
            if connection.stopping:
                continue  # its stop request failed with ConnectionLost: the stopper handles it
            try:
                connection.events.on_lost(reason)
            except Exception:
                log.exception("handling the loss of connection %s failed", connection.key)
        self.connections.clear()


class WorkerPool:
    """`count` worker processes; each new connection goes to the one with the fewest."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("a worker pool has at least one worker")
        self.count = count
        self.ids = itertools.count(1)
        self._keys = itertools.count(1)
        self._numbers = itertools.count(1)
        self._workers: list[_Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Task[None] | None = None
        self._closing = False
        self._replacing: set[asyncio.Task[Any]] = set()
        self.replaced = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the worker pool is not open"
        return self._loop

    @property
    def workers(self) -> list[_Worker]:
        return list(self._workers)

    async def open(self) -> None:
        if self._opening is None:
            self._loop = asyncio.get_running_loop()
            self._opening = self._loop.create_task(self._spawn_all())
        await asyncio.shield(self._opening)

    async def _spawn_all(self) -> None:
        await asyncio.gather(*(self._spawn() for _ in range(self.count)))

    async def _spawn(self) -> _Worker:
        number = next(self._numbers)
        ours, theirs = multiprocessing.Pipe(duplex=True)
        for end in (ours, theirs):
            with socket.socket(fileno=os.dup(end.fileno())) as channel:
                channel.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHANNEL_BUFFER)
                channel.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CHANNEL_BUFFER)
        # Spawned, not forked: the API process has threads (SQLite, the HTTP server) that a
        # fork would copy in whatever state they are in.
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=worker_main,
            args=(theirs, os.getpid()),
            name=f"rtp-recorder-worker-{number}",
            daemon=True,
        )
        process.start()
        theirs.close()
        worker = _Worker(self, number, process, ours)
        self._workers.append(worker)
        self.loop.add_reader(ours.fileno(), worker.on_readable)
        try:
            await asyncio.wait_for(worker.request("hello"), START_TIMEOUT)
        except BaseException:
            worker.alive = False
            self._workers.remove(worker)
            with contextlib.suppress(Exception):
                self.loop.remove_reader(ours.fileno())
            ours.close()
            process.kill()
            raise
        return worker

    def lost(self, worker: _Worker, reason: str) -> None:
        """A worker died: it leaves the pool and, unless the pool is closing, is replaced."""
        if worker in self._workers:
            self._workers.remove(worker)
        if self._closing:
            return
        log.error("%s; starting another", reason)
        task = self.loop.create_task(self._replace())
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _replace(self) -> None:
        try:
            await self._spawn()
            self.replaced += 1
        except Exception:
            log.exception("a replacement worker did not start")

    async def start(
        self, settings: ConnectionSettings, events: ConnectionEvents
    ) -> RemoteConnection:
        await self.open()
        alive = [worker for worker in self._workers if worker.alive]
        if not alive:
            raise RecorderError("no worker process is running")
        worker = min(alive, key=lambda w: len(w.connections))
        key = next(self._keys)
        connection = RemoteConnection(key, worker, dict(settings.ports), events)
        # Listed before the request, so notices sent while it starts are not dropped.
        worker.connections[key] = connection
        try:
            ports, status = await worker.request("start", key, settings)
        except BaseException:
            worker.connections.pop(key, None)
            raise
        connection.ports = ports
        connection.update(status)
        return connection

    async def stop(self, handle: RemoteConnection) -> FinishedFile | None:
        handle.stopping = True
        worker = handle.worker
        try:
            finished, status = await worker.request("stop", handle.key)
        except errors.NoMediaError as error:
            status = getattr(error, "status", None)
            if status is not None:
                handle.update(status)
            raise
        finally:
            worker.connections.pop(handle.key, None)
        handle.update(status)
        return finished

    async def refresh(self, handles: Iterable[RemoteConnection]) -> None:
        by_worker: dict[_Worker, list[RemoteConnection]] = {}
        for handle in handles:
            if handle.worker.alive and not handle.stopping:
                by_worker.setdefault(handle.worker, []).append(handle)
        if not by_worker:
            return
        requests = [
            worker.request("status", [handle.key for handle in members])
            for worker, members in by_worker.items()
        ]
        replies = await asyncio.gather(*requests, return_exceptions=True)
        for members, reply in zip(by_worker.values(), replies, strict=True):
            if isinstance(reply, BaseException):
                continue  # that worker died: its connections are being recovered
            for handle in members:
                status = reply.get(handle.key)
                if status is not None:
                    handle.update(status)

    def tick(self, now: float) -> None:
        pass  # every worker ticks its own connections

    async def close(self) -> None:
        self._closing = True
        if self._opening is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._opening)
        for task in list(self._replacing):
            task.cancel()
        workers = list(self._workers)
        exits = [worker.request("exit") for worker in workers if worker.alive]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*exits, return_exceptions=True), EXIT_TIMEOUT)
        for worker in workers:
            worker.process.join(EXIT_TIMEOUT)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            if worker.alive:
                worker.alive = False
                with contextlib.suppress(Exception):
                    self.loop.remove_reader(worker.channel.fileno())
                worker.channel.close()
        self._workers.clear()


def _error(name: str, message: str, status: ConnectionStatus | None = None) -> Exception:
    """The exception a worker reported, as the class the caller knows (RecorderError else)."""
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, RecorderError)):
        cls = RecorderError
    try:
        error = cls(message)
    except TypeError:
        error = RecorderError(message)
    if status is not None:
        error.status = status  # type: ignore[attr-defined]
    return error


# -- inside a worker process ------------------------------------------------------------------


def worker_main(channel: Connection, parent: int) -> None:
    """A worker process: records the connections the API process hands it until told to exit."""
    # Ctrl-C in a terminal reaches the whole process group; the API process decides what
    # stops, and tells the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with(parent)
    # What importing made lives as long as the process: kept out of every later collection.
    gc.freeze()
    asyncio.run(_WorkerLoop(channel).run())


def _exit_with(parent: int) -> None:
    """Be killed when the API process dies, even by SIGKILL, so no orphan keeps its ports."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(EXIT_ORPHANED)


class _WorkerLoop:
    def __init__(self, channel: Connection) -> None:
        self._channel = channel
        self._recorders: dict[int, ConnectionRecorder] = {}
        self._announced: set[int] = set()
        self._exit: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._exit = loop.create_future()
        loop.add_reader(self._channel.fileno(), self._on_readable)
        while not self._exit.done():
            await asyncio.wait([self._exit], timeout=TICK)
            self._tick(time.monotonic())
        loop.remove_reader(self._channel.fileno())

    def _send(self, *message: Any) -> None:
        try:
            self._channel.send(message)
        except OSError:
            os._exit(EXIT_ORPHANED)

    def _reply(self, request_id: int, value: Any) -> None:
        self._send("reply", request_id, True, value)

    def _fail(self, request_id: int, error: BaseException, *extra: Any) -> None:
        self._send("reply", request_id, False, (type(error).__name__, str(error), *extra))

    def _on_readable(self) -> None:
        try:
            while self._channel.poll():
                self._handle(self._channel.recv())
        except (EOFError, OSError):
            # The API process is gone. Its files stay as they are, for the recovery of the
            # next start; finishing them here would race that start.
            os._exit(EXIT_ORPHANED)

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind, request_id, *arguments = message
        if kind == "start":
            task = asyncio.get_running_loop().create_task(self._start(request_id, *arguments))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == "stop":
            self._stop(request_id, arguments[0])
        elif kind == "status":
            keys = [key for key in arguments[0] if key in self._recorders]
            self._reply(request_id, {key: self._recorders[key].status() for key in keys})
        elif kind == "hello":
            self._reply(request_id, os.getpid())
        elif kind == "exit":
            for key in list(self._recorders):
                with contextlib.suppress(Exception):
                    self._recorders.pop(key).stop()
            self._reply(request_id, None)
            assert self._exit is not None
            if not self._exit.done():
                self._exit.set_result(None)

    async def _start(self, request_id: int, key: int, settings: ConnectionSettings) -> None:
        try:
            recorder = ConnectionRecorder(
                settings,
                on_split=partial(self._on_split, key),
                on_piece_open=partial(self._on_piece_open, key),
            )
            ports = await recorder.start()
        except Exception as error:
            self._fail(request_id, error)
            return
        self._recorders[key] = recorder
        self._reply(request_id, (ports, recorder.status()))

    def _stop(self, request_id: int, key: int) -> None:
        recorder = self._recorders.get(key)
        if recorder is None:
            self._fail(request_id, errors.NoMediaError("the connection is not recorded here"))
            return
        try:
            # Still listed while it stops: the last split piece is announced from in here.
            finished = recorder.stop()
        except Exception as error:
            self._fail(request_id, error, recorder.status())
            return
        finally:
            del self._recorders[key]
            self._announced.discard(key)
        self._reply(request_id, (finished, recorder.status()))

    def _on_piece_open(self, key: int, index: int) -> None:
        self._send("piece", key, index)

    def _on_split(self, key: int, finished: FinishedFile) -> None:
        recorder = self._recorders.get(key)
        status = recorder.status() if recorder is not None else ConnectionStatus()
        self._send("split", key, finished, status)

    def _tick(self, now: float) -> None:
        for key, recorder in list(self._recorders.items()):
            with contextlib.suppress(Exception):
                recorder.tick(now)
            if key not in self._announced and recorder.archive_started:
                self._announced.add(key)
                self._send("started", key, recorder.status())
