"""`rtp-recorder serve` end to end: a subprocess driven over HTTP, fed by real senders.

GStreamer and FFmpeg (tests/senders.py) send the VP8 + Opus fixture clip in real time to the
ports the API hands out; the files, their JSON documents and the report are then judged on disk
and by FFmpeg. Covered: two connections with split + dual output, one leaving early, and a
blocked one; expire_time ending a recording by itself; kill -9 mid-recording and recovery on
the next start; hostile request bodies against the running server. About 30 s in all, most of
it the senders' real-time clips.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import senders
from tests.judges import decode_errors, framemd5, source_md5

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
# After a sender's last packet: time for the last datagrams to arrive before the stop.
TAIL = 0.5
SOURCE_FRAMES = 120  # 4 s at 30 fps
VP8_OPUS = {
    "audio": {"codec": "OPUS", "payload_type": senders.AUDIO_PT, "fmtp": {"sprop-stereo": "1"}},
    "video": {"codec": "VP8", "payload_type": senders.VIDEO_PT},
}


# --------------------------------------------------------------------------- the server


def _free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rtp_port_range() -> tuple[int, int]:
    # Below the kernel's ephemeral range (32768-), where the senders' own ports come from;
    # random, so runs in parallel rarely share one (the recorder passes over held ports anyway).
    first = random.randrange(20000, 30000, 64)
    return first, first + 63


@dataclass
class Serve:
    """One `rtp-recorder serve` on its own directories; `start` again reuses them."""

    root: Path
    rtp_ports: tuple[int, int]
    api_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def archive_dir(self) -> Path:
        return self.root / "archive"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "archive_tmp"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        self.api_port = _free_tcp_port()
        first, last = self.rtp_ports
        # Relative paths from cwd=root: the directories are the test's alone.
        command = [sys.executable, "-m", "recorder.cli", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.api_port), "--archive-dir", "archive"]
        command += ["--archive-tmp-dir", "archive_tmp", "--state", "state.sqlite3"]
        command += ["--rtp-port-range", f"{first}-{last}", "--rtp-listen", "127.0.0.1"]
        command += ["--min-free-space", "0"]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("RTP_RECORDER_")}
        runs = len(list(self.root.glob("serve-*.log")))
        self.log_path = self.root / f"serve-{runs + 1}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.root, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=environment,
            )  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"serve did not answer in time:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> str:
        """SIGTERM; it must exit 0 without a traceback. Returns its output."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"serve did not stop on SIGTERM:\n{self.log}") from None
        log = self.log
        assert self.process.returncode == 0, f"serve exited {self.process.returncode}:\n{log}"
        return log

    # -- requests -------------------------------------------------------------------------

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", timeout=10.0, **options)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.request("POST", "/v1/recordings", json=body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def get(self, recording_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/v1/recordings/{recording_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def stop_recording(self, recording_id: str) -> dict[str, Any]:
        """POST stop (202, asynchronous), then poll until the recording says it stopped."""
        response = self.request("POST", f"/v1/recordings/{recording_id}/stop")
        assert response.status_code == 202, response.text
        return wait_for(lambda: _final(self.get(recording_id)), 10.0, "the recording to stop")


def _final(view: dict[str, Any]) -> dict[str, Any] | None:
    return view if view["state"] in ("stopped", "failed", "recovered") else None


