"""SRTP / SRTCP through `recorder.srtp`: keys, every suite, failures told apart, real senders.

Round trips protect with a plain pylibsrtp session standing in for the sender. The captured
packets below come from FFmpeg 5.1 and GStreamer 1.22 on this kind of machine; the live tests
run those senders again over loopback into a UDP socket of the test.
"""

from __future__ import annotations

import base64
import hashlib
import selectors
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pylibsrtp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pylibsrtp import Policy, Session

from recorder.codecs.vp8 import descriptor_size
from recorder.errors import MalformedPacket, RecorderError
from recorder.rtp import RtpPacket
from recorder.sdp import Crypto, parse_sdp
from recorder.srtp import (
    _REASONS,
    _SUITES,
    AEAD_AES_128_GCM,
    AEAD_AES_256_GCM,
    AES_CM_128_HMAC_SHA1_32,
    AES_CM_128_HMAC_SHA1_80,
    JANUS_SUITES,
    MAX_PACKET_SIZE,
    REPLAY_WINDOW,
    SUITES,
    SrtpError,
    SrtpKeyError,
    SrtpReceiver,
    canonical_suite,
    crypto_problem,
    key_size,
    parse_key,
)
from recorder.stream import REORDER_WINDOW
from tests.fuzzing import FUZZ, mutations, seeded
from tests.judges import require
from tests.vectors import build_rtp

# The key of the RFC 4568 examples (30 bytes).
RFC_KEY = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
SENDER_SSRC = 0x5EED0001
RECORDER_SSRC = 0x5EED0002
# Master key ‖ salt sizes: RFC 4568 section 6.2 (AES-CM), RFC 7714 section 14.2 (AES-GCM).
SIZES = {
    AES_CM_128_HMAC_SHA1_80: 30,
    AES_CM_128_HMAC_SHA1_32: 30,
    AEAD_AES_128_GCM: 28,
    AEAD_AES_256_GCM: 44,
}
# Bytes SRTP appends to an RTP packet (the tag) and SRTCP to an RTCP packet (E flag and index,
# then the tag: HMAC-SHA1 is never cut below 80 bits for SRTCP, RFC 3711 section 5.2).
RTP_OVERHEAD = {
    AES_CM_128_HMAC_SHA1_80: 10,
    AES_CM_128_HMAC_SHA1_32: 4,
    AEAD_AES_128_GCM: 16,
    AEAD_AES_256_GCM: 16,
}
RTCP_OVERHEAD = {
    AES_CM_128_HMAC_SHA1_80: 14,
    AES_CM_128_HMAC_SHA1_32: 14,
    AEAD_AES_128_GCM: 20,
    AEAD_AES_256_GCM: 20,
}


def _key(suite: str, seed: int = 1) -> bytes:
    return bytes((seed + index * 7) % 256 for index in range(SIZES[suite]))


def _sender(suite: str, key: bytes) -> Session:
    """What the peer runs: libsrtp with the same key, any outbound SSRC."""
    profile = _SUITES[suite][0]
    return Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))


def _peer_inbound(suite: str, key: bytes) -> Session:
    """The peer's receiving side, for the RTCP the recorder sends back."""
    profile = _SUITES[suite][0]
    return Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))


def _rtp(sequence: int, size: int = 200, ssrc: int = SENDER_SSRC) -> bytes:
    payload = bytes((sequence + index) % 256 for index in range(size))
    return build_rtp(
        sequence=sequence & 0xFFFF, timestamp=sequence * 3000, payload=payload, ssrc=ssrc
    )


def _sender_report(ssrc: int = SENDER_SSRC, packets: int = 1) -> bytes:
    # RFC 3550 section 6.4.1: SR with no report blocks (length 6 words).
    return struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, 0xEEAC0E84, 0, 3000, packets, 200)


def _receiver_report(ssrc: int = RECORDER_SSRC) -> bytes:
    # RFC 3550 section 6.4.2 RR with no blocks, then an RFC 4585 PLI for the sender.
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc) + struct.pack(
        "!BBHII", 0x81, 206, 2, ssrc, SENDER_SSRC
    )


def _flip(data: bytes, index: int, bit: int = 0) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 1 << bit
    return bytes(changed)


def _error(call: Callable[[bytes], bytes], data: bytes) -> SrtpError:
    with pytest.raises(SrtpError) as raised:
        call(data)
    return raised.value


def _reason(call: Callable[[bytes], bytes], data: bytes) -> str:
    return _error(call, data).reason


# -- keys: RFC 4568 section 6.1 inline key ‖ salt, RFC 7714 section 14.2----------------------


@pytest.mark.parametrize("suite", SUITES)
def test_parse_key_takes_exactly_the_suite_size(suite: str) -> None:
    key = _key(suite)
    assert key_size(suite) == SIZES[suite]
    assert parse_key(suite, base64.b64encode(key).decode()) == key
    for size in (SIZES[suite] - 1, SIZES[suite] + 1, 0):
        text = base64.b64encode(_key(suite)[:size] + bytes(max(0, size - SIZES[suite]))).decode()
        with pytest.raises(SrtpKeyError) as raised:
            parse_key(suite, text)
        assert str(raised.value) == (
            f"{suite} takes a {SIZES[suite]}-byte master key and salt "
            f"({SIZES[suite] - _SUITES[suite][2]} + {_SUITES[suite][2]}), not {size} bytes"
        )


def test_the_published_keys() -> None:
    # The RFC 4568 example keys; GStreamer takes the same bytes in hex.
    assert len(parse_key(AES_CM_128_HMAC_SHA1_80, RFC_KEY)) == 30
    assert len(parse_key(AES_CM_128_HMAC_SHA1_32, "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")) == 30
    assert parse_key(AEAD_AES_128_GCM, GST_KEY_BASE64) == bytes.fromhex(GST_KEY_HEX)
    assert len(parse_key(AEAD_AES_256_GCM, base64.b64encode(bytes(44)).decode())) == 44


