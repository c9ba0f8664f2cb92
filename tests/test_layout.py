"""File names and JSON documents of the archive directory, checked against seed 000's examples.

The expected documents below are the seed's examples, field for field, with the differences
spelled out: fields we add ("ours"), the reference's `event_metadata` (no counterpart in our
API), and the seed's slips in example paths (a three-digit split index, a `split-archive/`
directory) replaced by the names its rules and directory listings give.
"""

# The seed's example paths are quoted whole, on one line each, so they can be compared by eye.
# ruff: noqa: E501

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from recorder.ids import InvalidIdError
from recorder.layout import (
    ArchiveInfo,
    ConnectionInfo,
    MediaInfo,
    Node,
    RecordingInfo,
    archive_metadata,
    archive_metadata_name,
    archive_name,
    archive_stats,
    recording_dir,
    report,
    report_name,
    rfc3339,
    split_archive_end_metadata,
    split_archive_end_name,
    split_archive_metadata_name,
    split_archive_name,
    split_index_text,
    time_offset,
    write_json_atomically,
)

ARCHIVE_DIR = Path("/path/to/sora/archive")
SORA = Node(label="WebRTC SFU Sora", node_name="sora@127.0.0.1")
VP9_OPUS = {
    "audio": MediaInfo("opus"),
    "video": MediaInfo("VP9", params={"profile_id": 0}, bit_rate=1000),
}


# ---------------------------------------------------------------------------------------------
# Names


def test_names_of_the_seed_directory_listings() -> None:
    # Seed 000, "単一録画ファイルと分割録画ファイル" (dual output), first recording.
    cid = "A4756MXP914ZB265E92JE3ZMWC"
    rid = "1CS9QJ0XPN4C76HBGBN6MGMK5M"
    names = {
        split_archive_end_name(cid),
        archive_metadata_name(cid),
        archive_name(cid, "mp4"),
        report_name(rid),
    }
    for index in range(1, 5):
        names |= {split_archive_metadata_name(cid, index), split_archive_name(cid, index, "mp4")}
    assert names == {
        "split-archive-end-A4756MXP914ZB265E92JE3ZMWC.json",
        "split-archive-A4756MXP914ZB265E92JE3ZMWC_0001.json",
        "split-archive-A4756MXP914ZB265E92JE3ZMWC_0001.mp4",
        "split-archive-A4756MXP914ZB265E92JE3ZMWC_0002.json",
        "split-archive-A4756MXP914ZB265E92JE3ZMWC_0002.mp4",
        "split-archive-A4756MXP914ZB265E92JE3ZMWC_0003.json",
        "split-archive-A4756MXP914ZB265E92JE3ZMWC_0003.mp4",
        "split-archive-A4756MXP914ZB265E92JE3ZMWC_0004.json",
        "split-archive-A4756MXP914ZB265E92JE3ZMWC_0004.mp4",
        "archive-A4756MXP914ZB265E92JE3ZMWC.json",
        "archive-A4756MXP914ZB265E92JE3ZMWC.mp4",
        "report-1CS9QJ0XPN4C76HBGBN6MGMK5M.json",
    }
    assert archive_name("alice", "webm") == "archive-alice.webm"
    assert split_archive_name("alice", 7, "webm") == "split-archive-alice_0007.webm"
    assert recording_dir(ARCHIVE_DIR, rid) == ARCHIVE_DIR / rid


@pytest.mark.parametrize(
    ("index", "text"),
    [
        (1, "0001"),
        (42, "0042"),
        (999, "0999"),
        (9999, "9999"),
        (10000, "10000"),
        (123456, "123456"),
    ],
)
def test_split_index_0001_to_9999_then_10000(index: int, text: str) -> None:
    # Seed 000: "0001 から始まり 9999 の後は 10000 となります".
    assert split_index_text(index) == text
    assert split_archive_name("c", index, "mp4") == f"split-archive-c_{text}.mp4"


@pytest.mark.parametrize("index", [0, -1, True, 1.0, "1"])
def test_split_index_must_be_a_positive_integer(index: Any) -> None:
    with pytest.raises(ValueError, match="split index must be a positive integer"):
        split_index_text(index)