def wait_for(check: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One server for the tests that do not kill it; it must stop cleanly at the end."""
    serve = Serve(tmp_path_factory.mktemp("serve"), _rtp_port_range())
    serve.start()
    try:
        yield serve
    finally:
        log = serve.stop()
        assert "Traceback" not in log, log


# --------------------------------------------------------------------------- judging files


def ports(connection: dict[str, Any]) -> tuple[int, int]:
    """(video port, audio port) the API returned for a connection."""
    return connection["video"]["port"], connection["audio"]["port"]


def is_source_prefix(decoded: list[str]) -> bool:
    return decoded == source_md5("video")[: len(decoded)]


def assert_decodes(path: Path) -> None:
    errors = decode_errors(path)
    assert errors == "", f"{path.name}: {errors}"


def assert_document(
    doc: dict[str, Any],
    media: Path,
    view: dict[str, Any],
    connection_id: str,
    state: str,
    split_index: str | None = None,
) -> None:
    """An archive-<cid>.json / split-archive-<cid>_<NNNN>.json against its file and recording."""
    rid = view["recording_id"]
    assert doc["recording_id"] == rid and doc["channel_id"] == view["channel_id"]
    assert doc["connection_id"] == connection_id
    assert doc["client_id"] == connection_id and doc["bundle_id"] == connection_id
    assert doc["filename"] == f"{rid}/{media.name}"
    assert Path(doc["file_path"]) == media.absolute()
    assert doc["metadata_filename"] == f"{rid}/{media.with_suffix('.json').name}"
    assert doc["size"] == media.stat().st_size > 0
    assert doc.get("split_index") == split_index
    start, stop = doc["start_time_offset"], doc["stop_time_offset"]
    assert isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop
    # Offsets count whole seconds from the recording's creation.
    assert doc["start_time"] - start == view["created_at_unix"]
    assert doc["stop_time"] - stop == view["created_at_unix"]
    assert (doc["audio"], doc["video"]) == (True, True)
    assert (doc["audio_codec_type"], doc["video_codec_type"]) == ("OPUS", "VP8")
    if state != "recovered" and split_index is None:
        # A recovered document is rebuilt from the state store, which keeps no picture size.
        assert (doc["video_width"], doc["video_height"]) == (320, 240)
    assert doc["format"] == view["format"] and doc["state"] == state
    assert doc.get("recording_metadata") == view["recording_metadata"]


def moment(timestamp: str) -> float:
    """UNIX time of an RFC 3339 UTC timestamp of the documents."""
    return datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def archiving_of(server: Serve, recording_id: str) -> list[dict[str, Any]]:
    """The recording's entries of the live view, GET /v1/archiving."""
    items = server.request("GET", "/v1/archiving").json()
    return [item for item in items if item["recording_id"] == recording_id]


def files_under(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


# --------------------------------------------------------------------------- 1: the full run


def test_two_connections_split_dual_one_leaving_early_and_one_blocked(server: Serve) -> None:
    metadata = {"title": "standup", "tags": ["e2e", "ünïcode"]}
    created = server.create(
        {
            "channel_id": "e2e-room",
            "session_id": "e2e-session",
            "split_duration": 2,
            "split_only": False,
            "recording_metadata": metadata,
            "connections": [
                {"connection_id": "alice", **VP8_OPUS},
                {"connection_id": "bob", **VP8_OPUS},
                {"connection_id": "carol", "recording_block": True, **VP8_OPUS},
            ],
        }
    )
    rid = created["recording_id"]
    assert len(rid) == 26 and created["state"] == "running" and created["format"] == "webm"
    alice, bob, carol = created["connections"]
    assert [c["state"] for c in (alice, bob, carol)] == ["recording", "recording", "blocked"]
    assert carol["video"]["port"] is None and carol["audio"]["port"] is None
    given = [*ports(alice), *ports(bob)]
    first, last = server.rtp_ports
    assert len(set(given)) == 4 and all(first <= port <= last and port % 2 == 0 for port in given)

    with (
        senders.gst_vp8_opus(*ports(alice)) as alice_sender,
        senders.ffmpeg_vp8_opus(*ports(bob)) as bob_sender,
    ):
        # While both send, the live view lists them (not the blocked one) with packets flowing.
        def both_archiving() -> list[dict[str, Any]] | None:
            mine = archiving_of(server, rid)
            flowing = len(mine) == 2 and all(item["packets"] > 0 for item in mine)
            return mine if flowing else None

        archiving = wait_for(both_archiving, 3.0, "both connections to receive packets")
        assert sorted(item["connection_id"] for item in archiving) == ["alice", "bob"]
        assert all(item["codecs"] == {"audio": "OPUS", "video": "VP8"} for item in archiving)

        # Bob leaves while his sender still sends: past the cut at 2 s (or 3 s), before the end.
        time.sleep(max(0.0, bob_sender.started + 3.4 - time.monotonic()))
        left = server.request("DELETE", f"/v1/recordings/{rid}/connections/bob")
        assert left.status_code == 200, left.text
        assert left.json()["state"] == "ended"
        # His archive is finished and in place at once; alice's is still being written.
        directory = server.archive_dir / rid
        assert (directory / "archive-bob.webm").exists()
        assert (directory / "split-archive-end-bob.json").exists()
        assert not (directory / "archive-alice.webm").exists()
        assert (server.tmp_dir / rid / "archive-alice.webm").exists()
        assert [item["connection_id"] for item in archiving_of(server, rid)] == ["alice"]
        bob_sender.stop()
        gone = server.request("DELETE", f"/v1/recordings/{rid}/connections/bob")
        assert gone.status_code == 404 and gone.json()["error_type"] == "CONNECTION-NOT-FOUND"
        alice_sender.finish()
        time.sleep(TAIL)
        stopped = server.stop_recording(rid)

    assert stopped["state"] == "stopped", stopped
    assert stopped["recording_metadata"] == metadata and stopped["stopped_at"]
    states = {c["connection_id"]: c["state"] for c in stopped["connections"]}
    assert states == {"alice": "ended", "bob": "ended", "carol": "blocked"}

    names = sorted(path.name for path in directory.iterdir())
    expected = [f"report-{rid}.json"]
    for cid in ("alice", "bob"):
        expected += [f"archive-{cid}.webm", f"archive-{cid}.json", f"split-archive-end-{cid}.json"]
        for index in ("0001", "0002"):
            expected += [f"split-archive-{cid}_{index}.webm", f"split-archive-{cid}_{index}.json"]
    assert names == sorted(expected)
    assert files_under(server.tmp_dir) == [], "files left in archive_tmp_dir"

    # Every media file decodes cleanly; alice's single archive is the source, frame for frame,
    # and so are her pieces one after the other; bob's are the head of it.
    for media in directory.glob("*.webm"):
        assert_decodes(media)
    alice_video, _ = framemd5(directory / "archive-alice.webm", "video")
    assert alice_video == source_md5("video")
    audio, _ = framemd5(directory / "archive-alice.webm", "audio")
    assert audio == source_md5("audio")
    for cid, whole in (("alice", True), ("bob", False)):
        pieces = [directory / f"split-archive-{cid}_{index}.webm" for index in ("0001", "0002")]
        decoded = [md5 for piece in pieces for md5 in framemd5(piece, "video")[0]]
        single, _ = framemd5(directory / f"archive-{cid}.webm", "video")
        assert decoded == single, f"{cid}: the pieces are not the single archive"
        if whole:
            assert decoded == source_md5("video")
        else:
            # Left at ~3.4 s of the clip: 3 s to 3.4 s of it, give or take a packet's arrival.
            assert is_source_prefix(decoded) and 90 <= len(decoded) < SOURCE_FRAMES, len(decoded)

    # The documents: each beside its file, matching it, the recording and one another.
    view = server.get(rid)
    for cid in ("alice", "bob"):
        single = directory / f"archive-{cid}.webm"
        doc = json.loads(single.with_suffix(".json").read_text())
        assert_document(doc, single, view, cid, "available")
        assert doc["session_id"] == "e2e-session"
        piece_docs = []
        for index in ("0001", "0002"):
            piece = directory / f"split-archive-{cid}_{index}.webm"
            piece_doc = json.loads(piece.with_suffix(".json").read_text())
            assert_document(piece_doc, piece, view, cid, "available", index)
            piece_docs.append(piece_doc)
        assert piece_docs[0]["start_timestamp"] == doc["start_timestamp"]
        # One after the other; the first may run on by its last (audio) frame's duration.
        seam = moment(piece_docs[1]["start_timestamp"]) - moment(piece_docs[0]["stop_timestamp"])
        assert -0.05 <= seam <= 0.05, seam
        assert piece_docs[1]["stop_time"] in (doc["stop_time"] - 1, doc["stop_time"])
        end = json.loads((directory / f"split-archive-end-{cid}.json").read_text())
        assert end["recording_id"] == rid and end["connection_id"] == cid
        assert end["split_last_index"] == "0002"
        assert end["filename"] == f"{rid}/split-archive-end-{cid}.json"
        assert end["start_timestamp"] == piece_docs[0]["start_timestamp"]
        assert end["stop_timestamp"] == piece_docs[1]["stop_timestamp"]
        assert "size" not in end
        # What the API lists is what is on disk.
        [listed] = [c for c in view["connections"] if c["connection_id"] == cid]
        on_disk = {
            a["filename"]: a["size"] for a in listed["archives"] if a["state"] == "available"
        }
        assert on_disk == {
            path.name: path.stat().st_size for path in directory.glob(f"*archive-{cid}*.webm")
        }
    alice_doc = json.loads((directory / "archive-alice.json").read_text())
    bob_doc = json.loads((directory / "archive-bob.json").read_text())
    # Alice's archive spans the 4 s clip; bob's ends where he left, ~3.4 s into his.
    lengths = {
        cid: moment(doc["stop_timestamp"]) - moment(doc["start_timestamp"])
        for cid, doc in (("alice", alice_doc), ("bob", bob_doc))
    }
    assert 3.9 <= lengths["alice"] <= 4.1 and 2.9 <= lengths["bob"] <= 3.5, lengths

    report = json.loads((directory / f"report-{rid}.json").read_text())
    assert report["recording_id"] == rid and report["channel_id"] == "e2e-room"
    assert report["filename"] == f"{rid}/report-{rid}.json"
    assert report["recording_metadata"] == metadata
    assert (report["split_duration"], report["split_only"], report["format"]) == (2, False, "webm")
    entries = {entry["connection_id"]: entry for entry in report["archives"]}
    assert sorted(entries) == ["alice", "bob"]
    for cid, entry in entries.items():
        assert entry["filename"] == f"{rid}/archive-{cid}.webm"
        assert entry["size"] == (directory / f"archive-{cid}.webm").stat().st_size
        assert entry["split_last_index"] == "0002" and entry["state"] == "available"
        assert [piece["filename"] for piece in entry["split_archives"]] == [
            f"{rid}/split-archive-{cid}_{index}.webm" for index in ("0001", "0002")
        ]

    # Stopping again is harmless; the recording is no longer live.
    again = server.request("POST", f"/v1/recordings/{rid}/stop")
    assert again.status_code == 202 and again.json()["state"] == "stopped"
    assert archiving_of(server, rid) == []

    # Seed 000's split-archive metadata carries the picture size as the single archive's does.
    for piece in sorted(directory.glob("split-archive-*_*.json")):
        doc = json.loads(piece.read_text())
        assert (doc.get("video_width"), doc.get("video_height")) == (320, 240), piece.name


# --------------------------------------------------------------------------- 2: expire_time


def test_expire_time_ends_the_recording_while_the_sender_still_sends(server: Serve) -> None:
    created = server.create(
        {
            "channel_id": "e2e-expiring",
            "expire_time": 2,
            "connections": [{"connection_id": "dave", **VP8_OPUS}],
        }
    )
    rid = created["recording_id"]
    created_at = time.monotonic()
    assert created["expire_time"] == 2
    with senders.ffmpeg_vp8_opus(*ports(created["connections"][0])) as sender:
        stopped = wait_for(lambda: _final(server.get(rid)), 4.0, "the recording to expire")
        ended_after = time.monotonic() - created_at
        assert sender.running, "the sender finished before the recording expired"
    assert stopped["state"] == "stopped"
    assert 1.8 <= ended_after <= 3.5, ended_after
    [connection] = stopped["connections"]
    assert connection["state"] == "ended"

    directory = server.archive_dir / rid
    assert sorted(path.name for path in directory.iterdir()) == [
        "archive-dave.json",
        "archive-dave.webm",
        f"report-{rid}.json",
    ]
    single = directory / "archive-dave.webm"
    assert_decodes(single)
    decoded, _ = framemd5(single, "video")
    # About the 2 s the recording lasted of the 4 s clip (the sender started just after it).
    assert is_source_prefix(decoded) and 30 <= len(decoded) <= 70, len(decoded)
    assert_document(json.loads(single.with_suffix(".json").read_text()), single, stopped, "dave",
                    "available")  # fmt: skip
    report = json.loads((directory / f"report-{rid}.json").read_text())
    assert report["expire_time"] == 2
    assert report["expired_at"] == report["created_at"] + 2
    assert [entry["connection_id"] for entry in report["archives"]] == ["dave"]
    assert files_under(server.tmp_dir / rid) == []
    # Its ports are closed: adding a connection is refused, the live view has nothing of it.
    late = server.request(
        "POST", f"/v1/recordings/{rid}/connections", json={"connection_id": "eve", **VP8_OPUS}
    )
    assert late.status_code == 409 and late.json()["error_type"] == "RECORDING-NOT-RUNNING"
    assert archiving_of(server, rid) == []


# --------------------------------------------------------------------------- 3: kill -9


def test_kill_9_mid_recording_then_restart_recovers_the_files(tmp_path: Path) -> None:
    serve = Serve(tmp_path, _rtp_port_range())
    serve.start()
    recordings: dict[str, tuple[str, str]] = {}  # recording id -> (connection id, format)
    try:
        running = []
        for container, launch in (("webm", senders.gst_vp8_opus), ("mp4", senders.ffmpeg_vp8_opus)):
            cid = f"crash-{container}"
            created = serve.create(
                {
                    "channel_id": f"e2e-crash-{container}",
                    "format": container,
                    "split_duration": 1,
                    "connections": [{"connection_id": cid, **VP8_OPUS}],
                }
            )
            recordings[created["recording_id"]] = (cid, container)
            running.append(launch(*ports(created["connections"][0])))
        try:
            time.sleep(max(0.0, running[0].started + 2.5 - time.monotonic()))
            # Something is being written when the process dies, or this tests nothing.
            for rid, (cid, container) in recordings.items():
                assert (serve.tmp_dir / rid / f"archive-{cid}.{container}").stat().st_size > 0
            assert serve.process is not None
            serve.process.send_signal(signal.SIGKILL)
            serve.process.wait(timeout=STOP_TIMEOUT)
            assert serve.process.returncode == -signal.SIGKILL
        finally:
            for sender in running:
                sender.stop()

        serve.start()  # the same state file and directories
        for rid, (cid, container) in recordings.items():
            view = serve.get(rid)
            assert view["state"] == "recovered", view
            [connection] = view["connections"]
            assert connection["state"] == "ended"
            directory = serve.archive_dir / rid
            single = directory / f"archive-{cid}.{container}"
            assert_decodes(single)
            decoded, _ = framemd5(single, "video")
            # Cut at the last complete cluster / fragment of ~2.5 s: at least the first second.
            assert is_source_prefix(decoded) and 30 <= len(decoded) <= 80, len(decoded)
            doc = json.loads(single.with_suffix(".json").read_text())
            assert_document(doc, single, view, cid, "recovered")

            # Pieces finished before the crash were documented then; the one being written is
            # recovered like the single archive (or dropped if it held no complete cluster).
            pieces = sorted(directory.glob(f"split-archive-{cid}_*.{container}"))
            indexes = [piece.stem.rsplit("_", 1)[1] for piece in pieces]
            assert indexes == [f"{n:04d}" for n in range(1, len(pieces) + 1)] and indexes
            piece_video = []
            for piece, index in zip(pieces, indexes, strict=True):
                assert_decodes(piece)
                piece_doc = json.loads(piece.with_suffix(".json").read_text())
                state = "recovered" if piece_doc["state"] == "recovered" else "available"
                assert_document(piece_doc, piece, view, cid, state, index)
                piece_video += framemd5(piece, "video")[0]
            states = [json.loads(p.with_suffix(".json").read_text())["state"] for p in pieces]
            assert "recovered" not in states[:-1], states
            assert is_source_prefix(piece_video) and len(piece_video) >= 30

            names = sorted(path.name for path in directory.iterdir())
            media = [single, *pieces]
            assert names == sorted(
                [f"report-{rid}.json", f"split-archive-end-{cid}.json"]
                + [path.name for path in media]
                + [path.with_suffix(".json").name for path in media]
            )
            report = json.loads((directory / f"report-{rid}.json").read_text())
            assert report["recording_id"] == rid
            [entry] = report["archives"]
            assert entry["connection_id"] == cid and entry["state"] == "recovered"
            assert entry["filename"] == f"{rid}/{single.name}"
            assert entry["size"] == single.stat().st_size
            assert [p["filename"] for p in entry["split_archives"]] == [
                f"{rid}/{piece.name}" for piece in pieces
            ]
            listed = {a["filename"]: a["state"] for a in connection["archives"]}
            assert listed[single.name] == "recovered"
            assert files_under(serve.tmp_dir / rid) == [], "temp files left after recovery"
            # A recovered file has media: a piece that had no complete fragment when the
            # process died is dropped (as WebM's is), not kept as a header-only file.
            for path in media:
                assert framemd5(path, "video")[0], f"{path.name}: recovered without a frame"

        # The crashed recording no longer holds its channel.
        again = serve.create({"channel_id": "e2e-crash-webm", "connections": []})
        assert serve.stop_recording(again["recording_id"])["state"] == "stopped"
    except BaseException:
        serve.kill()
        raise
    log = serve.stop()
    assert "Traceback" not in log, log


# --------------------------------------------------------------------------- 4: hostile bodies


def _connection(**media: Any) -> dict[str, Any]:
    return {"connection_id": "c", **media}


def _one(connection_id: str = "c", **fields: Any) -> dict[str, Any]:
    """A recording of channel "r" with one connection of `fields` (VP8 + Opus by default)."""
    return {"channel_id": "r", "connections": [{"connection_id": connection_id, **fields}]}


def _video(codec: Any, payload_type: Any = 96) -> dict[str, Any]:
    return {"video": {"codec": codec, "payload_type": payload_type}}


INVALID = "INVALID-PARAMETER"
H265 = "WEBM-H265-UNSUPPORTED"
HOSTILE_RECORDINGS: list[tuple[str, Any, str]] = [
    # Wrong types (strict: no coercion from strings or numbers) and values out of range.
    ("channel-number", {"channel_id": 5}, INVALID),
    ("channel-null", {"channel_id": None}, INVALID),
    ("channel-missing", {}, INVALID),
    ("split-string", {"channel_id": "r", "split_duration": "2"}, INVALID),
    ("split-float", {"channel_id": "r", "split_duration": 2.5}, INVALID),
    ("split-zero", {"channel_id": "r", "split_duration": 0}, INVALID),
    ("split-only-int", {"channel_id": "r", "split_duration": 2, "split_only": 1}, INVALID),
    ("split-only-alone", {"channel_id": "r", "split_only": True}, INVALID),
    ("expire-zero", {"channel_id": "r", "expire_time": 0}, INVALID),
    ("expire-huge", {"channel_id": "r", "expire_time": 10**30}, INVALID),
    ("expire-over-max", {"channel_id": "r", "expire_time": 86401}, INVALID),
    ("format-unknown", {"channel_id": "r", "format": "mkv"}, INVALID),
    ("connections-object", {"channel_id": "r", "connections": {}}, INVALID),
    ("connection-string", {"channel_id": "r", "connections": ["alice"]}, INVALID),
    ("payload-type-string", _one(**_video("VP8", "96")), INVALID),
    ("payload-type-200", _one(**_video("VP8", 200)), INVALID),
    ("codec-number", _one(**_video(8)), INVALID),
    ("media-list", _one(audio=[111]), INVALID),
    ("no-media", _one(), INVALID),
    ("unknown-field", {"channel_id": "r", "split_duraton": 2}, INVALID),
    ("body-list", [{"channel_id": "r"}], INVALID),
    ("body-string", "r", INVALID),
    # Metadata over 64 KiB (the body itself is well under the 1 MiB body limit), or too deep.
    ("metadata-huge", {"channel_id": "r", "recording_metadata": {"x": "x" * 66560}}, INVALID),
    ("metadata-deep", {"channel_id": "r", "recording_metadata": json.loads("[" * 200 + "]" * 200)},
     INVALID),
    # Ids that would name other files.
    ("channel-dotdot", {"channel_id": "../x"}, INVALID),
    ("channel-slash", {"channel_id": "a/b"}, INVALID),
    ("session-dotdot", {"channel_id": "r", "session_id": ".."}, INVALID),
    ("connection-dotdot", _one("../x", **VP8_OPUS), INVALID),
    ("connection-slash", _one("a/b", **VP8_OPUS), INVALID),
    ("connection-backslash", _one("a\\b", **VP8_OPUS), INVALID),
    ("connection-nul", _one("a\0b", **VP8_OPUS), INVALID),
    ("client-dotdot", _one(client_id="../x", **VP8_OPUS), INVALID),
    # Codecs the recorder does not record, not as this medium, or not in this container.
    ("codec-unknown", _one(**_video("MPV")), INVALID),
    ("codec-empty", _one(**_video("")), INVALID),
    ("codec-wrong-medium", _one(audio={"codec": "VP8", "payload_type": 96}), INVALID),
    ("h265-webm", {**_one(**_video("H265", 104)), "format": "webm"}, H265),
    ("h265-default-webm", _one(**_video("h265", 104)), H265),
    ("h265-webm-split-only",
     {**_one(**_video("H265", 104)), "split_duration": 5, "split_only": True}, H265),
    ("duplicate-connections",
     {"channel_id": "r", "connections": [_connection(**VP8_OPUS), _connection(**VP8_OPUS)]},
     "CONNECTION-EXISTS"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "error_type"),
    [pytest.param(body, error, id=name) for name, body, error in HOSTILE_RECORDINGS],
)
def test_hostile_recording_bodies_get_a_4xx_with_their_error_type(
    server: Serve, body: Any, error_type: str
) -> None:
    before = sorted(path.name for path in server.archive_dir.iterdir())
    response = server.request("POST", "/v1/recordings", json=body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.json()["error_type"] == error_type, response.text
    # Nothing was started or written for it.
    assert sorted(path.name for path in server.archive_dir.iterdir()) == before
    assert not (server.root / "x").exists() and not (server.archive_dir.parent / "x").exists()
    listed = server.request("GET", "/v1/recordings", params={"channel_id": "r"}).json()
    assert listed == []


def test_hostile_requests_against_a_running_recording(server: Serve) -> None:
    created = server.create({"channel_id": "e2e-hostile", "format": "webm"})
    rid = created["recording_id"]
    base = f"/v1/recordings/{rid}"
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", f"{base}/connections", _connection(video={"codec": "H265", "payload_type": 104}),
         400, "WEBM-H265-UNSUPPORTED"),
        ("POST", f"{base}/connections", _connection(video={"codec": "MPV", "payload_type": 96}),
         400, "INVALID-PARAMETER"),
        ("POST", f"{base}/connections", {**VP8_OPUS, "connection_id": "../x"}, 400,
         "INVALID-PARAMETER"),
        ("POST", f"{base}/connections", {**VP8_OPUS, "connection_id": 7}, 400,
         "INVALID-PARAMETER"),
        ("POST", f"{base}/connections", {"connection_id": "c", "audio": "OPUS"}, 400,
         "INVALID-PARAMETER"),
        ("POST", f"{base}/connections", None, 400, "INVALID-PARAMETER"),
        # A %2F becomes a "/" before routing: no route then, or an id that names nothing.
        ("DELETE", f"{base}/connections/..%2Fx", None, 404, "NOT-FOUND"),
        ("DELETE", f"{base}/connections/%2E%2E", None, 404, "CONNECTION-NOT-FOUND"),
        ("DELETE", f"{base}/connections/nobody", None, 404, "CONNECTION-NOT-FOUND"),
        ("GET", "/v1/recordings/..%2F..%2Fetc", None, 404, "NOT-FOUND"),
        ("GET", "/v1/recordings/%2E%2E", None, 404, "RECORDING-NOT-FOUND"),
        ("POST", "/v1/recordings/a%2Fb/stop", None, 404, "NOT-FOUND"),
        ("POST", "/v1/recordings/a%5Cb/stop", None, 404, "RECORDING-NOT-FOUND"),
        ("POST", "/v1/recordings/" + "0" * 26 + "/stop", None, 404, "RECORDING-NOT-FOUND"),
        ("GET", "/v1/recordings?state=exploded", None, 400, "INVALID-PARAMETER"),
    ]  # fmt: skip
    for method, path, body, status, error_type in cases:
        options: dict[str, Any] = {} if body is None else {"json": body}
        if body is None and method == "POST" and path.endswith("/connections"):
            options = {"content": b"{not json", "headers": {"content-type": "application/json"}}
        response = server.request(method, path, **options)
        assert (response.status_code, response.json().get("error_type")) == (status, error_type), (
            method, path, response.text,
        )  # fmt: skip
    # A body over the 1 MiB limit is refused before it is parsed.
    huge = b'{"channel_id": "r", "recording_metadata": "' + b"x" * (2 << 20) + b'"}'
    response = server.request(
        "POST", "/v1/recordings", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    # The same channel cannot be recorded twice at once.
    twice = server.request("POST", "/v1/recordings", json={"channel_id": "e2e-hostile"})
    assert twice.status_code == 409 and twice.json()["error_type"] == "STARTED-RECORDING"
    # H.265 is fine in MP4: the refusal above is about the container, not the codec.
    h265 = server.create(
        {
            "channel_id": "e2e-hostile-h265",
            "format": "mp4",
            "connections": [_connection(video={"codec": "H265", "payload_type": 104})],
        }
    )
    assert h265["connections"][0]["video"]["port"]
    for recording in (created, h265):
        server.stop_recording(recording["recording_id"])

    # More connections than the range has port pairs: refused as a whole, and every port of
    # this module's earlier recordings and of the refused one is free again afterwards.
    first, last = server.rtp_ports
    pairs = (last - first + 1) // 2
    crowd = [{**VP8_OPUS, "connection_id": f"c{n}"} for n in range(pairs // 2 + 1)]
    refused = server.request("POST", "/v1/recordings", json={"channel_id": "e2e-crowd",
                                                              "connections": crowd})  # fmt: skip
    assert refused.status_code == 503 and refused.json()["error_type"] == "NO-PORTS-AVAILABLE"
    full = server.create({"channel_id": "e2e-crowd", "connections": crowd[:-1]})
    assert len({c["video"]["port"] for c in full["connections"]}) == pairs // 2
    server.stop_recording(full["recording_id"])
    # The refused request left no recording (nor report) behind.
    crowds = server.request("GET", "/v1/recordings", params={"channel_id": "e2e-crowd"}).json()
    assert [r["recording_id"] for r in crowds] == [full["recording_id"]], crowds
    assert server.get(rid)["connections"] == []
    assert sorted(path.name for path in (server.archive_dir / rid).iterdir()) == [
        f"report-{rid}.json"
    ]
    assert server.request("GET", "/healthz").json()["status"] == "ok"
