"""`Archive`: waiting for every track, one timeline, time-ordered interleaving."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from recorder.archive import INTERLEAVE_WAIT_US, Archive
from recorder.codecs.opus import OpusDepacketizer
from recorder.codecs.vp8 import Vp8Depacketizer
from recorder.errors import NoMediaError
from recorder.media import CodecConfig, Frame
from recorder.mux.base import TrackSpec, Writer, WriterResult


class RecordingWriter(Writer):
    """Remembers what the archive asked of it."""

    extension = "test"
    codecs = frozenset({"VP8", "OPUS"})

    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self.specs: list[TrackSpec] = []
        self.written: list[tuple[int, int, Frame]] = []
        self.closed = 0

    def start(self, tracks: Sequence[TrackSpec]) -> None:
        self.specs = list(tracks)

    def write(self, track: int, pts: int, frame: Frame) -> None:
        self.written.append((track, pts, frame))

    def close(self) -> WriterResult:
        self.closed += 1
        return WriterResult(0.0, 0)


def _archive(start_wait: float = 3.0):  # type: ignore[no-untyped-def]
    writer = RecordingWriter()
    archive = Archive([writer], start_wait=start_wait)
    video = Vp8Depacketizer(90000)
    audio = OpusDepacketizer(48000)
    video_track = archive.add_track(video)
    audio_track = archive.add_track(audio)
    # What the depacketizers would have learnt from the first frames.
    video.config = CodecConfig("VP8", "video", 90000, width=320, height=240)
    audio.config = CodecConfig("OPUS", "audio", 48000, channels=2, sample_rate=48000)
    return archive, writer, video_track, audio_track


def test_headers_wait_for_every_track_then_frames_follow_in_time_order() -> None:
    archive, writer, video, audio = _archive()
    video.on_frame(Frame(1000, b"k", True), 10.0)
    video.on_frame(Frame(4000, b"p", False), 10.033)
    assert writer.specs == []  # audio has not spoken yet
    audio.on_frame(Frame(500, b"a", True, 960), 10.010)
    assert [spec.number for spec in writer.specs] == [1, 2]
    # Audio arrived 10 ms after video: its track starts 480 ticks into the file.
    assert writer.specs[1].start == 480
    audio.on_frame(Frame(1460, b"a", True, 960), 10.030)
    archive.close()
    times = [
        pts * 1_000_000 // (90000 if track == 1 else 48000) for track, pts, _ in writer.written
    ]
    assert times == sorted(times)
    assert [(track, pts) for track, pts, _ in writer.written] == [
        (1, 0),
        (2, 480),
        (2, 1440),
        (1, 3000),
    ]


def test_a_silent_track_is_left_out_after_the_start_wait() -> None:
    archive, writer, video, audio = _archive(start_wait=1.0)
    for n in range(60):  # 1.2 s of audio arrivals
        audio.on_frame(Frame(n * 960, b"a", True, 960), 5.0 + n * 0.02)
    assert [spec.kind for spec in writer.specs] == ["audio"]
    video.on_frame(Frame(0, b"k", True), 6.0)  # too late for this archive
    result = archive.close()
    assert {track for track, _, _ in writer.written} == {1}
    [track] = result.tracks
    assert (track["track"], track["kind"], track["frames"], track["unordered_frames"]) == (
        1,
        "audio",
        60,
        0,
    )
    assert (track["first_arrival"], track["last_arrival"]) == (5.0, pytest.approx(5.0 + 59 * 0.02))


def test_a_quiet_track_holds_others_back_only_so_long() -> None:
    _, writer, video, audio = _archive()
    video.on_frame(Frame(0, b"k", True), 0.0)
    audio.on_frame(Frame(0, b"a", True, 960), 0.0)
    written = len(writer.written)
    # Video goes on alone; audio frames could still come for these times...
    for n in range(1, 10):
        video.on_frame(Frame(n * 3000, b"p", False), n / 30)
    assert len(writer.written) == written  # ...so nothing is released yet
    # ...until the audio track has been quiet for longer than the interleave wait.
    beyond = INTERLEAVE_WAIT_US * 90000 // 1_000_000 + 3000
    video.on_frame(Frame(beyond, b"p", False), 1.0)
    assert len(writer.written) > written


def test_frames_going_back_in_time_are_counted_not_written() -> None:
    archive, writer, video, audio = _archive()
    video.on_frame(Frame(9000, b"k", True), 0.0)
    audio.on_frame(Frame(0, b"a", True, 960), 0.0)
    video.on_frame(Frame(6000, b"p", False), 0.1)  # before the first frame of the track
    result = archive.close()
    assert result.tracks[0]["unordered_frames"] == 1
    assert [frame.data for _, _, frame in writer.written] == [b"k", b"a"]


def test_close_without_media_raises_and_close_is_idempotent() -> None:
    archive, writer, _, _ = _archive()
    with pytest.raises(NoMediaError, match="no decodable media arrived"):
        archive.close()
    archive, writer, video, _ = _archive()
    video.on_frame(Frame(0, b"k", True), 0.0)
    first = archive.close()
    assert archive.close() is first
    assert writer.closed == 1


# -- A/V sync from RTCP sender reports ----------------------------------------------------------


def test_sender_reports_place_tracks_by_the_senders_clock_not_arrival() -> None:
    _, writer, video, audio = _archive()
    # The sender's clock: video ts 90000 and audio ts 48000 were both sampled at t = 100.0 s.
    video.on_sender_report(100.0, 90000)
    audio.on_sender_report(100.0, 48000)
    # Video's first frame was captured at 100.0 s, audio's at 100.2 s, but audio arrived first
    # (a sender that starts its audio pipeline earlier, or a slower video path).
    audio.on_frame(Frame(48000 + 9600, b"a", True, 960), 50.0)
    video.on_frame(Frame(90000, b"k", True), 50.5)
    assert [spec.start for spec in writer.specs] == [0, 9600]  # audio 200 ms in, as captured


def test_waits_for_every_tracks_sender_report_once_one_has_come() -> None:
    _, writer, video, audio = _archive()
    video.on_sender_report(100.0, 90000)
    video.on_frame(Frame(90000, b"k", True), 50.0)
    audio.on_frame(Frame(48000, b"a", True, 960), 50.0)
    assert writer.specs == []  # audio's clock is not known yet
    audio.on_sender_report(100.1, 48000)
    audio.on_frame(Frame(48960, b"a", True, 960), 50.02)
    assert [spec.start for spec in writer.specs] == [0, 4800]  # audio started 100 ms later


def test_without_reports_for_every_track_arrival_decides_after_the_wait() -> None:
    _, writer, video, audio = _archive(start_wait=1.0)
    video.on_sender_report(100.0, 90000)
    video.on_frame(Frame(90000, b"k", True), 50.0)
    for n in range(60):
        audio.on_frame(Frame(48000 + n * 960, b"a", True, 960), 50.01 + n * 0.02)
    assert [spec.start for spec in writer.specs] == [0, 480]


def test_a_later_report_moves_the_lagging_track_forward_never_back() -> None:
    archive, writer, video, audio = _archive()
    video.on_frame(Frame(0, b"k", True), 10.0)
    audio.on_frame(Frame(0, b"a", True, 960), 10.0)  # arrival says: in line
    assert [spec.start for spec in writer.specs] == [0, 0]
    # Reports say audio ts 0 was captured 100 ms after video ts 0: audio moves 100 ms later.
    video.on_sender_report(200.0, 0)
    audio.on_sender_report(200.1, 0)
    audio.on_frame(Frame(960, b"a", True, 960), 10.02)
    video.on_frame(Frame(3000, b"p", False), 10.033)
    # Later reports say they were in line after all: audio cannot go back, video moves on.
    video.on_sender_report(300.0, 100 * 90000)
    audio.on_sender_report(300.0, 100 * 48000)
    audio.on_frame(Frame(1920, b"a", True, 960), 10.04)
    video.on_frame(Frame(6000, b"p", False), 10.066)
    # A report from a broken clock (a jump of minutes) is not followed.
    video.on_sender_report(900.0, 100 * 90000)
    video.on_frame(Frame(9000, b"p", False), 10.1)
    result = archive.close()
    audio_pts = [pts for track, pts, _ in writer.written if track == 2]
    video_pts = [pts for track, pts, _ in writer.written if track == 1]
    assert audio_pts == [0, 960 + 4800, 1920 + 4800]
    assert video_pts == [0, 3000, 6000 + 9000, 9000 + 9000]
    assert [track["resyncs"] for track in result.tracks] == [1, 1]