@pytest.mark.parametrize("ext", ["json", "mkv", "", "mp4/../x", ".mp4"])
def test_only_container_extensions(ext: str) -> None:
    with pytest.raises(ValueError, match="archive extension must be one of mp4, webm"):
        archive_name("c", ext)
    with pytest.raises(ValueError, match="archive extension"):
        split_archive_name("c", 1, ext)


@pytest.mark.parametrize(
    "name",
    [
        lambda cid: archive_name(cid, "mp4"),
        archive_metadata_name,
        lambda cid: split_archive_name(cid, 1, "webm"),
        lambda cid: split_archive_metadata_name(cid, 1),
        split_archive_end_name,
        report_name,
        lambda rid: recording_dir(ARCHIVE_DIR, rid),
    ],
)
@pytest.mark.parametrize("hostile", ["..", "../../etc/passwd", "a/b", "a\\b", "", "a\x00", "é"])
def test_names_refuse_hostile_ids(name: Any, hostile: str) -> None:
    with pytest.raises(InvalidIdError):
        name(hostile)


# ---------------------------------------------------------------------------------------------
# Times


def test_times_in_the_seed_forms() -> None:
    assert rfc3339(1615524137.455668) == "2021-03-12T04:42:17.455668Z"
    assert rfc3339(1604656364.493179) == "2020-11-06T09:52:44.493179Z"
    assert rfc3339(0) == "1970-01-01T00:00:00.000000Z"
    # Offsets are differences of whole seconds, never negative.
    assert time_offset(1615524137.9, 1615524130.1) == 7
    assert time_offset(1615524137.0, 1615524137.9) == 0
    assert time_offset(1615524136.0, 1615524137.0) == 0


# ---------------------------------------------------------------------------------------------
# Single archive metadata: seed 000, "単一録画メタデータファイル"


def _seed_single_recording(**changes: Any) -> RecordingInfo:
    fields: dict[str, Any] = {
        "recording_id": "WHEJ888HQ55KDCFE3TZ4VPFQHR",
        "channel_id": "sora",
        "session_id": "JA8FB89ZJS1H9CV5GN3NCT5RA0",
        "format": "mp4",
        # start_time 1615524137 with start_time_offset 7: the recording began at ...130.
        "created_at": 1615524130.25,
    }
    fields.update(changes)
    return RecordingInfo(**fields)


SEED_SINGLE_METADATA = {
    "audio": True,
    "audio_codec_type": "OPUS",
    "channel_id": "sora",
    "session_id": "JA8FB89ZJS1H9CV5GN3NCT5RA0",
    "client_id": "GK2R6PSDYX68VDQPRX4FVVFN8W",
    "bundle_id": "GK2R6PSDYX68VDQPRX4FVVFN8W",
    "connection_id": "GK2R6PSDYX68VDQPRX4FVVFN8W",
    "created_at": 1615524156,
    "file_path": "/path/to/sora/archive/WHEJ888HQ55KDCFE3TZ4VPFQHR/archive-GK2R6PSDYX68VDQPRX4FVVFN8W.mp4",
    "filename": "WHEJ888HQ55KDCFE3TZ4VPFQHR/archive-GK2R6PSDYX68VDQPRX4FVVFN8W.mp4",
    "metadata_file_path": "/path/to/sora/archive/WHEJ888HQ55KDCFE3TZ4VPFQHR/archive-GK2R6PSDYX68VDQPRX4FVVFN8W.json",
    "metadata_filename": "WHEJ888HQ55KDCFE3TZ4VPFQHR/archive-GK2R6PSDYX68VDQPRX4FVVFN8W.json",
    "recording_id": "WHEJ888HQ55KDCFE3TZ4VPFQHR",
    "size": 0,
    "start_time": 1615524137,
    "start_time_offset": 7,
    "start_timestamp": "2021-03-12T04:42:17.455668Z",
    "stats": {},
    "stop_time": 1615524154,
    "stop_time_offset": 24,
    "stop_timestamp": "2021-03-12T04:42:34.094375Z",
    "label": "WebRTC SFU Sora",
    "node_name": "sora@127.0.0.1",
    "event_metadata": {"spam": "egg"},
    "video": True,
    "video_bit_rate": 1000,
    "video_codec_type": "VP9",
    "video_vp9_params": {"profile_id": 0},
    "video_height": 480,
    "video_width": 640,
    "format": "mp4",
}  # fmt: skip


