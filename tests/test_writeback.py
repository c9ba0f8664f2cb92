"""`recorder.writeback`: registered files reach the disk with nobody calling fsync; the races of
a file closed, unregistered or failing while the thread works on it.

Real files in `tmp_path` and real threads. Dirty pages are counted with Linux's `cachestat`
system call (6.5+), which reports a file's page-cache state without changing it.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from recorder import writeback
from recorder.connection import ConnectionRecorder, ConnectionSettings
from recorder.errors import NoMediaError
from recorder.writeback import Writeback
from tests.test_connection import MEDIA, _ports, _record

WAIT_S = 10.0  # generous: the machine is shared; a round normally takes milliseconds
MB = 1 << 20

_SYS_CACHESTAT = 451  # the same number on every architecture (the unified syscall table)


class _Range(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _CacheStat(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in ("cache", "dirty", "writeback", "evicted", "recently_evicted")
    ]


def _cachestat(fd: int, offset: int = 0, length: int = 0) -> _CacheStat:
    """Page-cache state of `length` bytes of the file from `offset` (0: to the end)."""
    libc = ctypes.CDLL(None, use_errno=True)
    span, stat = _Range(offset, length), _CacheStat()
    if libc.syscall(_SYS_CACHESTAT, fd, ctypes.byref(span), ctypes.byref(stat), 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return stat


def unwritten_pages(fd: int) -> int:
    """Pages of the file that are dirty or under write-back (not yet on disk)."""
    stat = _cachestat(fd)
    return int(stat.dirty + stat.writeback)


def cached_pages(fd: int, offset: int, length: int) -> int:
    return int(_cachestat(fd, offset, length).cache)


def wait_for(syncer: Writeback, condition: Callable[[], bool]) -> bool:
    """Rounds until `condition` holds (False after WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline or not syncer.wait_round(WAIT_S):
            return False
    return True


@pytest.fixture
def disk_dir(tmp_path: Path) -> Path:
    """`tmp_path` when page-cache state is observable there, else the test is skipped."""
    with open(tmp_path / "probe", "wb") as probe:
        probe.write(b"x" * 4096)
        probe.flush()
        try:
            dirty = unwritten_pages(probe.fileno())
        except OSError as error:
            pytest.skip(f"cachestat unavailable: {error}")
    if dirty == 0:
        pytest.skip("no dirty pages after a write here (tmpfs?): nothing to observe")
    return tmp_path


@pytest.fixture
def make() -> Iterator[Callable[..., Writeback]]:
    """Writeback instances of the test's own, with a fast poll; all closed afterwards."""
    made: list[Writeback] = []

    def factory(**options: object) -> Writeback:
        options = {"interval": 0.0, "poll": 0.01, **options}
        instance = Writeback(**options)  # type: ignore[arg-type]
        made.append(instance)
        return instance

    yield factory
    for instance in made:
        instance.close()


def test_a_registered_file_reaches_the_disk_without_fsync(
    disk_dir: Path, make: Callable[..., Writeback]
) -> None:
    syncer = make()
    with open(disk_dir / "kept.webm", "w+b") as kept, open(disk_dir / "other", "w+b") as other:
        syncer.register(kept)
        for file in (kept, other):
            file.write(os.urandom(4 * MB))
            file.flush()
        assert unwritten_pages(other.fileno()) > 0  # what the kernel leaves for ~30 s
        assert syncer.wait_round(WAIT_S)
        assert unwritten_pages(kept.fileno()) == 0
        # It keeps following the file as it grows.
        kept.write(os.urandom(MB))
        kept.flush()
        assert syncer.wait_round(WAIT_S)
        assert unwritten_pages(kept.fileno()) == 0
        assert syncer.unregister(kept) is None
    stats = syncer.stats()
    assert stats["files"] == 0 and stats["errors"] == 0
    assert stats["syncs"] >= 2 and stats["synced_bytes"] == 5 * MB


def test_synced_pages_leave_the_page_cache_one_sync_later_but_the_head(
    disk_dir: Path, make: Callable[..., Writeback]
) -> None:
    syncer = make()
    page = os.sysconf("SC_PAGE_SIZE")
    head = writeback.KEEP_HEAD_BYTES
    with open(disk_dir / "long.webm", "w+b") as file:
        file.write(os.urandom(8 * MB))
        file.flush()
        syncer.register(file)  # after the write: its first sync takes all of it
        assert wait_for(syncer, lambda: syncer.stats()["synced_bytes"] == 8 * MB)
        assert cached_pages(file.fileno(), 0, 8 * MB) == 8 * MB // page  # synced, still cached
        file.write(os.urandom(2 * MB))
        file.flush()
        # (The thread may see the write half done, and sync it in two.)
        assert wait_for(syncer, lambda: syncer.stats()["synced_bytes"] == 10 * MB)
        dropped = syncer.stats()["dropped_bytes"]
        assert 8 * MB - head <= dropped < 10 * MB - head
        # What was synced before the last sync is gone, but the head, kept for the patches at
        # close (the kernel drops whole folios only: a folio of up to 2 MB at either edge may
        # stay); the last sync's pages stay until the next one.
        assert cached_pages(file.fileno(), 0, head) == head // page
        assert cached_pages(file.fileno(), head, dropped) <= 4 * MB // page
        assert cached_pages(file.fileno(), 4 * MB, 4 * MB) == 0
        kept = 10 * MB - head - dropped
        assert cached_pages(file.fileno(), head + dropped, kept) == kept // page
        syncer.unregister(file)
        # What left the cache is intact on disk.
        file.seek(0)
        assert len(file.read()) == 10 * MB


def test_a_file_that_did_not_grow_is_not_synced(
    tmp_path: Path, make: Callable[..., Writeback]
) -> None:
    calls: list[int] = []
    syncer = make(sync=calls.append)
    with open(tmp_path / "a", "w+b") as file:
        syncer.register(file)
        file.write(b"head")
        file.flush()
        assert syncer.wait_round(WAIT_S)
        assert len(calls) == 1
        for _ in range(3):
            assert syncer.wait_round(WAIT_S)
        assert len(calls) == 1
        syncer.unregister(file)


def test_a_file_growing_fast_is_synced_by_growth_before_its_interval(
    tmp_path: Path, make: Callable[..., Writeback]
) -> None:
    calls: list[int] = []
    syncer = make(sync=calls.append, interval=3600.0, growth=MB)
    with open(tmp_path / "a", "w+b") as file:
        for step in range(3):
            file.write(b"x" * (MB // 4))
            file.flush()
            if step == 0:
                # Growing when first seen: looked at again when, at its rate, it may be due.
                syncer.register(file)
            assert syncer.wait_round(WAIT_S)
        assert calls == []  # neither the interval nor the growth threshold has passed
        file.write(b"x" * (MB // 4))
        file.flush()
        assert wait_for(syncer, lambda: len(calls) == 1)
        assert syncer.unregister(file) is None


def test_the_thread_syncs_its_own_descriptor_of_the_file(
    tmp_path: Path, make: Callable[..., Writeback]
) -> None:
    calls: list[int] = []
    syncer = make(sync=calls.append)
    with open(tmp_path / "a", "w+b") as file:
        syncer.register(file)
        file.write(b"data")
        file.flush()
        assert syncer.wait_round(WAIT_S)
        [fd] = calls
        assert fd != file.fileno()
        assert os.path.samestat(os.fstat(fd), os.fstat(file.fileno()))
        syncer.unregister(file)
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.fstat(fd)  # closed by unregister


def test_unregister_waits_for_a_sync_in_progress_then_closes(
    tmp_path: Path, make: Callable[..., Writeback]
) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_sync(fd: int) -> None:
        entered.set()
        assert release.wait(WAIT_S)
        os.fdatasync(fd)  # the descriptor is still open: unregister is waiting

    syncer = make(sync=slow_sync)
    file = open(tmp_path / "a", "w+b")  # noqa: SIM115
    syncer.register(file)
    file.write(b"data")
    file.flush()
    assert entered.wait(WAIT_S)
    results: list[OSError | None] = []
    unregistering = threading.Thread(target=lambda: results.append(syncer.unregister(file)))
    unregistering.start()
    unregistering.join(0.05)
    assert unregistering.is_alive() and results == []
    release.set()
    unregistering.join(WAIT_S)
    assert results == [None]
    assert syncer.stats() == {
        "files": 0,
        "syncs": 1,
        "synced_bytes": 4,
        "dropped_bytes": 0,
        "errors": 0,
    }
    file.close()


def test_a_file_closed_by_its_owner_during_a_sync_is_dropped(
    tmp_path: Path, make: Callable[..., Writeback]
) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_sync(fd: int) -> None:
        entered.set()
        assert release.wait(WAIT_S)
        os.fdatasync(fd)

    syncer = make(sync=slow_sync)
    file = open(tmp_path / "a", "w+b")  # noqa: SIM115
    syncer.register(file)
    file.write(b"data")
    file.flush()
    assert entered.wait(WAIT_S)
    file.close()  # by the event loop, without unregistering, while the thread syncs it
    # The freed descriptor number goes to another file, which the thread must not touch.
    with open(tmp_path / "b", "w+b") as reuse:
        release.set()
        assert syncer.wait_round(WAIT_S)
        assert syncer.stats() == {
            "files": 0,
            "syncs": 1,
            "synced_bytes": 4,
            "dropped_bytes": 0,
            "errors": 0,
        }
        reuse.write(b"more")
        reuse.flush()
        assert syncer.wait_round(WAIT_S)
    assert syncer.stats()["syncs"] == 1
    assert syncer.unregister(file) is None  # already dropped: nothing to do


def test_a_file_collected_without_unregister_is_dropped(
    tmp_path: Path, make: Callable[..., Writeback]
) -> None:
    syncer = make(sync=lambda fd: None)
    file = open(tmp_path / "a", "w+b")  # noqa: SIM115
    syncer.register(file)
    assert syncer.stats()["files"] == 1
    with pytest.warns(ResourceWarning):
        del file  # CPython closes and frees it here
    assert syncer.wait_round(WAIT_S)
    assert syncer.stats()["files"] == 0


def test_unregister_twice_or_never_registered_is_harmless(
    tmp_path: Path, make: Callable[..., Writeback]
) -> None:
    syncer = make()
    with open(tmp_path / "a", "w+b") as file, open(tmp_path / "b", "w+b") as stranger:
        assert syncer.unregister(stranger) is None
        syncer.register(file)
        syncer.register(file)  # again: one entry, the first descriptor closed
        assert syncer.stats()["files"] == 1
        assert syncer.unregister(file) is None
        assert syncer.unregister(file) is None
    assert syncer.stats()["files"] == 0


def test_a_failed_sync_is_counted_kept_for_the_owner_and_not_fatal(
    tmp_path: Path, make: Callable[..., Writeback], caplog: pytest.LogCaptureFixture
) -> None:
    synced: list[int] = []

    def sync(fd: int) -> None:
        if os.path.samestat(os.fstat(fd), os.stat(tmp_path / "bad")):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        synced.append(fd)

    syncer = make(sync=sync)
    with open(tmp_path / "bad", "w+b") as bad, open(tmp_path / "good", "w+b") as good:
        syncer.register(bad)
        for growth in range(3):
            bad.write(b"x" * (growth + 1))
            bad.flush()
            assert syncer.wait_round(WAIT_S)
        # The thread is alive and still syncs other files.
        syncer.register(good)
        good.write(b"y")
        good.flush()
        assert syncer.wait_round(WAIT_S)
        assert len(synced) == 1
        assert syncer.stats()["errors"] == 3
        error = syncer.unregister(bad)
        assert isinstance(error, OSError) and error.errno == errno.EIO
        assert syncer.unregister(good) is None
    # Logged once for the file, not at every failure.
    assert [r.getMessage() for r in caplog.records].count(
        f"write-back of {tmp_path / 'bad'} failed: [Errno 5] Input/output error"
    ) == 1


def test_an_unexpected_exception_does_not_stop_the_thread(
    tmp_path: Path, make: Callable[..., Writeback]
) -> None:
    calls: list[int] = []

    def sync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise RuntimeError("a bug")

    syncer = make(sync=sync)
    with open(tmp_path / "a", "w+b") as file:
        syncer.register(file)
        file.write(b"x")
        file.flush()
        assert syncer.wait_round(WAIT_S)
        assert syncer.stats()["errors"] == 1
        file.write(b"x")
        file.flush()
        assert syncer.wait_round(WAIT_S)
        assert len(calls) >= 2
        assert syncer.unregister(file) is None


def test_the_process_instance_starts_its_thread_on_first_use(tmp_path: Path) -> None:
    with open(tmp_path / "a", "w+b") as file:
        writeback.register(file)
        assert writeback.stats()["files"] >= 1
        assert any(thread.name == "recorder-writeback" for thread in threading.enumerate())
        assert writeback.unregister(file) is None


@pytest.mark.parametrize("container", ["webm", "mp4"])
def test_a_connection_registers_every_temp_file_until_its_final_fsync(
    tmp_path: Path, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str, bool]] = []
    real_register, real_unregister = writeback.register, writeback.unregister

    def register(file: BinaryIO) -> None:
        calls.append(("register", Path(file.name).name, file.closed))
        real_register(file)

    def unregister(file: BinaryIO) -> OSError | None:
        calls.append(("unregister", Path(file.name).name, file.closed))
        return real_unregister(file)

    monkeypatch.setattr(writeback, "register", register)
    monkeypatch.setattr(writeback, "unregister", unregister)
    before = writeback.stats()["files"]
    recorder = ConnectionRecorder(
        ConnectionSettings(
            MEDIA,
            container=container,
            tmp_dir=tmp_path / "tmp",
            final_dir=tmp_path / "archive",
            ports=_ports(),
            single_name=f"archive-c1.{container}",
            split_name=lambda index: f"split-archive-c1_{index:04d}.{container}",
            split_duration=1.5,
            listen="127.0.0.1",
        )
    )
    assert asyncio.run(_record(recorder)) is not None
    single, first, second = (
        f"archive-c1.{container}",
        f"split-archive-c1_0001.{container}",
        f"split-archive-c1_0002.{container}",
    )
    assert calls == [
        ("register", single, False),
        ("register", first, False),
        ("unregister", first, False),
        ("register", second, False),
        ("unregister", second, False),
        ("unregister", single, False),
    ]
    assert writeback.stats()["files"] == before


def test_a_connection_that_never_started_unregisters_its_file(tmp_path: Path) -> None:
    before = writeback.stats()["files"]
    recorder = ConnectionRecorder(
        ConnectionSettings(
            MEDIA,
            container="webm",
            tmp_dir=tmp_path,
            final_dir=tmp_path,
            ports=_ports(),
            single_name="archive-c1.webm",
            listen="127.0.0.1",
        )
    )

    async def scenario() -> None:
        await recorder.start()
        assert writeback.stats()["files"] == before + 1
        with pytest.raises(NoMediaError):
            recorder.stop()

    asyncio.run(scenario())
    assert writeback.stats()["files"] == before
