"""A fault-injecting UDP relay for live tests: sender -> relay -> recorder, and feedback back.

Each route listens on one port (what the sender targets) and forwards to one target port (where
the recorder listens), through its own upstream socket, the way a NAT or an SFU would: the
recorder sees the relay's upstream address as the source, so the RTCP it sends back (RR, PLI,
FIR) lands on that socket and the relay passes it on, unharmed, to the last address the sender
sent from. Faults apply to the forward direction only, because the tests judge what the recorder
makes of a damaged stream, not how a sender copes with lost feedback.

Fault decisions come from one `random.Random` per route seeded from the relay's seed and the
route's index, so a run with the same seed and the same packet sequence makes the same
decisions whatever the interleaving between routes.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import random
import selectors
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

HOST = "127.0.0.1"
MAX_DATAGRAM = 65536
# Big enough that a burst held back for reordering or jitter never overflows a socket buffer.
SOCKET_BUFFER = 4 << 20


@dataclass(frozen=True)
class Faults:
    """Per-packet probabilities (0..1) and delays for the forward direction."""

    loss: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0
    # A reordered packet is sent after 1..reorder_depth later packets of its route, or after
    # reorder_hold_ms if no later packet comes (the end of a stream must not strand it).
    reorder_depth: int = 3
    reorder_hold_ms: float = 20.0
    # Every packet is delayed by a uniform 0..jitter_ms, but never sent before the packet that
    # preceded it on the route: jitter alone keeps the order (reordering is `reorder`'s job).
    jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in ("loss", "reorder", "duplicate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability, got {value}")
        if self.reorder_depth < 1 or self.reorder_hold_ms < 0 or self.jitter_ms < 0:
            raise ValueError("reorder_depth >= 1, reorder_hold_ms >= 0 and jitter_ms >= 0")


NO_FAULTS = Faults()


@dataclass
class Route:
    """One listening port and where its datagrams go; `faults` overrides the relay's."""

    listen: int  # 0: pick a free port (read it back from `.listen` after start)
    target: int
    target_host: str = HOST
    faults: Faults | None = None
    counts: Counter[str] = field(default_factory=Counter)
    last: bytes = b""  # the last datagram the sender sent (a template for forged ones)


class _Held:
    __slots__ = ("countdown", "data", "deadline")

    def __init__(self, data: bytes, countdown: int, deadline: float) -> None:
        self.data = data
        self.countdown = countdown
        self.deadline = deadline


class _RouteState:
    __slots__ = ("downstream", "faults", "held", "last_due", "peer", "random", "route", "upstream")

    def __init__(self, route: Route, faults: Faults, seed: int) -> None:
        self.route = route
        self.faults = faults
        self.random = random.Random(seed)
        self.downstream = _udp_socket(HOST, route.listen)
        self.upstream = _udp_socket(HOST, 0)
        route.listen = self.downstream.getsockname()[1]
        self.peer: tuple[str, int] | None = None
        self.held: list[_Held] = []
        self.last_due = 0.0


