"""The live-test harness itself, checked with plain sockets: the fault-injecting relay must do
what the live tests rely on."""

from __future__ import annotations

import itertools
import socket
import struct
import time

from tests.relay import HOST, Faults, Relay, Route

PACKETS = 400


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((HOST, 0))
    return sock


def _collect(sock: socket.socket, quiet: float = 0.3) -> list[bytes]:
    """Everything that arrives until the socket stays quiet for `quiet` seconds."""
    sock.settimeout(quiet)
    received = []
    while True:
        try:
            received.append(sock.recv(65536))
        except TimeoutError:
            return received


def _send_numbered(relay: Relay, route: Route, count: int = PACKETS) -> socket.socket:
    sender = _socket()
    for index in range(count):
        sender.sendto(struct.pack("!I", index) + bytes(100), (HOST, route.listen))
        if index % 20 == 19:
            time.sleep(0.002)  # paced a little, as a real sender would be
    return sender


def _run(faults: Faults, seed: int, count: int = PACKETS) -> tuple[list[int], dict[str, int]]:
    receiver = _socket()
    route = Route(0, receiver.getsockname()[1])
    with Relay([route], faults, seed) as relay:
        sender = _send_numbered(relay, route, count)
        time.sleep(0.2)
        relay.stop(drain=True)
        received = [struct.unpack_from("!I", data)[0] for data in _collect(receiver)]
    sender.close()
    receiver.close()
    return received, dict(relay.counts)


def test_without_faults_every_packet_arrives_once_in_order() -> None:
    received, counts = _run(Faults(), seed=1)
    assert received == list(range(PACKETS))
    assert counts["received"] == counts["sent"] == PACKETS
    assert not counts.get("dropped") and not counts.get("reordered")


def test_faults_happen_at_about_their_rates_and_are_counted() -> None:
    faults = Faults(
        loss=0.05, reorder=0.05, duplicate=0.05, jitter_ms=5, reorder_depth=3, reorder_hold_ms=500
    )
    received, counts = _run(faults, seed=7)
    for name in ("dropped", "reordered", "duplicated"):
        assert 5 <= counts[name] <= 40, (name, counts)
    assert counts["delayed"] > PACKETS // 2
    assert counts["sent"] == PACKETS - counts["dropped"] + counts["duplicated"]
    assert len(received) == counts["sent"]
    # Lost packets are missing, duplicated ones twice, and nothing is made up.
    seen = {index: received.count(index) for index in set(received)}
    assert PACKETS - len(seen) == counts["dropped"]
    assert sum(seen.values()) - len(seen) == counts["duplicated"]
    assert set(seen) <= set(range(PACKETS))
    # Reordered packets arrive after 1-3 later packets: displaced, but not far.
    first = sorted(set(received), key=received.index)
    inversions = sum(1 for a, b in itertools.pairwise(first) if b < a)
    assert 0 < inversions <= counts["reordered"]
    assert all(abs(first.index(i) - rank) <= 4 for rank, i in enumerate(sorted(first)))


def test_the_same_seed_makes_the_same_decisions() -> None:
    faults = Faults(loss=0.1, reorder=0.1, duplicate=0.1, reorder_hold_ms=1000)
    first, _ = _run(faults, seed=3)
    again, _ = _run(faults, seed=3)
    other, _ = _run(faults, seed=4)
    assert first == again
    assert first != other


def test_a_held_packet_is_released_when_no_later_packet_comes() -> None:
    received, counts = _run(Faults(reorder=1.0, reorder_depth=5, reorder_hold_ms=30), 0, 1)
    assert received == [0]
    assert counts["reordered"] == 1


def test_feedback_reaches_the_sender_source_address_unharmed() -> None:
    recorder = _socket()
    route = Route(0, recorder.getsockname()[1])
    with Relay([route], Faults(loss=0.5, reorder=0.5, duplicate=0.5), seed=2) as relay:
        sender = _socket()
        recorder.settimeout(0.1)
        for _ in range(50):  # until one gets through the loss
            sender.sendto(b"SR", (HOST, route.listen))
            try:
                data, upstream = recorder.recvfrom(100)
                break
            except TimeoutError:
                continue
        assert data == b"SR"
        for index in range(20):
            recorder.sendto(b"PLI%d" % index, upstream)
        # From the port the sender sends to (symmetric RTCP), all of it, in order, once.
        received = []
        sender.settimeout(1)
        for _ in range(20):
            data, source = sender.recvfrom(100)
            assert source == (HOST, route.listen)
            received.append(data)
        assert received == [b"PLI%d" % index for index in range(20)]
        assert relay.counts["returned"] == 20
    recorder.close()
    sender.close()
