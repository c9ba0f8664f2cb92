"""`playable_length`: where a file cut by a crash ends its last complete fragment / cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recorder.recovery import _unknown, playable_length, recover, trim_to_playable
from recorder.store import Store
from tests.judges import decode_errors, framemd5, source_md5


@pytest.mark.parametrize("container", ["webm", "mp4"])
@pytest.mark.parametrize("fraction", [0.3, 0.55, 0.8, 0.999])
def test_a_cut_file_is_trimmed_to_a_playable_prefix(
    recordings: dict, tmp_path: Path, container: str, fraction: float
) -> None:
    whole = recordings["gst", container][0].read_bytes()
    cut = tmp_path / f"cut.{container}"
    cut.write_bytes(whole[: int(len(whole) * fraction)])
    length = playable_length(cut)
    assert 0 < length <= cut.stat().st_size
    assert trim_to_playable(cut) == length == cut.stat().st_size
    assert decode_errors(cut) == ""
    decoded = framemd5(cut, "video")[0]
    assert decoded == source_md5("video")[: len(decoded)]


def test_garbage_and_headers_alone_are_not_playable(tmp_path: Path, recordings: dict) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x08junk" * 10)
    assert playable_length(junk) == 0
    whole = recordings["gst", "webm"][0].read_bytes()
    head = tmp_path / "head.webm"
    head.write_bytes(whole[:300])  # EBML header and track entries, no cluster
    assert playable_length(head) == 0


def test_unknown_sizes_are_all_ones_after_the_width_marker() -> None:
    assert [_unknown(width).hex() for width in (1, 2, 8)] == ["ff", "7fff", "01ffffffffffffff"]


def test_a_file_moved_just_before_the_crash_is_recovered_not_failed(
    recordings: dict, tmp_path: Path
) -> None:
    store = Store.open(tmp_path / "state.sqlite3")
    store.create_recording("R" * 26, "room", format="webm")
    store.add_connection("R" * 26, "a", media={"video": {"codec": "VP8"}, "audio": None})
    final = tmp_path / "archive" / ("R" * 26) / "archive-a.webm"
    final.parent.mkdir(parents=True)
    shutil.copy(recordings["gst", "webm"][0], final)
    archive = store.add_archive(
        "R" * 26, "a", kind="single", temp_path=tmp_path / "gone.webm", final_path=final
    )
    assert recover(store, tmp_path / "archive") == ["R" * 26]
    assert store.get_archive(archive.id).state == "recovered"  # type: ignore[union-attr]
    types = [event.type for event in store.list_events("R" * 26)]
    assert "archive.available" in types and "archive.failed" not in types
    assert decode_errors(final) == ""
