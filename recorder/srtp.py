"""SRTP and SRTCP (RFC 3711; AES-GCM: RFC 7714) through pylibsrtp, which wraps libsrtp 2.

Keys are what RFC 4568 `a=crypto` lines, Janus `srtp_crypto` and mediasoup
`srtpParameters.keyBase64` carry: base64 of the master key followed by the master salt.

    RecorderError
    ├── MalformedPacket
    │   └── SrtpError     a packet that failed unprotection; `reason` says why
    └── SrtpKeyError      a suite or key this receiver cannot use

`SrtpReceiver.unprotect_rtp` / `unprotect_rtcp` are on the per-packet path: one pylibsrtp
call each, and Python work only when a packet fails. Measured here (Python 3.11, pylibsrtp
1.0.0 / libsrtp 2.7.0, one core) for 1200-byte packets, CPU time per packet including
pylibsrtp's copies into and out of its buffer: 2.5-2.7 µs with AES_CM_128_HMAC_SHA1_80 or _32,
1.7-2.3 µs with the AES-GCM suites; this wrapper adds under 0.1 µs to calling pylibsrtp
directly (`tests/test_srtp.py::test_cost_per_packet` prints the figures with `-s`).
"""

from __future__ import annotations

import binascii
import re
from typing import TYPE_CHECKING

from pylibsrtp import Error as LibsrtpError
from pylibsrtp import Policy, Session

from recorder.errors import MalformedPacket, RecorderError

if TYPE_CHECKING:
    from recorder.sdp import Crypto

AES_CM_128_HMAC_SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
AES_CM_128_HMAC_SHA1_32 = "AES_CM_128_HMAC_SHA1_32"
AEAD_AES_128_GCM = "AEAD_AES_128_GCM"
AEAD_AES_256_GCM = "AEAD_AES_256_GCM"