def test_single_archive_metadata_is_the_seed_example() -> None:
    connection = ConnectionInfo("GK2R6PSDYX68VDQPRX4FVVFN8W", **VP9_OPUS)
    archive = ArchiveInfo(
        connection,
        started_at=1615524137.455668,
        stopped_at=1615524154.094375,
        size=0,
        video_width=640,
        video_height=480,
        created_at=1615524156.7,
    )
    doc = archive_metadata(_seed_single_recording(), archive, ARCHIVE_DIR, SORA)
    expected = {
        key: value for key, value in SEED_SINGLE_METADATA.items() if key != "event_metadata"
    }
    expected["state"] = "available"  # ours
    assert doc == expected
    json.dumps(doc, allow_nan=False)


def test_archive_metadata_adds_recording_metadata_and_leaves_out_unknowns() -> None:
    connection = ConnectionInfo("c1", client_id="alice", video=MediaInfo("h264"))
    archive = ArchiveInfo(connection, started_at=100.0, stopped_at=160.0, size=5, state="recovered")
    recording = RecordingInfo(
        "WHEJ888HQ55KDCFE3TZ4VPFQHR", "ch", "webm", 100.0, recording_metadata={"k": [1]}
    )
    doc = archive_metadata(recording, archive, Path("/a"), Node("l", "n"))
    assert doc["audio"] is False and "audio_codec_type" not in doc
    assert doc["video"] is True and doc["video_codec_type"] == "H264"
    assert "video_bit_rate" not in doc and "video_width" not in doc
    assert not any(key.endswith("_params") for key in doc)
    assert "session_id" not in doc
    # client_id given, bundle_id defaults to it (as in the reference).
    assert (doc["client_id"], doc["bundle_id"], doc["connection_id"]) == ("alice", "alice", "c1")
    assert doc["recording_metadata"] == {"k": [1]}
    assert doc["state"] == "recovered"
    assert doc["filename"] == "WHEJ888HQ55KDCFE3TZ4VPFQHR/archive-c1.webm"
    assert doc["file_path"] == "/a/WHEJ888HQ55KDCFE3TZ4VPFQHR/archive-c1.webm"
    assert (doc["start_time_offset"], doc["stop_time_offset"]) == (0, 60)


def test_file_paths_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    archive = ArchiveInfo(ConnectionInfo("c"), started_at=1.0, stopped_at=2.0, size=1)
    doc = archive_metadata(
        RecordingInfo("WHEJ888HQ55KDCFE3TZ4VPFQHR", "ch", "mp4", 1.0),
        archive,
        Path("archive"),
    )
    assert doc["file_path"] == str(tmp_path / "archive/WHEJ888HQ55KDCFE3TZ4VPFQHR/archive-c.mp4")
    assert doc["label"] == "rtp-recorder" and doc["node_name"].startswith("rtp-recorder@")


def test_unknown_archive_state_is_refused() -> None:
    archive = ArchiveInfo(ConnectionInfo("c"), started_at=1.0, stopped_at=2.0, size=1, state="x")
    with pytest.raises(ValueError, match="archive state"):
        archive_metadata(RecordingInfo("R", "ch", "mp4", 1.0), archive, ARCHIVE_DIR)


# ---------------------------------------------------------------------------------------------
# Split archive metadata: seed 000, "分割録画メタデータファイル", "分割録画終了メタデータファイル"

SPLIT_RECORDING = RecordingInfo(
    recording_id="CZZ8A8KZB16A1DF5PKERBHGFNR",
    channel_id="sora",
    session_id="JA8FB89ZJS1H9CV5GN3NCT5RA0",
    format="mp4",
    created_at=1604656350.5,  # start_time 1604656354 with start_time_offset 4
    split_duration=10,
)
SPLIT_CONNECTION = ConnectionInfo("3B7AFF8ZRX6VNEYV40B35Z9S2C", **VP9_OPUS)

