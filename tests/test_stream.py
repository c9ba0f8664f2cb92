"""`InboundStream`: ordering, loss accounting and frame assembly on real captured packets.

The packets are the GStreamer capture's (captured); where a case needs particular sequence
numbers or timestamps, the headers are rewritten (invented numbering, real payloads).
"""

from __future__ import annotations

import itertools
import random
import struct

import pytest

from recorder.codecs.opus import OpusDepacketizer
from recorder.codecs.vp8 import Vp8Depacketizer
from recorder.media import Frame
from recorder.rtp import RtpPacket
from recorder.stream import MAX_DROPOUT, InboundStream
from tests.captures import datagrams
from tests.judges import CAPTURES

VIDEO_PORT, AUDIO_PORT = 5004, 5006
VIDEO_FRAMES, AUDIO_FRAMES = 120, 200
PACKET_INTERVAL = 0.01


def _flow(port: int) -> list[bytes]:
    return [payload for *_, dst, payload in datagrams(CAPTURES["gst"][0]) if dst == port]


VIDEO = _flow(VIDEO_PORT)
AUDIO = _flow(AUDIO_PORT)


def _renumber(packets: list[bytes], first_sequence: int, first_timestamp: int) -> list[bytes]:
    """Shift sequence numbers and timestamps so the flow starts at the given values."""
    sequence0, timestamp0 = struct.unpack_from("!HI", packets[0], 2)
    out = []
    for raw in packets:
        sequence, timestamp = struct.unpack_from("!HI", raw, 2)
        header = struct.pack(
            "!HI",
            (sequence - sequence0 + first_sequence) & 0xFFFF,
            (timestamp - timestamp0 + first_timestamp) & 0xFFFFFFFF,
        )
        out.append(raw[:2] + header + raw[8:])
    return out


class Sink:
    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def __call__(self, frame: Frame, arrival: float) -> None:
        self.frames.append(frame)


def _stream(video: bool = True, **options: float) -> tuple[InboundStream, Sink]:
    sink = Sink()
    depacketizer = Vp8Depacketizer(90000) if video else OpusDepacketizer(48000)
    return InboundStream(1, depacketizer, sink, **options), sink  # type: ignore[arg-type]


def _push(stream: InboundStream, packets: list[bytes], start: float = 0.0) -> None:
    for index, raw in enumerate(packets):
        stream.push(RtpPacket.parse(raw), start + index * PACKET_INTERVAL)


def _frames(packets: list[bytes]) -> list[list[int]]:
    groups: list[list[int]] = []
    last = None
    for index, raw in enumerate(packets):
        if raw[4:8] != last:
            groups.append([])
            last = raw[4:8]
        groups[-1].append(index)
    return groups


def test_clean_flow_gives_every_frame() -> None:
    stream, sink = _stream()
    _push(stream, VIDEO)
    stream.flush()
    assert len(sink.frames) == stream.frames == VIDEO_FRAMES
    assert stream.keyframes == 4
    assert stream.stats()["dropped_frames"] == 0
    assert (sink.frames[0].width, sink.frames[0].height) == (320, 240)


def test_sequence_number_wrap() -> None:
    stream, _ = _stream()
    _push(stream, _renumber(VIDEO, 65500, 1000))
    stream.flush()
    assert (stream.frames, stream.lost, stream.duplicates) == (VIDEO_FRAMES, 0, 0)


def test_timestamp_wrap_keeps_frame_times_increasing() -> None:
    stream, sink = _stream()
    _push(stream, _renumber(VIDEO, 0, 0xFFFFFFFF - 3000 * 10))
    stream.flush()
    times = [frame.timestamp for frame in sink.frames]
    assert len(times) == VIDEO_FRAMES
    assert times == sorted(times) and times[-1] > 0xFFFFFFFF
    assert {b - a for a, b in itertools.pairwise(times)} <= {2999, 3000, 3001}