@pytest.mark.parametrize("suite", [AEAD_AES_128_GCM, AEAD_AES_256_GCM])
def test_base64_padding_may_be_left_out(suite: str) -> None:
    text = base64.b64encode(_key(suite)).decode()
    assert text.endswith("=")
    assert parse_key(suite, text.rstrip("=")) == _key(suite)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB-", id="url-safe-alphabet"),
        pytest.param("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaV!R", id="punctuation"),
        pytest.param("PS1uQCVeeCFCanVmcjkp PywjNWhcYD0mXXtxaVBR", id="inner-space"),
        pytest.param("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBRA", id="one-character-over"),
        pytest.param("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB=R", id="padding-inside"),
        pytest.param("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR===", id="three-pads"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_key_refuses_what_is_not_base64(text: str) -> None:
    with pytest.raises(SrtpKeyError) as raised:
        parse_key(AES_CM_128_HMAC_SHA1_80, text)
    message = str(raised.value)
    assert message.startswith("AES_CM_128_HMAC_SHA1_80 ")
    assert "PS1u" not in message, "a key must never reach a message"


def test_wrong_key_sizes_for_the_receiver() -> None:
    with pytest.raises(SrtpKeyError, match="takes a 30-byte master key and salt"):
        SrtpReceiver(AES_CM_128_HMAC_SHA1_80, bytes(28))
    with pytest.raises(SrtpKeyError, match="takes a 44-byte master key and salt"):
        SrtpReceiver(AEAD_AES_256_GCM, bytes(30), send_key=None)
    with pytest.raises(SrtpKeyError, match="takes a 28-byte"):
        SrtpReceiver(AEAD_AES_128_GCM, bytes(28), send_key=bytes(30))
    assert issubclass(SrtpKeyError, RecorderError) and not issubclass(SrtpKeyError, ValueError)
    assert issubclass(SrtpError, MalformedPacket)


# -- suite names: RFC 4568 / RFC 7714, mediasoup, DTLS-SRTP profiles (FFmpeg), Janus ----------


@pytest.mark.parametrize(
    ("name", "suite"),
    [
        # mediasoup's SrtpCryptoSuite values are the RFC names.
        ("AES_CM_128_HMAC_SHA1_80", AES_CM_128_HMAC_SHA1_80),
        ("AES_CM_128_HMAC_SHA1_32", AES_CM_128_HMAC_SHA1_32),
        ("AEAD_AES_128_GCM", AEAD_AES_128_GCM),
        ("AEAD_AES_256_GCM", AEAD_AES_256_GCM),
        # RFC 5764 / RFC 7714 protection profiles; FFmpeg writes them into its a=crypto lines.
        ("SRTP_AES128_CM_HMAC_SHA1_80", AES_CM_128_HMAC_SHA1_80),
        ("SRTP_AES128_CM_HMAC_SHA1_32", AES_CM_128_HMAC_SHA1_32),
        ("SRTP_AEAD_AES_128_GCM", AEAD_AES_128_GCM),
        ("SRTP_AEAD_AES_256_GCM", AEAD_AES_256_GCM),
        # RFC 5234 section 2.3: ABNF literals are case-insensitive.
        ("aes_cm_128_hmac_sha1_80", AES_CM_128_HMAC_SHA1_80),
    ],
)
def test_suite_names(name: str, suite: str) -> None:
    assert canonical_suite(name) == suite
    assert SrtpReceiver(name, _key(suite)).suite == suite


@pytest.mark.parametrize(
    "name", ["F8_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80", "NULL_HMAC_SHA1_80", ""]
)
def test_unsupported_suites(name: str) -> None:
    with pytest.raises(SrtpKeyError) as raised:
        canonical_suite(name)
    assert str(raised.value) == (
        f"SRTP crypto suite {name!r} is not supported (supported: AES_CM_128_HMAC_SHA1_80, "
        "AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM, AEAD_AES_256_GCM)"
    )


def test_janus_names_its_suite_by_tag_length() -> None:
    # Janus VideoRoom rtp_forward: "srtp_suite": <length of authentication tag (32 or 80)>.
    assert JANUS_SUITES == {32: AES_CM_128_HMAC_SHA1_32, 80: AES_CM_128_HMAC_SHA1_80}


# -- every suite, both directions --------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_rtp_round_trip(suite: str) -> None:
    key = _key(suite)
    sender, receiver = _sender(suite, key), SrtpReceiver(suite, key)
    for sequence in range(65530, 65550):  # across a sequence number wrap (RFC 3711 3.3.1)
        plain = _rtp(sequence)
        protected = sender.protect(plain)
        assert len(protected) == len(plain) + RTP_OVERHEAD[suite]
        assert protected[:12] == plain[:12] and protected[12:-4] != plain[12:-4]
        assert receiver.unprotect_rtp(protected) == plain


@pytest.mark.parametrize("suite", SUITES)
def test_rtp_with_csrcs_extension_and_padding(suite: str) -> None:
    # RFC 3711 section 3.1: the header, CSRCs and extension are authenticated, not encrypted.
    key = _key(suite)
    extension = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xff\x00\x00"
    plain = (
        struct.pack("!BBHII", 0xB2, 96, 7, 9000, SENDER_SSRC)
        + struct.pack("!II", 1, 2)
        + extension
        + b"payload!"
        + b"\x00\x00\x00\x04"
    )
    assert SrtpReceiver(suite, key).unprotect_rtp(_sender(suite, key).protect(plain)) == plain


@pytest.mark.parametrize("suite", SUITES)
def test_rtcp_round_trip_both_ways(suite: str) -> None:
    key = _key(suite)
    sender, receiver = _sender(suite, key), SrtpReceiver(suite, key)
    for count in range(1, 4):
        report = _sender_report(packets=count)
        protected = sender.protect_rtcp(report)
        assert len(protected) == len(report) + RTCP_OVERHEAD[suite]
        assert receiver.unprotect_rtcp(protected) == report
    # What the recorder sends back is its own outbound stream, readable by the peer's receiver.
    peer = _peer_inbound(suite, key)
    for _ in range(3):
        feedback = _receiver_report()
        protected = receiver.protect_rtcp(feedback)
        assert protected[:8] == feedback[:8], "SRTCP leaves the first header in the clear"
        assert peer.unprotect_rtcp(protected) == feedback


def test_feedback_with_a_key_of_its_own() -> None:
    # mediasoup's PlainTransport decrypts what it receives with the key given to connect().
    suite = AES_CM_128_HMAC_SHA1_80
    key, send_key = _key(suite, 1), _key(suite, 2)
    receiver = SrtpReceiver(suite, key, send_key=send_key)
    protected = receiver.protect_rtcp(_receiver_report())
    assert _peer_inbound(suite, send_key).unprotect_rtcp(protected) == _receiver_report()
    with pytest.raises(pylibsrtp.Error, match="authentication failure"):
        _peer_inbound(suite, key).unprotect_rtcp(protected)
    # ... while the sender's packets still need the sender's key.
    assert receiver.unprotect_rtp(_sender(suite, key).protect(_rtp(1))) == _rtp(1)


def test_feedback_keystream_differs_from_the_senders_rtcp() -> None:
    # RFC 3711 section 9.1: streams sharing a master key must differ in SSRC. The first SRTCP
    # packets of the recorder and of the sender carry the same index; their keystreams differ.
    suite = AES_CM_128_HMAC_SHA1_80
    key = _key(suite)
    ours, theirs = _sender_report(RECORDER_SSRC), _sender_report(SENDER_SSRC)
    ours_protected = SrtpReceiver(suite, key).protect_rtcp(ours)
    theirs_protected = _sender(suite, key).protect_rtcp(theirs)
    assert ours_protected[-14:-10] == theirs_protected[-14:-10]  # E flag and SRTCP index

    def keystream(plain: bytes, protected: bytes) -> bytes:
        return bytes(a ^ b for a, b in zip(plain[8:], protected[8 : len(plain)], strict=True))

    assert keystream(ours, ours_protected) != keystream(theirs, theirs_protected)


def test_bytes_like_input() -> None:
    suite = AEAD_AES_128_GCM
    key = _key(suite)
    sender, receiver = _sender(suite, key), SrtpReceiver(suite, key)
    assert receiver.unprotect_rtp(bytearray(sender.protect(_rtp(1)))) == _rtp(1)
    assert receiver.unprotect_rtp(memoryview(sender.protect(_rtp(2)))) == _rtp(2)
    assert receiver.unprotect_rtcp(bytearray(sender.protect_rtcp(_sender_report()))) == (
        _sender_report()
    )
    assert (
        _peer_inbound(suite, key).unprotect_rtcp(
            receiver.protect_rtcp(bytearray(_receiver_report()))
        )
        == _receiver_report()
    )


# -- failures: authentication, replay, other, told apart ----------------------------------------


def test_the_reason_table_matches_pylibsrtp() -> None:
    # The reasons are read from libsrtp's message text; a renamed message must fail here.
    assert set(_REASONS) <= set(pylibsrtp.ERRORS)


@pytest.mark.parametrize("suite", SUITES)
def test_a_flipped_bit_fails_authentication(suite: str) -> None:
    key = _key(suite)
    sender, receiver = _sender(suite, key), SrtpReceiver(suite, key)
    packets = [sender.protect(_rtp(sequence)) for sequence in range(10)]
    last = len(packets[0]) - 1
    # tag, payload, marker/payload type, sequence number, timestamp, SSRC
    for packet, (index, bit) in zip(
        packets, [(last, 0), (last, 7), (40, 3), (1, 7), (3, 0), (5, 1), (11, 2)], strict=False
    ):
        assert _reason(receiver.unprotect_rtp, _flip(packet, index, bit)) == "auth"
    # A forgery changes nothing: the genuine packets still go through, in any order.
    for packet, sequence in reversed(list(zip(packets, range(10), strict=True))):
        assert receiver.unprotect_rtp(packet) == _rtp(sequence)


@pytest.mark.parametrize("suite", SUITES)
def test_a_flipped_srtcp_bit_fails_authentication(suite: str) -> None:
    key = _key(suite)
    sender, receiver = _sender(suite, key), SrtpReceiver(suite, key)
    protected = sender.protect_rtcp(_sender_report())
    trailer = len(protected) - RTCP_OVERHEAD[suite]
    for index, bit in [(len(protected) - 1, 0), (12, 5), (4, 0), (trailer, 7)]:
        # (tag, encrypted body, SSRC, E flag: libsrtp refuses "unencrypted" before the tag)
        assert _reason(receiver.unprotect_rtcp, _flip(protected, index, bit)) == "auth"
    assert receiver.unprotect_rtcp(protected) == _sender_report()


@pytest.mark.parametrize("suite", SUITES)
def test_a_wrong_key_fails_authentication(suite: str) -> None:
    sender = _sender(suite, _key(suite, 1))
    receiver = SrtpReceiver(suite, _key(suite, 2))
    for sequence in range(5):
        assert _reason(receiver.unprotect_rtp, sender.protect(_rtp(sequence))) == "auth"
    assert _reason(receiver.unprotect_rtcp, sender.protect_rtcp(_sender_report())) == "auth"


@pytest.mark.parametrize("suite", SUITES)
def test_replays(suite: str) -> None:
    key = _key(suite)
    sender, receiver = _sender(suite, key), SrtpReceiver(suite, key)
    packets = [sender.protect(_rtp(sequence)) for sequence in range(REPLAY_WINDOW + 10)]
    receiver.unprotect_rtp(packets[0])
    error = _error(receiver.unprotect_rtp, packets[0])
    assert (error.reason, str(error)) == (
        "replay",
        "SRTP packet rejected (replay): replay check failed (bad index)",
    )
    for packet in packets[REPLAY_WINDOW + 1 :]:
        receiver.unprotect_rtp(packet)
    # Behind the replay window: refused as a possible replay (RFC 3711 section 3.3.2).
    error = _error(receiver.unprotect_rtp, packets[1])
    assert (error.reason, str(error)) == (
        "replay",
        "SRTP packet rejected (replay): replay check failed (index too old)",
    )
    # A corrupted copy of a received packet is caught by the replay list before its tag.
    assert _reason(receiver.unprotect_rtp, _flip(packets[-1], len(packets[-1]) - 1)) == "replay"
    rtcp = sender.protect_rtcp(_sender_report())
    receiver.unprotect_rtcp(rtcp)
    assert _reason(receiver.unprotect_rtcp, rtcp) == "replay"


def test_the_replay_window_covers_the_reorder_buffer() -> None:
    # A packet the reorder buffer would still place must not die as a "replay" first.
    assert REPLAY_WINDOW >= REORDER_WINDOW
    suite = AES_CM_128_HMAC_SHA1_80
    key = _key(suite)
    sender, receiver = _sender(suite, key), SrtpReceiver(suite, key)
    packets = [sender.protect(_rtp(sequence)) for sequence in range(REORDER_WINDOW + 1)]
    for packet in packets[1:]:
        receiver.unprotect_rtp(packet)
    assert receiver.unprotect_rtp(packets[0]) == _rtp(0)


@pytest.mark.parametrize("suite", SUITES)
def test_truncated_packets(suite: str) -> None:
    key = _key(suite)
    sender = _sender(suite, key)
    protected = sender.protect(_rtp(1, size=40))
    rtcp = sender.protect_rtcp(_sender_report())
    for size in range(len(protected)):
        receiver = SrtpReceiver(suite, key)
        assert _reason(receiver.unprotect_rtp, protected[:size]) in ("auth", "other")
        assert receiver.unprotect_rtp(protected) == _rtp(1, size=40)
    for size in range(len(rtcp)):
        receiver = SrtpReceiver(suite, key)
        assert _reason(receiver.unprotect_rtcp, rtcp[:size]) in ("auth", "other")
    receiver = SrtpReceiver(suite, key)
    assert str(_error(receiver.unprotect_rtp, protected[:8])) == (
        "SRTP packet rejected (other): unsupported parameter"
    )


def test_packets_longer_than_pylibsrtp_takes() -> None:
    receiver = SrtpReceiver(AES_CM_128_HMAC_SHA1_80, _key(AES_CM_128_HMAC_SHA1_80))
    big = _rtp(1, size=MAX_PACKET_SIZE)
    error = _error(receiver.unprotect_rtp, big)
    assert (error.reason, str(error)) == (
        "other",
        f"SRTP packet of {len(big)} bytes is longer than {MAX_PACKET_SIZE}",
    )
    assert _reason(receiver.unprotect_rtcp, big) == "other"
    assert _reason(receiver.protect_rtcp, bytes(MAX_PACKET_SIZE)) == "other"


def test_cost_per_packet() -> None:
    """One pylibsrtp call per packet; prints the CPU time per 1200-byte packet (run with -s)."""
    count = 5000
    for suite in SUITES:
        key = _key(suite)
        sender = _sender(suite, key)
        packets = [sender.protect(_rtp(sequence, size=1188)) for sequence in range(count)]
        receiver = SrtpReceiver(suite, key)
        unprotect = receiver.unprotect_rtp
        start = time.process_time()
        for packet in packets:
            unprotect(packet)
        cost = (time.process_time() - start) / count
        print(f"{suite}: {cost * 1e6:.2f} µs per 1200-byte packet")
        # Generous: a loaded CI machine must not fail this, a per-packet regression must.
        assert cost < 50e-6


# -- what a=crypto lines the receiver can use (RFC 4568) ---------------------------------------


@pytest.mark.parametrize(
    ("crypto", "problem"),
    [
        pytest.param(Crypto(1, "AES_CM_128_HMAC_SHA1_80", RFC_KEY), None, id="usable"),
        pytest.param(Crypto(1, "SRTP_AES128_CM_HMAC_SHA1_80", RFC_KEY, 2**20), None, id="lifetime"),
        pytest.param(
            Crypto(
                1,
                "AES_CM_128_HMAC_SHA1_80",
                RFC_KEY,
                None,
                None,
                ("FEC_ORDER=FEC_SRTP", "WSH=256", "-X_VENDOR=1"),
            ),
            None,
            id="ignorable-session-params",
        ),
        pytest.param(
            Crypto(2, "F8_128_HMAC_SHA1_80", RFC_KEY),
            "a=crypto:2: SRTP crypto suite 'F8_128_HMAC_SHA1_80' is not supported (supported: "
            "AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM, AEAD_AES_256_GCM)",
            id="suite",
        ),
        pytest.param(
            Crypto(1, "AEAD_AES_256_GCM", RFC_KEY),
            "a=crypto:1: AEAD_AES_256_GCM takes a 44-byte master key and salt (32 + 12), not 30 "
            "bytes",
            id="key-size",
        ),
        pytest.param(
            Crypto(1, "AES_CM_128_HMAC_SHA1_80", RFC_KEY, 2**20, (1, 4)),
            "a=crypto:1: master key identifiers (MKI) are not supported",
            id="mki",
        ),
        pytest.param(
            Crypto(1, "AES_CM_128_HMAC_SHA1_80", RFC_KEY, None, None, ("KDR=1",)),
            "a=crypto:1: session parameter 'KDR=1' is not supported",
            id="kdr",
        ),
        pytest.param(
            Crypto(1, "AES_CM_128_HMAC_SHA1_80", RFC_KEY, None, None, ("UNENCRYPTED_SRTCP",)),
            "a=crypto:1: session parameter 'UNENCRYPTED_SRTCP' is not supported",
            id="unencrypted",
        ),
    ],
)
def test_crypto_problem(crypto: Crypto, problem: str | None) -> None:
    assert crypto_problem(crypto) == problem


def test_rfc_4568_example_offer() -> None:
    # RFC 4568's example SDP: the first audio line has an MKI, the second an unsupported suite,
    # the video line an MKI ("|1066:4"): nothing there is usable by this receiver.
    session = parse_sdp(RFC_4568_OFFER)
    problems = [crypto_problem(crypto) for media in session.media for crypto in media.crypto]
    assert problems == [
        "a=crypto:1: master key identifiers (MKI) are not supported",
        "a=crypto:2: SRTP crypto suite 'F8_128_HMAC_SHA1_80' is not supported (supported: "
        "AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM, AEAD_AES_256_GCM)",
        "a=crypto:1: master key identifiers (MKI) are not supported",
    ]


RFC_4568_OFFER = "\r\n".join(
    [
        "v=0",
        "o=sam 2890844526 2890842807 IN IP4 10.47.16.5",
        "s=SRTP Discussion",
        "c=IN IP4 168.2.17.12",
        "t=2873397496 2873404696",
        "m=audio 49170 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
        "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP",
        "a=crypto:2 F8_128_HMAC_SHA1_80 "
        "inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;"
        "inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP",
        "m=video 51372 RTP/SAVP 31",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2|1066:4",
        "",
    ]
)


# -- captured: FFmpeg 5.1 srtp:// (AES_CM_128_HMAC_SHA1_80) -----------------------------------
# Produced by
#   ffmpeg -re -f lavfi -i testsrc2=size=96x64:rate=30 -t 0.5 -pix_fmt yuv420p -c:v libvpx
#     -threads 1 -b:v 50k -g 10 -f rtp -payload_type 96 -srtp_out_suite AES_CM_128_HMAC_SHA1_80
#     -srtp_out_params iXrhQssuCJUiqbxOBL2Wx9fWVrMs3n8q41kRmTfv -sdp_file ffmpeg.sdp
#     "srtp://127.0.0.1:PORT?pkt_size=1200"
# received by a UDP socket on PORT (18 SRTP packets, in arrival order) and PORT + 1 (FFmpeg's
# first SRTCP sender report). FFMPEG_SDP is what -sdp_file wrote (the port aside). The same
# command with "-f rtp rtp://..." and no SRTP options gives the VP8 bitstream whose SHA-256 is
# FFMPEG_VP8_SHA256 (libvpx with -threads 1 encodes identically run to run).

FFMPEG_KEY = "iXrhQssuCJUiqbxOBL2Wx9fWVrMs3n8q41kRmTfv"
FFMPEG_SDP = (
    "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=No Name\nc=IN IP4 127.0.0.1\nt=0 0\n"
    "a=tool:libavformat LIBAVFORMAT_VERSION\nm=video 47360 RTP/AVP 96\nb=AS:50\n"
    "a=rtpmap:96 VP8/90000\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + FFMPEG_KEY + "\n"
)
FFMPEG_VP8_SHA256 = "63e1dec328578b480f74ea7bb234432b00f94fd5ea7b3e4da21359d055ea4d3d"


def _packets(text: str) -> list[bytes]:
    """Base64 packets, one paragraph each."""
    return [base64.b64decode("".join(block.split())) for block in text.strip().split("\n\n")]


FFMPEG_SRTP = _packets(
    """
gGAAD/zRi0YCUcaxeiuc6qoJI1FZsrTlKxDEwdtQgxrBC139i0GMECGHOVunjVA7R1gETW06jaavn09V/qs22i77/PhoIH/A
t+e3D5c2xVrUZU8yka2QWA0BJKyO8kst1qFVhWTBEJYm38t71wXLr8rzB5XtncPjhTT2OzlTc/7a8Ug326HnL5IBj42BTl1J
evaNm/aPkFtF5Qcd1c/svWOU7S0xKIDv4nRmuC6Xahu5lEnjWgwc/ElpaOthhj7dV8/zjqIUHSLJ6PIkKT1wWqhMTuezToO3
UexG72WYdN6PPT6KqAHa/4IrP+lW7HoJCNuWVVTq/oklZlkz83o7MZhK6uUUToG5DcdcnLUEbA4wLbbCKeOHoAoa68aEELoM
2yB63ll+BxIqiZ7V4Za7tpABKzx9o5is/3We2/UGpFCGRDshMreH6VaAxRB24j0AxkTZ2lUHeVlshjJvML0dQEGZrUjGtl2a
3CcRBtuywRsRQ+TL5Bg6/+dXGTYY8WyAgdq5PUQ4KUMCgT20eElycLxQ12u4XR2A6zoCuyazCJ3IzbWPSXULcaqsfmH1Ks/7
L6weRPRRZ6mPzE/z/lzB9p1bqF8kBbYUUfjQUoABKxxNeGacgDTUVjDPxlf3WcZpJfLnOa6Un60BJVBrZuDSZmlWP23VGoFX
jLm9TCC8tkax4WTdymUnOoJvx8bbREOhkKHZDWViEBz5XH3vonXViHvDuyrzSfPCUX7OkYtP2qmSUzIZ20qRzAG6j54WuaZY
bx4gAvaT+k8mjxTZ85dccxiFDA76r0BOr2KuPnHBn2BMb0s9/M8FqnhmAZiz6PnOpybTLjL74FBQit+L+zlO7wj5fQFoB+RX
Q/1k+kaSAvY/j2+sWllg+CxXwDkp3OFb3vzU0LdZEJCdOjFOS+gPz2MTYbUSi9eLQw8L36Y9QZI2pzA0EDmZTQh4CIb4OhDo
P7RjZ+zJwxq4hz+rHDEbDw8asW3L4JHXSjDpszjWfsrZHNOzF9tmOZ5Rc/RLqTuZQKh3/pCmNOnrOSJpILN/vZVmwK88n2ZR
EVywH8MOoxq5hqBUvZM4/hVtlJbJ7kyflrFCjHg1h99DFHsEovxi9/FjpVX/XP2A267Np4UTSEuseTpGy9MKj0g4g6ks9jyp
Kdr/2z7pHeT/YGiA6Iukku7+FgZHfO7ZIWHrMvb67n3WUGo21THPjKnHGb1s5b316DFtqie9i0uh55SM4ZzhmVonos6CekJV
jiWCOGpR9LTbLaf0gPeeJ9ehfg2UoaMLtuZPP8wqN3RTm/hJMcRbXh9R418d6XBbJxndVeCEpQaW+QBqg2+nR2RZo1o8+TSG
ZH6nG4/4O7rQuIMHl/kltmVqdvHrk5XkfQmsCYRZ30LTA3lzYkuUxcrb8SaeX5wCAPvrzoIvFSvfxZ9gggsW5TUarNvsIB4R
mp46ZdUkRu3EVRxeBRwSSWhG4Gl6e/vLlw4B016/axAS9tkN6t2hS7cOXaxN8mG7bUnSp3q7RgZyEos4wBmEGCt4AtwiBPZ3
OTm1D31pAf2wGP6/f4HjRJfjzIcRCt5quY3770GI37Cgd07GT2tKwT4RQiQ=

gGAAEPzRi0YCUcaxwBOpXdItGhctgiSX28lAiekzJrVvm7xUckazM4njzAYrCg14AR5VdKQI4i3zIw23E+mCyJH/DrpObXg6
558+633/hrK1KiiLhHCDJ6EH79UB521oQfzAn7/wxZRbqeppsW47LHgAUJHEJp4Nd3GEreCf2XcGCUjERbuzGEQEDod7che8
yFzmWbIteeSSFD6Wj4pQNlLFVg4aGmfxBBVwNaU96VadCqly35CNOHrME/+Nl0MXZAYaTKbr6Jdy3sprLjAmG9/lcLGN4x5D
Cc+yJT3RB8FMt/AhRJ5bg9vQQ8iF6R07sztgg9sUnOFNIbr8L//J5UTFmTQGL//CNYO6hNMWMZSAHE7JcI9Qp3uCLs0Y62tZ
C+MYxbHggegfvE4NkR9jie8zTVK6s2mQxOrQpOoqdgfxHLF+vH6dfbzbFTSaklNR3RrIBX8zMllBUpANC+DrMzs1FTmYQ7ly
YCrsiWXVoMWi3F3MPIFUWUX6u4G4cYN540po7UuWiaocdLlnbiVYm3Qb+0IaZssN3V7nRgI2mxuWtMzNjb+HquoslPVFFEwe
wXNhKXi6nJcnwdvxuU01HV9xeJvN2G9vYYvJ+4Aspxw5Z0YspC347ivrl6vIRGwTDjcczm+wNStdUM5qggVxnvV+/64w1v8h
9WBK9NIQG9JSw99WPJAeLFIPZoKwZGBFMFHmfuTKfPXozmOy5oq0Croh4nlqocVuAQhjRxOW3kOWJGL7I7HTFJ7TIPjYj1VP
ohbakfmUcFiNhvPcN5K2hTvMeBT0x7uKPvNNnblUnZHwQJ0kUmFB00+Zltm/8KdtQ7H+FtIhVF0kic7oahMaN1CVphWNGgJK
iyz33lEGhv8lwuhtMJiU+W/E3htrr++2ED3UGd+35qHJ2miOaaMUs8YJLYG80VTpNSAe2Wey20ISmeD8b+7TvTHLNGcLyPWn
9pEfMPat+LVfVAUkzaR9Fq7fHdA2cVyZDL3lS3zP/Ccup8o/jbLy3R4XwZ23oBJoAEzQg7TM34ai6GPO21NTozVKHQMUazGE
Ma84ltPn/dcF5D03hZPQYqRt31wCGgQIOduBSeKbGY8R1sJ5WXwGh+8FyU9VcO7ZnJxdsA2X7ZtzN1a8GpAXUJqRgeZ1iTB7
+DhQpCF7GE22jmfzVMukumMN3C82ovdW5IAfZARJD6PCMCnG0EvWIcGEZzYFNvbQKVx1+T2cH5TODezbTKmCodRSf2B2akPL
I0+cQLMEzJxdoNck/T66qfDndDkdNqq+hXjn7Pr8wZBbEE3FgD3ayWYx5uNEfv4sAkQubhDKAGyG3V3qt7Y6/Yk4EFh0azBw
EgJLZW5X1zWkBvswINBNiiOG3BsY8hv4mQtbNZzQ6BEZDxJ5vIlJFSg4qQl6hKE74VW5J5bMdgZgGruI5czvbUiRiE1eJanB
wb2forWa5ZGYuFM7sQfa207IoIDB7LU0wF19C74lJoE5DfZjfjpbLFVu95VKbMt++8TwhVnY9K4iDXXir/AxsmfLZW/Zb13k
KXYo6VJvBabAzd0KdXQEUmNUB62pnHABuIUeTQBTg+mFYBNG/1tC4uEmYG8=

gOAAEfzRi0YCUcaxYMIQxjAygpH7B4VLzahaFcHgJrnCsyLlm0gxBH/ZLCME95OinCk9u4S69RaFazuofq03NBX5iDw9JF8B
A6ZLvQf119I9m+X18O+p6A0MTI/3uXsGtCnmASrUn71Fu5bJVfup2UCeV8QpIqm6X7+ol7HqJz+XxYYk3RmUAtp2aSgMacSM
MQYR/yoL6GI=

gOAAEvzRlv4CUcax3IBIVKgXTny8PZMzloztoMqG2gN/hLktBETLqMsQXs35aX7BeRjqQ9mPw1aBXbVq8Ummxjp63fiNZrMy
B+r856t9

gOAAE/zRorYCUcaxGDrXgGcwV7aqeshUO8j2HJKlHGNeySHkQu/0D0qQBZzclHp9S/LSDXfAkDJ1Lq8iYo3uFS4PrPIwM4we
CjCxLdN4MKuZBA==

gOAAFPzRrm4CUcaxZoz8wtDhXIIVbZMLQ3zc4dRUdxD2fS4ffGu3cuILPZ72zBgr4YqtO8yDk8W3SNV3dS/BZ21DuyWudE8N
gV30aQ==

gOAAFfzRuiYCUcaxsIK3ZZuza39ZmPFUPKXHi8TGtfIQMxLe+3HsK1VXtIQnMF03vzoS6L1iaNpFckR0YT9nXndvdcoIaHWK
x07n1qC0tE6B4M5M9M4nUmRxsBMSPg==

gOAAFvzRxd4CUcaxNKNOEN77zbXEkltacO8khosdVtN0WLwn4owVxljNJli+MK/hz6qTNOxnsN8CSgmwE8U85SuH47Ij8es0
H9rg

gOAAF/zR0ZYCUcax6czkh1uok7wezIZyw8h8nVR6CbwJy2dukvmxnD1tN0Nl5JeslRE9sUNyQAocvb81bVpILiJ+oaN9WW7A
YA==

gOAAGPzR3U4CUcaxdOnuMN1M3PaAA6LuM7Js8z81/AbdjZ10t1BJcwFXLmwJY6OQETklhs023JZLuivNsojtiesZ6v0s4C0A
iGiJeICBvSl8WXg8FZK1CiaN/uADM6ECEIE/UanOYsa/VM4XWqHqNhGQ5kfFmaAsAtwWriqvEVvCp0ExsaODi2Pv7/CxTk7P
VYrE2Aj2rSOOKSeM0WaJa3OUir6yg81h/ARGMiDLJFMCbef0+1BKF+VVq5wPktAjSIGpwHDNGThqC+vzpAWeDi3xo1cvJn7e
hazuWTDhVhsSJYChKSSQDd8k6USNmeTrJPqDkvD9QyhARFLe6Bo8sX4UxPTWD8mvactavfTgm39F8KVNOQ==

gOAAGfzR6QYCUcaxT2e5xf0Zy+h9ZJCvfdvV1PKLMZUwWFjQ/MJlvM3d72tz/wuaamwmZAKeUV9pFEAVjuB71cJVmg==

gOAAGvzR9L4CUcaxkzM+e2WRB7KlEm/+Z3G13xyBtq1Sg4M3KvNJsfvjcFPTa7JNTE5YejGIbawMCbIKZEm4wMhhzADTHw==

gGAAG/zSAHYCUcaxwm7JU3uaDWUNP7bBR1nhYSp6nF9cslD+y++vheKSixB6cKerRTxXYW9l/8RSUdmDGrmxx8fYsN+XtzTj
Pa43TkeVcJUBZETGpRvLT8XcjRwuKH93+HE6Pu3HZYFNkgTWPDDndUyh1/gfyjKz3+KbhgzJZKJPgnXYpSuSDisJVDn7jKgM
zm/2Lb8X0VhkneUPGM2tk85z1Nam6WqQM+rUjYE+i6cGMPPIMYzIpiYDYaAxpeZ5IEK+M97ttVumdyy5rMIwDNeoE355IlzC
kMNB5ryM3wcRLrvdfpYuWUZSXZj5nRSZ7kD+3mW+6jugz1jgooezgpSuaW26CzD9zQzM6isivCp+icikA1eJBAiL7KrJEA1P
rqO/abCxzyj9EUCKyg9WhMVkcVaZVwnwfqQhsbOunGP/+K5meNRu7ghPUV3YaR0KCl9c5ZQAp1WWOChGT0GRV4Hj6VwXcH+S
bWl4dvD/tqmcW/kARZzReXX1dtTb8ufNNaZSxGVNIsqO9WBQGrFJxCGRBtj0hEVToadK29dK9N83OycvXV5EDq4ZtPmzAIgj
C7pbcFLdB3BR7nVu5fhW7cKBASWlJAaXabJPJLMTybIAYaWGxDhDtfYfBsHIVjQP9MvasVyKwQFLf6oFQO9XhNpRJLq/SMTG
T6aa7be8FFFAWVCyiZGlZKGBm3nLx81o7QhQYXHj8Y8Gzt2Y7Trz9uCH+kY7ZJR++Pu6XghkMS8oRNhXSAub0dYcP3z2RVVI
4s4Mn6flgHzGUVncP2SU5k08y2ozHyo/SMZEYG8+9ptqdL+OrEufEoZwf2n2fyC9/xzFZY4tsptxV+LFxKXVaYjrYUR25pmK
haPDXrnn2wAUjnMXfIJv7bC4g020t9m91TDflkZpE5inSx6tB37z17+opkguY+fuG+YcFl13/iLqAxQoIV233K0YpnbhYW2T
Ug8HZHlzHsP85hUrBZLTek8Kr/pHJ1enCLc5DJd0wT+l+MD2ZB/SW+f7FcdHkAGbNAumw55lSn558rDZnSXByvIelf7x3kB/
FPZMvy9lOg9vx1RzOsVHQfObHo3Z9R+ME2PsYtQhvMNiWZ8D1KZpHewtrlNPEBDSOI0fZN64JJZC4eqTS2kagtuQNRS+kjQ1
22UXQz3SMYY9CV5Cy9/xFYYvflFs/iYGv6pOSijUv5JBnt5w41FzWVKncxQrDX3ETCjI0WMdjtDvgZnQgN/P7RVWfUfoD05A
UJ9Mw3zsmbD9jwv9YsvUgajHnBJmG1volazImG9rwpZaFLNjn0gpLvo9M4zu6+yTBS3TK2BJFJmLUDKykbyERm49KJ03gK11
6qS+w1KjC40YOR3iInb1uYa9urPL7jkZbF5Sldkvii7DcpQoqcf7pBQnxIoiObIREuwX4e++tVadq1d6qZj0rawStmhQRa+R
0emhoGne+LfZOR0HtoIivIuqBM5ET2/JzDX/UeOYQmmN0YEp4cKcY8i+33tLpR2jOcMRTlMuYuNifRE/syZlp0IGMHTjwpP5
XZEM16p9QJ5IIKicMLaHgsn3Ge0kQJ+TQRi5ltKPRxqopoPpXMex02cJPCE=

gOAAHPzSAHYCUcaxNCtk3+ied2mMAkWa4hxuELco

gOAAHfzSDC4CUcaxZacmDI/rpiFHfBbMdlagIKF9m0QoVzuMTJ4DkRTfkv7RGCTRrL6XjA133Ijw5A3KEwp6M9nyNnvvcPvW
kJaEIkxdh4HM2UoR/w==

gOAAHvzSF+YCUcaxyI5uVvZlWTAUSA1g9OrZ8J9PjJDcPcqLVJfkdAJ+s0ezLO+h/bihL8C7tAg6jBVjdQl7AJFbwjalP+nN
nV1huDfKj9kvc2aT7jjqbsParTxYVsBoxvP8mNU=

gOAAH/zSI54CUcaxUZdsjk8xB3qKmaelQxACXOABhSAtLxWXVxfoE0RwaDZm0sQuOrc=

gOAAIPzSL1YCUcaxjF64rya4lTz/tsRK4YXBH+LwLbNeeTJQJdyZtXymETAFt8SiG9san0ld/Vh8hXV89jPotTO2dabN1a/U
eyucPyZBDVXDzCydPa8IyD7z6AO3R+XY5YLfFg==
"""
)
FFMPEG_SRTCP = _packets(
    """
gMgABgJRxrFXBd2dy98T7BLXdHheZI2Y8vQKdYAAAABVdeeDXQT9I8mG
"""
)

# -- captured: GStreamer 1.22 srtpenc (AEAD_AES_128_GCM) ---------------------------------------
# Produced by
#   gst-launch-1.0 rtpbin name=rb srtpenc name=enc key=GST_KEY_HEX rtp-cipher=aes-128-gcm
#     rtp-auth=null rtcp-cipher=aes-128-gcm rtcp-auth=null videotestsrc is-live=true
#     num-buffers=8 pattern=ball ! video/x-raw,width=96,height=64,framerate=30/1 ! videoconvert
#     ! vp8enc deadline=1 cpu-used=8 target-bitrate=50000 ! rtpvp8pay pt=96 mtu=1200
#     picture-id-mode=15-bit ! rb.send_rtp_sink_0 rb.send_rtp_src_0 ! tee name=t
#     t. ! queue ! enc.rtp_sink_0 enc.rtp_src_0 ! udpsink port=PORT
#     t. ! queue ! udpsink port=PLAIN
#     rb.send_rtcp_src_0 ! enc.rtcp_sink_0 enc.rtcp_src_0 ! udpsink port=PORT+1 sync=false
#     async=false
# received by UDP sockets: 8 SRTP packets, the compound SR + SDES + BYE rtpbin sent at the end,
# and on PLAIN the same RTP packets unencrypted, whose concatenation has GST_PLAIN_SHA256.

GST_KEY_HEX = "a9927d3fc6b996e8a33dd2e8991763f81e244a775920cfbb2915ff21"
GST_KEY_BASE64 = "qZJ9P8a5luijPdLomRdj+B4kSndZIM+7KRX/IQ=="
GST_PLAIN_SHA256 = "2364c01cc0afc82547e54e3b5fb7ed252f54d45680e53836baef142adfff79b8"
GST_SRTP = _packets(
    """
gOAqhskN8ZufY41NsaNryaaGUTKxx+nf2AM/wQxOM4Ov0j9hoGTUZce4yJv3AF9y3oXq4/QH5NUD4BWJbVc/SdEBTooHdLZj
HWWLscZm0wlcNnJL04lU/5+hBBp2LOY+gEmOirF0p6tzPuDuhMJ6WoEbBqiXZWh+2sKJduE147ucffeUWRWXQLsAjmYNe0PL
wZUgTlnuu1R3ceOTeiRi/c/zRVKZ6ionNJZuyQ4V0fS72to20APaem5Nx4peOIWIZFf70X7hMGIeI2T1Jc+GlH8Bg8NFhqbl
xpzFyOPlcoX/uZ09zHAP2Co9cblaGEWqDtH/983c6orlh+XfLljF6jkcoeCw0lwcAEmRTKAJf1MQ3QtGXljK+W+dF0aBa0LG
oNE6tS8XuQFFwlDnQmbjp1ah35VuWC/uTxtKEBixAU6gkH7YaUXWD3S98Q2b1ddsN7FMidsP4eOmYdPU3nRdT5YrYpzjFNyt
8vRiayme767zaNQ+wUlrvkf15f5EhbHm+fZLNdqbQzJIDwZW66SYF5hfv464YJLy3BODcD8kIQs38Z7u9NGNCS3mCa/3QAvT
IapVyEXiopqaumhGjz7kLw7wdKG+BzzPgxV4wXlkl3jBF/S/9JzdL3lGJjT9SH3cpE/EsOwoCsfx02BdRJQwD+n2/AlYPyy0
OjZ/wRTJgr/xOBajqDpXUQuy7BxE/kMfJYtuQBRHd97xJVh+kNNDI+QtVPn/SE/BebePszKqDgT+ffjcq4rL9VVLYMCHFMik
6Eq60RzMUEN9TqAU1JcimzsF6RMnjR62i8V5LklydKZy+Iu4CJk0fuWGgsRuTLB015Pd

gOAqh8kN/VOfY41NhNFdf2O54+Iquby/DJDzqjACCiuG5WTDjhRmSHwydsG1KXCM0sW7rEMFEdjXm07gLbFnUKh9vEDNzA==

gOAqiMkOCQufY41NE0njztj83qbVEzIrNuC2kLle80/RGuAB2J6ujeW9KzgGEURjWPvQDQowT95DxMc/23yrYWOX

gOAqickOFMOfY41Nz+80QmpUYZoW/TxnqAzdlXVh2G5w+3M6dRYbFrXQ546Fide5x+9GVOR4Z4decqGV6/8ozsbtat2VAmwO
Mx9Xgjbvvziuu7WhsxR+bRA=

gOAqiskOIHufY41NwmqGYIxfeZwDchldKuYlpZ8/XZzy8FXjLfjOT+N4peej/WNbxdVgRos4CAjV4IAk2d6weR/BINXt88ef
RAUf31eciAjWdSy2Jw258/jSMjDa4zFbXaL1RPPzWD0J5okbAdsRvmiFUKk5DHABv+E01jkrZ0BWAmmdaAHjKbdQOlu2xNRJ

gOAqi8kOLDOfY41NnBcww0QF9zi+p035apEG3krGHx0otaNnoQ5xIoKifJi2ciNSQPwgrWuMMCUYooQUIbIbyo2J/AslXOt/
z9dpp+I8lJr8L7V5SFu76LfXRrEx2gOo8KvxFSN4KEEQMzlahl533QPRnTGo9col4tRzVKlD8En/zbwWFbfTncpJCHnchi6C
UPJ82HLWKbSLYY61CEomVe6ZOg==

gOAqjMkON+ufY41N/hhCdMW/Msfe4c0PDw1Id7e/zORR7A+RpHWrjqOiMEdnrBVQdbwls5it1PC/ijb0pWPyNvO/Wy9IdTLN
p2cZmzwSwgstVwYWpmvufW6WqIe9HJir+Db8c1YTRljuNyKCmlOoQKstgfLh+Pkgay7qSLrsEURzRK3ebAb8mcs3mq36GAmu
dwr/YAPzFg==

gOAqjckOQ6OfY41Ngx+O0EVV87KtSNz5+KW87qBY+faxmWsWU6ak7ExEe0NVke2hKGiwTmdXXcZ08QIvt8WCK1WrHOpiWGNc
N/PRkBMO4/IUaYaDFtM=
"""
)
GST_SRTCP = _packets(
    """
gMgABp9jjU2AruMTBh+CCR/+8AZ22fnLFId+2HUlopTott0uhG3M3kx8+F+agEOu87RZVGK4sk439FWhIWnfVYiDpZWp/lMT
M3s3P2vLTXvJI/Wp5gLiA6GXc4/P2R+3fOnfeM/i1p+AAAAB
"""
)


def _vp8_bitstream(packets: list[RtpPacket]) -> bytes:
    return b"".join(bytes(p.payload[descriptor_size(p.payload) :]) for p in packets)


def _rtcp_types(data: bytes) -> list[int]:
    types, offset = [], 0
    while offset < len(data):
        types.append(data[offset + 1])
        offset += 4 * (struct.unpack_from("!H", data, offset + 2)[0] + 1)
    assert offset == len(data)
    return types


def test_ffmpeg_capture() -> None:
    (media,) = parse_sdp(FFMPEG_SDP).media
    (crypto,) = media.crypto
    assert crypto_problem(crypto) is None
    receiver = SrtpReceiver(crypto.suite, parse_key(crypto.suite, crypto.key_base64))
    packets = [RtpPacket.parse(receiver.unprotect_rtp(data)) for data in FFMPEG_SRTP]
    assert len(packets) == 18
    assert all(b.sequence == (a.sequence + 1) & 0xFFFF for a, b in pairwise(packets))
    assert {(p.ssrc, p.payload_type) for p in packets} == {(packets[0].ssrc, 96)}
    assert hashlib.sha256(_vp8_bitstream(packets)).hexdigest() == FFMPEG_VP8_SHA256
    (report,) = [receiver.unprotect_rtcp(data) for data in FFMPEG_SRTCP]
    assert _rtcp_types(report) == [200]
    assert struct.unpack_from("!I", report, 4)[0] == packets[0].ssrc


def test_gstreamer_gcm_capture() -> None:
    receiver = SrtpReceiver(AEAD_AES_128_GCM, bytes.fromhex(GST_KEY_HEX))
    plain = [receiver.unprotect_rtp(data) for data in GST_SRTP]
    assert hashlib.sha256(b"".join(plain)).hexdigest() == GST_PLAIN_SHA256
    (report,) = [receiver.unprotect_rtcp(data) for data in GST_SRTCP]
    assert _rtcp_types(report) == [200, 202, 203]  # SR, SDES, BYE


# -- hostile input: only SrtpError gets out, and nothing forged gets through ---------------------

FFMPEG_PLAIN = {}  # filled lazily: captured SRTP/SRTCP packet -> what it decrypts to


def _ffmpeg_plain() -> dict[bytes, bytes]:
    if not FFMPEG_PLAIN:
        receiver = SrtpReceiver(
            AES_CM_128_HMAC_SHA1_80, parse_key(AES_CM_128_HMAC_SHA1_80, FFMPEG_KEY)
        )
        FFMPEG_PLAIN.update((data, receiver.unprotect_rtp(data)) for data in FFMPEG_SRTP)
        FFMPEG_PLAIN.update((data, receiver.unprotect_rtcp(data)) for data in FFMPEG_SRTCP)
    return FFMPEG_PLAIN


@FUZZ
@seeded(b"", b"\x80", bytes(12), FFMPEG_SRTP[0][:12], FFMPEG_SRTCP[0][:8], FFMPEG_SRTP[1] * 2)
@given(mutations([*FFMPEG_SRTP, *FFMPEG_SRTCP]))
def test_fuzz_captured(data: bytes) -> None:
    plain = _ffmpeg_plain()
    for unprotect in ("unprotect_rtp", "unprotect_rtcp"):
        receiver = SrtpReceiver(
            AES_CM_128_HMAC_SHA1_80, parse_key(AES_CM_128_HMAC_SHA1_80, FFMPEG_KEY)
        )
        try:
            result = getattr(receiver, unprotect)(data)
        except SrtpError as error:
            assert error.reason in ("auth", "replay", "other")
        else:
            assert plain.get(data) == result, "only an unchanged packet may get through"


@FUZZ
@given(st.sampled_from(SUITES), st.data())
def test_fuzz_every_suite(suite: str, data: st.DataObject) -> None:
    key = _key(suite)
    sender = _sender(suite, key)
    plain = {
        sender.protect(_rtp(sequence, size=60)): _rtp(sequence, size=60) for sequence in (1, 2)
    }
    plain[sender.protect_rtcp(_sender_report())] = _sender_report()
    packet = data.draw(mutations(list(plain)))
    receiver = SrtpReceiver(suite, key)
    for unprotect in (receiver.unprotect_rtp, receiver.unprotect_rtcp):
        try:
            result = unprotect(packet)
        except SrtpError:
            continue
        assert plain.get(packet) == result


# -- real senders, live over loopback ------------------------------------------------------------

HOST = "127.0.0.1"
SENDER_TIMEOUT = 60


def _udp_sockets(count: int) -> list[socket.socket]:
    """`count` sockets on consecutive ports (senders put RTCP on the RTP port + 1)."""
    for _ in range(100):
        first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        first.bind((HOST, 0))
        port = first.getsockname()[1]
        sockets = [first]
        try:
            for offset in range(1, count):
                other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(other)
                other.bind((HOST, port + offset))
        except OSError:
            for sock in sockets:
                sock.close()
            continue
        for sock in sockets:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        return sockets
    raise AssertionError("no consecutive free UDP ports on loopback")


def _receive(
    command: list[str],
    sockets: list[socket.socket],
    enough: Callable[[list[list[bytes]]], bool] | None = None,
) -> list[list[bytes]]:
    """Run a sender to its end, or until `enough` of what each socket got; that, in order."""
    require(command[0])
    received: list[list[bytes]] = [[] for _ in sockets]
    stopped = False
    with selectors.DefaultSelector() as selector:
        for index, sock in enumerate(sockets):
            selector.register(sock, selectors.EVENT_READ, index)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + SENDER_TIMEOUT
        while time.monotonic() < deadline:
            finished = process.poll() is not None
            events = selector.select(0.2)
            for key, _ in events:
                received[key.data].append(key.fileobj.recv(65536))  # type: ignore[union-attr]
            if finished and not events:
                break
            if not finished and enough is not None and enough(received):
                process.terminate()
                stopped = True
                enough = None  # drain what is already queued, then stop
        else:
            process.kill()
        _, stderr = process.communicate(timeout=10)
    for sock in sockets:
        sock.close()
    assert stopped or process.returncode == 0, stderr.decode(errors="replace")
    return received


# GStreamer srtpenc's cipher/auth properties for each suite. SRTCP keeps its 80-bit tag with
# AES_CM_128_HMAC_SHA1_32 (RFC 3711 section 5.2); AES-GCM authenticates by itself (auth null).
GST_CIPHERS = {
    AES_CM_128_HMAC_SHA1_80: ("aes-128-icm", "hmac-sha1-80", "hmac-sha1-80"),
    AES_CM_128_HMAC_SHA1_32: ("aes-128-icm", "hmac-sha1-32", "hmac-sha1-80"),
    AEAD_AES_128_GCM: ("aes-128-gcm", "null", "null"),
    AEAD_AES_256_GCM: ("aes-256-gcm", "null", "null"),
}


def _gstreamer(suite: str, key: bytes, frames: int) -> str:
    cipher, rtp_auth, rtcp_auth = GST_CIPHERS[suite]
    return (
        f"srtpenc name=enc key={key.hex()} rtp-cipher={cipher} rtp-auth={rtp_auth} "
        f"rtcp-cipher={cipher} rtcp-auth={rtcp_auth} "
        f"videotestsrc is-live=true num-buffers={frames} pattern=ball "
        "! video/x-raw,width=160,height=120,framerate=30/1 ! videoconvert "
        "! vp8enc deadline=1 cpu-used=8 target-bitrate=200000 keyframe-max-dist=10 "
        "! rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit "
    )


@pytest.mark.parametrize("suite", SUITES)
def test_gstreamer_srtpenc(suite: str) -> None:
    # A tee sends every RTP packet both through srtpenc and in the clear.
    key = _key(suite, 3)
    sockets = _udp_sockets(2)
    port = sockets[0].getsockname()[1]
    pipeline = _gstreamer(suite, key, 30) + (
        "! tee name=t "
        f"t. ! queue ! enc.rtp_sink_0 enc.rtp_src_0 ! udpsink host={HOST} port={port} "
        f"t. ! queue ! udpsink host={HOST} port={port + 1}"
    )
    srtp, plain = _receive(["gst-launch-1.0", "-q", *pipeline.split()], sockets)
    receiver = SrtpReceiver(suite, key)
    assert len(srtp) >= 30
    assert [receiver.unprotect_rtp(data) for data in srtp] == plain
    overhead = {len(data) - len(clear) for data, clear in zip(srtp, plain, strict=True)}
    assert overhead == {RTP_OVERHEAD[suite]}
    assert {_reason(receiver.unprotect_rtp, data) for data in srtp} == {"replay"}


@pytest.mark.parametrize("suite", SUITES)
def test_gstreamer_srtcp(suite: str) -> None:
    # rtpbin makes the RTCP; it sometimes hangs at the end of the stream (GStreamer 1.22), so
    # the sender is stopped once it has sent its first report.
    key = _key(suite, 6)
    sockets = _udp_sockets(2)
    port = sockets[0].getsockname()[1]
    pipeline = _gstreamer(suite, key, 300) + (
        "! rtpbin.send_rtp_sink_0 rtpbin name=rtpbin "
        f"rtpbin.send_rtp_src_0 ! enc.rtp_sink_0 enc.rtp_src_0 ! udpsink host={HOST} port={port} "
        "rtpbin.send_rtcp_src_0 ! enc.rtcp_sink_0 enc.rtcp_src_0 "
        f"! udpsink host={HOST} port={port + 1} sync=false async=false"
    )
    srtp, srtcp = _receive(
        ["gst-launch-1.0", "-q", *pipeline.split()],
        sockets,
        enough=lambda received: len(received[0]) >= 10 and len(received[1]) >= 1,
    )
    receiver = SrtpReceiver(suite, key)
    ssrcs = {RtpPacket.parse(receiver.unprotect_rtp(data)).ssrc for data in srtp}
    reports = [receiver.unprotect_rtcp(data) for data in srtcp]
    assert [len(data) - len(report) for data, report in zip(srtcp, reports, strict=True)] == [
        RTCP_OVERHEAD[suite]
    ] * len(srtcp)
    assert all(_rtcp_types(report)[:2] == [200, 202] for report in reports)  # SR, SDES
    assert {struct.unpack_from("!I", report, 4)[0] for report in reports} == ssrcs


def _ffmpeg(suite: str, key_base64: str, url: str, sdp: Path | None) -> list[str]:
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi",
        "-i", "testsrc2=size=160x120:rate=30", "-t", "1", "-pix_fmt", "yuv420p",
        "-c:v", "libvpx", "-threads", "1", "-b:v", "200k", "-g", "10",
        "-f", "rtp", "-payload_type", "96",
    ]  # fmt: skip
    if sdp is not None:
        command += ["-srtp_out_suite", suite, "-srtp_out_params", key_base64, "-sdp_file", str(sdp)]
    return [*command, url]


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "SRTP_AES128_CM_HMAC_SHA1_32"])
def test_ffmpeg_srtp_out(suite: str, tmp_path: Path) -> None:
    key = base64.b64encode(_key(AES_CM_128_HMAC_SHA1_80, 4)).decode()
    sockets = _udp_sockets(2)
    port = sockets[0].getsockname()[1]
    sdp = tmp_path / "ffmpeg.sdp"
    url = f"srtp://{HOST}:{port}?pkt_size=1200"
    srtp, srtcp = _receive(_ffmpeg(suite, key, url, sdp), sockets)
    # The key and suite come from the SDP FFmpeg wrote, as `record --sdp` will take them.
    (media,) = parse_sdp(sdp.read_text()).media
    (crypto,) = media.crypto
    assert (crypto.suite, crypto.key_base64, crypto_problem(crypto)) == (suite, key, None)
    receiver = SrtpReceiver(crypto.suite, parse_key(crypto.suite, crypto.key_base64))
    packets = [RtpPacket.parse(receiver.unprotect_rtp(data)) for data in srtp]
    assert len(packets) >= 30
    assert all(b.sequence == (a.sequence + 1) & 0xFFFF for a, b in pairwise(packets))
    assert srtcp and all(_rtcp_types(receiver.unprotect_rtcp(data))[0] == 200 for data in srtcp)
    # Unencrypted, the same command sends the same VP8 bitstream (cut into other packets: the
    # SRTP tag counts against pkt_size).
    plain_sockets = _udp_sockets(2)
    plain_port = plain_sockets[0].getsockname()[1]
    plain, _ = _receive(
        _ffmpeg(suite, key, f"rtp://{HOST}:{plain_port}?pkt_size=1200", None), plain_sockets
    )
    assert _vp8_bitstream(packets) == _vp8_bitstream([RtpPacket.parse(data) for data in plain])


