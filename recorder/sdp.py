"""The parts of an SDP (RFC 8866) that map RTP packets to codecs.

Per media section: its port, the payload types with their `a=rtpmap` and `a=fmtp`, where
RTCP goes (`a=rtcp`, RFC 3605; `a=rtcp-mux`, RFC 5761) and its SRTP keys (`a=crypto`, RFC 4568).
Everything else is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from recorder.errors import SdpError

# RFC 4568 section 9.1: tag = 1*9DIGIT.
MAX_CRYPTO_TAG_DIGITS = 9
# RFC 4568 section 9.2: mki-length = 1*3DIGIT, "range 1..128" bytes.
MAX_MKI_LENGTH = 128
MAX_MKI_DIGITS = 309  # decimal digits of 256**128 - 1
# RFC 3711 caps a master key at 2^48 SRTP packets; the bound only keeps absurd numbers (and
# Python's refusal to convert more than 4300 digits) out of the parser.
MAX_LIFETIME = 2**64
MAX_LIFETIME_DIGITS = 20

_SUITE_NAME = re.compile(r"[A-Za-z0-9_]+")
# key-salt = 1*(base64): the RFC 4648 section 4 alphabet and its padding.
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/]+={0,2}")


@dataclass(slots=True)
class RtpFormat:
    payload_type: int
    encoding: str  # upper case, "" for a static payload type with no rtpmap
    clock_rate: int
    channels: int | None = None
    fmtp: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Crypto:
    """One `a=crypto` line (RFC 4568 section 9): an SRTP suite and its inline key.

    Only the first key of the line is kept; `key_count` says how many it listed (more than one
    only comes with an MKI per key). Nothing here checks the suite or the key length: whoever
    uses the line does (`recorder.srtp.crypto_problem`), so an offer may list suites the
    recorder does not know before one it does.
    """

    tag: int
    suite: str  # as written
    key_base64: str  # master key ‖ master salt; never put it in a message
    lifetime: int | None = None  # packets ("2^20" is 1048576)
    mki: tuple[int, int] | None = None  # (value, length in bytes)
    session_params: tuple[str, ...] = ()
    key_count: int = 1

    def __repr__(self) -> str:
        # Keys end up in logs through reprs of whatever holds them.
        return (
            f"Crypto(tag={self.tag}, suite={self.suite!r}, lifetime={self.lifetime}, "
            f"mki={self.mki}, session_params={self.session_params}, key_count={self.key_count})"
        )


@dataclass(slots=True)
class MediaDescription:
    kind: str  # "audio", "video", "application", ...
    port: int
    protocol: str
    formats: dict[int, RtpFormat]
    rtcp_port: int | None = None
    rtcp_mux: bool = False
    crypto: list[Crypto] = field(default_factory=list)  # in SDP order: preference order


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
            elif name == "crypto":
                current.crypto.append(_crypto(number, rest))
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


def _crypto(number: int, value: str) -> Crypto:
    # RFC 4568 section 9.1: a=crypto:<tag> 1*WSP <crypto-suite> 1*WSP <key-params>
    # *(1*WSP <session-param>), with tag = 1*9DIGIT and crypto-suite = 1*(ALPHA / DIGIT / "_").
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"SDP line {number}: a=crypto needs <tag> <crypto-suite> <key-params>")
    tag_text, suite, key_params, *session_params = parts
    if len(tag_text) > MAX_CRYPTO_TAG_DIGITS:
        raise SdpError(f"SDP line {number}: a=crypto tag {tag_text!r} is longer than 9 digits")
    tag = _int(number, tag_text, "a=crypto tag")
    if not _SUITE_NAME.fullmatch(suite):
        raise SdpError(f"SDP line {number}: a=crypto suite {suite!r} is not a suite name")
    # key-params = key-param *(";" key-param); several keys are told apart by their MKI.
    keys = [_crypto_key(number, param) for param in key_params.split(";")]
    if len(keys) > 1 and any(mki is None for _, _, mki in keys):
        raise SdpError(
            f"SDP line {number}: a=crypto lists {len(keys)} keys but not each with an MKI"
        )
    key_base64, lifetime, mki = keys[0]
    return Crypto(tag, suite, key_base64, lifetime, mki, tuple(session_params), len(keys))


def _crypto_key(number: int, param: str) -> tuple[str, int | None, tuple[int, int] | None]:
    # RFC 4568 section 9.2: key-param = "inline:" key-salt ["|" lifetime] ["|" mki]. "inline"
    # is the only key method defined for SRTP. The key text is never quoted in a message.
    method, _, info = param.partition(":")
    if method.lower() != "inline":
        # Name the method only when it cannot be a key that lost its "inline:".
        shown = f" {method!r}" if len(method) <= 16 and _SUITE_NAME.fullmatch(method) else ""
        raise SdpError(f"SDP line {number}: a=crypto key method{shown} is not inline")
    key_base64, *fields = info.split("|")
    if not _BASE64_TEXT.fullmatch(key_base64):
        raise SdpError(f"SDP line {number}: a=crypto key is not base64")
    lifetime_text = mki_text = None
    if len(fields) == 2:
        lifetime_text, mki_text = fields
    elif len(fields) == 1:
        # A lone field is the MKI when it has the MKI's ":" (RFC 4568's example "|1066:4").
        if ":" in fields[0]:
            mki_text = fields[0]
        else:
            lifetime_text = fields[0]
    elif fields:
        raise SdpError(
            f"SDP line {number}: a=crypto key has {len(fields)} '|' fields, at most a "
            "lifetime and an MKI"
        )
    lifetime = None if lifetime_text is None else _lifetime(number, lifetime_text)
    mki = None if mki_text is None else _mki(number, mki_text)
    return key_base64, lifetime, mki


def _lifetime(number: int, text: str) -> int:
    # lifetime = ["2^"] 1*DIGIT, a number of packets.
    power = text.startswith("2^")
    digits = text[2:] if power else text
    if not (digits.isascii() and digits.isdigit()):
        raise SdpError(f"SDP line {number}: a=crypto lifetime {text!r} is not N or 2^N")
    if len(digits) > (2 if power else MAX_LIFETIME_DIGITS):
        raise SdpError(f"SDP line {number}: a=crypto lifetime {text!r} is out of range")
    lifetime = 2 ** int(digits) if power else int(digits)
    if lifetime > MAX_LIFETIME:
        raise SdpError(f"SDP line {number}: a=crypto lifetime {text!r} is out of range")
    return lifetime


def _mki(number: int, text: str) -> tuple[int, int]:
    # mki = mki-value ":" mki-length; mki-value = 1*DIGIT; mki-length = 1*3DIGIT, 1..128 bytes.
    value_text, _, length_text = text.partition(":")
    if not (
        length_text.isascii()
        and length_text.isdigit()
        and len(length_text) <= 3
        and 1 <= int(length_text) <= MAX_MKI_LENGTH
    ):
        raise SdpError(f"SDP line {number}: a=crypto MKI length {length_text!r} is not 1-128")
    length = int(length_text)
    value = _int(number, value_text[:MAX_MKI_DIGITS], "a=crypto MKI value")
    if len(value_text) > MAX_MKI_DIGITS or value >= 256**length:
        raise SdpError(f"SDP line {number}: a=crypto MKI value does not fit in its {length} bytes")
    return value, length


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
