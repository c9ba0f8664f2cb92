"""WebM (Matroska, RFC 9559, with the WebM codec subset), written in one pass.

Layout: EBML header, a Segment of unknown size holding a Void reserved for the SeekHead, Info
(TimestampScale 1 ms, Duration 0), Tracks, then Clusters that start at video keyframes and are
at most about a second long. At close: Cues, the SeekHead written into the reserved space,
Duration, the largest picture size and the Segment size patched in place. A file cut anywhere
plays up to its last whole cluster, because an unknown-size Segment is valid Matroska.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import BinaryIO, ClassVar

from recorder import __version__
from recorder.media import CodecConfig, Frame, reduced
from recorder.mux import ebml
from recorder.mux.base import Chunker, TrackSpec, Writer, WriterResult

TIMESTAMP_SCALE_NS = 1_000_000  # block timestamps in milliseconds
# Room for a SeekHead of three Seek entries with 8-byte positions (68 bytes) and a Void.
SEEK_HEAD_RESERVED = 96
# Matroska block timestamps are signed 16-bit offsets from their cluster's timestamp.
MAX_BLOCK_OFFSET = 32767
SIMPLE_BLOCK_KEYFRAME = 0x80
# Opus in Matroska (RFC 9559 / codec mapping): 80 ms of pre-roll after a seek.
OPUS_SEEK_PRE_ROLL_NS = 80_000_000
# Bytes from the end of a video TrackEntry to its 2-byte PixelWidth / PixelHeight data.
PIXEL_WIDTH_FROM_END = 6
PIXEL_HEIGHT_FROM_END = 2

# SimpleBlock after its size: track number (1-byte VINT), relative timestamp, flags.
_BLOCK_HEADER = struct.Struct(">BhB")
# The same with the (1-byte) SimpleBlock id and a 2-byte size in front.
_BLOCK_2 = struct.Struct(">BHBhB")
_SIMPLE_BLOCK_ID = ebml.SIMPLE_BLOCK[0]


class _Track:
    __slots__ = (
        "end_ms",
        "interval_ms",
        "is_video",
        "last_ms",
        "max_height",
        "max_width",
        "ms_scale",
        "number",
        "timescale",
        "us_scale",
    )

    def __init__(self, spec: TrackSpec) -> None:
        self.number = spec.number
        self.timescale = spec.timescale
        # Milliseconds rounded half up, (pts * 1000 + timescale // 2) // timescale, and
        # microseconds, pts * 1_000_000 // timescale, with the terms reduced.
        self.ms_scale = reduced(1000, self.timescale // 2, self.timescale)
        self.us_scale = reduced(1_000_000, self.timescale)
        self.is_video = spec.kind == "video"
        self.max_width = spec.config.width
        self.max_height = spec.config.height
        self.last_ms = -1
        self.interval_ms = 0
        self.end_ms = 0


class WebmWriter(Writer):
    extension = "webm"
    codecs = frozenset({"VP8", "VP9", "AV1", "H264", "OPUS"})
    refusals: ClassVar[dict[str, str]] = {
        "H265": "H.265 can be recorded to MP4 only (WebM defines no H.265 mapping and "
        "browsers do not play one)"
    }

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self._tracks: dict[int, _Track] = {}
        self._has_video = False
        self._chunker = Chunker(False)
        self._position = 0
        self._segment_start = 0
        self._info_position = 0
        self._tracks_position = 0
        self._duration_offset = 0
        self._pixel_offsets: dict[int, int] = {}
        # The open cluster's children: its Timestamp, then each block's header and data.
        self._blocks: list[bytes] = []
        self._cluster_ms = 0
        self._cluster_video = False
        self._cluster_cue: tuple[int, int] | None = None
        # The Cues' CuePoints, each encoded when its cluster is written: ~20 bytes per cluster
        # for the life of the file, and nothing left to build at close.
        self._cue_points = bytearray()
        self._result: WriterResult | None = None

    def start(self, tracks: Sequence[TrackSpec]) -> None:
        self._tracks = {spec.number: _Track(spec) for spec in tracks}
        self._has_video = any(track.is_video for track in self._tracks.values())
        self._chunker = Chunker(self._has_video)
        header = _ebml_header()
        segment_head = ebml.SEGMENT + ebml.UNKNOWN_SIZE_8
        self._segment_start = len(header) + len(segment_head)
        info = ebml.master(
            ebml.INFO,
            [
                ebml.uint(ebml.TIMESTAMP_SCALE, TIMESTAMP_SCALE_NS),
                ebml.string(ebml.MUXING_APP, f"rtp-recorder {__version__}"),
                ebml.string(ebml.WRITING_APP, f"rtp-recorder {__version__}"),
                ebml.float64(ebml.DURATION, 0.0),  # last child: patched at close
            ],
        )
        entries = [_track_entry(spec) for spec in tracks]
        tracks_element = ebml.master(ebml.TRACKS, entries)
        self._info_position = SEEK_HEAD_RESERVED
        self._tracks_position = self._info_position + len(info)
        # Duration is the last 8 bytes of Info; the picture size ends each video TrackEntry.
        self._duration_offset = self._segment_start + self._tracks_position - 8
        entry_end = self._segment_start + self._tracks_position
        entry_end += len(tracks_element) - sum(len(entry) for entry in entries)
        for spec, entry in zip(tracks, entries, strict=True):
            entry_end += len(entry)
            if spec.kind == "video":
                self._pixel_offsets[spec.number] = entry_end
        out = header + segment_head + ebml.void(SEEK_HEAD_RESERVED) + info + tracks_element
        self._file.write(out)
        self._file.flush()
        self._position = len(out)

    def write(self, track: int, pts: int, frame: Frame) -> None:
        state = self._tracks[track]
        if frame.width > state.max_width:
            state.max_width = frame.width
        if frame.height > state.max_height:
            state.max_height = frame.height
        per_ms, half, timescale_ms = state.ms_scale
        ms = (pts * per_ms + half) // timescale_ms
        per_us, timescale_us = state.us_scale
        time_us = pts * per_us // timescale_us
        is_video = state.is_video
        keyframe = frame.keyframe
        cut = self._chunker.cut_before(is_video, keyframe, time_us)
        if not self._blocks:
            self._open_cluster(ms)
        else:
            if not cut and not -MAX_BLOCK_OFFSET <= ms - self._cluster_ms <= MAX_BLOCK_OFFSET:
                self._chunker.restart(is_video, time_us)
                cut = True
            if cut:
                self._write_cluster()
                self._open_cluster(ms)
        if is_video and not self._cluster_video:
            self._cluster_video = True
            if keyframe:
                # Cues point at the cluster holding each keyframe that starts a GOP.
                self._cluster_cue = (ms, track)
        data = frame.data
        size = len(data) + 4
        relative = ms - self._cluster_ms
        flags = SIMPLE_BLOCK_KEYFRAME if keyframe else 0
        number = 0x80 | track  # the track number as a 1-byte VINT: tracks 1-126
        blocks = self._blocks
        if ebml.VINT_2_MIN <= size <= ebml.VINT_2_MAX:
            # Most frames: the SimpleBlock's size is a 2-byte VINT, all packed at once.
            blocks.append(_BLOCK_2.pack(_SIMPLE_BLOCK_ID, 0x4000 | size, number, relative, flags))
        else:
            header = _BLOCK_HEADER.pack(number, relative, flags)
            blocks.append(ebml.SIMPLE_BLOCK + ebml.vint(size) + header)
        blocks.append(data)
        if state.last_ms >= 0:
            state.interval_ms = ms - state.last_ms
        state.last_ms = ms
        duration = frame.duration
        if duration:
            state.end_ms = ms + (duration * per_ms + half) // timescale_ms

    def close(self) -> WriterResult:
        if self._result is not None:
            return self._result
        if self._blocks:
            self._write_cluster()
        cues_position = self._position - self._segment_start
        cues = self._cues_element()
        self._file.write(cues)
        self._position += len(cues)
        duration_ms = self._duration_ms()
        self._patch(self._seek_head(cues_position), duration_ms)
        self._file.flush()
        self._result = WriterResult(duration_ms / 1000, self._position)
        return self._result

    # -- clusters ---------------------------------------------------------------------------

    def _open_cluster(self, ms: int) -> None:
        self._cluster_ms = ms
        self._cluster_video = False
        # Without video every cluster is a random access point; with video, see `write`.
        self._cluster_cue = None if self._has_video else (ms, min(self._tracks))
        # The cluster's timestamp is its first child; blocks follow as frames arrive.
        self._blocks = [ebml.uint(ebml.TIMESTAMP, ms)]

    def _write_cluster(self) -> None:
        position = self._position - self._segment_start
        if self._cluster_cue is not None:
            self._cue_points += _cue_point(*self._cluster_cue, position)
        blocks = self._blocks
        # Joined once here: growing one buffer frame by frame copies it over and over.
        out = b"".join([ebml.CLUSTER, ebml.vint(sum(map(len, blocks))), *blocks])
        self._file.write(out)
        self._file.flush()
        self._position += len(out)
        self._blocks = []

    # -- finalize ---------------------------------------------------------------------------

    def _duration_ms(self) -> int:
        """End of the last frame: its own duration (audio) or the previous frame interval."""
        return max(
            (
                max(track.end_ms, track.last_ms + track.interval_ms)
                for track in self._tracks.values()
            ),
            default=0,
        )

    def _cues_element(self) -> bytes:
        return ebml.element(ebml.CUES, bytes(self._cue_points))

    def _seek_head(self, cues_position: int) -> bytes:
        seeks = [
            ebml.master(
                ebml.SEEK,
                [ebml.element(ebml.SEEK_ID, element_id), ebml.uint(ebml.SEEK_POSITION, position)],
            )
            for element_id, position in (
                (ebml.INFO, self._info_position),
                (ebml.TRACKS, self._tracks_position),
                (ebml.CUES, cues_position),
            )
        ]
        seek_head = ebml.master(ebml.SEEK_HEAD, seeks)
        return seek_head + ebml.void(SEEK_HEAD_RESERVED - len(seek_head))

    def _patch(self, seek_head: bytes, duration_ms: int) -> None:
        patches = [
            (self._segment_start, seek_head),
            (self._duration_offset, struct.pack(">d", float(duration_ms))),
            (self._segment_start - 8, ebml.vint8(self._position - self._segment_start)),
        ]
        for number, end in self._pixel_offsets.items():
            track = self._tracks[number]
            patches.append((end - PIXEL_WIDTH_FROM_END, track.max_width.to_bytes(2, "big")))
            patches.append((end - PIXEL_HEIGHT_FROM_END, track.max_height.to_bytes(2, "big")))
        for offset, data in patches:
            self._file.seek(offset)
            self._file.write(data)
        self._file.seek(0, 2)


def _cue_point(time_ms: int, track: int, cluster_position: int) -> bytes:
    return ebml.master(
        ebml.CUE_POINT,
        [
            ebml.uint(ebml.CUE_TIME, time_ms),
            ebml.master(
                ebml.CUE_TRACK_POSITIONS,
                [
                    ebml.uint(ebml.CUE_TRACK, track),
                    ebml.uint(ebml.CUE_CLUSTER_POSITION, cluster_position),
                ],
            ),
        ],
    )


def _ebml_header() -> bytes:
    return ebml.master(
        ebml.EBML,
        [
            ebml.uint(ebml.EBML_VERSION, 1),
            ebml.uint(ebml.EBML_READ_VERSION, 1),
            ebml.uint(ebml.EBML_MAX_ID_LENGTH, 4),
            ebml.uint(ebml.EBML_MAX_SIZE_LENGTH, 8),
            ebml.string(ebml.DOC_TYPE, "webm"),
            ebml.uint(ebml.DOC_TYPE_VERSION, 4),
            ebml.uint(ebml.DOC_TYPE_READ_VERSION, 2),
        ],
    )


def _track_entry(spec: TrackSpec) -> bytes:
    config = spec.config
    children = [
        ebml.uint(ebml.TRACK_NUMBER, spec.number),
        ebml.uint(ebml.TRACK_UID, spec.number),
        ebml.uint(ebml.FLAG_LACING, 0),
        *CODEC_ELEMENTS[config.codec](config),
    ]
    if spec.kind == "video":
        # Last child, with fixed-width values last in it: patched to the largest size seen.
        children.append(
            ebml.master(
                ebml.VIDEO,
                [
                    ebml.uint(ebml.PIXEL_WIDTH, config.width, width=2),
                    ebml.uint(ebml.PIXEL_HEIGHT, config.height, width=2),
                ],
            )
        )
    else:
        children.append(
            ebml.master(
                ebml.AUDIO,
                [
                    ebml.float64(ebml.SAMPLING_FREQUENCY, float(config.sample_rate)),
                    ebml.uint(ebml.CHANNELS, config.channels),
                ],
            )
        )
    return ebml.master(ebml.TRACK_ENTRY, children)


def _vp8(config: CodecConfig) -> list[bytes]:
    return [ebml.uint(ebml.TRACK_TYPE, ebml.TRACK_TYPE_VIDEO), ebml.string(ebml.CODEC_ID, "V_VP8")]


def _vp9(config: CodecConfig) -> list[bytes]:
    # Matroska codec mapping, V_VP9: optional "VP9 Codec Feature Metadata" as ID/length/value
    # triples (1 profile, 2 level, 3 bit depth, 4 chroma subsampling); level 0 means unknown.
    features = [(1, config.profile), (3, config.bit_depth), (4, config.chroma_subsampling)]
    if config.level:
        features.insert(1, (2, config.level))
    private = b"".join(bytes((feature, 1, value)) for feature, value in features)
    return [
        ebml.uint(ebml.TRACK_TYPE, ebml.TRACK_TYPE_VIDEO),
        ebml.string(ebml.CODEC_ID, "V_VP9"),
        ebml.element(ebml.CODEC_PRIVATE, private),
    ]


def _with_record(codec_id: str) -> Callable[[CodecConfig], list[bytes]]:
    """H.264 (avcC) and AV1 (av1C): the configuration record is the CodecPrivate."""

    def elements(config: CodecConfig) -> list[bytes]:
        return [
            ebml.uint(ebml.TRACK_TYPE, ebml.TRACK_TYPE_VIDEO),
            ebml.string(ebml.CODEC_ID, codec_id),
            ebml.element(ebml.CODEC_PRIVATE, config.record),
        ]

    return elements


def _opus(config: CodecConfig) -> list[bytes]:
    return [
        ebml.uint(ebml.TRACK_TYPE, ebml.TRACK_TYPE_AUDIO),
        ebml.string(ebml.CODEC_ID, "A_OPUS"),
        ebml.element(ebml.CODEC_PRIVATE, opus_head(config)),
        ebml.uint(ebml.CODEC_DELAY, config.pre_skip * 1_000_000_000 // config.sample_rate),
        ebml.uint(ebml.SEEK_PRE_ROLL, OPUS_SEEK_PRE_ROLL_NS),
    ]


def opus_head(config: CodecConfig) -> bytes:
    """RFC 7845 section 5.1 identification header (little-endian, mapping family 0)."""
    return b"OpusHead" + struct.pack(
        "<BBHIhB", 1, config.channels, config.pre_skip, config.sample_rate, 0, 0
    )


CODEC_ELEMENTS: dict[str, Callable[[CodecConfig], list[bytes]]] = {
    "VP8": _vp8,
    "VP9": _vp9,
    "AV1": _with_record("V_AV1"),
    "H264": _with_record("V_MPEG4/ISO/AVC"),
    "OPUS": _opus,
}