# Suite name (RFC 4568 section 6.2, RFC 7714 section 14.2) → (libsrtp profile, master key
# bytes, master salt bytes). mediasoup's `cryptoSuite` values are exactly these names.
_SUITES: dict[str, tuple[int, int, int]] = {
    AES_CM_128_HMAC_SHA1_80: (Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
    AES_CM_128_HMAC_SHA1_32: (Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 16, 14),
    AEAD_AES_128_GCM: (Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
    AEAD_AES_256_GCM: (Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 32, 12),
}
SUITES = tuple(_SUITES)

# Other spellings of the same suites. The DTLS-SRTP protection profile names (RFC 5764
# section 4.1.2, RFC 7714 section 14.2): FFmpeg accepts them for -srtp_out_suite and writes
# whatever it was given into the a=crypto line of its -sdp_file. ABNF quoted strings are
# case-insensitive (RFC 5234 section 2.3), so names are compared in upper case.
_ALIASES = {
    "SRTP_AES128_CM_HMAC_SHA1_80": AES_CM_128_HMAC_SHA1_80,
    "SRTP_AES128_CM_HMAC_SHA1_32": AES_CM_128_HMAC_SHA1_32,
    "SRTP_AEAD_AES_128_GCM": AEAD_AES_128_GCM,
    "SRTP_AEAD_AES_256_GCM": AEAD_AES_256_GCM,
}
# Janus `rtp_forward` names its suite by the RTP tag length in bits (`srtp_suite`: 32 or 80)
# and supports only AES-CM there.
JANUS_SUITES = {32: AES_CM_128_HMAC_SHA1_32, 80: AES_CM_128_HMAC_SHA1_80}

# libsrtp's default replay window is 128 packets (RFC 3711 section 3.3.2 asks for at least
# 64). A packet further behind than the window is refused as a replay, so the window must be
# wider than the reorder buffer (recorder.stream.REORDER_WINDOW, 256 packets): a packet the
# stream would still take in order must not be dropped here first. libsrtp allows up to 32767.
REPLAY_WINDOW = 1024

# pylibsrtp's Error carries only libsrtp's message text (srtp_err_status_t as a string).
_REASONS = {
    "authentication failure": "auth",  # srtp_err_status_auth_fail (tag or AEAD check)
    # srtp_err_status_cant_check: an SRTCP packet whose E flag says "not encrypted" while every
    # suite here encrypts. The flag is covered by the tag, so a genuine packet never has it:
    # libsrtp refuses before checking the tag, and such a packet is counted as a forgery.
    "unable to perform desired validation": "auth",
    "replay check failed (bad index)": "replay",  # srtp_err_status_replay_fail
    "replay check failed (index too old)": "replay",  # srtp_err_status_replay_old
}
# pylibsrtp copies every packet into one fixed buffer per session and refuses longer input.
MAX_PACKET_SIZE = 1500

_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class SrtpError(MalformedPacket):
    """An SRTP/SRTCP packet that failed unprotection (or an RTCP packet protection refused).

    `reason` is "auth" (the authentication tag or AEAD check failed: a forged, corrupted or
    wrongly keyed packet), "replay" (its index was already received, or is older than the
    replay window) or "other" (too short, too long, or otherwise not SRTP). libsrtp checks the
    replay list before the tag (RFC 3711 section 3.3, step 4), so a corrupted copy of a packet
    already received is reported as a replay.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SrtpKeyError(RecorderError):
    """A crypto suite this receiver does not implement, or a key that does not fit it."""


def canonical_suite(name: str) -> str:
    """The RFC 4568 / RFC 7714 name of a suite given by any accepted spelling."""
    upper = name.upper()
    if upper in _SUITES:
        return upper
    alias = _ALIASES.get(upper)
    if alias is None:
        raise SrtpKeyError(
            f"SRTP crypto suite {name!r} is not supported (supported: {', '.join(SUITES)})"
        )
    return alias


def key_size(suite: str) -> int:
    """Bytes of master key ‖ master salt the suite takes (30, 28 or 44)."""
    _, key, salt = _SUITES[canonical_suite(suite)]
    return key + salt


def parse_key(suite: str, key_base64: str) -> bytes:
    """Decode a base64 master key ‖ salt and check its length against the suite.

    Padding may be left out (it carries no information). The key itself never appears in an
    error message: messages end up in logs.
    """
    name = canonical_suite(suite)
    text = key_base64.strip()
    if not _BASE64.fullmatch(text) or len(text) % 4 == 1:
        raise SrtpKeyError(f"{name} key is not base64 (RFC 4648 section 4 alphabet)")
    try:
        key = binascii.a2b_base64(text + "=" * (-len(text) % 4), strict_mode=True)
    except binascii.Error:
        raise SrtpKeyError(f"{name} key is not valid base64") from None
    _check_key(name, key)
    return key


def crypto_problem(crypto: Crypto) -> str | None:
    """Why `SrtpReceiver` cannot use an SDP a=crypto line; None when it can."""
    try:
        parse_key(crypto.suite, crypto.key_base64)
    except SrtpKeyError as error:
        return f"a=crypto:{crypto.tag}: {error}"
    if crypto.mki is not None:
        # libsrtp 2 could take an MKI, but pylibsrtp has no way to configure one.
        return f"a=crypto:{crypto.tag}: master key identifiers (MKI) are not supported"
    for param in crypto.session_params:
        name = param.partition("=")[0].upper()
        # RFC 4568 section 6.3: FEC_ORDER and FEC_KEY only matter with FEC, which the
        # recorder does not use, and WSH is a hint for a window that is already wider. KDR,
        # UNENCRYPTED_* and UNAUTHENTICATED_SRTP change the transform itself, which pylibsrtp
        # cannot; an unknown parameter can be ignored only when it starts with "-".
        if name not in ("FEC_ORDER", "FEC_KEY", "WSH") and not name.startswith("-"):
            return f"a=crypto:{crypto.tag}: session parameter {param!r} is not supported"
    return None


class SrtpReceiver:
    """Unprotects one sender's SRTP and SRTCP, and protects the RTCP sent back to it.

    Streams are created per SSRC from one key (libsrtp's "any inbound" template), and only
    after a packet authenticates, so forged packets with random SSRCs allocate nothing.

    The RTCP the recorder sends (RR, PLI, FIR) is an outbound stream of the recorder's own
    SSRC, protected with `send_key` when the peer gave the recorder a separate key for that
    direction (RFC 4568 keys are per direction: mediasoup's PlainTransport decrypts what it
    receives with the key passed to `connect()`), else with the sender's key, as FFmpeg,
    GStreamer and Janus do with their single key. Sharing the master key across directions
    is safe because every keystream (AES-CM, RFC 3711 section 4.1.1) and every GCM nonce
    (RFC 7714 sections 8.1 and 9.1) is derived from the SSRC together with the packet index,
    and RTP and RTCP use separate session keys: RFC 3711 section 9.1 lets streams of one RTP
    session share a master key as long as their SSRCs differ. The caller must therefore give
    its RTCP an SSRC that none of the sender's streams uses.
    """

    __slots__ = ("_protect_rtcp", "_unprotect_rtcp", "_unprotect_rtp", "suite")

    def __init__(
        self,
        suite: str,
        key: bytes,
        *,
        send_key: bytes | None = None,
        replay_window: int = REPLAY_WINDOW,
    ) -> None:
        self.suite = canonical_suite(suite)
        _check_key(self.suite, key)
        if send_key is not None:
            _check_key(self.suite, send_key)
        profile = _SUITES[self.suite][0]
        inbound = Session(_policy(profile, key, Policy.SSRC_ANY_INBOUND, replay_window))
        outbound = Session(
            _policy(profile, key if send_key is None else send_key, Policy.SSRC_ANY_OUTBOUND)
        )
        # Bound methods: one attribute load per packet, and they keep the sessions alive.
        self._unprotect_rtp = inbound.unprotect
        self._unprotect_rtcp = inbound.unprotect_rtcp
        self._protect_rtcp = outbound.protect_rtcp

    def __repr__(self) -> str:
        return f"SrtpReceiver({self.suite})"

    def unprotect_rtp(self, data: bytes) -> bytes:
        """The RTP packet inside an SRTP packet; `SrtpError` if it must be dropped."""
        try:
            return self._unprotect_rtp(data)
        except LibsrtpError as error:
            raise _failure("SRTP", error) from None
        except (ValueError, TypeError):
            if type(data) is not bytes:
                return self.unprotect_rtp(bytes(data))
            raise _too_long("SRTP", data) from None

    def unprotect_rtcp(self, data: bytes) -> bytes:
        """The compound RTCP packet inside an SRTCP packet; `SrtpError` if it must be dropped."""
        try:
            return self._unprotect_rtcp(data)
        except LibsrtpError as error:
            raise _failure("SRTCP", error) from None
        except (ValueError, TypeError):
            if type(data) is not bytes:
                return self.unprotect_rtcp(bytes(data))
            raise _too_long("SRTCP", data) from None

    def protect_rtcp(self, data: bytes) -> bytes:
        """An SRTCP packet for a compound RTCP packet the recorder sends."""
        try:
            return self._protect_rtcp(bytes(data))
        except LibsrtpError as error:
            raise _failure("SRTCP", error) from None
        except ValueError:
            raise SrtpError("other", f"RTCP packet of {len(data)} bytes is too long") from None


def _check_key(suite: str, key: bytes) -> None:
    _, key_bytes, salt_bytes = _SUITES[suite]
    size = key_bytes + salt_bytes
    if len(key) != size:
        raise SrtpKeyError(
            f"{suite} takes a {size}-byte master key and salt ({key_bytes} + {salt_bytes}), "
            f"not {len(key)} bytes"
        )


def _policy(profile: int, key: bytes, ssrc_type: int, window: int | None = None) -> Policy:
    policy = Policy(key=bytes(key), ssrc_type=ssrc_type, srtp_profile=profile)
    if window is not None:
        policy.window_size = window
    return policy


def _failure(kind: str, error: LibsrtpError) -> SrtpError:
    message = str(error)
    reason = _REASONS.get(message, "other")
    return SrtpError(reason, f"{kind} packet rejected ({reason}): {message}")


def _too_long(kind: str, data: bytes) -> SrtpError:
    return SrtpError(
        "other", f"{kind} packet of {len(data)} bytes is longer than {MAX_PACKET_SIZE}"
    )
