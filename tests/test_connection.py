"""`ConnectionRecorder`: ports from the pool, live ingest, single + split files moved into place."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from recorder.connection import (
    ConnectionRecorder,
    FinishedFile,
    MediaRequest,
    NoPortsAvailable,
    PortPool,
)
from recorder.errors import NoMediaError, UnsupportedError
from tests.captures import datagrams
from tests.judges import CAPTURES, decode_errors, framemd5, source_md5

CAPTURE_PORTS = {"video": 5004, "audio": 5006}
SPEED = 4.0
MEDIA = [
    MediaRequest("video", "VP8", 96),
    MediaRequest("audio", "opus", 111, fmtp={"sprop-stereo": "1"}),
]


def _pool() -> PortPool:
    # Ports nothing else in the tests uses; the pool is checked by binding them.
    return PortPool(31000, 31100)


async def _send_capture(ports: dict[str, int]) -> None:
    """Replay the GStreamer capture to the allocated ports, four times faster than captured."""
    loop = asyncio.get_running_loop()
    senders = {kind: socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for kind in ports}
    by_port = {port: kind for kind, port in CAPTURE_PORTS.items()}
    items = [(t, by_port[p], d) for t, _, _, p, d in datagrams(CAPTURES["gst"][0]) if p in by_port]
    start = loop.time()
    for sent_at, kind, data in items:
        delay = (sent_at - items[0][0]) / SPEED - (loop.time() - start)
        if delay > 0:
            await asyncio.sleep(delay)
        senders[kind].sendto(data, ("127.0.0.1", ports[kind]))
    for sock in senders.values():
        sock.close()


async def _record(recorder: ConnectionRecorder) -> FinishedFile | None:
    ports = await recorder.start()
    sender = asyncio.create_task(_send_capture(ports))
    while not sender.done():
        recorder.tick(time.monotonic())
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    return recorder.stop()


@pytest.mark.parametrize("container", ["webm", "mp4"])
def test_dual_output_single_file_and_split_pieces(tmp_path: Path, container: str) -> None:
    split_done = []
    recorder = ConnectionRecorder(
        MEDIA,
        container=container,
        tmp_dir=tmp_path / "tmp" / "rec",
        final_dir=tmp_path / "archive" / "rec",
        single_name=f"archive-c1.{container}",
        split_name=lambda index: f"split-archive-c1_{index:04d}.{container}",
        split_duration=1.5,
        ports=_pool(),
        listen="127.0.0.1",
        on_split=split_done.append,
    )
    single = asyncio.run(_record(recorder))
    assert single is not None and single.path == tmp_path / "archive" / "rec" / single.path.name
    assert single.size == single.path.stat().st_size
    assert framemd5(single.path, "video")[0] == source_md5("video")
    assert framemd5(single.path, "audio")[0] == source_md5("audio")
    # The split pieces were moved as each finished; together they hold every video frame.
    assert [piece.index for piece in split_done] == [1, 2]
    assert [p.path.name for p in split_done] == [
        f"split-archive-c1_0001.{container}",
        f"split-archive-c1_0002.{container}",
    ]
    decoded = []
    for piece in split_done:
        assert decode_errors(piece.path) == ""
        decoded += framemd5(piece.path, "video")[0]
    assert decoded == source_md5("video")
    assert list((tmp_path / "tmp" / "rec").iterdir()) == []
    stats = recorder.stats()
    assert [s["packets"] for s in stats] == [173, 200]


def test_ports_come_back_to_the_pool_and_run_out(tmp_path: Path) -> None:
    pool = PortPool(31200, 31204)  # two pairs

    async def scenario() -> None:
        options = {"container": "webm", "tmp_dir": tmp_path, "final_dir": tmp_path}
        first = ConnectionRecorder(
            MEDIA, single_name="a.webm", ports=pool, listen="127.0.0.1", **options
        )
        assert await first.start() == {"video": 31200, "audio": 31202}
        second = ConnectionRecorder(
            MEDIA, single_name="b.webm", ports=pool, listen="127.0.0.1", **options
        )
        with pytest.raises(NoPortsAvailable):
            await second.start()
        with pytest.raises(NoMediaError):
            first.stop()  # nothing was sent: the archive failed
        assert await second.start() == {"video": 31200, "audio": 31202}
        with pytest.raises(NoMediaError):
            second.stop()

    asyncio.run(scenario())


def test_h265_is_refused_for_webm_before_any_port_is_taken(tmp_path: Path) -> None:
    pool = PortPool(31300, 31310)
    with pytest.raises(UnsupportedError, match="H265 cannot be written to WEBM"):
        ConnectionRecorder([MediaRequest("video", "H265", 96)], container="webm",
                           tmp_dir=tmp_path, final_dir=tmp_path, single_name="a.webm",
                           ports=pool)  # fmt: skip
    assert pool.take() == 31300


def test_pairs_held_by_another_process_are_passed_over() -> None:
    pool = PortPool(31400, 31405)  # three pairs
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", 31401))  # the RTCP port of the first pair
    try:
        assert pool.take("127.0.0.1") == 31402
        assert pool.take("127.0.0.1") == 31404
        with pytest.raises(NoPortsAvailable):
            pool.take("127.0.0.1")
    finally:
        squatter.close()
    assert pool.take("127.0.0.1") == 31400  # free again, and kept in the pool
