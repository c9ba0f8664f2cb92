"""A writer that dies at any byte leaves a file that plays up to its last whole chunk.

Crash snapshots replay the writer's real write sequence up to a random byte budget (see
tests/crash.py). For WebM, a finished file cut at a random offset must also play; for MP4 that
is beyond any writer's control (FFmpeg refuses a file whose last moof is cut, and a finished
file has every moof committed), so MP4 is held to the crash property only.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from recorder.convert import replay
from recorder.ingest import recorded_sections
from recorder.mux import writer_class
from recorder.sdp import load_sdp
from tests.conftest import CONTAINERS
from tests.crash import JournalFile, complete_chunks, snapshot
from tests.judges import CAPTURES, decode_errors, framemd5, source_md5

SNAPSHOTS = 8
VIDEO_TRACK, AUDIO_TRACK = 1, 2


def _journal(container: str) -> JournalFile:
    pcap, sdp = CAPTURES["gst"]
    file = JournalFile()
    replay(pcap, recorded_sections(load_sdp(sdp).media), [writer_class(container)(file)])
    return file


def _check_plays_up_to_last_chunk(
    data: bytes, container: str, path: Path, *, clean_at_chunk_end: bool = True
) -> None:
    path.write_bytes(data)
    chunks = complete_chunks(data, container)
    for kind, track in (("video", VIDEO_TRACK), ("audio", AUDIO_TRACK)):
        decoded, _ = framemd5(path, kind) if chunks.frames else ([], "")
        source = source_md5(kind)
        # Every decoded frame is the source's, in order, and nothing whole was lost.
        assert decoded == source[: len(decoded)], f"{kind}: a decoded frame differs"
        assert len(decoded) >= chunks.frames.get(track, 0), (kind, len(decoded), chunks)
    if clean_at_chunk_end and chunks.frames:
        # Cut at its last whole chunk, a crashed file decodes without a single error.
        whole = path.with_suffix(".whole." + container)
        whole.write_bytes(data[: chunks.end])
        assert decode_errors(whole) == ""


@pytest.mark.parametrize("container", CONTAINERS)
def test_crash_at_any_byte_leaves_a_playable_file(container: str, tmp_path: Path) -> None:
    journal = _journal(container)
    rng = random.Random(f"crash-{container}")
    budgets = sorted(rng.sample(range(1, journal.total), SNAPSHOTS))
    for budget in budgets:
        _check_plays_up_to_last_chunk(
            snapshot(journal.writes, budget), container, tmp_path / f"cut-{budget}.{container}"
        )


def test_mp4_crash_inside_a_fragment_or_before_its_commit(tmp_path: Path) -> None:
    """The dangerous moments: a moof half written, a fragment whole but not yet renamed."""
    journal = _journal("mp4")
    written = 0
    budgets = []
    for _, data in journal.writes:
        if data[4:8] == b"free":
            budgets += [written + 100, written + len(data) // 2, written + len(data)]
        written += len(data)
    for budget in budgets[3:9]:  # the second and third fragments
        _check_plays_up_to_last_chunk(
            snapshot(journal.writes, budget), "mp4", tmp_path / f"cut-{budget}.mp4"
        )


def test_crash_snapshot_of_every_write_is_consistent() -> None:
    """The model itself: replaying every write gives exactly the finished file."""
    for container in CONTAINERS:
        journal = _journal(container)
        assert snapshot(journal.writes, journal.total) == journal.getvalue()


def test_mp4_fragment_in_progress_is_invisible() -> None:
    """Until a fragment is whole, its moof is a 'free' box that players skip."""
    journal = _journal("mp4")
    first_fragment = next(data for _, data in journal.writes if data[4:8] == b"free")
    assert first_fragment[12:16] == b"mfhd"
    commits = [data for _, data in journal.writes if data == b"moof"]
    fragments = [data for _, data in journal.writes if data[4:8] == b"free"]
    assert len(commits) == len(fragments) == 4


def test_finished_webm_cut_at_random_offsets_still_plays(recordings: dict, tmp_path: Path) -> None:
    path, _ = recordings["gst", "webm"]
    data = path.read_bytes()
    rng = random.Random("cut-webm")
    for offset in sorted(rng.sample(range(200, len(data)), SNAPSHOTS)):
        # A finished file declares its Segment size, so FFmpeg rightly notes that a cut one
        # ends early; what matters is that every whole cluster still decodes.
        _check_plays_up_to_last_chunk(
            data[:offset], "webm", tmp_path / f"cut-{offset}.webm", clean_at_chunk_end=False
        )