SEED_SPLIT_METADATA = {
    "audio": True,
    "audio_codec_type": "OPUS",
    "recording_id": "CZZ8A8KZB16A1DF5PKERBHGFNR",
    # The seed prints "_001" here and ".../split-archive/CZZ.../archive-..._001.json" below;
    # its rule and listings say four digits in <recording_id>/split-archive-<cid>_<NNNN>.
    "file_path": "/path/to/sora/archive/CZZ8A8KZB16A1DF5PKERBHGFNR/split-archive-3B7AFF8ZRX6VNEYV40B35Z9S2C_0001.mp4",
    "filename": "CZZ8A8KZB16A1DF5PKERBHGFNR/split-archive-3B7AFF8ZRX6VNEYV40B35Z9S2C_0001.mp4",
    "metadata_file_path": "/path/to/sora/archive/CZZ8A8KZB16A1DF5PKERBHGFNR/split-archive-3B7AFF8ZRX6VNEYV40B35Z9S2C_0001.json",
    "metadata_filename": "CZZ8A8KZB16A1DF5PKERBHGFNR/split-archive-3B7AFF8ZRX6VNEYV40B35Z9S2C_0001.json",
    "channel_id": "sora",
    "session_id": "JA8FB89ZJS1H9CV5GN3NCT5RA0",
    "client_id": "3B7AFF8ZRX6VNEYV40B35Z9S2C",
    "bundle_id": "3B7AFF8ZRX6VNEYV40B35Z9S2C",
    "connection_id": "3B7AFF8ZRX6VNEYV40B35Z9S2C",
    "split_index": "0001",
    "created_at": 1604656364,
    "size": 823263,
    "start_time": 1604656354,
    "start_time_offset": 4,
    "start_timestamp": "2020-11-06T09:52:34.696758Z",
    "stats": {},
    "stop_time": 1604656364,
    "stop_time_offset": 14,
    "stop_timestamp": "2020-11-06T09:52:44.493179Z",
    "label": "WebRTC SFU Sora",
    "node_name": "sora@127.0.0.1",
    "event_metadata": {"spam": "egg"},
    "video": True,
    "video_bit_rate": 1000,
    "video_codec_type": "VP9",
    "video_vp9_params": {"profile_id": 0},
    "video_height": 480,
    "video_width": 640,
    "format": "mp4",
}  # fmt: skip

SEED_SPLIT_END_METADATA = {
    "audio": True,
    "audio_codec_type": "OPUS",
    "split_last_index": "0042",
    "recording_id": "CZZ8A8KZB16A1DF5PKERBHGFNR",
    "file_path": "/path/to/sora/archive/CZZ8A8KZB16A1DF5PKERBHGFNR/split-archive-end-3B7AFF8ZRX6VNEYV40B35Z9S2C.json",
    "filename": "CZZ8A8KZB16A1DF5PKERBHGFNR/split-archive-end-3B7AFF8ZRX6VNEYV40B35Z9S2C.json",
    "channel_id": "sora",
    "session_id": "JA8FB89ZJS1H9CV5GN3NCT5RA0",
    "client_id": "3B7AFF8ZRX6VNEYV40B35Z9S2C",
    "bundle_id": "3B7AFF8ZRX6VNEYV40B35Z9S2C",
    "connection_id": "3B7AFF8ZRX6VNEYV40B35Z9S2C",
    "start_time": 1604656354,
    "start_time_offset": 4,
    "start_timestamp": "2020-11-06T09:52:34.696758Z",
    "stats": {},
    "stop_time": 1604656364,
    "stop_time_offset": 14,
    "stop_timestamp": "2020-11-06T09:52:44.493179Z",
    "label": "WebRTC SFU Sora",
    "node_name": "sora@127.0.0.1",
    "event_metadata": {"spam": "egg"},
    "video": True,
    "video_bit_rate": 1000,
    "video_codec_type": "VP9",
    "video_vp9_params": {"profile_id": 0},
    "format": "mp4",
}  # fmt: skip


def _piece(index: int, started_at: float, stopped_at: float, **changes: Any) -> ArchiveInfo:
    fields: dict[str, Any] = {
        "connection": SPLIT_CONNECTION,
        "started_at": started_at,
        "stopped_at": stopped_at,
        "size": 823263,
        "split_index": index,
        "video_width": 640,
        "video_height": 480,
        "created_at": 1604656364.9,
    }
    fields.update(changes)
    return ArchiveInfo(**fields)


