"""Identifiers: recording ids we mint, and ids from clients that end up in file names.

Recording ids are the reference product's (seed 000: "Base32 でエンコードされた UUIDv4"):
26 characters of Crockford Base32 carrying a random UUIDv4. The 128 bits are read most
significant first and followed by two zero bits, making 130 bits = 26 groups of 5 bits, each
group one character of the alphabet `0-9 A-Z` without I, L, O and U. So the last character
always carries two zero bits and is one of `0 4 8 C G M R W`. Every id printed in seeds 000 and
001 decodes this way to a UUID with version 4 and the RFC 4122 variant (tests/test_ids.py checks
them all), which is how the bit order was settled.

Channel, session, connection, client and bundle ids come from the API client. Those that become
part of a file name (`archive-<connection_id>.webm`, the `<recording_id>/` directory) must never
name another file: `validate_id` admits a conservative ASCII set and nothing that a file system
or a shell treats specially.
"""

from __future__ import annotations

import re
import uuid

from recorder.errors import RecorderError

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECORDING_ID_LENGTH = 26
# 26 characters * 5 bits = 130 bits: the UUID's 128 followed by this many zero bits.
_PADDING_BITS = RECORDING_ID_LENGTH * 5 - 128

# Ids in file names are bounded well below NAME_MAX (255 bytes on Linux file systems): the
# longest name built around a connection id is `split-archive-end-<id>.json` or
# `split-archive-<id>_<index>.webm`, which adds about 30 characters, and the temporary directory
# may add a suffix of its own. The reference's ids are 26 characters; 128 leaves room for UUIDs
# with prefixes and other SFUs' ids.
MAX_ID_LENGTH = 128

# Letters, digits and `_ - . ~ @`: RFC 3986's unreserved characters (safe in URLs, so the same
# id works in `/v1/recordings/{id}/connections/{cid}` without escaping) plus `@`, which appears
# in SFU-generated names such as `user@node`. No path separators, no NUL, no whitespace, no shell
# or Windows-reserved characters, nothing outside ASCII (no look-alike slashes such as U+FF0F or
# U+2215, no bidirectional overrides). The first character must not be `.` (hidden files, `.`
# and `..`) or `-` (read as an option by command-line tools handed the file name).
_ID_PATTERN = re.compile(r"[A-Za-z0-9_~@][A-Za-z0-9_.~@-]*")
ALLOWED_ID_CHARACTERS = "A-Z a-z 0-9 _ - . ~ @"

_RECORDING_ID_PATTERN = re.compile(f"[{CROCKFORD_ALPHABET}]{{{RECORDING_ID_LENGTH}}}")
# Shown values are cut so a hostile megabyte-long id does not end up in a log line or response.
_SHOWN_LENGTH = 40


class InvalidIdError(RecorderError, ValueError):
    """An id that cannot be used as (part of) a file name."""


def encode_crockford(value: int) -> str:
    """The 26-character Crockford Base32 text of a 128-bit integer, as described above."""
    if not 0 <= value < 1 << 128:
        raise ValueError("a recording id encodes exactly 128 bits")
    bits = value << _PADDING_BITS
    characters = [
        CROCKFORD_ALPHABET[(bits >> shift) & 0x1F]
        for shift in range((RECORDING_ID_LENGTH - 1) * 5, -1, -5)
    ]
    return "".join(characters)


def decode_crockford(text: str) -> int:
    """The 128-bit integer a recording id carries; the inverse of `encode_crockford`."""
    if not is_recording_id(text):
        raise InvalidIdError(f"recording_id {_shown(text)} is not 26 Crockford Base32 characters")
    bits = 0
    for character in text:
        bits = (bits << 5) | CROCKFORD_ALPHABET.index(character)
    if bits & ((1 << _PADDING_BITS) - 1):
        raise InvalidIdError(f"recording_id {_shown(text)} has non-zero padding bits")
    return bits >> _PADDING_BITS


def new_recording_id() -> str:
    """A fresh recording id: a random UUIDv4 in 26 Crockford Base32 characters."""
    return encode_crockford(uuid.uuid4().int)


def is_recording_id(value: object) -> bool:
    """True for text shaped like an id `new_recording_id` returns (upper case, 26 characters).

    Meant for ids arriving in URL paths: anything else cannot name a recording of ours, so it
    can be answered "not found" without touching the store.
    """
    return isinstance(value, str) and _RECORDING_ID_PATTERN.fullmatch(value) is not None


def validate_id(value: object, what: str) -> str:
    """Return `value` if it is safe as part of a file name, else raise `InvalidIdError`.

    `what` names the field in the message (`"connection_id"`), which the API passes on to the
    client as the error detail.
    """
    if not isinstance(value, str):
        raise InvalidIdError(f"{what} must be a string")
    if not value:
        raise InvalidIdError(f"{what} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidIdError(f"{what} is longer than {MAX_ID_LENGTH} characters")
    if _ID_PATTERN.fullmatch(value) is None:
        raise InvalidIdError(f"{what} {_shown(value)} {_problem(value)}")
    return value


def _problem(value: str) -> str:
    """The first reason `value` is refused, for the one-line message."""
    if value in (".", ".."):
        return "is a relative directory name"
    if value[0] == ".":
        return "must not start with '.'"
    if value[0] == "-":
        return "must not start with '-'"
    for character in value:
        if character in "/\\":
            return "must not contain a path separator"
        if character == "\x00":
            return "must not contain NUL"
        if not character.isascii():
            return "must contain only ASCII characters"
        if not (character.isalnum() or character in "_-.~@"):
            return f"contains {character!r}; allowed: {ALLOWED_ID_CHARACTERS}"
    return f"is not allowed; allowed: {ALLOWED_ID_CHARACTERS}"  # pragma: no cover


def _shown(value: str) -> str:
    if len(value) > _SHOWN_LENGTH:
        return repr(value[:_SHOWN_LENGTH]) + "…"
    return repr(value)