def _udp_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Relay:
    """Context manager running the relay on a thread. `counts` totals every route's counters:
    forwarded-direction `received`, `dropped`, `reordered`, `duplicated`, `delayed`, `sent`;
    feedback-direction `returned`, and `unroutable` for feedback that came before any sender;
    `injected` for what the test sent itself through `inject`."""

    def __init__(self, routes: list[Route], faults: Faults = NO_FAULTS, seed: int = 0) -> None:
        self.routes = routes
        self.faults = faults
        self.seed = seed
        self._states: list[_RouteState] = []
        self._selector = selectors.DefaultSelector()
        self._queue: list[tuple[float, int, _RouteState, bytes]] = []
        self._order = itertools.count()
        self._stop = threading.Event()
        self._drain = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._lock = threading.Lock()

    @property
    def counts(self) -> Counter[str]:
        with self._lock:
            total: Counter[str] = Counter()
            for route in self.routes:
                total.update(route.counts)
            return total

    def __enter__(self) -> Relay:
        try:
            for index, route in enumerate(self.routes):
                state = _RouteState(route, route.faults or self.faults, self.seed * 1000 + index)
                self._states.append(state)
                self._selector.register(state.downstream, selectors.EVENT_READ, (state, True))
                self._selector.register(state.upstream, selectors.EVENT_READ, (state, False))
        except OSError:
            self._close()
            raise
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self, drain: bool = True) -> None:
        """Stops the thread; with `drain`, packets still held or delayed are sent first."""
        if self._thread.is_alive():
            if drain:
                self._drain.set()
            self._stop.set()
            self._thread.join(timeout=10)
        self._close()

    def _close(self) -> None:
        for state in self._states:
            for sock in (state.downstream, state.upstream):
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(sock)
                sock.close()
        self._states.clear()
        self._selector.close()

    def inject(self, route: Route, data: bytes) -> None:
        """Send `data` to `route`'s target from the address the recorder knows as the sender,
        past the faults: what a compromised or broken sender would send."""
        for state in self._states:
            if state.route is route:
                self._send(state.upstream, data, (route.target_host, route.target))
                with self._lock:
                    route.counts["injected"] += 1
                return
        raise ValueError("not a route of this relay")

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            timeout = 0.05
            if self._queue:
                timeout = min(timeout, max(0.0, self._queue[0][0] - now))
            for key, _ in self._selector.select(timeout):
                state, forward = key.data
                self._read(state, forward)
            self._release_expired(time.monotonic())
            self._send_due(time.monotonic())
        if self._drain.is_set():
            for state in self._states:
                self._release(state, list(state.held))
            while self._queue:
                self._send_due(float("inf"))

    def _read(self, state: _RouteState, forward: bool) -> None:
        sock = state.downstream if forward else state.upstream
        while True:
            try:
                data, source = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # ICMP port unreachable from a target that is not listening yet.
                continue
            with self._lock:
                if forward:
                    state.peer = source
                    state.route.last = data
                    self._forward(state, data, time.monotonic())
                elif state.peer is None:
                    state.route.counts["unroutable"] += 1
                else:
                    state.route.counts["returned"] += 1
                    self._send(state.downstream, data, state.peer)

    def _forward(self, state: _RouteState, data: bytes, now: float) -> None:
        faults, rng, counts = state.faults, state.random, state.route.counts
        counts["received"] += 1
        # Draw every decision for every packet, so one fault's probability never shifts the
        # random sequence another fault sees.
        lose, reorder, duplicate = rng.random(), rng.random(), rng.random()
        depth = rng.randint(1, faults.reorder_depth)
        jitter = rng.uniform(0.0, faults.jitter_ms) / 1000 if faults.jitter_ms else 0.0
        if lose < faults.loss:
            counts["dropped"] += 1
            self._count_down(state, now)
            return
        copies = 2 if duplicate < faults.duplicate else 1
        if copies == 2:
            counts["duplicated"] += 1
        if reorder < faults.reorder:
            counts["reordered"] += 1
            # The held packet's duplicate (if any) goes out on time, so the two copies
            # straddle the packets that overtake the original.
            if copies == 2:
                self._schedule(state, data, now, jitter)
            self._count_down(state, now)
            state.held.append(_Held(data, depth, now + faults.reorder_hold_ms / 1000))
            return
        for _ in range(copies):
            self._schedule(state, data, now, jitter)
        self._count_down(state, now)

    def _count_down(self, state: _RouteState, now: float) -> None:
        """One more packet went by: held packets whose countdown ends follow it."""
        ready = []
        for held in state.held:
            held.countdown -= 1
            if held.countdown <= 0:
                ready.append(held)
        self._release(state, ready)

    def _release_expired(self, now: float) -> None:
        with self._lock:
            for state in self._states:
                self._release(state, [held for held in state.held if held.deadline <= now])

    def _release(self, state: _RouteState, ready: list[_Held]) -> None:
        for held in ready:
            state.held.remove(held)
            self._schedule(state, held.data, time.monotonic(), 0.0)

    def _schedule(self, state: _RouteState, data: bytes, now: float, jitter: float) -> None:
        due = max(now + jitter, state.last_due)
        if due > now:
            state.route.counts["delayed"] += 1
        state.last_due = due
        heapq.heappush(self._queue, (due, next(self._order), state, data))

    def _send_due(self, now: float) -> None:
        with self._lock:
            while self._queue and self._queue[0][0] <= now:
                _, _, state, data = heapq.heappop(self._queue)
                state.route.counts["sent"] += 1
                self._send(state.upstream, data, (state.route.target_host, state.route.target))

    @staticmethod
    def _send(sock: socket.socket, data: bytes, target: tuple[str, int]) -> None:
        # A target not listening (yet) answers with ICMP; UDP is allowed to lose that.
        with contextlib.suppress(OSError):
            sock.sendto(data, target)
