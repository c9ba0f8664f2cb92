"""Request and response bodies of the /v1 API, and their conversion to the lifecycle's specs.

Validation here is the HTTP edge's share: types (strict, so `"96"` is not a payload type and
`1` is not `true`), bounds, sizes and the rules that need only the body itself. Everything that
needs the recorder's knowledge (which codecs it records, which ids are safe as file names, the
configured maximum expire_time) is the manager's, which answers with a `LifecycleError`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from recorder.lifecycle import ConnectionSpec, MediaSpec, RecordingSpec

MAX_ID_LENGTH = 255
MAX_CONNECTIONS = 100
MAX_FMTP_PARAMETERS = 32
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 32
MAX_SPLIT_DURATION = 86400
# The configured max_expire_time is the real bound (checked by the manager); this one only keeps
# absurd integers (Python's are unbounded) away from timestamps and SQLite's 64-bit columns.
MAX_EXPIRE_TIME = 2**31 - 1

RECORDING_STATES = ("running", "stopping", "stopped", "failed", "recovered")
CONNECTION_STATES = ("recording", "ended", "failed", "blocked")


def _encodable(value: str) -> str:
    # json.loads accepts lone surrogates ("\ud800"); they cannot be written as UTF-8, so they
    # would fail later when the value is stored or sent back, as a 500 instead of a 400.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _text(min_length: int, max_length: int) -> Any:
    return Annotated[
        str,
        StringConstraints(min_length=min_length, max_length=max_length),
        AfterValidator(_encodable),
    ]


Id = _text(1, MAX_ID_LENGTH)
Codec = _text(1, 32)
FmtpKey = _text(1, 64)
FmtpValue = _text(0, 1024)


def _bounded_json(value: Any) -> Any:
    """Refuse metadata that is too deep or too large to store and send back in every response."""
    # Iterative, so a deep document cannot exhaust the interpreter's stack here.
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(f"must not be nested deeper than {MAX_METADATA_DEPTH} levels")
        if isinstance(item, dict):
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
    try:
        # json.loads accepts NaN and Infinity (also from 1e999), which no JSON response can carry.
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError("must be plain JSON (no NaN, Infinity or lone surrogates)") from None
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON, not {size}")
    return value


class _Body(BaseModel):
    # Strict: JSON types are taken as sent. Unknown fields are refused, so a misspelt
    # `split_duraton` is an error rather than a silently unsplit recording.
    model_config = ConfigDict(extra="forbid", strict=True)


class Srtp(_Body):
    """SDES keying (RFC 4568) for one medium: the crypto suite and the inline key."""

    suite: Annotated[
        _text(1, 64),
        Field(
            description="SRTP crypto suite as in SDP `a=crypto`",
            examples=["AES_CM_128_HMAC_SHA1_80"],
        ),
    ]
    key: Annotated[
        _text(1, 256),
        Field(
            description="Base64 of master key followed by master salt (the `inline:` value)",
            examples=["WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"],
        ),
    ]


class Media(_Body):
    """One medium (audio or video) of a connection, as the SFU forwards it."""

    codec: Annotated[
        Codec,
        Field(
            description="VP8, VP9, AV1, H264 or H265 for video; OPUS for audio (any case)",
            examples=["VP8", "OPUS"],
        ),
    ]
    payload_type: Annotated[
        int, Field(ge=0, le=127, description="RTP payload type (dynamic: 96-127)", examples=[96])
    ]
    ssrc: Annotated[
        int | None,
        Field(
            ge=0, le=2**32 - 1, description="Expected SSRC; any when absent", examples=[12345678]
        ),
    ] = None
    clock_rate: Annotated[
        int | None,
        Field(
            ge=1,
            le=1_000_000,
            description="RTP clock rate in Hz; 48000 for audio and 90000 for video when absent",
            examples=[90000],
        ),
    ] = None
    channels: Annotated[
        int | None,
        Field(ge=1, le=8, description="Audio channels (Opus: 2 when absent)", examples=[2]),
    ] = None
    fmtp: Annotated[
        dict[FmtpKey, FmtpValue],
        Field(
            max_length=MAX_FMTP_PARAMETERS,
            description="Format parameters as in SDP `a=fmtp`",
            examples=[{"packetization-mode": "1", "profile-level-id": "42e01f"}],
        ),
    ] = Field(default_factory=dict)
    srtp: Annotated[Srtp | None, Field(description="SRTP keys; plain RTP when absent")] = None

    def to_spec(self) -> MediaSpec:
        return MediaSpec(
            codec=self.codec,
            payload_type=self.payload_type,
            ssrc=self.ssrc,
            clock_rate=self.clock_rate,
            channels=self.channels,
            fmtp=dict(self.fmtp),
            srtp_suite=None if self.srtp is None else self.srtp.suite,
            srtp_key=None if self.srtp is None else self.srtp.key,
        )


class Connection(_Body):
    """A participant whose media is recorded into its own archive."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "connection_id": "conn-1",
                    "client_id": "alice",
                    "audio": {"codec": "OPUS", "payload_type": 111},
                    "video": {"codec": "VP8", "payload_type": 96},
                }
            ]
        }
    )

    connection_id: Annotated[
        Id,
        Field(
            description="Unique within the recording; part of the archive's file names",
            examples=["conn-1"],
        ),
    ]
    client_id: Annotated[
        Id | None, Field(description="The SFU's client id, copied to metadata")
    ] = None
    bundle_id: Annotated[
        Id | None, Field(description="The SFU's bundle id, copied to metadata")
    ] = None
    recording_block: Annotated[
        bool, Field(description="Track and list the connection but write no files")
    ] = False
    audio: Annotated[Media | None, Field(description="The connection's audio")] = None
    video: Annotated[Media | None, Field(description="The connection's video")] = None

    @model_validator(mode="after")
    def _has_media(self) -> Connection:
        if self.audio is None and self.video is None and not self.recording_block:
            raise ValueError("a connection needs audio or video unless recording_block is true")
        return self

    def to_spec(self) -> ConnectionSpec:
        return ConnectionSpec(
            connection_id=self.connection_id,
            client_id=self.client_id,
            bundle_id=self.bundle_id,
            recording_block=self.recording_block,
            audio=None if self.audio is None else self.audio.to_spec(),
            video=None if self.video is None else self.video.to_spec(),
        )