def test_reordering_within_the_window_loses_nothing() -> None:
    rng = random.Random(5)
    packets = list(VIDEO)
    # From the second block on: the first packet received defines where the stream starts.
    for start in range(6, len(packets) - 6, 6):
        block = packets[start : start + 6]
        rng.shuffle(block)
        packets[start : start + 6] = block
    stream, _ = _stream()
    _push(stream, packets)
    stream.flush()
    assert (stream.frames, stream.lost) == (VIDEO_FRAMES, 0)


def test_gap_is_given_up_when_the_window_fills() -> None:
    stream, _ = _stream(reorder_window=8, reorder_delay=100.0)
    missing = _frames(VIDEO)[40][0]
    _push(stream, VIDEO[:missing] + VIDEO[missing + 1 : missing + 8])
    assert stream.lost == 0  # still waiting: 7 packets held
    _push(stream, VIDEO[missing + 8 : missing + 9], start=10.0)
    assert stream.lost == 1  # the 8th held packet fills the window


def test_gap_is_given_up_when_the_held_bytes_exceed_the_bound() -> None:
    stream, _ = _stream(reorder_window=10_000, reorder_delay=100.0)
    # Invented jumbo packets (65 kB each) behind a missing one: the byte bound, not the
    # packet count, gives up on the gap.
    big = [raw[:12] + bytes(65_000) for raw in _renumber(VIDEO[:40], 100, 0)]
    _push(stream, big[:1] + big[2:18])
    assert stream.lost == 0  # 16 x 65 kB held: under 1 MiB
    _push(stream, big[18:19], start=1.0)
    assert stream.lost == 1  # the 17th passes the bound


def test_an_expired_gap_is_given_up_by_the_clock_when_packets_stop() -> None:
    stream, _ = _stream(reorder_window=1000, reorder_delay=0.5)
    missing = _frames(VIDEO)[40][0]
    _push(stream, VIDEO[:missing] + VIDEO[missing + 1 : missing + 3], start=1.0)
    stream.expire(1.0 + missing * PACKET_INTERVAL + 0.2)
    assert stream.lost == 0
    stream.expire(1.0 + missing * PACKET_INTERVAL + 0.6)
    assert stream.lost == 1


def test_gap_is_given_up_after_the_delay() -> None:
    stream, _ = _stream(reorder_window=1000, reorder_delay=0.5)
    missing = _frames(VIDEO)[40][0]
    stream.push(RtpPacket.parse(VIDEO[missing + 1]), 1.0)
    stream.push(RtpPacket.parse(VIDEO[missing + 2]), 1.4)
    assert stream.lost == 0
    stream.push(RtpPacket.parse(VIDEO[missing + 3]), 1.6)
    assert stream.lost == 0  # the stream starts at its first packet: nothing was missing yet
    _push(stream, VIDEO[missing + 5 : missing + 6], start=1.7)
    assert stream.lost == 0
    _push(stream, VIDEO[missing + 6 : missing + 7], start=2.3)
    assert stream.lost == 1


def test_late_packets_and_duplicates_are_told_apart() -> None:
    stream, _ = _stream(reorder_window=4)
    missing = 10
    _push(stream, VIDEO[:missing] + VIDEO[missing + 1 : missing + 6])
    assert stream.lost == 1
    _push(stream, [VIDEO[missing]])  # arrives after it was given up
    _push(stream, [VIDEO[3]])  # already delivered
    assert (stream.late, stream.duplicates) == (1, 1)


def test_a_lost_packet_drops_its_frame_and_gates_until_the_keyframe() -> None:
    frames = _frames(VIDEO)
    victim = next(n for n in range(35, 60) if len(frames[n]) > 1)
    stream, sink = _stream()
    _push(stream, [raw for i, raw in enumerate(VIDEO) if i != frames[victim][1]])
    stream.flush()
    assert stream.frames_incomplete == 1
    assert stream.frames_gated == 60 - victim - 1
    assert len(sink.frames) == VIDEO_FRAMES - (60 - victim)
    assert sink.frames[victim].keyframe  # the next frame written is the keyframe at 60


