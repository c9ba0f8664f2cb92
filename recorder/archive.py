"""One archive: the tracks of one connection, on one timeline, into one or more writers.

The archive owns time. Each track's first frame is placed on the archive's timeline by the
sender's clock when RTCP sender reports map every track's RTP timestamps to it (RFC 3550
section 6.4.1), else by its arrival time; later frames follow their RTP timestamps from there.
A sender report that arrives later and shows tracks out of line moves the track that is behind
forward (a gap in it), never a track back, so written timestamps never decrease.

Writers need every track's description before the first byte, so the archive holds frames
until each track has produced one (or `START_WAIT` seconds of arrivals pass, after which the
tracks that are silent are left out). Then frames are released to the writers in time order
across tracks, holding each back at most `INTERLEAVE_WAIT` for a track that has gone quiet.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from recorder.codecs.base import Depacketizer
from recorder.errors import NoMediaError
from recorder.media import Frame, reduced
from recorder.mux.base import TrackSpec, Writer, WriterResult

# Seconds of arrivals to wait for a silent track (a camera waiting for its first keyframe)
# before the archive starts without it.
START_WAIT = 3.0
# Microseconds of media a frame waits for a quiet track before it is written anyway.
INTERLEAVE_WAIT_US = 500_000
# Seconds by which tracks may disagree with their sender reports before one is moved, and
# the largest move believed (beyond it a sender's clock jumped, and its reports are not).
SYNC_TOLERANCE = 0.010
MAX_SYNC_STEP = 5.0


class ArchiveTrack:
    """One input of the archive; `on_frame` is the sink an `InboundStream` feeds."""

    __slots__ = (
        "_archive",
        "base_ts",
        "clock_rate",
        "depacketizer",
        "first_arrival",
        "frames",
        "frames_unordered",
        "held",
        "last_arrival",
        "last_pts",
        "last_us",
        "max_height",
        "max_width",
        "number",
        "offset",
        "queue",
        "rebase_pending",
        "resyncs",
        "sync",
        "us_scale",
    )

    def __init__(self, archive: Archive, depacketizer: Depacketizer) -> None:
        self._archive = archive
        self.depacketizer = depacketizer
        self.clock_rate: int = depacketizer.clock_rate
        # pts * 1_000_000 // clock_rate, on smaller integers: (microseconds, clock) reduced.
        self.us_scale = reduced(1_000_000, self.clock_rate)
        self.number = 0  # track number in the files, assigned when the archive starts
        self.first_arrival: float | None = None
        self.base_ts = 0
        self.offset = 0
        self.held: list[Frame] = []  # frames that arrived before the archive started
        self.queue: deque[tuple[int, int, Frame]] = deque()  # (time us, pts, frame)
        self.last_pts = -1
        self.last_us = -1
        self.frames = 0
        self.frames_unordered = 0
        # (sender wall clock in seconds, RTP timestamp) of the latest sender report.
        self.sync: tuple[float, int] | None = None
        self.resyncs = 0
        self.last_arrival = 0.0
        self.rebase_pending = False
        self.max_width = 0  # largest picture seen (keyframes carry their size)
        self.max_height = 0

    def on_frame(self, frame: Frame, arrival: float) -> None:
        self._archive.on_frame(self, frame, arrival)

    def rebase(self, arrival: float) -> None:
        """A new source replaces the old one (new SSRC, new RTP clock origin): its first frame
        continues the track's timeline by the wall-clock gap since the old source's last."""
        self.sync = None  # the old source's sender reports say nothing of the new one
        if self.number:
            self.rebase_pending = True
        elif self.held:
            # Not started yet: the new source starts the track afresh.
            self.held = []
            self.first_arrival = None

    def on_sender_report(self, sender_time: float, rtp_timestamp: int) -> None:
        """An RTCP SR: `rtp_timestamp` (32-bit) was sampled at `sender_time` (NTP, seconds)."""
        self.sync = (sender_time, rtp_timestamp)
        self._archive.on_sync(self)

    def sender_time(self, timestamp: int) -> float:
        """The sender's wall clock at extended RTP timestamp `timestamp` (needs `sync`)."""
        assert self.sync is not None
        sender_time, rtp_timestamp = self.sync
        # The SR carries 32 bits; the difference is taken modulo 2**32, signed.
        delta = ((timestamp - rtp_timestamp + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        return sender_time + delta / self.clock_rate


@dataclass(slots=True)
class ArchiveResult:
    writers: list[WriterResult]
    tracks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return max((result.duration for result in self.writers), default=0.0)


class Archive:
    def __init__(self, writers: Sequence[Writer], *, start_wait: float = START_WAIT) -> None:
        self._writers = list(writers)
        self._start_wait = start_wait
        self._inputs: list[ArchiveTrack] = []
        self._active: list[ArchiveTrack] = []
        self._started = False
        self._first_arrival: float | None = None
        self._newest_us = 0
        self._result: ArchiveResult | None = None

    @property
    def started(self) -> bool:
        """Whether the writers have their headers (the first decodable media arrived)."""
        return self._started

    @property
    def first_arrival(self) -> float | None:
        """Arrival time of the first frame of any track: the timeline's origin, roughly."""
        return self._first_arrival

    def largest_picture(self) -> tuple[int, int]:
        """The largest video picture seen so far, (0, 0) before any."""
        sizes = [(t.max_width, t.max_height) for t in self._inputs if t.max_width]
        return max(sizes, default=(0, 0))

    @property
    def newest_us(self) -> int:
        """Media time of the newest frame queued, in microseconds on the archive's timeline."""
        return self._newest_us

    def add_track(self, depacketizer: Depacketizer) -> ArchiveTrack:
        if self._started:
            raise RuntimeError("tracks must be added before the archive starts")
        track = ArchiveTrack(self, depacketizer)
        self._inputs.append(track)
        return track

    def on_frame(self, track: ArchiveTrack, frame: Frame, arrival: float) -> None:
        if frame.width:
            track.max_width = max(track.max_width, frame.width)
            track.max_height = max(track.max_height, frame.height)
        if not self._started:
            if track.first_arrival is None:
                track.first_arrival = arrival
                if self._first_arrival is None:
                    self._first_arrival = arrival
            track.held.append(frame)
            inputs = self._inputs
            ready = all(t.first_arrival is not None for t in inputs)
            if ready and any(t.sync for t in inputs) and not all(t.sync for t in inputs):
                # The sender reports its clocks: wait (as long as for a silent track) for
                # every track's report, so the tracks start in line.
                ready = False
            if ready or arrival - self._first_arrival >= self._start_wait:
                self._start()
            return
        if track.number:
            self._queue(track, frame, arrival)
            self._release()

    def close(self) -> ArchiveResult:
        """Write everything held, finalize the writers; raise `NoMediaError` if none came."""
        if self._result is not None:
            return self._result
        if not self._started:
            if not any(track.held for track in self._inputs):
                raise NoMediaError("no decodable media arrived")
            self._start()
        self._release(final=True)
        results = [writer.close() for writer in self._writers]
        self._result = ArchiveResult(
            results,
            [
                {
                    "track": t.number,
                    "frames": t.frames,
                    "unordered_frames": t.frames_unordered,
                    "resyncs": t.resyncs,
                    "kind": t.depacketizer.kind,
                    "codec": t.depacketizer.codec,
                    "width": t.max_width,
                    "height": t.max_height,
                    "first_arrival": t.first_arrival,
                    "last_arrival": t.last_arrival,
                }
                for t in self._active
            ],
        )
        return self._result

    # -- start ------------------------------------------------------------------------------

    def _start(self) -> None:
        self._started = True
        self._active = [t for t in self._inputs if t.held and t.depacketizer.config]
        if not self._active:
            raise NoMediaError("no track produced a decodable frame")
        active = self._active
        if all(t.sync for t in active):
            starts = [t.sender_time(t.held[0].timestamp) for t in active]
        else:
            starts = [t.first_arrival or 0.0 for t in active]
        origin = min(starts)
        specs = []
        for number, (track, start) in enumerate(zip(active, starts, strict=True), 1):
            track.number = number
            track.base_ts = track.held[0].timestamp
            track.offset = round((start - origin) * track.clock_rate)
            config = track.depacketizer.config
            assert config is not None
            specs.append(TrackSpec(number, config, start=track.offset))
        for writer in self._writers:
            writer.start(specs)
        for track in self._active:
            held = track.held
            track.held = []
            for frame in held:
                self._queue(track, frame, track.first_arrival or 0.0)
        self._release()

    def on_sync(self, track: ArchiveTrack) -> None:
        """A new sender report: move a track that has fallen behind the others forward."""
        active = self._active
        if not self._started or len(active) < 2 or not all(t.sync for t in active):
            return
        # Per track: media time minus sender time; equal for all tracks when in line.
        leads = [t.offset / t.clock_rate - t.sender_time(t.base_ts) for t in active]
        target = max(leads)
        if target - min(leads) > MAX_SYNC_STEP:
            return
        for lagging, lead in zip(active, leads, strict=True):
            if target - lead > SYNC_TOLERANCE:
                lagging.offset += round((target - lead) * lagging.clock_rate)
                lagging.resyncs += 1

    # -- interleaving -----------------------------------------------------------------------

    def _queue(self, track: ArchiveTrack, frame: Frame, arrival: float) -> None:
        if track.rebase_pending:
            track.rebase_pending = False
            gap = max(1, round((arrival - track.last_arrival) * track.clock_rate))
            track.base_ts = frame.timestamp
            track.offset = max(track.last_pts, 0) + gap
        track.last_arrival = arrival
        pts = frame.timestamp - track.base_ts + track.offset
        if pts < track.last_pts or pts < 0:
            # Containers need non-decreasing decode times per track; a frame from before
            # the last one (a sender's timestamp jump backwards) cannot be placed.
            track.frames_unordered += 1
            return
        track.last_pts = pts
        scale = track.us_scale
        time_us = pts * scale[0] // scale[1]
        track.last_us = time_us
        track.queue.append((time_us, pts, frame))
        if time_us > self._newest_us:
            self._newest_us = time_us

    def _release(self, final: bool = False) -> None:
        """Hand frames to the writers, earliest first, while no track could still undercut."""
        active = self._active
        writers = self._writers
        if len(active) == 1:
            # No other track to interleave with or wait for: everything queued goes.
            track = active[0]
            queue = track.queue
            number = track.number
            while queue:
                _, pts, frame = queue.popleft()
                track.frames += 1
                for writer in writers:
                    writer.write(number, pts, frame)
            return
        while True:
            best: ArchiveTrack | None = None
            for track in active:
                if track.queue and (best is None or track.queue[0][0] < best.queue[0][0]):
                    best = track
            if best is None:
                return
            head_us = best.queue[0][0]
            if not final:
                for track in active:
                    # An empty track may still send a frame earlier than the head, unless it
                    # is already past it or has been quiet for longer than we wait.
                    if (
                        not track.queue
                        and track.last_us < head_us
                        and self._newest_us - track.last_us < INTERLEAVE_WAIT_US
                    ):
                        return
            _, pts, frame = best.queue.popleft()
            best.frames += 1
            for writer in writers:
                writer.write(best.number, pts, frame)
