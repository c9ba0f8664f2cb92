"""Property tests: whatever the network sends, parsers raise only their own `MalformedPacket`.

Each property is seeded (`@example`) with the vector tables of test_rtp / test_vp8 / test_opus
and with captured packets, then fed arbitrary bytes and mutations (bit flips, truncation,
extension, overwritten bytes) of the captured packets.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recorder.codecs.opus import MAX_PACKET_SAMPLES, OpusDepacketizer, packet_samples
from recorder.codecs.vp8 import Vp8Depacketizer, descriptor_size
from recorder.errors import DepacketizeError, RtpError
from recorder.media import Frame
from recorder.rtp import RtpPacket
from recorder.stream import MAX_DROPOUT, MAX_MISORDER, InboundStream
from tests import test_opus, test_rtp, test_vp8
from tests.fuzzing import FUZZ, first, mutations, seeded
from tests.vectors import (
    AUDIO_PT,
    CAPTURES,
    VIDEO_PT,
    build_rtp,
    datagrams,
    ivf_frames,
    media_port,
    ogg_packets,
    rtp_datagrams,
)

# Whole flows cost more per example than single packets.
FUZZ_FLOWS = settings(max_examples=150, deadline=None)

# (sequence, timestamp, marker, payload, arrival) of one packet fed to an InboundStream.
Arrival = tuple[int, int, bool, bytes, float]


# -- seeds ------------------------------------------------------------------------------------

# Invented (test_rtp tables) and captured (first packets of every flow, FFmpeg's SRs, MPEG-TS).
RTP_SEEDS: list[bytes] = [
    test_rtp.MINIMAL,
    test_rtp.ALL_ONES,
    test_rtp.TWO_CSRCS,
    test_rtp.PADDED,
    test_rtp.PADDING_ONLY,
    test_rtp.OTHER_PROFILE,
    test_rtp.ONE_BYTE,
    test_rtp.ONE_BYTE_STOP,
    test_rtp.ONE_BYTE_LONGEST,
    test_rtp.ONE_BYTE_ID_0_WITH_LENGTH,
    test_rtp.TWO_BYTE,
    test_rtp.TWO_BYTE_LONG,
    test_rtp.EVERYTHING,
    *first(test_rtp.MALFORMED_HEADERS),
    *first(test_rtp.MALFORMED_EXTENSIONS),
    *[data for c in CAPTURES for kind in ("video", "audio") for data in rtp_datagrams(c, kind, 2)],
    *datagrams("ffmpeg", media_port("ffmpeg", "video") + 1),
    datagrams("mpegts", 5004)[0],
]

# Captured VP8 payloads: the first keyframe's packets and some interframes of each sender.
VP8_CAPTURED = [
    bytes(RtpPacket.parse(data).payload) for c in CAPTURES for data in rtp_datagrams(c, "video", 12)
]
VP8_SEEDS: list[bytes] = [
    *[descriptor + b"\x31\x00\x00" for descriptor in first(test_vp8.DESCRIPTORS)],
    *first(test_vp8.MALFORMED_DESCRIPTORS),
    *VP8_CAPTURED[:8],
]
VP8_FRAME_SEEDS: list[list[bytes]] = [
    *first(test_vp8.MALFORMED_FRAMES),
    [b"\x10" + ivf_frames()[0]],
    [b"\x10" + ivf_frames()[1]],
]

OPUS_CAPTURED = list(ogg_packets()[2:12])
OPUS_SEEDS: list[bytes] = [
    *first(test_opus.VALID),
    *first(test_opus.INVALID),
    *OPUS_CAPTURED[:3],
]


# -- strategies -------------------------------------------------------------------------------


# -- RFC 3550 section 5.1: RtpPacket.parse ------------------------------------------------------


def _reference_payload_bounds(data: bytes) -> tuple[int, int] | None:
    """Where the payload is, by RFC 3550 section 5.1 read independently; None if invalid."""
    size = len(data)
    if size < 12 or data[0] >> 6 != 2:
        return None
    start = 12 + 4 * (data[0] & 0x0F)
    if start > size:
        return None
    end = size
    if data[0] & 0x20:  # the last octet counts the padding, itself included
        if data[-1] == 0:
            return None
        end = size - data[-1]
    if data[0] & 0x10:
        if start + 4 > size:
            return None
        start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    return (start, end) if start <= end else None


def _check_rtp(data: bytes) -> None:
    expected = _reference_payload_bounds(data)
    try:
        packet = RtpPacket.parse(data)
    except RtpError:
        assert expected is None, f"valid packet rejected, payload expected at {expected}"
        return
    assert expected is not None, "invalid packet accepted"
    start, end = expected
    assert packet.payload.obj is data, "the payload is a view of the input"
    assert bytes(packet.payload) == data[start:end]
    assert len(packet.csrcs) == packet.csrc_count
    try:
        elements = packet.extensions()
    except RtpError:
        return
    assert packet.extension_data is not None or elements == {}
    assert sum(len(value) for value in elements.values()) <= len(packet.extension_data or b"")


@FUZZ
@given(st.binary(max_size=96))
@seeded(*RTP_SEEDS)
def test_rtp_parse_arbitrary_bytes(data: bytes) -> None:
    _check_rtp(data)


@FUZZ
@given(mutations(RTP_SEEDS, head=24))  # the RTP header and its extensions
def test_rtp_parse_mutated_packets(data: bytes) -> None:
    _check_rtp(data)


# RFC 8285 sections 4.2 and 4.3: elements of either form, or of any other profile.
@FUZZ
@given(
    st.one_of(st.just(0xBEDE), st.integers(0x1000, 0x100F), st.integers(0, 0xFFFF)),
    st.binary(max_size=40),
)
@example(0xBEDE, test_rtp.ONE_BYTE[16:28])
@example(0xBEDE, test_rtp.ONE_BYTE_ID_0_WITH_LENGTH[16:24])
@example(0x100A, test_rtp.TWO_BYTE[16:28])
@example(0x1000, b"\x01\x00\x00\x07")
def test_rtp_extensions_arbitrary_elements(profile: int, elements: bytes) -> None:
    elements += bytes(-len(elements) % 4)
    data = (
        bytes([0x90])
        + test_rtp.MINIMAL[1:12]
        + profile.to_bytes(2, "big")
        + (len(elements) // 4).to_bytes(2, "big")
        + elements
    )
    packet = RtpPacket.parse(data)
    assert packet.extension_profile == profile
    try:
        found = packet.extensions()
    except RtpError:
        return
    assert all(isinstance(value, bytes) for value in found.values())
    if profile == 0xBEDE:
        # 1-14 by RFC 8285 section 4.2; 0 is still returned today (see the xfail in test_rtp).
        assert all(0 <= key <= 14 for key in found)
        assert all(1 <= len(value) <= 16 for value in found.values())
    elif profile & 0xFFF0 == 0x1000:
        assert all(1 <= key <= 255 for key in found)
    else:
        assert found == {}


# -- RFC 7741 section 4.2 and RFC 6386 section 9.1: VP8 -----------------------------------------


def _check_vp8_starts_frame(payload: bytes) -> None:
    try:
        starts = Vp8Depacketizer(90000).starts_frame(memoryview(payload))
    except DepacketizeError:
        return
    assert starts is bool(payload[0] & 0x17 == 0x10)


def _check_vp8_build(payloads: list[bytes]) -> None:
    depacketizer = Vp8Depacketizer(90000)
    try:
        frame = depacketizer.build([memoryview(p) for p in payloads], 7)
    except DepacketizeError:
        assert depacketizer.config is None
        return
    data = b"".join(p[descriptor_size(memoryview(p)) :] for p in payloads)
    assert frame.data == data
    assert frame.timestamp == 7
    assert frame.keyframe is (data[0] & 0x01 == 0)
    if frame.keyframe:
        assert depacketizer.config is not None
        assert (depacketizer.config.width, depacketizer.config.height) == (
            frame.width,
            frame.height,
        )
        assert 0 < frame.width < 1 << 14 and 0 < frame.height < 1 << 14
    else:
        assert depacketizer.config is None


@FUZZ
@given(st.binary(max_size=24))
@seeded(*VP8_SEEDS)
def test_vp8_starts_frame_arbitrary_bytes(payload: bytes) -> None:
    _check_vp8_starts_frame(payload)


@FUZZ
@given(mutations(VP8_SEEDS))
def test_vp8_starts_frame_mutated_payloads(payload: bytes) -> None:
    _check_vp8_starts_frame(payload)


@FUZZ
@given(st.lists(st.binary(max_size=24), max_size=4))
@seeded(*VP8_FRAME_SEEDS)
def test_vp8_build_arbitrary_payloads(payloads: list[bytes]) -> None:
    _check_vp8_build(payloads)


@FUZZ
@given(st.lists(mutations([*VP8_SEEDS, b"\x10" + ivf_frames()[0][:40]]), min_size=1, max_size=4))
def test_vp8_build_mutated_payloads(payloads: list[bytes]) -> None:
    _check_vp8_build(payloads)


# -- RFC 6716 section 3 and RFC 7587: Opus -------------------------------------------------------


def _check_opus(packet: bytes) -> None:
    try:
        samples = packet_samples(packet)
    except DepacketizeError:
        samples = None
    depacketizer = OpusDepacketizer(48000)
    try:
        frame = depacketizer.build([memoryview(packet)], 0)
    except DepacketizeError:
        assert samples is None, "packet_samples and build disagree"
        assert depacketizer.config is None
        return
    assert samples is not None
    assert frame.duration == samples
    assert 120 <= samples <= MAX_PACKET_SAMPLES
    assert samples % 120 == 0
    assert frame.data == packet
    assert depacketizer.config is not None
    assert depacketizer.config.channels == (2 if packet[0] & 0x04 else 1)


@FUZZ
@given(st.binary(max_size=64))
@seeded(*OPUS_SEEDS)
def test_opus_arbitrary_bytes(packet: bytes) -> None:
    _check_opus(packet)


@FUZZ
@given(mutations(OPUS_SEEDS))
def test_opus_mutated_packets(packet: bytes) -> None:
    _check_opus(packet)


@FUZZ
@given(st.lists(st.binary(max_size=8), max_size=4))
@example([])
@example([b"\xf8", b"\xf8"])
def test_opus_build_any_number_of_payloads(payloads: list[bytes]) -> None:
    depacketizer = OpusDepacketizer(48000)
    try:
        depacketizer.build([memoryview(p) for p in payloads], 0)
    except DepacketizeError:
        return
    assert len(payloads) == 1


# -- recorder.stream: reorder, assemble, gate ---------------------------------------------------

SEQUENCE_STEPS = st.one_of(
    st.just(1), st.just(1), st.just(1), st.integers(-4, 8), st.integers(0, 0xFFFF)
)
TIMESTAMP_STEPS = st.one_of(
    st.just(0), st.just(3000), st.just(960), st.integers(-3000, 3000), st.integers(0, 2**32 - 1)
)
# Packets per generated flow: enough for reordering windows of 1-8 and a restart.
MAX_FLOW = 40
ARRIVAL_STEPS = st.one_of(st.just(0.0), st.floats(0, 0.05), st.floats(-1, 2))
WINDOWS = st.one_of(st.just(256), st.integers(1, 8))
DELAYS = st.one_of(st.just(0.5), st.floats(0, 1))


@st.composite
def flows(
    draw: st.DrawFn,
    payloads: st.SearchStrategy[bytes],
    sequence_steps: st.SearchStrategy[int] = SEQUENCE_STEPS,
) -> list[Arrival]:
    """Packets of one SSRC with lost, repeated, reordered, restarted sequence numbers."""
    sequence = draw(st.integers(0, 0xFFFF))
    timestamp = draw(st.integers(0, 2**32 - 1))
    arrival = 0.0
    flow = []
    for _ in range(draw(st.integers(0, MAX_FLOW))):
        flow.append((sequence, timestamp, draw(st.booleans()), draw(payloads), arrival))
        sequence = (sequence + draw(sequence_steps)) & 0xFFFF
        timestamp = (timestamp + draw(TIMESTAMP_STEPS)) & 0xFFFFFFFF
        arrival += draw(ARRIVAL_STEPS)
    return flow


def _reference_frame_count(flow: list[Arrival]) -> int:
    """Frames, kept or dropped, in an in-order loss-free flow: runs of one timestamp, cut after
    a marker (RFC 3550 section 5.1); padding-only packets belong to no frame."""
    count = 0
    open_timestamp: int | None = None
    for _, timestamp, marker, payload, _ in flow:
        if not payload:
            continue
        if open_timestamp != timestamp:
            count += 1
        open_timestamp = None if marker else timestamp
    return count


def _captured_flow(capture: str, kind: str, count: int | None = None) -> list[Arrival]:
    packets = [RtpPacket.parse(data) for data in rtp_datagrams(capture, kind, count)]
    return [
        (p.sequence, p.timestamp, p.marker, bytes(p.payload), i * 0.001)
        for i, p in enumerate(packets)
    ]


def _feed(
    depacketizer: Vp8Depacketizer | OpusDepacketizer,
    flow: list[Arrival],
    window: int,
    delay: float,
) -> tuple[InboundStream, list[Frame]]:
    frames: list[Frame] = []
    stream = InboundStream(
        0x01020304,
        depacketizer,
        lambda frame, _: frames.append(frame),
        reorder_window=window,
        reorder_delay=delay,
    )
    payload_type = VIDEO_PT if depacketizer.kind == "video" else AUDIO_PT
    for sequence, timestamp, marker, payload, arrival in flow:
        data = build_rtp(
            sequence=sequence,
            timestamp=timestamp,
            marker=marker,
            payload=payload,
            payload_type=payload_type,
        )
        stream.push(RtpPacket.parse(data), arrival)
    stream.flush()
    return stream, frames


def _check_counters(stream: InboundStream, frames: list[Frame], flow: list[Arrival]) -> int:
    """Bookkeeping that holds for any input; returns the packets that reached assembly."""
    stats = stream.stats()
    assert all(value >= 0 for value in stats.values()), stats
    assert stats["packets"] == len(flow)
    assert stats["bytes"] == sum(len(payload) for _, _, _, payload, _ in flow)
    assert stats["dropped_frames"] == (
        stats["incomplete_frames"] + stats["gated_frames"] + stats["malformed_frames"]
    )
    assert stats["frames"] == len(frames)
    assert stats["keyframes"] == sum(frame.keyframe for frame in frames)
    assembled = stats["packets"] - stats["duplicates"] - stats["late"] - stats["stray"]
    # Every frame, delivered or dropped, began with a packet that reached assembly.
    assert stats["frames"] + stats["dropped_frames"] <= assembled
    # flush() leaves nothing behind: a second one changes nothing.
    stream.flush()
    assert stream.stats() == stats
    return assembled


VP8_PAYLOADS = st.one_of(
    st.sampled_from(VP8_CAPTURED),
    st.binary(max_size=16),
    mutations(VP8_CAPTURED),
    st.sampled_from([b"", b"\x10\x31\x00\x00", b"\x10" + ivf_frames()[0][:16]]),
)
OPUS_PAYLOADS = st.one_of(st.sampled_from(OPUS_CAPTURED), st.binary(min_size=1, max_size=16))


@FUZZ_FLOWS
@given(flows(VP8_PAYLOADS), WINDOWS, DELAYS)
@example(_captured_flow("gst", "video", 40), 256, 0.5)
@example(_captured_flow("ffmpeg", "video", 40), 256, 0.5)
@example(_captured_flow("gst", "video", 40)[::-1], 4, 0.5)
@example(_captured_flow("ffmpeg", "video", 40)[3:], 256, 0.5)
def test_stream_vp8_never_raises(flow: list[Arrival], window: int, delay: float) -> None:
    stream, frames = _feed(Vp8Depacketizer(90000), flow, window, delay)
    _check_counters(stream, frames, flow)
    if frames:
        # The keyframe gate: nothing is written before the first keyframe.
        assert frames[0].keyframe


@FUZZ_FLOWS
@given(flows(OPUS_PAYLOADS), WINDOWS, DELAYS)
@example(_captured_flow("gst", "audio", 40), 256, 0.5)
@example(_captured_flow("ffmpeg", "audio", 40), 256, 0.5)
@example(_captured_flow("gst", "audio", 40)[::-1], 4, 0.5)
def test_stream_opus_never_raises(flow: list[Arrival], window: int, delay: float) -> None:
    stream, frames = _feed(OpusDepacketizer(48000), flow, window, delay)
    assembled = _check_counters(stream, frames, flow)
    stats = stream.stats()
    # RFC 7587 section 4.2: every assembled (non-empty) packet is one frame, kept or malformed.
    assert stats["frames"] + stats["malformed_frames"] == assembled
    assert stats["gated_frames"] == stats["incomplete_frames"] == 0


@FUZZ_FLOWS
@given(flows(VP8_PAYLOADS, st.just(1)))
@example(_captured_flow("gst", "video", 40))
@example(_captured_flow("ffmpeg", "video", 40))
def test_stream_vp8_in_order_accounts_for_every_frame(flow: list[Arrival]) -> None:
    stream, frames = _feed(Vp8Depacketizer(90000), flow, 256, 0.5)
    _check_counters(stream, frames, flow)
    stats = stream.stats()
    assert (stats["lost"], stats["duplicates"], stats["late"], stats["stray"]) == (0, 0, 0, 0)
    assert stats["frames"] + stats["dropped_frames"] == _reference_frame_count(flow)


# RFC 3550 appendix A.1: a jump beyond MAX_DROPOUT ahead or MAX_MISORDER behind is a restart
# once the next packet continues it; the first packet of the new run is dropped as stray.
FAR_JUMPS = st.integers(MAX_DROPOUT + 1, 0xFFFF - MAX_MISORDER - 1)


@FUZZ_FLOWS
@given(
    st.integers(0, 0xFFFF),
    st.integers(1, 20),
    FAR_JUMPS,
    st.integers(1, 20),
    st.integers(0, 2**32 - 1),
)
@example(0xFFF0, 5, MAX_DROPOUT + 1, 20, 0)
@example(10, 5, 0xFFFF - MAX_MISORDER - 1, 20, 2**32 - 960)
def test_stream_follows_a_restart(
    first: int, before: int, jump: int, after: int, timestamp: int
) -> None:
    payloads = [OPUS_CAPTURED[i % len(OPUS_CAPTURED)] for i in range(before + after)]
    sequences = [(first + i) & 0xFFFF for i in range(before)]
    restart = (sequences[-1] + jump) & 0xFFFF
    sequences += [(restart + i) & 0xFFFF for i in range(after)]
    flow = [
        (sequence, (timestamp + 960 * i) & 0xFFFFFFFF, False, payload, i * 0.02)
        for i, (sequence, payload) in enumerate(zip(sequences, payloads, strict=True))
    ]
    stream, frames = _feed(OpusDepacketizer(48000), flow, 256, 0.5)
    _check_counters(stream, frames, flow)
    stats = stream.stats()
    assert (stats["stray"], stats["restarts"]) == (1, 1 if after > 1 else 0)
    assert (stats["lost"], stats["duplicates"], stats["late"]) == (0, 0, 0)
    assert stats["frames"] == before + after - 1
    assert [frame.data for frame in frames] == payloads[:before] + payloads[before + 1 :]


# -- the seeds themselves: whole captured flows come out as the source frames (captured) --------


@pytest.mark.parametrize("capture", CAPTURES)
def test_stream_captured_vp8_flow_is_the_source_ivf(capture: str) -> None:
    stream, frames = _feed(Vp8Depacketizer(90000), _captured_flow(capture, "video"), 256, 0.5)
    assert [frame.data for frame in frames] == list(ivf_frames())
    assert [i for i, frame in enumerate(frames) if frame.keyframe] == [0, 30, 60, 90]
    assert stream.stats()["dropped_frames"] == stream.lost == 0
    steps = {b.timestamp - a.timestamp for a, b in pairwise(frames)}
    assert steps <= {2999, 3000, 3001}


@pytest.mark.parametrize("capture", CAPTURES)
def test_stream_captured_opus_flow_is_the_source_ogg(capture: str) -> None:
    stream, frames = _feed(OpusDepacketizer(48000), _captured_flow(capture, "audio"), 256, 0.5)
    assert [frame.data for frame in frames] == list(ogg_packets()[2:])
    assert {frame.duration for frame in frames} == {960}
    assert stream.stats()["dropped_frames"] == stream.lost == 0