def test_split_archive_metadata_is_the_seed_example() -> None:
    piece = _piece(1, 1604656354.696758, 1604656364.493179)
    doc = archive_metadata(SPLIT_RECORDING, piece, ARCHIVE_DIR, SORA)
    expected = {key: value for key, value in SEED_SPLIT_METADATA.items() if key != "event_metadata"}
    expected["state"] = "available"  # ours
    assert doc == expected


def test_split_archive_end_metadata_is_the_seed_example() -> None:
    # 42 pieces: the first starts at the series' start, the last stops at its stop.
    pieces = [_piece(1, 1604656354.696758, 1604656354.9)]
    pieces += [_piece(index, 1604656355.0 + index / 100, 1604656355.0) for index in range(2, 42)]
    pieces.append(_piece(42, 1604656363.0, 1604656364.493179, stats={"packets": 9}))
    doc = split_archive_end_metadata(SPLIT_RECORDING, pieces[::-1], ARCHIVE_DIR, SORA)
    expected = {
        key: value for key, value in SEED_SPLIT_END_METADATA.items() if key != "event_metadata"
    }
    expected["stats"] = {"packets": 9}  # the last piece's counters, cumulative
    assert doc == expected
    assert split_archive_end_metadata(SPLIT_RECORDING, pieces, ARCHIVE_DIR, SORA, {})["stats"] == {}


def test_split_archive_end_needs_pieces_of_one_connection() -> None:
    with pytest.raises(ValueError, match="at least one piece"):
        split_archive_end_metadata(SPLIT_RECORDING, [], ARCHIVE_DIR)
    other = ArchiveInfo(ConnectionInfo("other"), 1.0, 2.0, 3, split_index=2)
    with pytest.raises(ValueError, match="more than one connection"):
        split_archive_end_metadata(SPLIT_RECORDING, [_piece(1, 1.0, 2.0), other], ARCHIVE_DIR)
    single = ArchiveInfo(SPLIT_CONNECTION, 1.0, 2.0, 3)
    with pytest.raises(ValueError, match="not a split piece"):
        split_archive_end_metadata(SPLIT_RECORDING, [single], ARCHIVE_DIR)


# ---------------------------------------------------------------------------------------------
# Report: seed 000, the three "report-<recording_id>" sections

REPORT_RECORDING = RecordingInfo(
    recording_id="WHEJ888HQ55KDCFE3TZ4VPFQHR",
    channel_id="sora",
    format="mp4",
    created_at=1615524137.455668,
    stopped_at=1615524154.094375,
    expire_time=3600,
    recording_metadata={"spam": "egg"},
)
REPORT_CONNECTION = ConnectionInfo("GK2R6PSDYX68VDQPRX4FVVFN8W", **VP9_OPUS)
SINGLE_FILE_FIELDS = {
    "file_path": "/path/to/sora/archive/WHEJ888HQ55KDCFE3TZ4VPFQHR/archive-GK2R6PSDYX68VDQPRX4FVVFN8W.mp4",
    "filename": "WHEJ888HQ55KDCFE3TZ4VPFQHR/archive-GK2R6PSDYX68VDQPRX4FVVFN8W.mp4",
    "metadata_file_path": "/path/to/sora/archive/WHEJ888HQ55KDCFE3TZ4VPFQHR/archive-GK2R6PSDYX68VDQPRX4FVVFN8W.json",
    "metadata_filename": "WHEJ888HQ55KDCFE3TZ4VPFQHR/archive-GK2R6PSDYX68VDQPRX4FVVFN8W.json",
    "size": 0,
}  # fmt: skip
ENTRY_IDS = {
    "client_id": "GK2R6PSDYX68VDQPRX4FVVFN8W",
    "bundle_id": "GK2R6PSDYX68VDQPRX4FVVFN8W",
    "connection_id": "GK2R6PSDYX68VDQPRX4FVVFN8W",
}
ENTRY_TIMES = {
    "start_time_offset": 0,
    "start_timestamp": "2021-03-12T04:42:17.455668Z",
    "stop_time_offset": 17,
    "stop_timestamp": "2021-03-12T04:42:34.094375Z",
}
SEED_REPORT_TOP = {
    "channel_id": "sora",
    "created_at": 1615524137,
    "expire_time": 3600,
    "expired_at": 1615527737,
    "file_path": "/path/to/sora/archive/WHEJ888HQ55KDCFE3TZ4VPFQHR/report-WHEJ888HQ55KDCFE3TZ4VPFQHR.json",
    "filename": "WHEJ888HQ55KDCFE3TZ4VPFQHR/report-WHEJ888HQ55KDCFE3TZ4VPFQHR.json",
    "recording_metadata": {"spam": "egg"},
    "recording_id": "WHEJ888HQ55KDCFE3TZ4VPFQHR",
    "label": "WebRTC SFU Sora",
    "node_name": "sora@127.0.0.1",
    "split_only": False,
    "start_timestamp": "2021-03-12T04:42:17.455668Z",
    "stop_timestamp": "2021-03-12T04:42:34.094375Z",
    "format": "mp4",
}  # fmt: skip
OUR_REPORT_TOP = {"start_time": 1615524137, "stop_time": 1615524154}
LABELS = {"label": "WebRTC SFU Sora", "node_name": "sora@127.0.0.1"}


