"""The parts of an SDP (RFC 8866) that map RTP packets to codecs.

Per media section: its port, the payload types with their `a=rtpmap` and `a=fmtp`, and where
RTCP goes (`a=rtcp`, RFC 3605; `a=rtcp-mux`, RFC 5761). Everything else is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from recorder.errors import SdpError


@dataclass(slots=True)
class RtpFormat:
    payload_type: int
    encoding: str  # upper case, "" for a static payload type with no rtpmap
    clock_rate: int
    channels: int | None = None
    fmtp: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class MediaDescription:
    kind: str  # "audio", "video", "application", ...
    port: int
    protocol: str
    formats: dict[int, RtpFormat]
    rtcp_port: int | None = None
    rtcp_mux: bool = False


@dataclass(slots=True)
class SessionDescription:
    media: list[MediaDescription]


def load_sdp(path: str | Path) -> SessionDescription:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise SdpError(f"cannot read SDP {path}: {error.strerror or error}") from None
    return parse_sdp(text)


def parse_sdp(text: str) -> SessionDescription:
    media: list[MediaDescription] = []
    current: MediaDescription | None = None
    fmtp_lines: list[tuple[int, MediaDescription, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            current = _media_line(number, value)
            media.append(current)
        elif kind == "a" and current is not None:
            name, _, rest = value.partition(":")
            if name == "rtpmap":
                payload_type, rtp_format = _rtpmap(number, rest)
                # RFC 8866 section 6.6: an rtpmap describes a format listed on the m= line;
                # one for an unlisted payload type cannot carry this section's media.
                if payload_type in current.formats:
                    current.formats[payload_type] = rtp_format
            elif name == "fmtp":
                fmtp_lines.append((number, current, rest))
            elif name == "rtcp":
                current.rtcp_port = _port(number, rest.split()[0] if rest else "", "a=rtcp port")
            elif name == "rtcp-mux":
                current.rtcp_mux = True
    for number, section, rest in fmtp_lines:
        payload_text, _, params = rest.partition(" ")
        payload_type = _int(number, payload_text, "a=fmtp payload type")
        if payload_type in section.formats:
            section.formats[payload_type].fmtp = _fmtp_params(params)
    if not media:
        raise SdpError("SDP has no m= line")
    return SessionDescription(media)


def _media_line(number: int, value: str) -> MediaDescription:
    # RFC 8866 section 5.14: m=<media> <port>[/<number of ports>] <proto> <fmt> ...
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"SDP line {number}: m= line needs media, port and protocol")
    port = _port(number, parts[1].split("/")[0], "m= port")
    formats = {}
    if "RTP" in parts[2].upper():
        for text in parts[3:]:
            payload_type = _payload_type(number, text, "m= payload type")
            formats[payload_type] = RtpFormat(payload_type, "", 0)
    return MediaDescription(parts[0].lower(), port, parts[2], formats)


def _rtpmap(number: int, value: str) -> tuple[int, RtpFormat]:
    # RFC 8866 section 6.6: a=rtpmap:<payload type> <encoding name>/<clock rate>[/<params>]
    payload_text, _, encoding = value.partition(" ")
    payload_type = _payload_type(number, payload_text, "a=rtpmap payload type")
    pieces = encoding.strip().split("/")
    if len(pieces) < 2 or not pieces[0]:
        raise SdpError(f"SDP line {number}: a=rtpmap needs <encoding>/<clock rate>")
    clock_rate = _int(number, pieces[1], "a=rtpmap clock rate")
    if clock_rate <= 0:
        raise SdpError(f"SDP line {number}: a=rtpmap clock rate must be positive")
    channels = _int(number, pieces[2], "a=rtpmap channels") if len(pieces) > 2 else None
    return payload_type, RtpFormat(payload_type, pieces[0].upper(), clock_rate, channels)


def _fmtp_params(text: str) -> dict[str, str]:
    params = {}
    for item in text.split(";"):
        key, sep, value = item.strip().partition("=")
        if key:
            params[key.strip().lower()] = value.strip() if sep else ""
    return params


def _int(number: int, text: str, what: str) -> int:
    # The SDP grammar's integers are plain ASCII digits (no sign, no "_", no other scripts).
    if not (text.isascii() and text.isdigit()):
        raise SdpError(f"SDP line {number}: {what} {text!r} is not a number")
    return int(text)


def _port(number: int, text: str, what: str) -> int:
    port = _int(number, text, what)
    if port > 0xFFFF:
        raise SdpError(f"SDP line {number}: {what} {port} is out of range")
    return port


def _payload_type(number: int, text: str, what: str) -> int:
    payload_type = _int(number, text, what)
    if payload_type > 127:
        raise SdpError(f"SDP line {number}: {what} {payload_type} is not 0-127")
    return payload_type