def test_ffmpeg_sdes_sha1_32_cuts_the_srtcp_tag(tmp_path: Path) -> None:
    # FFmpeg's "AES_CM_128_HMAC_SHA1_32" (unlike its "SRTP_AES128_CM_HMAC_SHA1_32") puts a 32-bit
    # tag on SRTCP too, which RFC 3711 section 5.2 forbids ("for SRTCP, the pre-defined
    # HMAC-SHA1 MUST NOT be applied with a value of n_tag ... smaller than" 80 bits). libsrtp,
    # GStreamer, Janus and mediasoup keep 80 bits: the media decrypts, FFmpeg's SRs do not.
    key = base64.b64encode(_key(AES_CM_128_HMAC_SHA1_32, 5)).decode()
    sockets = _udp_sockets(2)
    port = sockets[0].getsockname()[1]
    url = f"srtp://{HOST}:{port}?pkt_size=1200"
    srtp, srtcp = _receive(_ffmpeg(AES_CM_128_HMAC_SHA1_32, key, url, tmp_path / "f.sdp"), sockets)
    receiver = SrtpReceiver(AES_CM_128_HMAC_SHA1_32, parse_key(AES_CM_128_HMAC_SHA1_32, key))
    assert len([receiver.unprotect_rtp(data) for data in srtp]) >= 30
    assert srtcp and {len(data) for data in srtcp} == {28 + 4 + 4}
    assert {_reason(receiver.unprotect_rtcp, data) for data in srtcp} == {"auth"}
