"""Fragmented MP4 (ISO/IEC 14496-12), written in one pass.

Layout: `ftyp`, `moov` (with `mvex`, durations zero), then `moof`+`mdat` fragments that start
at video keyframes and are at most about a second long, then at close an `mfra` index.
`close` patches the durations and the largest picture size into `moov` in place, so the file
plays and seeks with no rewrite; a file cut anywhere plays up to its last whole fragment.

Samples get their duration from the next sample of the same track, so each track holds back
one frame (`pending`) until the next arrives.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import BinaryIO

from recorder.media import CodecConfig, Frame, reduced
from recorder.mux.base import Chunker, TrackSpec, Writer, WriterResult
from recorder.mux.bmff import IDENTITY_MATRIX, Box, full_box

MOVIE_TIMESCALE = 1000
# ISO 14496-12 8.8.3.1 sample flags: sample_depends_on = 2 (an I-picture) for sync samples;
# depends_on = 1 and sample_is_non_sync_sample = 1 for the others.
SYNC_SAMPLE = 0x02000000
NON_SYNC_SAMPLE = 0x01010000
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
TRUN_DATA_OFFSET = 0x000001
TRUN_SAMPLE_DURATION = 0x000100
TRUN_SAMPLE_SIZE = 0x000200
TRUN_SAMPLE_FLAGS = 0x000400
TRUN_FLAGS = TRUN_DATA_OFFSET | TRUN_SAMPLE_DURATION | TRUN_SAMPLE_SIZE | TRUN_SAMPLE_FLAGS
# tfra: 4-byte traf, trun and sample numbers (length_size_of_* = 3).
TFRA_LENGTH_SIZES = 0x3F
# ISO 639-2 "und" packed as three 5-bit letters (mdhd).
LANGUAGE_UND = 0x55C4
# Duration given to a last video frame when the stream never told us a frame interval.
FALLBACK_VIDEO_FPS = 30

# Offsets of patched fields from the start of their box (all version 1 boxes).
MVHD_DURATION = 32
TKHD_DURATION = 36
TKHD_WIDTH = 96
MDHD_DURATION = 32
MEHD_DURATION = 12
ELST_FIRST_ENTRY = 16
ELST_ENTRY_SIZE = 20
VISUAL_ENTRY_WIDTH = 32

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_BOX_HEADER = struct.Struct(">I4s")
_MOOF_HEAD = struct.Struct(">I4sI4sII")  # moof header + whole mfhd
_TRAF_HEAD = struct.Struct(">I4sI4sII I4sIQ I4sIII")  # traf + tfhd + tfdt + trun head
_TFRA_ENTRY = struct.Struct(">QQIII")


class _Track:
    __slots__ = (
        "config",
        "durations",
        "elst",
        "end",
        "entry",
        "first_dts",
        "flags",
        "fragment_dts",
        "is_video",
        "last_duration",
        "max_height",
        "max_width",
        "mdhd",
        "number",
        "payloads",
        "pending",
        "random_access",
        "random_access_count",
        "sizes",
        "spec",
        "timescale",
        "tkhd",
        "us_scale",
    )

    def __init__(self, spec: TrackSpec) -> None:
        self.spec = spec
        self.number = spec.number
        self.config = spec.config
        self.timescale = spec.timescale
        self.us_scale = reduced(1_000_000, self.timescale)  # pts -> microseconds
        self.is_video = spec.kind == "video"
        self.pending: tuple[int, Frame] | None = None
        self.sizes: list[int] = []
        self.durations: list[int] = []
        self.flags: list[int] = []
        self.payloads: list[bytes] = []
        self.fragment_dts = 0
        self.first_dts: int | None = None
        self.end = 0
        self.last_duration = 0
        self.max_width = spec.config.width
        self.max_height = spec.config.height
        # (time, moof offset, traf number, sample number) of each random access point.
        # tfra entries, packed as each fragment is written: ~28 bytes per random access point
        # for the life of the file instead of a tuple of four ints.
        self.random_access = bytearray()
        self.random_access_count = 0
        self.tkhd: Box | None = None
        self.mdhd: Box | None = None
        self.elst: Box | None = None
        self.entry: Box | None = None

    def add_sample(self, pts: int, frame: Frame, duration: int) -> None:
        if not self.sizes:
            self.fragment_dts = pts
        if self.first_dts is None:
            self.first_dts = pts
        self.sizes.append(len(frame.data))
        self.durations.append(duration)
        self.flags.append(SYNC_SAMPLE if frame.keyframe else NON_SYNC_SAMPLE)
        self.payloads.append(frame.data)
        self.end = pts + duration
        self.last_duration = duration


class Mp4Writer(Writer):
    extension = "mp4"
    codecs = frozenset({"VP8", "VP9", "AV1", "H264", "H265", "OPUS"})

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self._tracks: dict[int, _Track] = {}
        self._ordered: list[_Track] = []
        self._position = 0
        self._sequence = 0
        self._chunker = Chunker(False)
        self._buffered = 0
        self._boxes: dict[bytes, Box] = {}
        self._result: WriterResult | None = None

    def start(self, tracks: Sequence[TrackSpec]) -> None:
        self._ordered = [_Track(spec) for spec in tracks]
        self._tracks = {track.number: track for track in self._ordered}
        self._chunker = Chunker(any(track.is_video for track in self._ordered))
        brands = b"iso6isommp41"
        if any(track.config.codec == "AV1" for track in self._ordered):
            brands += b"av01"  # AV1 ISOBMFF binding 2.1: files with av01 tracks list it
        ftyp = Box(b"ftyp", b"iso6" + _U32.pack(0) + brands)
        moov = self._moov()
        out = bytearray()
        ftyp.serialize(out)
        moov.serialize(out)
        self._boxes = {b"mvhd": moov.find(b"mvhd"), b"mehd": moov.find(b"mehd")}
        self._file.write(out)
        self._file.flush()
        self._position = len(out)

    def write(self, track: int, pts: int, frame: Frame) -> None:
        state = self._tracks[track]
        if frame.width > state.max_width:
            state.max_width = frame.width
        if frame.height > state.max_height:
            state.max_height = frame.height
        pending = state.pending
        if pending is not None:
            state.add_sample(pending[0], pending[1], pts - pending[0])
            self._buffered += 1
        scale = state.us_scale
        time_us = pts * scale[0] // scale[1]
        # The frame that opens a fragment is still pending, so it will be the fragment's first.
        if self._chunker.cut_before(state.is_video, frame.keyframe, time_us) and self._buffered:
            self._write_fragment()
        state.pending = (pts, frame)

    def close(self) -> WriterResult:
        if self._result is not None:
            return self._result
        for state in self._ordered:
            if state.pending is not None:
                pts, frame = state.pending
                state.pending = None
                state.add_sample(pts, frame, self._last_duration(state, frame))
                self._buffered += 1
        if self._buffered:
            self._write_fragment()
        if self._ordered:
            self._write_mfra()
            duration = self._patch_header()
        else:
            duration = 0.0
        self._file.flush()
        self._result = WriterResult(duration, self._position)
        return self._result

    # -- fragments --------------------------------------------------------------------------

    def _write_fragment(self) -> None:
        self._sequence += 1
        moof_offset = self._position
        trafs = [track for track in self._ordered if track.sizes]
        traf_sizes = [8 + 16 + 20 + 20 + 12 * len(track.sizes) for track in trafs]
        moof_size = 8 + 16 + sum(traf_sizes)
        # Written as a 'free' box and turned into a 'moof' once the whole fragment is out (see
        # `_commit`): a file cut inside a fragment then ends in boxes players skip.
        out = bytearray(_MOOF_HEAD.pack(moof_size, b"free", 16, b"mfhd", 0, self._sequence))
        data_offset = moof_size + 8
        for traf_number, (track, traf_size) in enumerate(zip(trafs, traf_sizes, strict=True), 1):
            count = len(track.sizes)
            out += _TRAF_HEAD.pack(
                traf_size, b"traf",
                16, b"tfhd", TFHD_DEFAULT_BASE_IS_MOOF, track.number,
                20, b"tfdt", 1 << 24, track.fragment_dts,
                20 + 12 * count, b"trun", TRUN_FLAGS, count, data_offset,
            )  # fmt: skip
            entries: list[int] = []
            for entry in zip(track.durations, track.sizes, track.flags, strict=True):
                entries.extend(entry)
            out += struct.pack(f">{3 * count}I", *entries)
            self._note_random_access(track, moof_offset, traf_number)
            data_offset += sum(track.sizes)
        mdat_size = data_offset - moof_size
        out += _BOX_HEADER.pack(mdat_size, b"mdat")
        # The samples are copied once, into the joined fragment.
        parts = [out]
        for track in trafs:
            parts += track.payloads
            track.sizes = []
            track.durations = []
            track.flags = []
            track.payloads = []
        fragment = b"".join(parts)
        self._file.write(fragment)
        self._file.flush()
        self._position += len(fragment)
        self._buffered = 0
        self._commit(moof_offset)

    def _commit(self, moof_offset: int) -> None:
        """Make a fully written fragment visible by renaming its 'free' box to 'moof'.

        FFmpeg's demuxer parses every top-level moof when it opens a seekable file without a
        complete mfra, and a moof cut short (a crash, a full disk) makes it refuse the whole
        file. A cut 'free' box is skipped instead. The four bytes land in one page, so the
        rename itself cannot be torn.
        """
        self._file.seek(moof_offset + 4)
        self._file.write(b"moof")
        self._file.flush()
        self._file.seek(self._position)

    def _note_random_access(self, track: _Track, moof_offset: int, traf_number: int) -> None:
        if not track.is_video:
            # Every audio sample is a sync sample: one entry per fragment is enough to seek.
            track.random_access += _TFRA_ENTRY.pack(
                track.fragment_dts, moof_offset, traf_number, 1, 1
            )
            track.random_access_count += 1
            return
        dts = track.fragment_dts
        for number, (flags, duration) in enumerate(
            zip(track.flags, track.durations, strict=True), 1
        ):
            if flags == SYNC_SAMPLE:
                track.random_access += _TFRA_ENTRY.pack(dts, moof_offset, traf_number, 1, number)
                track.random_access_count += 1
            dts += duration

    def _write_mfra(self) -> None:
        tfras = []
        for track in self._ordered:
            body = struct.pack(">III", track.number, TFRA_LENGTH_SIZES, track.random_access_count)
            tfras.append(full_box(b"tfra", 1, 0, body + bytes(track.random_access)))
        mfra_size = 8 + sum(tfra.size for tfra in tfras) + 16
        mfra = Box(b"mfra", children=[*tfras, full_box(b"mfro", 0, 0, _U32.pack(mfra_size))])
        out = bytearray()
        mfra.serialize(out)
        self._file.write(out)
        self._position += len(out)

    @staticmethod
    def _last_duration(track: _Track, frame: Frame) -> int:
        if frame.duration:
            return frame.duration
        if track.last_duration:
            return track.last_duration
        return track.timescale // FALLBACK_VIDEO_FPS if track.is_video else 0

    # -- header -----------------------------------------------------------------------------

    def _moov(self) -> Box:
        next_track_id = max((track.number for track in self._ordered), default=0) + 1
        mvhd = full_box(
            b"mvhd", 1, 0,
            struct.pack(">QQIQ", 0, 0, MOVIE_TIMESCALE, 0)
            + struct.pack(">IH10x", 0x10000, 0x0100)
            + IDENTITY_MATRIX
            + bytes(24)
            + _U32.pack(next_track_id),
        )  # fmt: skip
        traks = [self._trak(track) for track in self._ordered]
        mvex = Box(
            b"mvex",
            children=[
                full_box(b"mehd", 1, 0, _U64.pack(0)),
                *(
                    full_box(b"trex", 0, 0, struct.pack(">5I", track.number, 1, 0, 0, 0))
                    for track in self._ordered
                ),
            ],
        )
        return Box(b"moov", children=[mvhd, mvex, *traks])

    def _trak(self, track: _Track) -> Box:
        config = track.config
        video = track.is_video
        tkhd = full_box(
            b"tkhd", 1, 0x3,  # track_enabled | track_in_movie
            struct.pack(">QQIIQ8x", 0, 0, track.number, 0, 0)
            + struct.pack(">hhH2x", 0, 0, 0 if video else 0x0100)
            + IDENTITY_MATRIX
            + struct.pack(">II", config.width << 16, config.height << 16),
        )  # fmt: skip
        mdhd = full_box(
            b"mdhd", 1, 0, struct.pack(">QQIQHH", 0, 0, track.timescale, 0, LANGUAGE_UND, 0)
        )
        handler, name = (b"vide", b"VideoHandler\0") if video else (b"soun", b"SoundHandler\0")
        hdlr = full_box(b"hdlr", 0, 0, _U32.pack(0) + handler + bytes(12) + name)
        media_header = (
            full_box(b"vmhd", 0, 1, bytes(8)) if video else full_box(b"smhd", 0, 0, bytes(4))
        )
        dinf = Box(
            b"dinf",
            children=[full_box(b"dref", 0, 0, _U32.pack(1), [full_box(b"url ", 0, 1)])],
        )
        entry = SAMPLE_ENTRIES[config.codec](config)
        stbl = Box(
            b"stbl",
            children=[
                full_box(b"stsd", 0, 0, _U32.pack(1), [entry]),
                full_box(b"stts", 0, 0, _U32.pack(0)),
                full_box(b"stsc", 0, 0, _U32.pack(0)),
                full_box(b"stsz", 0, 0, _U32.pack(0) + _U32.pack(0)),
                full_box(b"stco", 0, 0, _U32.pack(0)),
            ],
        )
        minf = Box(b"minf", children=[media_header, dinf, stbl])
        mdia = Box(b"mdia", children=[mdhd, hdlr, minf])
        children = [tkhd]
        if config.pre_skip:
            elst = self._edit_list(track.spec)
            children.append(Box(b"edts", children=[elst]))
            track.elst = elst
        children.append(mdia)
        track.tkhd = tkhd
        track.mdhd = mdhd
        track.entry = entry if video else None
        return Box(b"trak", children=children)

    def _patch_header(self) -> float:
        """Write durations, edit lists and the largest picture size into `moov` in place."""
        movie_end = 0
        patches: list[tuple[int, bytes]] = []
        for track in self._ordered:
            first = track.first_dts or 0
            end_ms = -(-track.end * MOVIE_TIMESCALE // track.timescale)
            movie_end = max(movie_end, end_ms)
            assert track.tkhd and track.mdhd
            patches.append((track.tkhd.offset + TKHD_DURATION, _U64.pack(end_ms)))
            patches.append((track.mdhd.offset + MDHD_DURATION, _U64.pack(track.end)))
            if track.elst is not None:
                # The media edit is the last entry; it lasts from its media_time to the end.
                media_ms = (track.end - first - track.config.pre_skip) * MOVIE_TIMESCALE
                entry_count = (track.elst.size - ELST_FIRST_ENTRY) // ELST_ENTRY_SIZE
                patches.append(
                    (
                        track.elst.offset + ELST_FIRST_ENTRY + ELST_ENTRY_SIZE * (entry_count - 1),
                        _U64.pack(max(0, media_ms // track.timescale)),
                    )
                )
            if track.entry is not None:
                patches.append(
                    (
                        track.tkhd.offset + TKHD_WIDTH,
                        struct.pack(">II", track.max_width << 16, track.max_height << 16),
                    )
                )
                patches.append(
                    (
                        track.entry.offset + VISUAL_ENTRY_WIDTH,
                        struct.pack(">HH", track.max_width, track.max_height),
                    )
                )
        patches.append((self._boxes[b"mvhd"].offset + MVHD_DURATION, _U64.pack(movie_end)))
        patches.append((self._boxes[b"mehd"].offset + MEHD_DURATION, _U64.pack(movie_end)))
        for offset, data in patches:
            self._file.seek(offset)
            self._file.write(data)
        self._file.seek(0, 2)
        return movie_end / MOVIE_TIMESCALE

    @staticmethod
    def _edit_list(spec: TrackSpec) -> Box:
        """ISO 14496-12 8.6.6: trim the decoder's pre-skip, keep the track's start time.

        Opus-in-ISOBMFF section 4.4 asks for the pre-skip to be trimmed by an edit whose
        media_time points pre_skip samples into the first sample. A track that starts after the
        file does gets an empty edit first, so trimming does not pull it earlier in time.
        Durations are filled in at close.
        """
        empty_ms = spec.start * MOVIE_TIMESCALE // spec.timescale
        entries = [(0, spec.start + spec.config.pre_skip)]
        if empty_ms:
            entries.insert(0, (empty_ms, -1))
        body = _U32.pack(len(entries)) + b"".join(
            struct.pack(">QqHH", duration, media_time, 1, 0) for duration, media_time in entries
        )
        return full_box(b"elst", 1, 0, body)


def _vp08(config: CodecConfig) -> Box:
    return _visual_entry(b"vp08", config, [_vpcc(config)])


def _vp09(config: CodecConfig) -> Box:
    return _visual_entry(b"vp09", config, [_vpcc(config)])


def _vpcc(config: CodecConfig) -> Box:
    # VP Codec ISO Media File Format Binding, section 2.2: vpcC version 1.
    return full_box(
        b"vpcC", 1, 0,
        struct.pack(
            ">BBBBBBH",
            config.profile,
            config.level,
            config.bit_depth << 4 | config.chroma_subsampling << 1 | int(config.full_range),
            2, 2, 2,  # colour primaries, transfer, matrix: unspecified
            0,  # codecInitializationDataSize: must be 0 for VP8 and VP9
        ),
    )  # fmt: skip


# H.264 and H.265 use the sample entries that allow parameter sets in the samples (ISO/IEC
# 14496-15 5.4.2.1 and 8.4.1.1): WebRTC senders change resolution mid-stream with new SPS/PPS at
# a keyframe, and the depacketizer puts the parameter sets in every keyframe, so one sample
# entry describes the whole track and each keyframe decodes on its own.
def _avc3(config: CodecConfig) -> Box:
    return _visual_entry(b"avc3", config, [Box(b"avcC", config.record)])


def _hev1(config: CodecConfig) -> Box:
    return _visual_entry(b"hev1", config, [Box(b"hvcC", config.record)])


def _av01(config: CodecConfig) -> Box:
    # AV1 Codec ISO Media File Format Binding 2.3: av1C with the sequence header as configOBUs.
    return _visual_entry(b"av01", config, [Box(b"av1C", config.record)])


def _visual_entry(fourcc: bytes, config: CodecConfig, children: list[Box]) -> Box:
    body = (
        bytes(6)
        + struct.pack(">H", 1)  # data_reference_index
        + bytes(16)
        + struct.pack(">HH", config.width, config.height)
        + struct.pack(">II", 0x00480000, 0x00480000)  # 72 dpi
        + bytes(4)
        + struct.pack(">H", 1)  # frame_count
        + bytes(32)  # compressorname
        + struct.pack(">Hh", 0x0018, -1)
    )
    return Box(fourcc, body, children)


def _opus(config: CodecConfig) -> Box:
    # Encapsulation of Opus in ISO BMFF, section 4.3: dOps is big-endian, unlike OpusHead.
    dops = Box(
        b"dOps",
        struct.pack(">BBHIhB", 0, config.channels, config.pre_skip, config.sample_rate, 0, 0),
    )
    body = (
        bytes(6)
        + struct.pack(">H", 1)  # data_reference_index
        + bytes(8)
        + struct.pack(">HH", config.channels, 16)
        + bytes(4)
        + _U32.pack(config.clock_rate << 16)
    )
    return Box(b"Opus", body, [dops])


SAMPLE_ENTRIES: dict[str, Callable[[CodecConfig], Box]] = {
    "VP8": _vp08,
    "VP9": _vp09,
    "AV1": _av01,
    "H264": _avc3,
    "H265": _hev1,
    "OPUS": _opus,
}