def test_stream_joined_mid_frame_starts_at_the_first_keyframe() -> None:
    frames = _frames(VIDEO)
    joined = next(n for n in range(5, 30) if len(frames[n]) > 1)
    stream, sink = _stream()
    _push(stream, VIDEO[frames[joined][0] + 1 :])
    stream.flush()
    assert sink.frames[0].keyframe
    assert len(sink.frames) == VIDEO_FRAMES - 30
    assert stream.frames_incomplete == 1
    assert stream.frames_gated == 30 - joined - 1


def test_one_stray_packet_far_away_is_ignored() -> None:
    stray = _renumber([VIDEO[50]], (struct.unpack_from("!H", VIDEO[50], 2)[0] + 20000), 5)
    stream, _ = _stream()
    _push(stream, VIDEO[:50] + stray + VIDEO[50:])
    stream.flush()
    assert (stream.stray, stream.restarts, stream.lost, stream.frames) == (1, 0, 0, VIDEO_FRAMES)


def test_a_far_jump_confirmed_by_the_next_packet_is_a_restart() -> None:
    first = VIDEO[:60]
    jump = struct.unpack_from("!H", first[-1], 2)[0] + MAX_DROPOUT + 500
    second = _renumber(VIDEO[_frames(VIDEO)[60][0] :], jump, 7)
    stream, _ = _stream()
    _push(stream, first + second)
    stream.flush()
    assert stream.restarts == 1
    assert stream.stray == 1  # the first packet of the new run, before the second confirmed it
    assert stream.lost == 0


def test_padding_only_packets_keep_sequence_continuity() -> None:
    """Chrome's bandwidth probes: RTP padding with no payload, own sequence numbers."""
    with_probes = []
    for index, raw in enumerate(VIDEO):
        with_probes.append(raw)
        if index % 10 == 0:
            # Same SSRC and timestamp, P bit set, 8 bytes that are all padding.
            with_probes.append(bytes([0xA0, raw[1] & 0x7F]) + raw[2:12] + bytes(7) + b"\x08")
    sequence0 = struct.unpack_from("!H", VIDEO[0], 2)[0]
    renumbered = [
        raw[:2] + struct.pack("!H", (sequence0 + index) & 0xFFFF) + raw[4:]
        for index, raw in enumerate(with_probes)
    ]
    stream, sink = _stream()
    _push(stream, renumbered)
    stream.flush()
    assert (stream.frames, stream.lost, stream.frames_incomplete) == (VIDEO_FRAMES, 0, 0)
    assert [f.data for f in sink.frames] == [f.data for f in _all_frames()]


def _all_frames() -> list[Frame]:
    stream, sink = _stream()
    _push(stream, VIDEO)
    stream.flush()
    return sink.frames


def test_frames_end_at_a_timestamp_change_when_the_marker_is_missing() -> None:
    unmarked = [raw[:1] + bytes([raw[1] & 0x7F]) + raw[2:] for raw in VIDEO]
    stream, _ = _stream()
    _push(stream, unmarked)
    stream.flush()
    # The last frame has nothing after it to prove it complete.
    assert (stream.frames, stream.frames_incomplete) == (VIDEO_FRAMES - 1, 1)


@pytest.mark.parametrize("pattern", ["every", "first", "never"])
def test_opus_ignores_the_marker_bit(pattern: str) -> None:
    """FFmpeg marks every Opus packet, GStreamer the first, Chrome none."""
    packets = []
    for index, raw in enumerate(AUDIO):
        marked = pattern == "every" or (pattern == "first" and index == 0)
        packets.append(raw[:1] + bytes([raw[1] & 0x7F | (0x80 if marked else 0)]) + raw[2:])
    stream, sink = _stream(video=False)
    _push(stream, packets)
    stream.flush()
    assert len(sink.frames) == AUDIO_FRAMES
    assert [frame.data for frame in sink.frames] == [
        bytes(RtpPacket.parse(r).payload) for r in AUDIO
    ]
    assert all(frame.duration == 960 for frame in sink.frames)


def test_opus_loss_is_counted_without_gating() -> None:
    stream, _ = _stream(video=False, reorder_window=4)
    _push(stream, AUDIO[:50] + AUDIO[53:])
    stream.flush()
    assert (stream.lost, stream.frames, stream.frames_gated) == (3, AUDIO_FRAMES - 3, 0)