class NewRecording(_Body):
    """A recording of one channel (and optionally session) of the SFU."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "channel_id": "room-42",
                    "format": "webm",
                    "split_duration": 3600,
                    "expire_time": 7200,
                    "recording_metadata": {"title": "weekly sync"},
                    "connections": [
                        {
                            "connection_id": "conn-1",
                            "audio": {"codec": "OPUS", "payload_type": 111},
                            "video": {"codec": "VP8", "payload_type": 96},
                        }
                    ],
                }
            ]
        }
    )

    channel_id: Annotated[Id, Field(description="The SFU's channel", examples=["room-42"])]
    session_id: Annotated[
        Id | None,
        Field(description="The SFU's session within the channel", examples=["session-7"]),
    ] = None
    format: Annotated[
        Literal["webm", "mp4"] | None,
        Field(description="Container; the configured default (webm) when absent"),
    ] = None
    split_duration: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_SPLIT_DURATION,
            description="Also cut the recording into pieces of this many seconds (at the first "
            "keyframe after the boundary)",
            examples=[3600],
        ),
    ] = None
    split_only: Annotated[
        bool, Field(description="Write only the split pieces; needs split_duration")
    ] = False
    expire_time: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_EXPIRE_TIME,
            description="Stop after this many seconds; at most, and by default, the configured "
            "max_expire_time",
            examples=[7200],
        ),
    ] = None
    recording_metadata: Annotated[
        Any,
        AfterValidator(_bounded_json),
        Field(
            description=f"Any JSON, copied into every metadata file and report "
            f"(at most {MAX_METADATA_BYTES} bytes, {MAX_METADATA_DEPTH} levels deep)",
            examples=[{"title": "weekly sync"}],
        ),
    ] = None
    connections: Annotated[
        list[Connection],
        Field(max_length=MAX_CONNECTIONS, description="Participants to record from the start"),
    ] = Field(default_factory=list)

    @model_validator(mode="after")
    def _split_only_needs_split_duration(self) -> NewRecording:
        if self.split_only and self.split_duration is None:
            raise ValueError("split_only requires split_duration")
        return self

    def to_spec(self) -> RecordingSpec:
        return RecordingSpec(
            channel_id=self.channel_id,
            session_id=self.session_id,
            format=self.format,
            split_duration=self.split_duration,
            split_only=self.split_only,
            expire_time=self.expire_time,
            recording_metadata=self.recording_metadata,
            connections=[connection.to_spec() for connection in self.connections],
        )


# --- responses: documentation of the manager's views ---------------------------------------
# The routes return the manager's dicts as they are; these models only describe them in the
# OpenAPI document (tests check that real responses match), so a field the manager adds later
# reaches clients without waiting for this file.


class _View(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(_View):
    error_type: str = Field(description="Machine-readable reason", examples=["INVALID-PARAMETER"])
    detail: Any = Field(description="Human-readable explanation")


class MediaView(_View):
    codec: str = Field(examples=["VP8"])
    payload_type: int = Field(examples=[96])
    port: int | None = Field(description="UDP port to send RTP to (RTCP muxed there too)")
    rtcp_port: int | None = Field(description="UDP port for separate RTCP")


class ArchiveView(_View):
    kind: Literal["single", "split"]
    split_index: int | None
    filename: str = Field(examples=["archive-conn-1.webm"])
    state: str
    size: int | None


class ConnectionView(_View):
    connection_id: str
    client_id: str | None
    bundle_id: str | None
    recording_block: bool
    state: str = Field(description=" | ".join(CONNECTION_STATES))
    audio: MediaView | None
    video: MediaView | None
    archives: list[ArchiveView]
    stats: list[dict[str, Any]] = Field(description="Per-stream counters")


class RecordingView(_View):
    recording_id: str = Field(
        description="26 Crockford Base32 characters of a UUIDv4",
        examples=["0DW0F7KGQ1FQ5CYMJ5BSBTQR1M"],
    )
    channel_id: str
    session_id: str | None
    state: str = Field(description=" | ".join(RECORDING_STATES))
    format: Literal["webm", "mp4"]
    split_duration: int | None
    split_only: bool
    expire_time: int
    recording_metadata: Any
    created_at: str = Field(description="RFC 3339, UTC")
    created_at_unix: float
    stopped_at: str | None = Field(description="RFC 3339, UTC")
    connections: list[ConnectionView]


class ArchivingItem(_View):
    recording_id: str
    channel_id: str
    connection_id: str
    seconds: float = Field(description="Seconds recorded so far")
    codecs: dict[str, str] = Field(examples=[{"audio": "OPUS", "video": "VP8"}])
    packets: int
    lost: int
    bitrate_kbps: float
    last_keyframe_age: float | None = Field(description="Seconds since the last video keyframe")
