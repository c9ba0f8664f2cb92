"""Recording ids (Crockford Base32 of a UUIDv4, as the reference) and ids that become file names."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.errors import RecorderError
from recorder.ids import (
    CROCKFORD_ALPHABET,
    MAX_ID_LENGTH,
    InvalidIdError,
    decode_crockford,
    encode_crockford,
    is_recording_id,
    new_recording_id,
    validate_id,
)

# Every id printed in seeds 000 and 001 (recording, session, connection, client ids).
SEED_IDS = [
    "WHEJ888HQ55KDCFE3TZ4VPFQHR",
    "GK2R6PSDYX68VDQPRX4FVVFN8W",
    "JA8FB89ZJS1H9CV5GN3NCT5RA0",
    "1CS9QJ0XPN4C76HBGBN6MGMK5M",
    "A4756MXP914ZB265E92JE3ZMWC",
    "H2NDA2YCGH7S1E9CVMFMXMA34R",
    "PBVZQQN3JS3MQF8XHVFXDMCEEC",
    "CZZ8A8KZB16A1DF5PKERBHGFNR",
    "3B7AFF8ZRX6VNEYV40B35Z9S2C",
    "DGSN3TC0E91RSCZT5KVPRWCDHR",
    "C0YTCRZM715BKATBXWFPKTYGRM",
    "MK4J54QBGS4ES0MCSZMF6C9M9M",
    "WWZ61PT4GS03F80F39MCPVSEQR",
    "Z60BJP5YDN4PD0D7RGM4TFEE48",
    "W9QE86Z0BS1QFFPZ2QB5DRZ2HC",
    "JXMYW6GPX54EH0HGA5X4130FBM",
    "JJJ5BFH7QN6DQBTKSS7JA8ZYQR",
]


def test_crockford_alphabet_leaves_out_i_l_o_u() -> None:
    assert len(CROCKFORD_ALPHABET) == 32 and len(set(CROCKFORD_ALPHABET)) == 32
    assert not set("ILOU") & set(CROCKFORD_ALPHABET)
    assert CROCKFORD_ALPHABET == "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@pytest.mark.parametrize("seed_id", SEED_IDS)
def test_every_seed_id_is_a_uuid4_in_our_bit_order(seed_id: str) -> None:
    value = uuid.UUID(int=decode_crockford(seed_id))
    assert value.version == 4 and value.variant == uuid.RFC_4122
    assert encode_crockford(value.int) == seed_id


def test_new_recording_ids_are_26_characters_of_random_uuid4() -> None:
    ids = {new_recording_id() for _ in range(500)}
    assert len(ids) == 500
    for recording_id in ids:
        assert len(recording_id) == 26 and set(recording_id) <= set(CROCKFORD_ALPHABET)
        assert is_recording_id(recording_id)
        # The two padding bits are zero, so the last character is one of eight.
        assert recording_id[-1] in "048CGMRW"
        value = uuid.UUID(int=decode_crockford(recording_id))
        assert value.version == 4 and value.variant == uuid.RFC_4122
        assert validate_id(recording_id, "recording_id") == recording_id


def test_known_values() -> None:
    assert encode_crockford(0) == "0" * 26
    assert encode_crockford((1 << 128) - 1) == "Z" * 25 + "W"
    assert encode_crockford(1) == "0" * 25 + "4"
    assert encode_crockford(1 << 127) == "G" + "0" * 25


@given(st.integers(min_value=0, max_value=(1 << 128) - 1))
def test_round_trip(value: int) -> None:
    assert decode_crockford(encode_crockford(value)) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "WHEJ888HQ55KDCFE3TZ4VPFQH",  # 25
        "WHEJ888HQ55KDCFE3TZ4VPFQHR0",  # 27
        "whej888hq55kdcfe3tz4vpfqhr",  # lower case: not what we mint
        "WHEJ888HQ55KDCFE3TZ4VPFQHI",  # I is not in the alphabet
        "WHEJ888HQ55KDCFE3TZ4VPFQHU",
        "../../../../../../etc/passw",
        "WHEJ888HQ55KDCFE3TZ4VPFQH\n",
    ],
)
def test_is_recording_id_refuses(text: str) -> None:
    assert not is_recording_id(text)
    with pytest.raises(InvalidIdError):
        decode_crockford(text)


def test_non_zero_padding_is_refused() -> None:
    with pytest.raises(InvalidIdError, match="padding"):
        decode_crockford("0" * 25 + "1")


def test_is_recording_id_takes_anything() -> None:
    assert not is_recording_id(None)
    assert not is_recording_id(12345)


@pytest.mark.parametrize(
    "value",
    [
        "sora",
        "GK2R6PSDYX68VDQPRX4FVVFN8W",
        "3f1c2a9e-6b7d-4c1e-9a2b-0d4e5f6a7b8c",
        "PA_abc.def~1",
        "alice@node-1",
        "a..b",  # dots inside a name are harmless
        "x" * MAX_ID_LENGTH,
    ],
)
def test_valid_ids(value: str) -> None:
    assert validate_id(value, "connection_id") == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "connection_id must not be empty"),
        (".", "connection_id '.' is a relative directory name"),
        ("..", "connection_id '..' is a relative directory name"),
        (".hidden", "connection_id '.hidden' must not start with '.'"),
        ("-rf", "connection_id '-rf' must not start with '-'"),
        ("../etc/passwd", "connection_id '../etc/passwd' must not start with '.'"),
        ("a/../../b", "connection_id 'a/../../b' must not contain a path separator"),
        ("a/b", "connection_id 'a/b' must not contain a path separator"),
        ("/etc", "connection_id '/etc' must not contain a path separator"),
        ("a\\b", "connection_id 'a\\\\b' must not contain a path separator"),
        ("..\\..\\x", "connection_id '..\\\\..\\\\x' must not start with '.'"),
        ("a\x00b", "connection_id 'a\\x00b' must not contain NUL"),
        ("a b", "connection_id 'a b' contains ' '; allowed: A-Z a-z 0-9 _ - . ~ @"),
        ("a\nb", "connection_id 'a\\nb' contains '\\n'; allowed: A-Z a-z 0-9 _ - . ~ @"),
        ("a:b", "connection_id 'a:b' contains ':'; allowed: A-Z a-z 0-9 _ - . ~ @"),
        ("a*b", "connection_id 'a*b' contains '*'; allowed: A-Z a-z 0-9 _ - . ~ @"),
        ("$(id)", "connection_id '$(id)' contains '$'; allowed: A-Z a-z 0-9 _ - . ~ @"),
        ("a%2Fb", "connection_id 'a%2Fb' contains '%'; allowed: A-Z a-z 0-9 _ - . ~ @"),
        # Look-alike slashes and other non-ASCII text.
        ("a\uff0fb", "connection_id 'a\uff0fb' must contain only ASCII characters"),
        ("a\u2215b", "connection_id 'a\u2215b' must contain only ASCII characters"),
        ("caf\u00e9", "connection_id 'café' must contain only ASCII characters"),
        ("\u202egnp.exe", "connection_id '\\u202egnp.exe' must contain only ASCII characters"),
        ("録画", "connection_id '録画' must contain only ASCII characters"),
        (
            "\uff11\uff12\uff13",
            "connection_id '\uff11\uff12\uff13' must contain only ASCII characters",
        ),
        ("x" * (MAX_ID_LENGTH + 1), "connection_id is longer than 128 characters"),
    ],
)
def test_invalid_ids(value: str, message: str) -> None:
    with pytest.raises(InvalidIdError) as caught:
        validate_id(value, "connection_id")
    assert str(caught.value) == message


@pytest.mark.parametrize("value", [None, 1, b"abc", ["a"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidIdError, match=r"^recording_id must be a string$"):
        validate_id(value, "recording_id")


def test_long_hostile_values_are_cut_in_the_message() -> None:
    with pytest.raises(InvalidIdError) as caught:
        validate_id("/" * 100, "channel_id")
    assert len(str(caught.value)) < 120


def test_invalid_id_error_is_a_recorder_error_and_a_value_error() -> None:
    assert issubclass(InvalidIdError, RecorderError) and issubclass(InvalidIdError, ValueError)


@given(st.text(max_size=200))
def test_anything_accepted_is_a_plain_file_name(value: str) -> None:
    try:
        validate_id(value, "id")
    except InvalidIdError:
        return
    assert value not in ("", ".", "..") and value[0] not in ".-"
    assert "/" not in value and "\\" not in value and "\x00" not in value
    assert value.isascii() and value.isprintable() and " " not in value
    assert len(value) <= MAX_ID_LENGTH
