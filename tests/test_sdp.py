"""Session descriptions: RFC 8866 m= / a=rtpmap / a=fmtp, RFC 3605 a=rtcp, RFC 5761 a=rtcp-mux,
RFC 4568 a=crypto.

The captured SDPs are the fixtures' own (GStreamer's written by the fixture script, FFmpeg's by
`-sdp_file`, both CRLF); the invented ones are what browsers and SFUs send.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from recorder.errors import SdpError
from recorder.sdp import (
    Crypto,
    MediaDescription,
    RtpFormat,
    SessionDescription,
    load_sdp,
    parse_sdp,
)
from tests.fuzzing import FUZZ, mutations, seeded
from tests.vectors import FIXTURES


def _sdp(*lines: str, end: str = "\r\n") -> str:
    return end.join(lines) + end


HEAD = ("v=0", "o=- 0 0 IN IP4 127.0.0.1", "s=-", "t=0 0")


# -- RFC 8866 sections 5.14 and 6.6: the fixture SDPs (captured) -----------------------------


@pytest.mark.parametrize(
    ("capture", "video_port", "audio_port"),
    [pytest.param("gst", 5004, 5006, id="gst"), pytest.param("ffmpeg", 5008, 5010, id="ffmpeg")],
)
def test_fixture_sdp(capture: str, video_port: int, audio_port: int) -> None:
    path = FIXTURES / f"{capture}.sdp"
    assert b"\r\n" in path.read_bytes()
    assert load_sdp(path) == SessionDescription(
        [
            MediaDescription(
                "video", video_port, "RTP/AVP", {96: RtpFormat(96, "VP8", 90000, None, {})}
            ),
            MediaDescription(
                "audio",
                audio_port,
                "RTP/AVP",
                {111: RtpFormat(111, "OPUS", 48000, 2, {"sprop-stereo": "1"})},
            ),
        ]
    )


def test_ffmpeg_sdp_quirks_are_there_and_harmless() -> None:
    # fixtures/README.md: per-media c= lines and an unexpanded a=tool line at session level.
    text = (FIXTURES / "ffmpeg.sdp").read_text()
    assert "a=tool:libavformat LIBAVFORMAT_VERSION" in text
    assert text.count("c=IN IP4") == 2
    assert [(m.kind, m.port) for m in parse_sdp(text).media] == [("video", 5008), ("audio", 5010)]


# -- RFC 8866 and RFC 8829 (JSEP): a browser's offer (invented) -------------------------------

BROWSER_OFFER = _sdp(
    *HEAD,
    "a=group:BUNDLE 0 1 2",
    "a=rtcp-mux",  # session level: not an attribute of any section
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=rtcp-mux",
    "a=fmtp:111 minptime=10;useinbandfec=1",  # fmtp before its rtpmap
    "a=rtpmap:111 opus/48000/2",
    "a=rtpmap:63 red/48000/2",
    "a=fmtp:63 111/111",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:13 CN/8000",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
    "c=IN IP4 0.0.0.0",
    "a=rtpmap:96 VP8/90000",  # rtpmap before its fmtp
    "a=rtcp-fb:96 nack",
    "a=fmtp:96 max-fr=30; max-fs=3600",
    "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "c=IN IP4 0.0.0.0",
    "a=sctp-port:5000",
)


def test_browser_offer() -> None:
    audio, video, data = parse_sdp(BROWSER_OFFER).media
    assert (audio.kind, audio.port, audio.protocol) == ("audio", 9, "UDP/TLS/RTP/SAVPF")
    assert (audio.rtcp_port, audio.rtcp_mux) == (9, True)
    assert list(audio.formats) == [111, 63, 9, 0, 8, 13], "m= line order is kept"
    assert audio.formats[111] == RtpFormat(
        111, "OPUS", 48000, 2, {"minptime": "10", "useinbandfec": "1"}
    )
    assert audio.formats[63] == RtpFormat(63, "RED", 48000, 2, {"111/111": ""})
    assert audio.formats[9] == RtpFormat(9, "G722", 8000)
    assert audio.formats[13] == RtpFormat(13, "CN", 8000)
    assert (video.rtcp_port, video.rtcp_mux) == (None, False)
    assert video.formats == {
        96: RtpFormat(96, "VP8", 90000, None, {"max-fr": "30", "max-fs": "3600"}),
        97: RtpFormat(97, "RTX", 90000, None, {"apt": "96"}),
    }
    assert data == MediaDescription("application", 9, "UDP/DTLS/SCTP", {})


# RFC 3551 section 6: static payload types need no rtpmap; the parser leaves them unnamed.
def test_static_payload_types_without_rtpmap() -> None:
    (audio,) = parse_sdp(_sdp(*HEAD, "m=audio 5004 RTP/AVP 0 8")).media
    assert audio.formats == {0: RtpFormat(0, "", 0), 8: RtpFormat(8, "", 0)}


# RFC 3605 section 2.1: a=rtcp:<port> [<nettype> <addrtype> <address>]
@pytest.mark.parametrize(
    ("line", "port"),
    [
        pytest.param("a=rtcp:5007", 5007, id="port-only"),
        pytest.param("a=rtcp:53020 IN IP4 126.16.64.4", 53020, id="with-address"),
    ],
)
def test_rtcp_attribute(line: str, port: int) -> None:
    (video,) = parse_sdp(_sdp(*HEAD, "m=video 5004 RTP/AVP 96", line)).media
    assert (video.rtcp_port, video.rtcp_mux) == (port, False)


# RFC 8866 section 5.14: m=<media> <port>/<number of ports> <proto> <fmt> ...
def test_port_with_number_of_ports() -> None:
    (video,) = parse_sdp(_sdp(*HEAD, "m=video 5004/2 RTP/AVP 96")).media
    assert video.port == 5004


@pytest.mark.parametrize("port", [0, 65535])
def test_port_range_edges(port: int) -> None:
    (video,) = parse_sdp(_sdp(*HEAD, f"m=video {port} RTP/AVP 96")).media
    assert video.port == port


@pytest.mark.parametrize("payload_type", [0, 127])
def test_payload_type_range_edges(payload_type: int) -> None:
    (video,) = parse_sdp(_sdp(*HEAD, f"m=video 5004 RTP/AVP {payload_type}")).media
    assert list(video.formats) == [payload_type]


# RFC 8866 section 6.6: encoding names are case-insensitive; fmtp parameter names too
# (RFC 7587 section 6.1, RFC 7741 section 6.1 define them in lower case).
def test_names_are_normalized() -> None:
    text = _sdp(
        *HEAD,
        "m=AUDIO 5006 RTP/AVP 111",
        "a=rtpmap:111 Opus/48000/2",
        "a=fmtp:111 SPROP-STEREO=1; Stereo=0",
    )
    (audio,) = parse_sdp(text).media
    assert audio.kind == "audio"
    assert audio.formats[111] == RtpFormat(
        111, "OPUS", 48000, 2, {"sprop-stereo": "1", "stereo": "0"}
    )


@pytest.mark.parametrize(
    ("fmtp", "params"),
    [
        pytest.param("a=fmtp:96", {}, id="no-parameters"),
        pytest.param("a=fmtp:96 ", {}, id="trailing-space"),
        pytest.param("a=fmtp:96 a=1;b;c=", {"a": "1", "b": "", "c": ""}, id="flags"),
        pytest.param("a=fmtp:96 a=1;;b=2;", {"a": "1", "b": "2"}, id="empty-items"),
        pytest.param("a=fmtp:96 profile-id=0; x = y", {"profile-id": "0", "x": "y"}, id="spaces"),
    ],
)
def test_fmtp_parameters(fmtp: str, params: dict[str, str]) -> None:
    (video,) = parse_sdp(
        _sdp(*HEAD, "m=video 5004 RTP/AVP 96", "a=rtpmap:96 VP8/90000", fmtp)
    ).media
    assert video.formats[96].fmtp == params


def test_fmtp_for_an_unknown_payload_type_is_ignored() -> None:
    text = _sdp(*HEAD, "m=video 5004 RTP/AVP 96", "a=rtpmap:96 VP8/90000", "a=fmtp:98 x=1")
    (video,) = parse_sdp(text).media
    assert video.formats == {96: RtpFormat(96, "VP8", 90000)}


def test_attributes_belong_to_their_own_section() -> None:
    text = _sdp(
        *HEAD,
        "a=rtpmap:96 H264/90000",  # session level: ignored
        "a=fmtp:96 x=session",
        "m=video 5004 RTP/AVP 96",
        "a=rtpmap:96 VP8/90000",
        "a=fmtp:96 x=first",
        "m=video 5008 RTP/AVP 96",
        "a=rtpmap:96 VP8/90000",
        "a=fmtp:96 x=second",
        "a=rtcp-mux",
    )
    first, second = parse_sdp(text).media
    assert first.formats[96].fmtp == {"x": "first"}
    assert second.formats[96].fmtp == {"x": "second"}
    assert (first.rtcp_mux, second.rtcp_mux) == (False, True)


@pytest.mark.parametrize("end", ["\r\n", "\n", "\r"])
def test_line_endings_and_noise_lines(end: str) -> None:
    text = _sdp(
        *HEAD,
        "",
        "not an sdp line",
        "  m=video 5004 RTP/AVP 96  ",
        "a=rtpmap:96   VP8/90000",
        "x",
        end=end,
    )
    (video,) = parse_sdp(text).media
    assert video.formats == {96: RtpFormat(96, "VP8", 90000)}


# -- RFC 8866: unusable descriptions, exact reasons (invented) --------------------------------
# HEAD is lines 1-4, so the first line after it is line 5.

MALFORMED = [
    pytest.param("", "SDP has no m= line", id="empty"),
    pytest.param(_sdp(*HEAD, "a=rtpmap:96 VP8/90000"), "SDP has no m= line", id="no-m-line"),
    pytest.param(
        _sdp(*HEAD, "m=audio 5004"),
        "SDP line 5: m= line needs media, port and protocol",
        id="m-line-short",
    ),
    pytest.param(
        _sdp(*HEAD, "m=audio abc RTP/AVP 0"),
        "SDP line 5: m= port 'abc' is not a number",
        id="port-not-a-number",
    ),
    pytest.param(
        _sdp(*HEAD, "m=audio /2 RTP/AVP 0"),
        "SDP line 5: m= port '' is not a number",
        id="port-empty",
    ),
    pytest.param(
        _sdp(*HEAD, "m=audio 65536 RTP/AVP 0"),
        "SDP line 5: m= port 65536 is out of range",
        id="port-65536",
    ),
    pytest.param(
        _sdp(*HEAD, "m=audio -1 RTP/AVP 0"),
        "SDP line 5: m= port '-1' is not a number",
        id="port-negative",
    ),
    pytest.param(
        _sdp(*HEAD, "m=audio 5004 RTP/AVP 0 pcmu"),
        "SDP line 5: m= payload type 'pcmu' is not a number",
        id="payload-type-not-a-number",
    ),
    pytest.param(
        _sdp(*HEAD, "m=audio 5004 RTP/AVP 128"),
        "SDP line 5: m= payload type 128 is not 0-127",
        id="payload-type-128",
    ),
    pytest.param(
        _sdp(*HEAD, "m=audio 5004 RTP/AVP 0", "m=video 5006 RTP/AVP -1"),
        "SDP line 6: m= payload type '-1' is not a number",
        id="payload-type-negative-second-section",
    ),
    pytest.param(
        _sdp(*HEAD, "m=video 5004 RTP/AVP 96", "a=rtpmap:x VP8/90000"),
        "SDP line 6: a=rtpmap payload type 'x' is not a number",
        id="rtpmap-payload-type",
    ),
    pytest.param(
        _sdp(*HEAD, "m=video 5004 RTP/AVP 96", "a=rtpmap:96 VP8"),
        "SDP line 6: a=rtpmap needs <encoding>/<clock rate>",
        id="rtpmap-no-clock-rate",
    ),
    pytest.param(
        _sdp(*HEAD, "m=video 5004 RTP/AVP 96", "a=rtpmap:96"),
        "SDP line 6: a=rtpmap needs <encoding>/<clock rate>",
        id="rtpmap-nothing",
    ),
    pytest.param(
        _sdp(*HEAD, "m=video 5004 RTP/AVP 96", "a=rtpmap:96 /90000"),
        "SDP line 6: a=rtpmap needs <encoding>/<clock rate>",
        id="rtpmap-no-encoding",
    ),
    pytest.param(
        _sdp(*HEAD, "m=video 5004 RTP/AVP 96", "a=rtpmap:96 VP8/fast"),
        "SDP line 6: a=rtpmap clock rate 'fast' is not a number",
        id="rtpmap-clock-rate-not-a-number",
    ),
    pytest.param(
        _sdp(*HEAD, "m=video 5004 RTP/AVP 96", "a=rtpmap:96 VP8/0"),
        "SDP line 6: a=rtpmap clock rate must be positive",
        id="rtpmap-clock-rate-0",
    ),
    pytest.param(
        _sdp(*HEAD, "m=audio 5004 RTP/AVP 111", "a=rtpmap:111 opus/48000/two"),
        "SDP line 6: a=rtpmap channels 'two' is not a number",
        id="rtpmap-channels",
    ),
    pytest.param(
        _sdp(*HEAD, "m=audio 5004 RTP/AVP 111", "a=fmtp:opus x=1", "a=rtpmap:111 opus/48000/2"),
        "SDP line 6: a=fmtp payload type 'opus' is not a number",
        id="fmtp-payload-type",
    ),
    pytest.param(
        _sdp(*HEAD, "m=audio 5004 RTP/AVP 111", "a=rtcp:odd"),
        "SDP line 6: a=rtcp port 'odd' is not a number",
        id="rtcp-port-not-a-number",
    ),
    pytest.param(
        _sdp(*HEAD, "m=audio 5004 RTP/AVP 111", "a=rtcp:"),
        "SDP line 6: a=rtcp port '' is not a number",
        id="rtcp-port-empty",
    ),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(SdpError) as raised:
        parse_sdp(text)
    assert str(raised.value) == message


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.sdp"
    with pytest.raises(SdpError) as raised:
        load_sdp(path)
    assert str(raised.value) == f"cannot read SDP {path}: No such file or directory"


# RFC 3550 section 5.1: a payload type is 7 bits, on the m= line and in a=rtpmap alike.
def test_rtpmap_payload_type_out_of_range() -> None:
    with pytest.raises(SdpError, match="a=rtpmap payload type 200 is not 0-127"):
        parse_sdp(_sdp(*HEAD, "m=video 5004 RTP/AVP 96", "a=rtpmap:200 VP8/90000"))


# RFC 3605 section 2.1: the a=rtcp port is a UDP port like the m= one.
def test_rtcp_port_out_of_range() -> None:
    with pytest.raises(SdpError, match="a=rtcp port 70000 is out of range"):
        parse_sdp(_sdp(*HEAD, "m=video 5004 RTP/AVP 96", "a=rtcp:70000"))


# RFC 8866 section 6.6: an rtpmap describes a format of its own m= line (invented).
def test_rtpmap_for_an_unlisted_payload_type_is_ignored() -> None:
    session = parse_sdp(_sdp(*HEAD, "m=video 5004 RTP/AVP 96", "a=rtpmap:97 VP8/90000"))
    assert list(session.media[0].formats) == [96]
    assert session.media[0].formats[96].encoding == ""


# RFC 8866 section 9 grammar: integers are ASCII digits only (invented).
@pytest.mark.parametrize("port", ["+5004", "5_004", "\u0665\u0660\u0660\u0664"])
def test_integers_are_plain_digits(port: str) -> None:
    with pytest.raises(SdpError, match="is not a number"):
        parse_sdp(_sdp(*HEAD, f"m=video {port} RTP/AVP 96"))


# RFC 3264 section 6: a media section with port 0 is rejected / disabled (invented).
def test_disabled_sections_are_not_recorded() -> None:
    from recorder.ingest import recorded_sections

    session = parse_sdp(
        _sdp(*HEAD, "m=video 0 RTP/AVP 96", "a=rtpmap:96 VP8/90000", "m=audio 5006 RTP/AVP 111",
             "a=rtpmap:111 opus/48000/2")
    )  # fmt: skip
    assert [media.kind for media, _ in recorded_sections(session.media)] == ["audio"]


# -- RFC 4568: a=crypto, SRTP keys per media section --------------------------------------------

# RFC 4568's example offer (its audio section has two crypto lines, the second with two keys).
RFC_4568_OFFER = _sdp(
    "v=0",
    "o=sam 2890844526 2890842807 IN IP4 10.47.16.5",
    "s=SRTP Discussion",
    "i=A discussion of Secure RTP",
    "u=http://www.example.com/seminars/srtp.pdf",
    "e=marge@example.com (Marge Simpson)",
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
)


def test_rfc_4568_example_offer() -> None:
    audio, video = parse_sdp(RFC_4568_OFFER).media
    assert audio.crypto == [
        Crypto(
            1,
            "AES_CM_128_HMAC_SHA1_80",
            "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
            2**20,
            (1, 4),
            ("FEC_ORDER=FEC_SRTP",),
        ),
        Crypto(
            2,
            "F8_128_HMAC_SHA1_80",
            "MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm",
            2**20,
            (1, 4),
            ("FEC_ORDER=FEC_SRTP",),
            key_count=2,
        ),
    ]
    # A single field after the key is the MKI when it has the MKI's colon (no lifetime here).
    assert video.crypto == [
        Crypto(
            1,
            "AES_CM_128_HMAC_SHA1_80",
            "YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2",
            None,
            (1066, 4),
        )
    ]


# Captured: what FFmpeg 5.1 writes with -sdp_file for
# `-srtp_out_suite SRTP_AES128_CM_HMAC_SHA1_32 -srtp_out_params <key> srtp://127.0.0.1:5999`.
FFMPEG_SRTP_SDP = _sdp(
    "v=0",
    "o=- 0 0 IN IP4 127.0.0.1",
    "s=No Name",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "a=tool:libavformat LIBAVFORMAT_VERSION",
    "m=video 5999 RTP/AVP 96",
    "b=AS:256",
    "a=rtpmap:96 VP8/90000",
    "a=crypto:1 SRTP_AES128_CM_HMAC_SHA1_32 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
    end="\n",
)


def test_ffmpeg_srtp_sdp() -> None:
    # FFmpeg keeps RTP/AVP on an SRTP stream and writes the suite as it was given.
    (video,) = parse_sdp(FFMPEG_SRTP_SDP).media
    assert (video.protocol, video.formats) == ("RTP/AVP", {96: RtpFormat(96, "VP8", 90000)})
    assert video.crypto == [
        Crypto(1, "SRTP_AES128_CM_HMAC_SHA1_32", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd")
    ]


@pytest.mark.parametrize(
    ("key_params", "lifetime", "mki"),
    [
        pytest.param("inline:KEY", None, None, id="key-only"),
        pytest.param("inline:KEY|2^31", 2**31, None, id="power-of-two"),
        pytest.param("inline:KEY|1048576", 1048576, None, id="decimal"),
        pytest.param("inline:KEY|2^64", 2**64, None, id="largest"),
        pytest.param("inline:KEY|1:1", None, (1, 1), id="mki-only"),
        pytest.param("inline:KEY|2^20|255:1", 2**20, (255, 1), id="both"),
        pytest.param("inline:KEY|2^20|7:128", 2**20, (7, 128), id="longest-mki"),
        pytest.param("INLINE:KEY", None, None, id="method-case"),
    ],
)
def test_crypto_key_params(
    key_params: str, lifetime: int | None, mki: tuple[int, int] | None
) -> None:
    key = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
    line = f"a=crypto:7 AEAD_AES_128_GCM {key_params.replace('KEY', key)}"
    (audio,) = parse_sdp(_sdp(*HEAD, "m=audio 5004 RTP/SAVP 111", line)).media
    assert audio.crypto == [Crypto(7, "AEAD_AES_128_GCM", key, lifetime, mki)]


def test_crypto_lines_keep_their_order_and_section() -> None:
    text = _sdp(
        *HEAD,
        "a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:c2Vzc2lvbg==",  # session level: ignored
        "m=audio 5004 RTP/SAVP 111",
        "a=crypto:3 AEAD_AES_256_GCM\tinline:YWFh  UNENCRYPTED_SRTCP   KDR=0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:YmJi",
        "m=video 5006 RTP/SAVP 96",
        "m=video 5008 RTP/AVP 96",
        "a=crypto:0 AES_CM_128_HMAC_SHA1_80 inline:Y2Nj",
    )
    audio, video, other = parse_sdp(text).media
    assert [(c.tag, c.suite, c.key_base64, c.session_params) for c in audio.crypto] == [
        (3, "AEAD_AES_256_GCM", "YWFh", ("UNENCRYPTED_SRTCP", "KDR=0")),
        (1, "AES_CM_128_HMAC_SHA1_32", "YmJi", ()),
    ]
    assert video.crypto == []
    assert [c.tag for c in other.crypto] == [0]


def test_crypto_repr_leaves_the_key_out() -> None:
    crypto = Crypto(1, "AES_CM_128_HMAC_SHA1_80", "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR")
    assert "PS1u" not in repr(crypto)
    (audio,) = parse_sdp(
        _sdp(*HEAD, "m=audio 5004 RTP/SAVP 0", f"a=crypto:1 X inline:{crypto.key_base64}")
    ).media
    assert "PS1u" not in repr(audio)


CRYPTO_KEY = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
MALFORMED_CRYPTO = [
    pytest.param("", "a=crypto needs <tag> <crypto-suite> <key-params>", id="empty"),
    pytest.param(
        "1 AES_CM_128_HMAC_SHA1_80", "a=crypto needs <tag> <crypto-suite> <key-params>", id="no-key"
    ),
    pytest.param(
        "x AES_CM_128_HMAC_SHA1_80 inline:KEY", "a=crypto tag 'x' is not a number", id="tag"
    ),
    pytest.param(
        "1234567890 AES_CM_128_HMAC_SHA1_80 inline:KEY",
        "a=crypto tag '1234567890' is longer than 9 digits",
        id="tag-10-digits",
    ),
    pytest.param(
        "1 AES-CM-128 inline:KEY", "a=crypto suite 'AES-CM-128' is not a suite name", id="suite"
    ),
    pytest.param(
        "1 S uri:http://example.com/key", "a=crypto key method 'uri' is not inline", id="uri"
    ),
    pytest.param("1 S KEY", "a=crypto key method is not inline", id="no-method"),
    pytest.param("1 S inline:", "a=crypto key is not base64", id="empty-key"),
    pytest.param("1 S inline:KEY$", "a=crypto key is not base64", id="key-character"),
    pytest.param("1 S inline:KEY|", "a=crypto lifetime '' is not N or 2^N", id="empty-lifetime"),
    pytest.param("1 S inline:KEY|2^x", "a=crypto lifetime '2^x' is not N or 2^N", id="lifetime"),
    pytest.param("1 S inline:KEY|-5", "a=crypto lifetime '-5' is not N or 2^N", id="negative"),
    pytest.param("1 S inline:KEY|2^65", "a=crypto lifetime '2^65' is out of range", id="2^65"),
    pytest.param("1 S inline:KEY|2^100", "a=crypto lifetime '2^100' is out of range", id="2^100"),
    pytest.param(
        "1 S inline:KEY|" + "9" * 21,
        f"a=crypto lifetime '{'9' * 21}' is out of range",
        id="lifetime-21-digits",
    ),
    pytest.param("1 S inline:KEY|1:0", "a=crypto MKI length '0' is not 1-128", id="mki-length-0"),
    pytest.param("1 S inline:KEY|1:129", "a=crypto MKI length '129' is not 1-128", id="mki-129"),
    pytest.param(
        "1 S inline:KEY|1:0004", "a=crypto MKI length '0004' is not 1-128", id="mki-digits"
    ),
    pytest.param("1 S inline:KEY|1:", "a=crypto MKI length '' is not 1-128", id="mki-no-length"),
    pytest.param("1 S inline:KEY|x:4", "a=crypto MKI value 'x' is not a number", id="mki-value"),
    pytest.param(
        "1 S inline:KEY|256:1", "a=crypto MKI value does not fit in its 1 bytes", id="mki-overflow"
    ),
    pytest.param(
        "1 S inline:KEY|" + "9" * 5000 + ":128",
        "a=crypto MKI value does not fit in its 128 bytes",
        id="mki-5000-digits",
    ),
    pytest.param(
        "1 S inline:KEY|1:4|2^20", "a=crypto lifetime '1:4' is not N or 2^N", id="mki-first"
    ),
    pytest.param(
        "1 S inline:KEY|2^20|1:4|x",
        "a=crypto key has 3 '|' fields, at most a lifetime and an MKI",
        id="three-fields",
    ),
    pytest.param(
        "1 S inline:KEY;inline:KEY",
        "a=crypto lists 2 keys but not each with an MKI",
        id="two-keys-no-mki",
    ),
    pytest.param(
        "1 S inline:KEY|1:4;inline:KEY$|2:4", "a=crypto key is not base64", id="second-key"
    ),
]


@pytest.mark.parametrize(("value", "message"), MALFORMED_CRYPTO)
def test_malformed_crypto(value: str, message: str) -> None:
    line = f"a=crypto:{value.replace('KEY', CRYPTO_KEY)}"
    with pytest.raises(SdpError) as raised:
        parse_sdp(_sdp(*HEAD, "m=audio 5004 RTP/SAVP 0", line))
    assert str(raised.value) == f"SDP line 6: {message}"
    assert CRYPTO_KEY[:8] not in str(raised.value), "keys never reach a message"


CRYPTO_SEEDS = [
    b"1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 KDR=1",
    b"2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;"
    b"inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP",
    b"1 AES_CM_128_HMAC_SHA1_80 inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2|1066:4",
    b"1 SRTP_AES128_CM_HMAC_SHA1_32 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
]


@FUZZ
@seeded(b"", b"1 S inline:" + b"9" * 5000, b"1 S inline:QQ==|" + b"9" * 5000 + b":1")
@given(mutations(CRYPTO_SEEDS, head=40))
def test_fuzz_crypto_lines(value: bytes) -> None:
    """Whatever follows "a=crypto:", parsing ends in a description or in SdpError."""
    text = _sdp(*HEAD, "m=audio 5004 RTP/SAVP 0", "a=crypto:" + value.decode("latin-1"))
    try:
        session = parse_sdp(text)
    except SdpError:
        return
    for crypto in session.media[0].crypto:
        assert 0 <= crypto.tag < 10**9 and crypto.key_base64 and crypto.key_count >= 1
        assert crypto.mki is None or 1 <= crypto.mki[1] <= 128