def test_report_of_single_archives_is_the_seed_example() -> None:
    single = ArchiveInfo(REPORT_CONNECTION, 1615524137.455668, 1615524154.094375, size=0)
    doc = report(REPORT_RECORDING, [single], ARCHIVE_DIR, SORA)
    entry = {**ENTRY_IDS, **SINGLE_FILE_FIELDS, **ENTRY_TIMES, **LABELS, "state": "available"}
    assert doc == {"archives": [entry], **SEED_REPORT_TOP, **OUR_REPORT_TOP}


def _report_pieces(count: int) -> list[ArchiveInfo]:
    # Pieces spanning the archive: the first starts and the last stops with it.
    pieces = []
    for index in range(1, count + 1):
        start = 1615524137.455668 if index == 1 else 1615524140.0 + index / 10
        stop = 1615524154.094375 if index == count else 1615524140.0 + (index + 1) / 10
        pieces.append(ArchiveInfo(REPORT_CONNECTION, start, stop, size=index, split_index=index))
    return pieces


def test_report_of_split_only_has_split_last_index_and_no_single_file() -> None:
    recording = RecordingInfo(**{
        **{f: getattr(REPORT_RECORDING, f) for f in REPORT_RECORDING.__slots__},
        "split_duration": 3600,
        "split_only": True,
    })  # fmt: skip
    pieces = _report_pieces(42)
    doc = report(recording, pieces[::-1], ARCHIVE_DIR, SORA)
    (entry,) = doc["archives"]
    splits = entry.pop("split_archives")  # ours
    assert entry == {
        **ENTRY_IDS,
        "split_last_index": "0042",
        **ENTRY_TIMES,
        **LABELS,
        "state": "available",
    }
    assert [piece["split_index"] for piece in splits] == [f"{i:04d}" for i in range(1, 43)]
    assert splits[1] == {
        "split_index": "0002",
        "file_path": "/path/to/sora/archive/WHEJ888HQ55KDCFE3TZ4VPFQHR/split-archive-GK2R6PSDYX68VDQPRX4FVVFN8W_0002.mp4",
        "filename": "WHEJ888HQ55KDCFE3TZ4VPFQHR/split-archive-GK2R6PSDYX68VDQPRX4FVVFN8W_0002.mp4",
        "metadata_file_path": "/path/to/sora/archive/WHEJ888HQ55KDCFE3TZ4VPFQHR/split-archive-GK2R6PSDYX68VDQPRX4FVVFN8W_0002.json",
        "metadata_filename": "WHEJ888HQ55KDCFE3TZ4VPFQHR/split-archive-GK2R6PSDYX68VDQPRX4FVVFN8W_0002.json",
        "size": 2,
        "start_time_offset": 3,
        "start_timestamp": "2021-03-12T04:42:20.200000Z",
        "stop_time_offset": 3,
        "stop_timestamp": "2021-03-12T04:42:20.300000Z",
        "state": "available",
    }  # fmt: skip
    assert doc["split_duration"] == 3600 and doc["split_only"] is True


