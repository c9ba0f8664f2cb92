"""`ConnectionRecorder`: its ports, live ingest, single + split files moved into place; and the
`PortPool` its owner takes the ports from."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from recorder.connection import (
    ConnectionRecorder,
    ConnectionSettings,
    FinishedFile,
    MediaRequest,
    NoPortsAvailable,
    PortPool,
)
from recorder.errors import NoMediaError, RecorderError, UnsupportedError
from tests.captures import send_capture
from tests.judges import CAPTURES, decode_errors, framemd5, source_md5

MEDIA = [
    MediaRequest("video", "VP8", 96),
    MediaRequest("audio", "opus", 111, fmtp={"sprop-stereo": "1"}),
]


def _ports() -> dict[str, int]:
    # Ports nothing else in the tests uses; the pool is checked by binding them.
    pool = PortPool(31000, 31100)
    return {"video": pool.take("127.0.0.1"), "audio": pool.take("127.0.0.1")}


async def _record(recorder: ConnectionRecorder) -> FinishedFile | None:
    ports = await recorder.start()
    sender = asyncio.create_task(send_capture(CAPTURES["gst"][0], ports))
    while not sender.done():
        recorder.tick(time.monotonic())
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    return recorder.stop()


@pytest.mark.parametrize("container", ["webm", "mp4"])
def test_dual_output_single_file_and_split_pieces(tmp_path: Path, container: str) -> None:
    split_done = []
    recorder = ConnectionRecorder(
        ConnectionSettings(
            MEDIA,
            container=container,
            tmp_dir=tmp_path / "tmp" / "rec",
            final_dir=tmp_path / "archive" / "rec",
            ports=_ports(),
            single_name=f"archive-c1.{container}",
            split_name=lambda index: f"split-archive-c1_{index:04d}.{container}",
            split_duration=1.5,
            listen="127.0.0.1",
        ),
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


def test_ports_come_back_to_the_pool_and_run_out() -> None:
    pool = PortPool(31200, 31204)  # two pairs
    assert [pool.take(), pool.take()] == [31200, 31202] and pool.free == 0
    with pytest.raises(NoPortsAvailable):
        pool.take()
    pool.give_back(31200)
    pool.give_back(31200)  # a second return of the same port changes nothing
    assert pool.free == 1 and pool.take() == 31200


def test_a_port_that_cannot_be_bound_leaves_nothing_bound(tmp_path: Path) -> None:
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", 31252))  # the audio port

    async def scenario() -> None:
        settings = ConnectionSettings(
            MEDIA, container="webm", tmp_dir=tmp_path, final_dir=tmp_path,
            ports={"video": 31250, "audio": 31252}, single_name="a.webm", listen="127.0.0.1",
        )  # fmt: skip
        recorder = ConnectionRecorder(settings)
        with pytest.raises(RecorderError, match=r"cannot listen on 127\.0\.0\.1:31252"):
            await recorder.start()
        squatter.close()
        # The video port was released, and the same connection starts once the port is free.
        recorder = ConnectionRecorder(settings)
        assert await recorder.start() == {"video": 31250, "audio": 31252}
        with pytest.raises(NoMediaError):
            recorder.stop()  # nothing was sent: the archive failed

    try:
        asyncio.run(scenario())
    finally:
        squatter.close()


def test_h265_is_refused_for_webm_before_any_port_is_bound(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match="H265 cannot be written to WEBM"):
        ConnectionRecorder(ConnectionSettings(
            [MediaRequest("video", "H265", 96)], container="webm", tmp_dir=tmp_path,
            final_dir=tmp_path, ports={"video": 31300}, single_name="a.webm",
        ))  # fmt: skip


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
