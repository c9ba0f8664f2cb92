"""Real captures with network faults: reordered, duplicated and lost packets.

The VP8 flow of the GStreamer capture is rewritten; frames are located from the packets
themselves (RTP timestamp groups), so the tests hold for any regeneration of the fixtures.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.captures import Datagram, datagrams, reorder_and_duplicate, rewrite
from tests.conftest import CONTAINERS, cli
from tests.judges import CAPTURES, decode_errors, framemd5, source_md5

PCAP, SDP = CAPTURES["gst"]
VIDEO_PORT, AUDIO_PORT = 5004, 5006
KEYFRAME_INTERVAL = 30


def _frames(flow: list[Datagram]) -> list[list[int]]:
    """Indexes into `flow` of each frame's packets (grouped by RTP timestamp)."""
    frames: list[list[int]] = []
    last = None
    for index, (_, _, _, _, payload) in enumerate(flow):
        timestamp = payload[4:8]
        if timestamp != last:
            frames.append([])
            last = timestamp
        frames[-1].append(index)
    return frames


def _video_frames() -> list[list[int]]:
    return _frames([item for item in datagrams(PCAP) if item[3] == VIDEO_PORT])


def _convert(tmp_path: Path, port: int, change: Callable, container: str) -> tuple[Path, dict]:
    capture = rewrite(PCAP, tmp_path / "faulty.pcap", port, change)
    output = tmp_path / f"out.{container}"
    done = cli("convert", capture, "--sdp", SDP, "-o", output)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    return output, {stream["media"]: stream for stream in summary["streams"]}


def _drop(indexes: set[int]) -> Callable[[list[Datagram]], list[Datagram]]:
    return lambda flow: [item for index, item in enumerate(flow) if index not in indexes]


@pytest.mark.parametrize("container", CONTAINERS)
def test_reordering_and_duplicates_are_repaired(tmp_path: Path, container: str) -> None:
    output, streams = _convert(
        tmp_path, VIDEO_PORT, lambda flow: reorder_and_duplicate(flow, 7), container
    )
    video = streams["video"]
    assert video["lost"] == 0
    assert video["duplicates"] == len(datagrams(tmp_path / "faulty.pcap")) - 373
    assert video["dropped_frames"] == 0
    assert framemd5(output, "video")[0] == source_md5("video")
    assert decode_errors(output) == ""


@pytest.mark.parametrize("container", CONTAINERS)
def test_lost_packet_mid_frame_drops_frames_until_the_next_keyframe(
    tmp_path: Path, container: str
) -> None:
    frames = _video_frames()
    # A multi-packet interframe in the second GOP; lose its second packet.
    victim = next(
        n for n in range(KEYFRAME_INTERVAL + 5, 2 * KEYFRAME_INTERVAL) if len(frames[n]) > 1
    )
    output, streams = _convert(tmp_path, VIDEO_PORT, _drop({frames[victim][1]}), container)
    video = streams["video"]
    assert (video["lost"], video["incomplete_frames"]) == (1, 1)
    assert video["gated_frames"] == 2 * KEYFRAME_INTERVAL - victim - 1
    source = source_md5("video")
    assert framemd5(output, "video")[0] == source[:victim] + source[2 * KEYFRAME_INTERVAL :]
    assert decode_errors(output) == ""


@pytest.mark.parametrize("container", CONTAINERS)
def test_lost_keyframe_start_waits_for_the_following_keyframe(
    tmp_path: Path, container: str
) -> None:
    frames = _video_frames()
    output, streams = _convert(
        tmp_path, VIDEO_PORT, _drop({frames[KEYFRAME_INTERVAL][0]}), container
    )
    video = streams["video"]
    assert video["lost"] == 1
    assert video["keyframes"] == 3
    source = source_md5("video")
    decoded = framemd5(output, "video")[0]
    assert decoded == source[:KEYFRAME_INTERVAL] + source[2 * KEYFRAME_INTERVAL :]


@pytest.mark.parametrize("container", CONTAINERS)
def test_random_loss_never_writes_a_frame_with_missing_references(
    tmp_path: Path, container: str
) -> None:
    rng = random.Random(f"loss-{container}")
    flow_size = sum(len(frame) for frame in _video_frames())
    lost = set(rng.sample(range(flow_size), flow_size * 3 // 100))
    output, streams = _convert(tmp_path, VIDEO_PORT, _drop(lost), container)
    assert streams["video"]["lost"] == len(lost)
    assert decode_errors(output) == ""
    decoded = iter(source_md5("video"))
    # Every decoded frame is a source frame, in source order (a subsequence).
    for md5 in framemd5(output, "video")[0]:
        assert md5 in decoded


@pytest.mark.parametrize("container", CONTAINERS)
def test_lost_audio_packets_are_counted_and_the_rest_decodes(
    tmp_path: Path, container: str
) -> None:
    output, streams = _convert(tmp_path, AUDIO_PORT, _drop({20, 21, 100, 150, 151}), container)
    audio = streams["audio"]
    assert (audio["lost"], audio["frames"], audio["dropped_frames"]) == (5, 195, 0)
    decoded, errors = framemd5(output, "audio")
    assert errors == ""
    assert len(decoded) == 195
    # Opus decodes each packet on its own state, so frames before the first loss are exact.
    assert decoded[:20] == source_md5("audio")[:20]
    assert framemd5(output, "video")[0] == source_md5("video")