def test_report_of_dual_output_merges_single_and_split() -> None:
    recording = RecordingInfo(**{
        **{f: getattr(REPORT_RECORDING, f) for f in REPORT_RECORDING.__slots__},
        "split_duration": 3600,
    })  # fmt: skip
    single = ArchiveInfo(REPORT_CONNECTION, 1615524137.455668, 1615524154.094375, size=0)
    doc = report(recording, [*_report_pieces(42), single], ARCHIVE_DIR, SORA)
    (entry,) = doc["archives"]
    assert len(entry.pop("split_archives")) == 42
    assert entry == {
        **ENTRY_IDS,
        **SINGLE_FILE_FIELDS,
        **ENTRY_TIMES,
        "split_last_index": "0042",
        **LABELS,
        "state": "available",
    }
    assert doc == {
        "archives": [entry],
        **SEED_REPORT_TOP,
        "split_duration": 3600,
        **OUR_REPORT_TOP,
    }


def test_report_orders_connections_by_start_and_leaves_out_unset_fields() -> None:
    recording = RecordingInfo(
        "WHEJ888HQ55KDCFE3TZ4VPFQHR", "ch", "webm", 100.0, session_id="S", stopped_at=200.0
    )
    late = ArchiveInfo(ConnectionInfo("late"), 150.0, 190.0, 1)
    early = ArchiveInfo(ConnectionInfo("early"), 101.0, 199.0, 2, state="recovered")
    doc = report(recording, [late, early], Path("/a"))
    assert [entry["connection_id"] for entry in doc["archives"]] == ["early", "late"]
    assert doc["archives"][0]["state"] == "recovered"
    assert doc["session_id"] == "S"  # ours
    for absent in ("expire_time", "expired_at", "split_duration", "recording_metadata"):
        assert absent not in doc
    assert report(recording, [], Path("/a"))["archives"] == []


def test_report_refusals() -> None:
    running = RecordingInfo("WHEJ888HQ55KDCFE3TZ4VPFQHR", "ch", "mp4", 100.0)
    with pytest.raises(ValueError, match="once the recording has stopped"):
        report(running, [], ARCHIVE_DIR)
    single = ArchiveInfo(REPORT_CONNECTION, 1.0, 2.0, 0)
    with pytest.raises(ValueError, match="two single archives"):
        report(REPORT_RECORDING, [single, single], ARCHIVE_DIR)


# ---------------------------------------------------------------------------------------------
# Stats and writing


def test_archive_stats_sums_the_live_counters() -> None:
    streams = [
        {"media": "audio", "packets": 10, "bytes": 1000, "lost": 1, "plis_sent": 0},
        {"media": "video", "packets": 5, "bytes": 5000, "lost": 2, "keyframes": 1, "plis_sent": 3},
    ]
    stats = archive_stats(streams, duration=12.5)
    assert stats["packets"] == 15 and stats["bytes"] == 6000 and stats["lost"] == 3
    assert stats["keyframes"] == 1 and stats["plis_sent"] == 3 and stats["frames"] == 0
    assert stats["duration"] == 12.5
    assert stats["streams"] == streams and stats["streams"][0] is not streams[0]
    json.dumps(stats, allow_nan=False)


def test_write_json_atomically(tmp_path: Path) -> None:
    path = tmp_path / "archive-c.json"
    write_json_atomically(path, {"a": 1, "録画": "メタデータ"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 1, "録画": "メタデータ"}
    assert "録画" in path.read_text(encoding="utf-8")
    write_json_atomically(path, {"b": 2})
    assert json.loads(path.read_text()) == {"b": 2}
    assert sorted(os.listdir(tmp_path)) == ["archive-c.json"]


def test_write_json_atomically_keeps_the_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "report-R.json"
    write_json_atomically(path, {"old": True})
    with pytest.raises(ValueError):
        write_json_atomically(path, {"bad": float("nan")})
    assert json.loads(path.read_text()) == {"old": True}

    def fail(*args: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk on fire"):
        write_json_atomically(path, {"new": True})
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(os.listdir(tmp_path)) == ["report-R.json"]
