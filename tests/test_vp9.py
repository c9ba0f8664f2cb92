"""VP9 over RTP: the RFC 9628 payload descriptor, layer frames and superframes (VP9 bitstream
spec Annex B), the uncompressed header (section 6.2) and the vpcC fields taken from it.

Descriptors and headers in the tables are invented from the specs (a small bit writer below
builds headers field by field); the real frames are libvpx output embedded as bytes, and the
real packets are what GStreamer's rtpvp9pay and FFmpeg's RTP muxer made of P0_KEY..P0_INTER2.
Pictures with several layer frames go through tests/vp9_packetizer.py, written from the RFC.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from recorder.codecs.vp9 import (
    FrameHeader,
    ScalabilityStructure,
    Vp9Depacketizer,
    build_superframe,
    displayed_size,
    parse_descriptor,
    parse_frame_header,
    superframe_frames,
    vp9_level,
)
from recorder.errors import DepacketizeError
from recorder.media import CodecConfig, Frame
from recorder.rtp import RtpPacket
from recorder.stream import InboundStream
from tests.fuzzing import FUZZ, mutations
from tests.vectors import build_rtp
from tests.vp9_packetizer import LayerFrame, Vp9Packetizer

CLOCK_RATE = 90000

# -- real libvpx output (libvpx 1.12, FFmpeg 5.1, Debian 12), produced once ------------------
# P0_KEY, P0_INTER, P0_INTER2: the 3 frames of
#   ffmpeg -f lavfi -i testsrc2=size=32x24:rate=30 -frames:v 3 -pix_fmt yuv420p -c:v libvpx-vp9
#     -crf 63 -b:v 0 -deadline realtime -cpu-used 8 -lag-in-frames 0 -threads 1 p0.ivf
# P1_444_KEY, P2_10BIT_KEY, P3_422_12BIT_KEY, P1_RGB_KEY, P0_FULL_RANGE_KEY: frame 0 of the
#   same command with -frames:v 1 and -pix_fmt yuv444p / yuv420p10le / yuv422p12le / gbrp /
#   yuvj420p -color_range pc.
# ARF_SUPERFRAME: frame 34 of vpxenc --codec=vp9 --good --cpu-used=4 --auto-alt-ref=1
#   --lag-in-frames=16 --target-bitrate=20 on 40 frames of testsrc2=size=96x64: libvpx packed
#   a hidden alt-ref frame (111 bytes) and a shown frame (33 bytes) into one superframe.
# SVC_KEY_PICTURE, SVC_DELTA_PICTURE: frames 0 and 1 of a 3-layer spatial SVC encode (8x6,
#   16x12, 32x24; libvpx VP9E_SET_SVC, inter-layer prediction on keyframes only, error
#   resilient, CBR, a 60-line C program against libvpx-dev) of testsrc2=size=32x24: libvpx
#   outputs each picture as one superframe of its three layer frames, all shown.
P0_KEY = bytes.fromhex(
    "824983420001f001764a38241c19700000204000777ffb03f96b31b9bd6482feb21553a29fe7ee280567b2ab"
    "0eb45c6703b48fb4baaab891e04db92678c78afba5f03a97b49f442dfa9124130c55c4c9da21f6d769a03102"
    "c902fa151e01e025ce4fd76223ac63dcf573800563bf5b305eb097812ee4cb4db188e177ae7e9667d54d5d90"
    "71905c9d6495dd6bfc8c66a08645eaf686717a55d97c2fefcf58844f98ba0e455e7004c3e77868dddfd8616a"
    "f56ea857a93ec8ec8600"
)
P0_INTER = bytes.fromhex("860040921cfc5fe000037000004340")
P0_INTER2 = bytes.fromhex("860040921cfc5f0000037000004340")
P1_444_KEY = bytes.fromhex(
    "a249834200003e002ec9470483832e0000044000777ffb03f96b31b9bd6482ffdb3a0ea2987e0ae80e3f7327"
    "7cd5c34889bf412b47930c1fc21fbaa18122df17beb4015ffd684a747678c78afba5f03a97b7953991777766"
    "752edded8557642be476607ff6cfe6aee3ddf208eec82a44c1c8f74344ef432f804b118fd9fea322c272c9ed"
    "9763e5583e07bcbf139026c97c3327a6ca437ff57c2e5315e8c69114861139efc1987f779559da24f5af8663"
    "7aaeb4693e1917abda19c5e95765f0bfbf3d1ad1b5d5f9e2b64518a0605e29b0fbe058bf001958b2251a6470"
    "ce0fccce0c2f3bf0"
)
P2_10BIT_KEY = bytes.fromhex(
    "924983420000f800bb251c120e0cb8000010400078f3ff2d95d1f1b62d434802efac8554e8a69020b4ead676"
    "a4ec104ad1e4c307dd8956e046ffc3138ffa2f075b66733c90861ea18954a6ece43932ac90da348157c7c70e"
    "6622a53c372c3404b77874587535f9e1a03fdcf57380037f262fedf4df1827734e29f57860a4289e5d638860"
    "226c032266a242aac414768e516e677062ffbeb0aa0530d51b2ed44d1965d852d2031d67978d8cc8e3adc25c"
    "7887590470251a7dec463a09dc801a00"
)
P3_422_12BIT_KEY = bytes.fromhex(
    "b124c1a142000f800bb251c120e0cb8000030050601fcd00007e911dbdc901f94fa02f5db7f8929ab5a9e7b7"
    "2724d111b90bcd2fcaac3ad1719c0ed1d5251e529af62147acb5c4559d546c75478caec6c3970b8e8a074492"
    "04e350456df32b382db5514975d61ff773cc5b972e942034bf2635b29afcf0cbdbdc86159a45134860e3783a"
    "053419ddf6be0a1c21bf10c21a7520b6629db4caf342e54bd03e722c8af200891b9647fe3da022056ea74a54"
    "dd455a279d8ae4de1b71f5e78bdd07e2870d4e8e3e2e047c6c653fec8593d6d8360a01a3def23e6f6f24e07f"
    "2b598a7eed466d58681a6710"
)
P1_RGB_KEY = bytes.fromhex(
    "a2498342e001f001764a38241c197000002040007e911fd3b3b4498f10c97ff10d4dedec61787be97b3c77b5"
    "e6937b488efdd7845a9cbe35a230e71bcb8ee7268f33decb8cb13c1714d7ec93b7205d10a3958c17b7faff9f"
    "3466febd701abe9e630be359885640af6d5c120598803f8de0a19f479d66c5554fdaa344075d19972ebbdca7"
    "4a10f44501d9a3269846ab7a63b695a0a4073be275c8e87166c103e581a8df48edbbbf1983c39be99a7ec1a7"
    "411c5f2a90715f60d1bff635ffa47d985ce77d20ced29897b8385fe58d325fe0972c206febb143f795faa612"
    "d67b185fefc9f0b8c05e7f5506714f2484c443bb20e34ba102ecfb836785482be918a13751b1167fed85d4b0"
    "bcbe80bd657f4d6023fa11f6b80985b7adac86b40cb64c14b754a27332aa7bfcae7718a916f406c3aef074cd"
    "31050a2bd98fee58d3afa3e3a25bacf4fd6ae6d878c4bdd4085a5cbb4b7618bd0b8f9e8a4b025f0ecff5abde"
    "dd0291b000"
)
P0_FULL_RANGE_KEY = bytes.fromhex(
    "824983421001f001764a38241c19700000204000777ffb03f96b31b9bd6482feb21553a29fe7ee280567b2ab"
    "0eb45c6703b48fb4baaab891e04db92678c78afba5f03a97b49f442dfa9124130c55c4c9da21f6d769a03102"
    "c902fa151e01e025ce4fd76223ac63dcf573800563bf5b305eb097812ee4cb4db188e177ae7e9667d54d5d90"
    "71905c9d6495dd6bfc8c66a08645eaf686717a55d97c2fefcf58844f98ba0e455e7004c3e77868dddfd8616a"
    "f56ea857a93ec8ec8600"
)
ARF_SUPERFRAME = bytes.fromhex(
    "840080490e962e00000300603fe4a7e0007eeabe05531e20f6bcc1ce913e2fa18565c5d5ee58f14ba37783f0"
    "c698f425a7bd9a9b651abf1dc8815dde2e542b64fbef4690d20a52905dd1f73a1935180b9676b1d875c979a1"
    "167bf0b2f5d580eabb0fd91bb736dffcfd61b44e640c20860040960c245fe000036000007a4a009f50dbf7bf"
    "bc747ae0ddf7f732101db320c16f21c1"
)
SVC_KEY_PICTURE = bytes.fromhex(
    "83498342000070005800f800b808e09070604000008040007155dfffff82ec1c4395dc5a2555c04c1ccbffff"
    "52739b6b88588091d12306867ffffa7021a3f402f17fcf6fcb9b4324cfff5251250bf282c3766e4e39fe1e51"
    "7ffff81ff71f452770371291a4ea00874202c0001e0017001f00179081c120e0c280000180700000743c81fb"
    "77fa7ec3c5b2ac7ee9c7de6eaefab570d5e87248036154bacb47ea51be5dd8584c380cef9d3abffdbcfff7f4"
    "8af30f23c6f7745fdef5458a7c0ae1a566c6ed114fb7537098843830fb2471edfff488a4f6315590cc31abe6"
    "b75cb29b79988373fb03f9650c7a40ff4729fcb28601f75f5489b75827ca24a5225f5223261179bdc1233a19"
    "a3ba20658e337d808a955d1dff196000878424e0003e002e9091c120e0c3700001807000007dd0e80de168d2"
    "353e0ea09d6736ffabbd90901d579f2145eb14871ef9250b3ebffffe0287fe17fdabf7a6f882a9ce6ff9e8b6"
    "0abc99df8ef97dee2ee85cbe6fea6b3fea72c40f59f8ff87524df006d0682382b9c3adf3741edfff85d625c3"
    "4b5108fe7ee5b48bdfdfc17796b5d0b124a9cb83b097b9949aeac67fffaa32952332706008c3e71c370d8180"
    "c73c79b6218ffff2f6ffa33fb8388af11be6badd3ee8c4e168f80a1c5932e7fdf335f9797ed06bce2fffd4fc"
    "aac5bb4dd51d971e86cf5b0718ca2f3e7479c85d114dfcffc35630e2c6ffcf15593cb180180cd6d5af7027fd"
    "71426aa2b0bad235b6819d19525800aec7333f9e90bad4173a5b1dfb058c8fe2f93e7c90cf92ba54ed18e5de"
    "f3df567d2aa1df1656bceb86dc782395d2fdccfe647fd52651d9d85fb734bf4211a7d97fe70c772166af1f86"
    "a6ff7e03ff06ac86e188a620937753044d21b6878f8f436799ebc34dda52102452161b756eb74e618dc8b1f5"
    "e4ec5ea05c917ffbe63742ad849954d527e623e673bfbae313ea21ed514f85d48d3ea1af5909232adf86ebd5"
    "78b15eb6eb8ed8d5ffd7e6ff4aa6504384f1ebc9abfbfd1fa5f399ebae869744aa35483efb86a380f7fe453b"
    "f18e3d73bf4c14bf3cf24184facd4dd61e495c35d28c19e7bd7d280c0a20dda64b40b7e1a7cff0455a817916"
    "9063fb8515af00ca6700b1000702ca"
)
SVC_DELTA_PICTURE = bytes.fromhex(
    "870100ec007c005e4687048383270000067000004b408702222c007c005e460704838325c000067000004240"
    "8704444a49c70483832d4000067000004340c2161612c2"
)

# rtpvp9pay pt=98 mtu=100 picture-id-mode=15-bit (GStreamer 1.22) and
# ffmpeg -c copy -strict experimental -f rtp "rtp://…?pkt_size=100" (FFmpeg 5.1) sending
# p0.ivf, captured on loopback: (RTP payload, marker bit).
GST_P0_PACKETS = [
    (
        bytes.fromhex(
            "8a8d261800200018010401824983420001f001764a38241c19700000204000777ffb03f96b31b9bd6482"
            "feb21553a29fe7ee280567b2ab0eb45c6703b48fb4baaab891e04db92678c78afba5f03a97b49f442dfa"
            "9124130c"
        ),
        False,
    ),
    (
        bytes.fromhex(
            "808d2655c4c9da21f6d769a03102c902fa151e01e025ce4fd76223ac63dcf573800563bf5b305eb09781"
            "2ee4cb4db188e177ae7e9667d54d5d9071905c9d6495dd6bfc8c66a08645eaf686717a55d97c"
        ),
        False,
    ),
    (bytes.fromhex("848d262fefcf58844f98ba0e455e7004c3e77868dddfd8616af56ea857a93ec8ec8600"), True),
    (bytes.fromhex("cc8d27860040921cfc5fe000037000004340"), True),
    (bytes.fromhex("cc8d28860040921cfc5f0000037000004340"), True),
]
FFMPEG_P0_PACKETS = [
    (
        bytes.fromhex(
            "08824983420001f001764a38241c19700000204000777ffb03f96b31b9bd6482feb21553a29fe7ee2805"
            "67b2ab0eb45c6703b48fb4baaab891e04db92678c78afba5f03a97b49f442dfa9124130c55c4c9da21f6"
            "d769a031"
        ),
        False,
    ),
    (
        bytes.fromhex(
            "0002c902fa151e01e025ce4fd76223ac63dcf573800563bf5b305eb097812ee4cb4db188e177ae7e9667"
            "d54d5d9071905c9d6495dd6bfc8c66a08645eaf686717a55d97c2fefcf58844f98ba0e455e7004c3e778"
            "68dddfd8"
        ),
        False,
    ),
    (bytes.fromhex("04616af56ea857a93ec8ec8600"), True),
    (bytes.fromhex("0c860040921cfc5fe000037000004340"), True),
    (bytes.fromhex("0c860040921cfc5f0000037000004340"), True),
]


def _view(data: bytes) -> memoryview:
    return memoryview(data)


def _depacketizer() -> Vp9Depacketizer:
    return Vp9Depacketizer(CLOCK_RATE)


def _build(payloads: Sequence[bytes], depacketizer: Vp9Depacketizer | None = None) -> Frame:
    depacketizer = depacketizer or _depacketizer()
    return depacketizer.build([_view(p) for p in payloads], 0)


def _pictures(packets: Sequence[tuple[bytes, bool]]) -> list[list[bytes]]:
    """Payloads grouped into pictures by the marker bit."""
    pictures: list[list[bytes]] = [[]]
    for payload, marker in packets:
        pictures[-1].append(payload)
        if marker:
            pictures.append([])
    return [picture for picture in pictures if picture]


# -- a bit writer for invented uncompressed headers (VP9 bitstream spec 6.2) -----------------


def _pack(fields: Sequence[tuple[int, int]]) -> bytes:
    """(width, value) fields, most significant bit first, zero-padded to whole bytes."""
    value = 0
    count = 0
    for width, field in fields:
        assert 0 <= field < 1 << width
        value = value << width | field
        count += width
    pad = -count % 8
    return (value << pad).to_bytes((count + pad) // 8, "big")


def _fields(
    *,
    marker: int = 2,
    profile: int = 0,
    reserved: int = 0,
    show_existing: int | None = None,
    keyframe: bool = True,
    show_frame: bool = True,
    error_resilient: bool = False,
    intra_only: bool = False,
    sync: int = 0x498342,
    twelve_bit: bool = False,
    color_space: int = 0,
    color_range: int = 0,
    subsampling: tuple[int, int] = (1, 1),
    color_reserved: int = 0,
    size: tuple[int, int] = (16, 12),
    refresh: int = 0,
    refs: tuple[int, int, int] = (0, 1, 2),
    found_ref: int | None = None,
    render_size: bool = True,
) -> list[tuple[int, int]]:
    """uncompressed_header() up to render_size(), field by field as the spec lists them."""
    fields = [(2, marker), (1, profile & 1), (1, profile >> 1)]
    if profile == 3:
        fields.append((1, reserved))
    if show_existing is not None:
        return [*fields, (1, 1), (3, show_existing)]
    fields += [(1, 0), (1, int(not keyframe)), (1, int(show_frame)), (1, int(error_resilient))]
    color = []
    if profile >= 2:
        color.append((1, int(twelve_bit)))
    color.append((3, color_space))
    if color_space != 7:
        color.append((1, color_range))
        if profile in (1, 3):
            color += [(1, subsampling[0]), (1, subsampling[1]), (1, color_reserved)]
    elif profile in (1, 3):
        color.append((1, color_reserved))
    # frame_size(), and render_size() with render_and_frame_size_different = 0 (which the
    # parser does not read).
    frame_size = [(16, size[0] - 1), (16, size[1] - 1)] + ([(1, 0)] if render_size else [])
    if keyframe:
        return [*fields, (24, sync), *color, *frame_size]
    if not show_frame:
        fields.append((1, int(intra_only)))
    if not error_resilient:
        fields.append((2, 0))  # reset_frame_context
    if intra_only:
        fields.append((24, sync))
        if profile > 0:
            fields += color
        return [*fields, (8, refresh), *frame_size]
    fields.append((8, refresh))
    for slot in refs:
        fields += [(3, slot), (1, 0)]  # ref_frame_idx, ref_frame_sign_bias
    for index in range(3):
        fields.append((1, int(found_ref == index)))
        if found_ref == index:
            return fields
    return fields + frame_size


def _header(**kwargs: object) -> bytes:
    """An invented frame: the header, then two zero bytes of "compressed data"."""
    return _pack(_fields(**kwargs)) + b"\x00\x00"  # type: ignore[arg-type]


# -- RFC 9628 section 4.2: every combination of the descriptor's bits (invented) --------------

PICTURE_IDS = [(b"\x5a", 0x5A), (b"\x92\x34", 0x1234)]
# |TID|U|SID|D|: TID 2, SID 1, D=0; and TID 5, U, SID 2, D=1.
LAYER_BYTES = [0x42, 0xB5]
P_DIFF_BYTES = b"\x03\x05\x06"  # P_DIFF 1 (N=1), 2 (N=1), 3 (N=0)


def _every_descriptor() -> list[tuple[bytes, int, int, int]]:
    """(descriptor, flags, picture ID form, layer byte) for all 256 first bytes."""
    out = []
    for flags in range(256):
        for pid_bytes, _ in PICTURE_IDS:
            for layer in LAYER_BYTES:
                descriptor = bytearray([flags])
                if flags & 0x80:
                    descriptor += pid_bytes
                if flags & 0x20:
                    descriptor.append(layer)
                    if not flags & 0x10:
                        descriptor.append(0x99)  # TL0PICIDX
                if flags & 0x10 and flags & 0x40:
                    descriptor += P_DIFF_BYTES
                if flags & 0x02:
                    descriptor.append(0x00)  # SS: one spatial layer, no Y, no G
                out.append((bytes(descriptor), flags, len(pid_bytes), layer))
    return out


def test_every_descriptor_bit_combination() -> None:
    for descriptor, flags, pid_size, layer in _every_descriptor():
        parsed = parse_descriptor(descriptor + b"\x86")
        assert parsed.size == len(descriptor), descriptor.hex()
        assert parsed.flags == flags
        assert parsed.begins is bool(flags & 0x08)
        assert parsed.ends is bool(flags & 0x04)
        assert parsed.flexible is bool(flags & 0x10)
        assert parsed.inter_picture is bool(flags & 0x40)
        assert parsed.not_upper_reference is bool(flags & 0x01)
        if flags & 0x80:
            assert parsed.picture_id == (0x5A if pid_size == 1 else 0x1234)
        else:
            assert parsed.picture_id is None
        if flags & 0x20:
            assert (parsed.tid, parsed.switching_up, parsed.sid, parsed.inter_layer) == (
                (2, False, 1, False) if layer == 0x42 else (5, True, 2, True)
            )
            assert parsed.tl0_pic_idx == (None if flags & 0x10 else 0x99)
        else:
            assert parsed.tid is parsed.sid is parsed.inter_layer is parsed.tl0_pic_idx is None
        assert parsed.p_diffs == ((1, 2, 3) if flags & 0x50 == 0x50 else ())
        assert parsed.ss == (ScalabilityStructure(1, (), ()) if flags & 0x02 else None)
        # RFC 9628 section 4.2: a picture starts at B on its lowest layer; D=1 is never that.
        starts = bool(flags & 0x08) and not (flags & 0x20 and layer & 0x01)
        assert _depacketizer().starts_frame(_view(descriptor + b"\x86")) is starts


def test_every_descriptor_truncation_is_refused() -> None:
    for descriptor, _, _, _ in _every_descriptor():
        for cut in range(len(descriptor) + 1):
            with pytest.raises(DepacketizeError):
                parse_descriptor(descriptor[:cut])


DESCRIPTORS = [
    pytest.param(b"\x0c", 1, id="B-E-only"),
    pytest.param(b"\x00", 1, id="continuation"),
    pytest.param(b"\x8c\x7f", 2, id="I-7-bit"),
    pytest.param(b"\x8c\xff\xff", 3, id="I-15-bit-max"),
    pytest.param(b"\x2c\x42\x07", 3, id="L-non-flexible-with-TL0PICIDX"),
    pytest.param(b"\x3c\x42", 2, id="L-flexible"),
    pytest.param(b"\x5c\x02", 2, id="F-P-one-P_DIFF"),
    pytest.param(b"\x5c\x03\x04", 3, id="F-P-two-P_DIFFs"),
    pytest.param(b"\x5c\x03\x05\x06", 4, id="F-P-three-P_DIFFs"),
    pytest.param(b"\x4c", 1, id="P-non-flexible-has-no-P_DIFF"),
    pytest.param(b"\x1c", 1, id="F-without-P-has-no-P_DIFF"),
    pytest.param(b"\x0e\x00", 2, id="V-minimal-SS"),
    pytest.param(b"\xff\x92\x34\xb5\x03\x05\x06\x00", 8, id="everything-flexible"),
    pytest.param(b"\xef\x92\x34\xb5\x99\x00", 6, id="everything-non-flexible"),
    # Captured: GStreamer's first keyframe packet (15-bit PID, SS with Y and G) and the next.
    pytest.param(GST_P0_PACKETS[0][0][:11], 11, id="gst-keyframe-with-SS"),
    pytest.param(GST_P0_PACKETS[3][0][:3], 3, id="gst-interframe"),
    pytest.param(FFMPEG_P0_PACKETS[0][0][:1], 1, id="ffmpeg-keyframe"),
]


@pytest.mark.parametrize(("descriptor", "size"), DESCRIPTORS)
def test_descriptor_size(descriptor: bytes, size: int) -> None:
    assert parse_descriptor(descriptor + b"\x86").size == size


def test_captured_gstreamer_descriptor_fields() -> None:
    # rtpvp9pay: non-flexible, 15-bit picture ID, no layer indices; SS on the keyframe with
    # the picture size and a one-picture group predicting from the previous picture.
    key = parse_descriptor(GST_P0_PACKETS[0][0])
    assert (key.begins, key.ends, key.flexible, key.inter_picture) == (True, False, False, False)
    assert key.sid is None
    assert key.ss == ScalabilityStructure(1, ((32, 24),), ((0, False, (1,)),))
    inter = parse_descriptor(GST_P0_PACKETS[3][0])
    assert (inter.begins, inter.ends, inter.inter_picture, inter.ss) == (True, True, True, None)
    assert inter.picture_id == (key.picture_id + 1) % 32768  # type: ignore[operator]
    # FFmpeg: B/E only, no picture ID.
    first = parse_descriptor(FFMPEG_P0_PACKETS[0][0])
    assert (first.flags, first.picture_id, first.size) == (0x08, None, 1)


# -- RFC 9628 section 4.2.1: scalability structure (invented) ---------------------------------

SCALABILITY_STRUCTURES = [
    pytest.param(b"\x00", ScalabilityStructure(1, (), ()), id="one-layer-nothing-else"),
    pytest.param(b"\xe0", ScalabilityStructure(8, (), ()), id="eight-layers-no-Y"),
    pytest.param(b"\x07", ScalabilityStructure(1, (), ()), id="reserved-bits-ignored"),
    pytest.param(
        b"\x50\x01\x40\x00\xb4\x02\x80\x01\x68\x05\x00\x02\xd0",
        ScalabilityStructure(3, ((320, 180), (640, 360), (1280, 720)), ()),
        id="Y-three-layers",
    ),
    pytest.param(
        b"\xf0" + b"\xff\xff\x00\x01" * 8,
        ScalabilityStructure(8, ((65535, 1),) * 8, ()),
        id="Y-eight-layers",
    ),
    pytest.param(b"\x08\x00", ScalabilityStructure(1, (), ()), id="G-empty-group"),
    pytest.param(
        b"\x08\x03\x04\x04\x50\x2c\x01\x02\x03",
        ScalabilityStructure(1, (), ((0, False, (4,)), (2, True, ()), (1, False, (1, 2, 3)))),
        id="G-three-pictures-R-0-1-3",
    ),
    pytest.param(
        b"\x38\x00\x10\x00\x08\x00\x20\x00\x10\x02\x04\x01\x34\x01",
        ScalabilityStructure(2, ((16, 8), (32, 16)), ((0, False, (1,)), (1, True, (1,)))),
        id="Y-and-G",
    ),
]


@pytest.mark.parametrize(("ss", "expected"), SCALABILITY_STRUCTURES)
def test_scalability_structure(ss: bytes, expected: ScalabilityStructure) -> None:
    parsed = parse_descriptor(b"\x8e\x01" + ss + b"\x86")
    assert parsed.ss == expected
    assert parsed.size == 2 + len(ss)


@pytest.mark.parametrize(("ss", "expected"), SCALABILITY_STRUCTURES)
def test_scalability_structure_truncations(ss: bytes, expected: ScalabilityStructure) -> None:
    for cut in range(len(ss)):
        with pytest.raises(DepacketizeError):
            parse_descriptor(b"\x0e" + ss[:cut])


# -- RFC 9628 section 4.2: malformed descriptors, exact reasons (invented) --------------------

MALFORMED_DESCRIPTORS = [
    pytest.param(b"", "VP9 payload is empty", id="empty"),
    pytest.param(
        b"\x8c",
        "VP9 payload descriptor truncated in picture ID: needs 2 bytes, 1 present",
        id="I-missing",
    ),
    pytest.param(
        b"\x8c\x80",
        "VP9 payload descriptor truncated in picture ID: needs 3 bytes, 2 present",
        id="I-15-bit-cut",
    ),
    pytest.param(
        b"\x3c",
        "VP9 payload descriptor truncated in layer indices: needs 2 bytes, 1 present",
        id="L-flexible-missing",
    ),
    pytest.param(
        b"\x2c\x00",
        "VP9 payload descriptor truncated in layer indices: needs 3 bytes, 2 present",
        id="L-non-flexible-TL0PICIDX-missing",
    ),
    pytest.param(
        b"\x5c",
        "VP9 payload descriptor truncated in reference indices: needs 2 bytes, 1 present",
        id="P_DIFF-missing",
    ),
    pytest.param(
        b"\x5c\x03",
        "VP9 payload descriptor truncated in reference indices: needs 3 bytes, 2 present",
        id="P_DIFF-N-promises-another",
    ),
    pytest.param(
        b"\x5c\x03\x03\x03\x02\x86",
        "VP9 payload descriptor has more than 3 reference indices",
        id="four-P_DIFFs",
    ),
    pytest.param(
        b"\x0e",
        "VP9 payload descriptor truncated in scalability structure: needs 2 bytes, 1 present",
        id="SS-missing",
    ),
    pytest.param(
        b"\x0e\x30\x01\x40\x00\xf0\x02\x80\x01",
        "VP9 payload descriptor truncated in scalability structure resolutions: "
        "needs 10 bytes, 9 present",
        id="SS-Y-cut",
    ),
    pytest.param(
        b"\x0e\x08",
        "VP9 payload descriptor truncated in scalability structure picture group: "
        "needs 3 bytes, 2 present",
        id="SS-N_G-missing",
    ),
    pytest.param(
        b"\x0e\x08\x02\x04\x01",
        "VP9 payload descriptor truncated in scalability structure picture group: "
        "needs 6 bytes, 5 present",
        id="SS-second-picture-missing",
    ),
    pytest.param(
        b"\x0e\x08\x01\x0c\x01",
        "VP9 payload descriptor truncated in scalability structure picture group: "
        "needs 7 bytes, 5 present",
        id="SS-P_DIFFs-cut",
    ),
    pytest.param(b"\x0c", "VP9 payload has no data after its 1-byte descriptor", id="1-only"),
    pytest.param(
        b"\xff\x92\x34\xb5\x03\x05\x06\x00",
        "VP9 payload has no data after its 8-byte descriptor",
        id="8-only",
    ),
]


@pytest.mark.parametrize(("payload", "message"), MALFORMED_DESCRIPTORS)
def test_malformed_descriptor(payload: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        parse_descriptor(payload)
    assert str(raised.value) == message
    with pytest.raises(DepacketizeError) as raised:
        _depacketizer().starts_frame(_view(payload))
    assert str(raised.value) == message


# -- starts_frame: the first packet of a picture (invented and captured) ----------------------


@pytest.mark.parametrize(
    ("descriptor", "starts"),
    [
        pytest.param(b"\x08", True, id="B"),
        pytest.param(b"\x0c", True, id="B-E"),
        pytest.param(b"\x04", False, id="E-only"),
        pytest.param(b"\x00", False, id="middle"),
        pytest.param(b"\x38\x00", True, id="B-base-layer"),
        pytest.param(b"\x38\x04", True, id="B-layer-2-not-predicted-from-below"),
        pytest.param(b"\x38\x05", False, id="B-layer-2-predicted-from-layer-1"),
        pytest.param(b"\x28\x03\x00", False, id="B-D-non-flexible"),
        pytest.param(b"\x30\x00", False, id="no-B-base-layer"),
    ],
)
def test_starts_frame(descriptor: bytes, starts: bool) -> None:
    assert _depacketizer().starts_frame(_view(descriptor + b"\x86")) is starts


@pytest.mark.parametrize("packets", [GST_P0_PACKETS, FFMPEG_P0_PACKETS], ids=["gst", "ffmpeg"])
def test_captured_packets_start_pictures_after_markers(packets: list[tuple[bytes, bool]]) -> None:
    depacketizer = _depacketizer()
    starts = [depacketizer.starts_frame(_view(payload)) for payload, _ in packets]
    after_marker = [True] + [marker for _, marker in packets[:-1]]
    assert starts == after_marker


# -- whole pictures from GStreamer and FFmpeg (captured) --------------------------------------


@pytest.mark.parametrize("packets", [GST_P0_PACKETS, FFMPEG_P0_PACKETS], ids=["gst", "ffmpeg"])
def test_captured_pictures_reassemble_to_the_source_frames(
    packets: list[tuple[bytes, bool]],
) -> None:
    depacketizer = _depacketizer()
    frames = [_build(picture, depacketizer) for picture in _pictures(packets)]
    assert [frame.data for frame in frames] == [P0_KEY, P0_INTER, P0_INTER2]
    assert [frame.keyframe for frame in frames] == [True, False, False]
    assert [(frame.width, frame.height) for frame in frames] == [(32, 24), (0, 0), (0, 0)]
    # What FFmpeg's mp4 muxer writes in vpcC for p0.ivf: level 10 (picture size alone),
    # 8-bit, chroma 1 (4:2:0, siting unknown), studio range.
    assert depacketizer.config == CodecConfig(
        codec="VP9",
        kind="video",
        clock_rate=CLOCK_RATE,
        width=32,
        height=24,
        profile=0,
        level=10,
        bit_depth=8,
        chroma_subsampling=1,
        full_range=False,
    )


# -- VP9 bitstream spec 6.2: headers of real libvpx frames ------------------------------------

# (frame, profile, keyframe, show_frame, bit_depth, subsampling x/y, full_range, color_space,
#  width, height, size_from_slot, refresh_frame_flags)
REAL_HEADERS = [
    pytest.param(P0_KEY, 0, True, True, 8, (1, 1), False, 0, 32, 24, -1, 0xFF, id="p0-key"),
    pytest.param(P0_INTER, 0, False, True, 8, (1, 1), False, 0, 0, 0, 0, 0x01, id="p0-inter"),
    pytest.param(P1_444_KEY, 1, True, True, 8, (0, 0), False, 0, 32, 24, -1, 0xFF, id="p1-444"),
    pytest.param(P2_10BIT_KEY, 2, True, True, 10, (1, 1), False, 0, 32, 24, -1, 0xFF, id="p2"),
    pytest.param(
        P3_422_12BIT_KEY, 3, True, True, 12, (1, 0), False, 0, 32, 24, -1, 0xFF, id="p3-422"
    ),
    pytest.param(P1_RGB_KEY, 1, True, True, 8, (0, 0), True, 7, 32, 24, -1, 0xFF, id="p1-rgb"),
    pytest.param(
        P0_FULL_RANGE_KEY, 0, True, True, 8, (1, 1), True, 0, 32, 24, -1, 0xFF, id="p0-full"
    ),
    pytest.param(
        ARF_SUPERFRAME[:111], 0, False, False, 8, (1, 1), False, 0, 0, 0, 0, 0x04, id="alt-ref"
    ),
    pytest.param(
        SVC_KEY_PICTURE[103:280], 0, False, True, 8, (1, 1), False, 0, 16, 12, -1, 0x42,
        id="svc-layer-1-on-keyframe",
    ),
    pytest.param(
        SVC_DELTA_PICTURE[44:62], 0, False, True, 8, (1, 1), False, 0, 0, 0, 2, 0x04,
        id="svc-layer-2-delta",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    (
        "frame",
        "profile",
        "keyframe",
        "show_frame",
        "bit_depth",
        "subsampling",
        "full_range",
        "color_space",
        "width",
        "height",
        "size_from_slot",
        "refresh",
    ),
    REAL_HEADERS,
)
def test_real_header(
    frame: bytes,
    profile: int,
    keyframe: bool,
    show_frame: bool,
    bit_depth: int,
    subsampling: tuple[int, int],
    full_range: bool,
    color_space: int,
    width: int,
    height: int,
    size_from_slot: int,
    refresh: int,
) -> None:
    header = parse_frame_header(frame)
    assert (header.profile, header.keyframe, header.show_frame) == (profile, keyframe, show_frame)
    assert header.show_existing_frame is False
    assert header.intra_only is False
    assert (header.bit_depth, (header.subsampling_x, header.subsampling_y)) == (
        bit_depth,
        subsampling,
    )
    assert (header.full_range, header.color_space) == (full_range, color_space)
    assert (header.width, header.height) == (width, height)
    assert header.size_from_slot == size_from_slot
    assert header.refresh_frame_flags == refresh


# What FFmpeg 5.1's mp4 muxer writes in vpcC for the same encodes at 64x48 (`-c copy` from the
# IVF): yuv420p 00 0a 82, yuv444p 01 0a 86, yuv420p10le 02 0a a2, yuv422p12le 03 0a c4,
# gbrp 01 0a 87, yuvj420p 00 0a 83 (profile, level, bitDepth<<4 | chroma<<1 | fullRange).
@pytest.mark.parametrize(
    ("frame", "profile", "bit_depth", "chroma", "full_range"),
    [
        pytest.param(P0_KEY, 0, 8, 1, False, id="yuv420p"),
        pytest.param(P1_444_KEY, 1, 8, 3, False, id="yuv444p"),
        pytest.param(P2_10BIT_KEY, 2, 10, 1, False, id="yuv420p10le"),
        pytest.param(P3_422_12BIT_KEY, 3, 12, 2, False, id="yuv422p12le"),
        pytest.param(P1_RGB_KEY, 1, 8, 3, True, id="gbrp"),
        pytest.param(P0_FULL_RANGE_KEY, 0, 8, 1, True, id="yuvj420p"),
    ],
)
def test_real_keyframe_config(
    frame: bytes, profile: int, bit_depth: int, chroma: int, full_range: bool
) -> None:
    depacketizer = _depacketizer()
    built = _build([b"\x0c" + frame], depacketizer)
    assert built.keyframe is True
    assert built.data == frame
    assert depacketizer.config == CodecConfig(
        codec="VP9",
        kind="video",
        clock_rate=CLOCK_RATE,
        width=32,
        height=24,
        profile=profile,
        level=10,
        bit_depth=bit_depth,
        chroma_subsampling=chroma,
        full_range=full_range,
    )


def test_real_interframe_says_nothing_about_the_stream() -> None:
    depacketizer = _depacketizer()
    frame = _build([b"\x4c" + P0_INTER], depacketizer)
    assert (frame.keyframe, frame.width, frame.height, frame.data) == (False, 0, 0, P0_INTER)
    assert depacketizer.config is None


# -- VP9 bitstream spec 6.2: invented headers -------------------------------------------------

INVENTED_HEADERS = [
    pytest.param({}, {"keyframe": True, "width": 16, "height": 12, "refresh": 0xFF}, id="key"),
    pytest.param(
        {"size": (1, 1)}, {"width": 1, "height": 1}, id="smallest"
    ),
    pytest.param(
        {"size": (65536, 65536)}, {"width": 65536, "height": 65536}, id="largest"
    ),
    pytest.param(
        {"profile": 1, "subsampling": (1, 0)}, {"chroma": 2, "bit_depth": 8}, id="p1-422"
    ),
    pytest.param(
        {"profile": 1, "subsampling": (0, 1)}, {"chroma": 3}, id="p1-440-declared-444"
    ),
    pytest.param(
        {"profile": 2, "twelve_bit": True}, {"bit_depth": 12, "chroma": 1}, id="p2-12-bit"
    ),
    pytest.param(
        {"profile": 3, "subsampling": (0, 0)}, {"bit_depth": 10, "chroma": 3}, id="p3-444"
    ),
    pytest.param(
        {"profile": 3, "color_space": 7},
        {"full_range": True, "chroma": 3, "bit_depth": 10, "color_space": 7},
        id="p3-rgb",
    ),
    pytest.param({"color_range": 1}, {"full_range": True}, id="full-range"),
    pytest.param({"color_space": 2}, {"color_space": 2}, id="bt709"),
    pytest.param({"show_frame": False}, {"keyframe": True, "show_frame": False}, id="hidden-key"),
    pytest.param(
        {"show_existing": 5},
        {"show_existing": True, "frame_to_show": 5, "show_frame": True, "keyframe": False},
        id="show-existing",
    ),
    pytest.param(
        {"profile": 3, "show_existing": 7},
        {"show_existing": True, "frame_to_show": 7, "profile": 3},
        id="p3-show-existing",
    ),
    pytest.param(
        {"keyframe": False, "show_frame": False, "intra_only": True, "refresh": 0x24,
         "size": (48, 32)},
        {"keyframe": False, "intra_only": True, "refresh": 0x24, "width": 48, "height": 32,
         "bit_depth": 8, "chroma": 1},
        id="intra-only-p0-no-colour-config",
    ),
    pytest.param(
        {"keyframe": False, "show_frame": False, "intra_only": True, "profile": 2,
         "twelve_bit": True, "color_range": 1, "refresh": 0x01},
        {"intra_only": True, "bit_depth": 12, "full_range": True, "width": 16},
        id="intra-only-p2-colour-config",
    ),
    pytest.param(
        {"keyframe": False, "show_frame": False, "intra_only": True, "error_resilient": True,
         "profile": 1, "subsampling": (0, 0), "refresh": 0x80},
        {"intra_only": True, "chroma": 3, "refresh": 0x80},
        id="intra-only-error-resilient",
    ),
    pytest.param(
        {"keyframe": False, "refresh": 0x03, "refs": (4, 5, 6), "found_ref": 1},
        {"keyframe": False, "size_from_slot": 5, "width": 0, "refresh": 0x03},
        id="inter-size-from-golden",
    ),
    pytest.param(
        {"keyframe": False, "refs": (7, 0, 0), "found_ref": 0},
        {"size_from_slot": 7},
        id="inter-size-from-last",
    ),
    pytest.param(
        {"keyframe": False, "show_frame": False, "error_resilient": True, "size": (640, 360),
         "refresh": 0x10},
        {"show_frame": False, "size_from_slot": -1, "width": 640, "height": 360},
        id="hidden-inter-explicit-size",
    ),
]  # fmt: skip

_HEADER_DEFAULTS = {
    "profile": 0,
    "keyframe": True,
    "show_frame": True,
    "show_existing": False,
    "frame_to_show": -1,
    "intra_only": False,
    "bit_depth": 8,
    "chroma": 1,
    "full_range": False,
    "color_space": 0,
    "refresh": 0,
    "size_from_slot": -1,
}


def _header_fields(header: FrameHeader) -> dict[str, object]:
    return {
        "profile": header.profile,
        "keyframe": header.keyframe,
        "show_frame": header.show_frame,
        "show_existing": header.show_existing_frame,
        "frame_to_show": header.frame_to_show,
        "intra_only": header.intra_only,
        "bit_depth": header.bit_depth,
        "chroma": header.chroma_subsampling,
        "full_range": header.full_range,
        "color_space": header.color_space,
        "refresh": header.refresh_frame_flags,
        "size_from_slot": header.size_from_slot,
        "width": header.width,
        "height": header.height,
    }


@pytest.mark.parametrize(("fields", "expected"), INVENTED_HEADERS)
def test_invented_header(fields: dict[str, object], expected: dict[str, object]) -> None:
    parsed = _header_fields(parse_frame_header(_header(**fields)))
    implied = {
        "profile": fields.get("profile", 0),
        "keyframe": fields.get("keyframe", True) and "show_existing" not in fields,
        "show_frame": fields.get("show_frame", True),
    }
    for name, value in {**_HEADER_DEFAULTS, **implied, **expected}.items():
        if name == "refresh" and name not in expected:
            continue
        assert parsed[name] == value, name


@pytest.mark.parametrize(("fields", "expected"), INVENTED_HEADERS)
def test_invented_header_truncations(fields: dict[str, object], expected: object) -> None:
    # Up to the frame size, the last byte holds at least one bit the parser reads: any shorter
    # cut fails.
    header = _pack(_fields(**fields, render_size=False))  # type: ignore[arg-type]
    for cut in range(len(header)):
        with pytest.raises(DepacketizeError):
            parse_frame_header(header[:cut])


MALFORMED_HEADERS = [
    pytest.param(b"", "VP9 uncompressed header truncated at bit 0 (needs 2 more)", id="empty"),
    pytest.param(_header(marker=0), "VP9 frame marker is 0, expected 2", id="marker-0"),
    pytest.param(_header(marker=3), "VP9 frame marker is 3, expected 2", id="marker-3"),
    pytest.param(
        _header(profile=3, reserved=1),
        "VP9 profile 3 header has its reserved bit set",
        id="profile-3-reserved",
    ),
    pytest.param(
        _header(sync=0x498343), "VP9 frame sync code is 498343, expected 498342", id="sync"
    ),
    pytest.param(
        _header(keyframe=False, show_frame=False, intra_only=True, sync=0),
        "VP9 frame sync code is 000000, expected 498342",
        id="intra-only-sync",
    ),
    pytest.param(
        _header(profile=1, subsampling=(0, 0), color_reserved=1),
        "VP9 colour config has its reserved bit set",
        id="colour-reserved",
    ),
    pytest.param(
        _header(profile=3, color_space=7, color_reserved=1),
        "VP9 colour config has its reserved bit set",
        id="rgb-reserved",
    ),
    pytest.param(
        _header(profile=1, subsampling=(1, 1)),
        "VP9 profile 1 header declares 4:2:0",
        id="p1-420",
    ),
    pytest.param(
        _header(profile=3, subsampling=(1, 1)),
        "VP9 profile 3 header declares 4:2:0",
        id="p3-420",
    ),
    pytest.param(
        _header(color_space=7), "VP9 profile 0 header declares RGB", id="p0-rgb"
    ),
    pytest.param(
        _header(profile=2, color_space=7), "VP9 profile 2 header declares RGB", id="p2-rgb"
    ),
    pytest.param(
        P0_KEY[:7],
        "VP9 uncompressed header truncated at bit 52 (needs 16 more)",
        id="real-key-cut-in-frame-size",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("frame", "message"), MALFORMED_HEADERS)
def test_malformed_header(frame: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        parse_frame_header(frame)
    assert str(raised.value) == message


# -- the picture's size: the last shown frame, sizes through the reference slots (invented) ----

KEY_16 = _header(size=(16, 12))
HIDDEN_KEY_16 = _header(size=(16, 12), show_frame=False)


@pytest.mark.parametrize(
    ("frames", "size"),
    [
        pytest.param([KEY_16], (16, 12), id="keyframe"),
        pytest.param(
            [KEY_16, _header(keyframe=False, size=(32, 24), refresh=0x02)],
            (32, 24),
            id="upper-layer-explicit-size",
        ),
        pytest.param(
            [
                KEY_16,
                _header(keyframe=False, size=(32, 24), refresh=0x02),
                _header(keyframe=False, refs=(1, 0, 0), found_ref=0, refresh=0x04),
            ],
            (32, 24),
            id="size-from-the-slot-layer-1-refreshed",
        ),
        pytest.param(
            [
                KEY_16,
                _header(keyframe=False, size=(32, 24), refresh=0x02),
                _header(keyframe=False, refs=(0, 3, 0), found_ref=1),
            ],
            (16, 12),
            id="size-from-a-slot-the-keyframe-filled",
        ),
        pytest.param(
            [KEY_16, _header(keyframe=False, show_frame=False, size=(32, 24))],
            (16, 12),
            id="hidden-upper-frame-is-not-displayed",
        ),
        pytest.param([HIDDEN_KEY_16], (16, 12), id="only-a-hidden-keyframe"),
        pytest.param(
            [HIDDEN_KEY_16, _header(keyframe=False, show_frame=False, size=(32, 24))],
            (32, 24),
            id="nothing-shown-last-frame-counts",
        ),
        pytest.param(
            [
                KEY_16,
                _header(keyframe=False, show_frame=False, intra_only=True, size=(48, 32),
                        refresh=0x10),
                _header(show_existing=4),
            ],
            (48, 32),
            id="intra-only-then-shown-existing",
        ),
    ],
)  # fmt: skip
def test_displayed_size(frames: list[bytes], size: tuple[int, int]) -> None:
    header, width, height = displayed_size(frames)
    assert header.keyframe is True
    assert (width, height) == size
    # The same through the depacketizer, one layer frame per frame.
    packetizer = Vp9Packetizer(1200)
    layers = [LayerFrame(frame, sid=index) for index, frame in enumerate(frames)]
    built = _build([p for p, _ in packetizer.picture(layers, keyframe=True)])
    assert (built.keyframe, built.width, built.height) == (True, *size)


# -- VP9 bitstream spec Annex B: superframes (invented and real) ------------------------------


def test_real_superframe_splits_into_hidden_and_shown_frames() -> None:
    frames = superframe_frames(ARF_SUPERFRAME)
    assert [len(frame) for frame in frames] == [111, 33]
    assert [parse_frame_header(frame).show_frame for frame in frames] == [False, True]
    assert ARF_SUPERFRAME[-4:] == bytes.fromhex("c1 6f 21 c1")
    assert build_superframe(frames) == ARF_SUPERFRAME


@pytest.mark.parametrize(
    ("sizes", "index"),
    [
        pytest.param([3], "c003c0", id="one-frame"),
        pytest.param([3, 255], "c103ffc1", id="1-byte-sizes"),
        pytest.param([3, 300], "c903002c01c9", id="2-byte-sizes"),
        pytest.param([65536, 1, 2], "d2000001010000020000d2", id="3-byte-sizes"),
        pytest.param([1] * 8, "c7" + "01" * 8 + "c7", id="eight-frames"),
    ],
)
def test_superframe_index_bytes(sizes: list[int], index: str) -> None:
    frames = [bytes([0x86]) + bytes(size - 1) for size in sizes]
    built = build_superframe(frames)
    assert built == b"".join(frames) + bytes.fromhex(index)
    assert superframe_frames(built) == frames


def test_superframe_holds_at_most_eight_frames() -> None:
    with pytest.raises(DepacketizeError) as raised:
        build_superframe([b"\x86"] * 9)
    assert str(raised.value) == "VP9 picture has 9 frames, a superframe holds 1 to 8"


MALFORMED_SUPERFRAMES = [
    pytest.param(b"", "VP9 frame is empty", id="empty"),
    pytest.param(
        b"\x86\x00\xc0",
        "VP9 frame ends in superframe marker 0xc0 without a matching index",
        id="marker-without-index",
    ),
    pytest.param(
        b"\xc9", "VP9 frame ends in superframe marker 0xc9 without a matching index",
        id="index-longer-than-chunk",
    ),
    pytest.param(
        b"\x86\x00\xc0\x05\xc0",
        "VP9 superframe index sizes add up to 5 bytes, the frames take 2",
        id="sizes-overrun",
    ),
    pytest.param(
        b"\x86\x00\x00\xc0\x02\xc0",
        "VP9 superframe index sizes add up to 2 bytes, the frames take 3",
        id="sizes-fall-short",
    ),
    pytest.param(
        b"\x86\xc1\x00\x01\xc1",
        "VP9 superframe index lists an empty frame",
        id="empty-frame",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("chunk", "message"), MALFORMED_SUPERFRAMES)
def test_malformed_superframe(chunk: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        superframe_frames(chunk)
    assert str(raised.value) == message


def test_single_layer_superframe_is_kept_as_sent() -> None:
    # libvpx's hidden alt-ref + shown frame, sent by a payloader as one layer frame.
    frame = _build([b"\x8c\x01" + ARF_SUPERFRAME])
    assert frame.data == ARF_SUPERFRAME
    assert frame.keyframe is False


# -- spatial layers: several layer frames per picture become one superframe ------------------


@pytest.mark.parametrize("flexible", [True, False], ids=["flexible", "non-flexible"])
@pytest.mark.parametrize("mtu", [60, 300, 1200])
def test_real_spatial_svc_pictures(flexible: bool, mtu: int) -> None:
    # Chrome-style: each layer frame sent on its own (B..E), one timestamp, marker at the end.
    key_layers = superframe_frames(SVC_KEY_PICTURE)
    delta_layers = superframe_frames(SVC_DELTA_PICTURE)
    assert [len(layer) for layer in key_layers] == [103, 177, 519]
    packetizer = Vp9Packetizer(mtu, flexible=flexible, resolutions=[(8, 6), (16, 12), (32, 24)])
    key_packets = packetizer.picture(
        [LayerFrame(layer, sid=sid, inter_layer=sid > 0, inter_picture=sid > 0, p_diffs=(1,)
                    if sid else ()) for sid, layer in enumerate(key_layers)],
        keyframe=True,
    )  # fmt: skip
    delta_packets = packetizer.picture(
        [
            LayerFrame(layer, sid=sid, inter_picture=True, p_diffs=(1,))
            for sid, layer in enumerate(delta_layers)
        ]
    )
    depacketizer = _depacketizer()
    assert depacketizer.starts_frame(_view(key_packets[0][0])) is True
    key = _build([p for p, _ in key_packets], depacketizer)
    delta = _build([p for p, _ in delta_packets], depacketizer)
    # libvpx's own superframes, index and all: 3 frames, 2-byte sizes 103, 177, 519.
    assert key.data == SVC_KEY_PICTURE
    assert key.data[-8:] == bytes.fromhex("ca 6700 b100 0702 ca")
    assert delta.data == SVC_DELTA_PICTURE
    assert delta.data[-5:] == bytes.fromhex("c2 16 16 12 c2")
    assert (key.keyframe, key.width, key.height) == (True, 32, 24)  # the top layer's size
    assert (delta.keyframe, delta.width, delta.height) == (False, 0, 0)
    assert depacketizer.config is not None
    assert (depacketizer.config.width, depacketizer.config.height) == (32, 24)


def test_sfu_forwarding_fewer_layers_gives_smaller_pictures() -> None:
    # An SFU that forwards layers 0 and 1 only: the picture is their superframe, 16x12.
    layers = superframe_frames(SVC_KEY_PICTURE)[:2]
    packets = Vp9Packetizer(1200).picture(
        [LayerFrame(layer, sid=sid, inter_layer=sid > 0) for sid, layer in enumerate(layers)],
        keyframe=True,
    )
    frame = _build([p for p, _ in packets])
    assert frame.data == build_superframe(layers)
    assert frame.data[-4:] == bytes.fromhex("c1 67 b1 c1")
    assert (frame.keyframe, frame.width, frame.height) == (True, 16, 12)


def test_k_svc_delta_picture_of_the_top_layer_alone() -> None:
    # k-SVC: delta pictures of an upper layer do not depend on the layers below (D=0), so an
    # SFU forwards that layer frame alone; it is the whole picture, kept as sent.
    top = superframe_frames(SVC_DELTA_PICTURE)[2]
    packets = Vp9Packetizer(1200).picture([LayerFrame(top, sid=2, inter_picture=True,
                                                      p_diffs=(1,))])  # fmt: skip
    depacketizer = _depacketizer()
    assert depacketizer.starts_frame(_view(packets[0][0])) is True
    assert _build([p for p, _ in packets], depacketizer).data == top


def test_inner_superframes_are_flattened_into_one_index() -> None:
    # A layer frame that is itself a superframe (hidden alt-ref + shown), then another layer.
    packets = Vp9Packetizer(1200).picture([LayerFrame(ARF_SUPERFRAME), LayerFrame(P0_INTER, sid=1)])
    frame = _build([p for p, _ in packets])
    assert frame.data == ARF_SUPERFRAME[:144] + P0_INTER + bytes.fromhex("c2 6f 21 0f c2")
    assert superframe_frames(frame.data) == [ARF_SUPERFRAME[:111], ARF_SUPERFRAME[111:144],
                                             P0_INTER]  # fmt: skip


def test_picture_of_more_than_eight_frames_is_refused() -> None:
    packetizer = Vp9Packetizer(1200)
    four = packetizer.picture([LayerFrame(ARF_SUPERFRAME, sid=sid) for sid in range(4)])
    assert len(superframe_frames(_build([p for p, _ in four]).data)) == 8
    five = packetizer.picture([LayerFrame(ARF_SUPERFRAME, sid=sid) for sid in range(5)])
    with pytest.raises(DepacketizeError) as raised:
        _build([p for p, _ in five])
    assert str(raised.value) == "VP9 picture has 10 frames, a superframe holds 1 to 8"


MALFORMED_PICTURES = [
    pytest.param([], "VP9 picture has no packets", id="no-packets"),
    pytest.param(
        [b"\x00\x86"],
        "VP9 packet continues a layer frame whose B packet is missing",
        id="B-missing",
    ),
    pytest.param(
        [b"\x0c\x86\x00", b"\x04\x86\x00"],
        "VP9 packet continues a layer frame whose B packet is missing",
        id="second-layer-B-missing",
    ),
    pytest.param([b"\x08\x86\x00"], "VP9 layer frame has no E packet", id="E-missing"),
    pytest.param(
        [b"\x0c\x86\x00", b"\x08\x86", b"\x00\x00"],
        "VP9 layer frame has no E packet",
        id="last-layer-E-missing",
    ),
    pytest.param(
        [b"\x08\x86", b"\x0c\x86\x00"],
        "VP9 layer frame has no E packet before the next B packet",
        id="first-layer-E-missing",
    ),
    pytest.param(
        [b"\x38\x02\x86", b"\x34\x04\x00"],
        "VP9 layer frame of spatial layer 1 continues in layer 2",
        id="spatial-layer-changes-inside-a-layer-frame",
    ),
    pytest.param(
        [b"\x08\x86", b"\x8c"],
        "VP9 payload descriptor truncated in picture ID: needs 2 bytes, 1 present",
        id="bad-descriptor-in-second-packet",
    ),
    pytest.param([b"\x0c\x06\x00"], "VP9 frame marker is 0, expected 2", id="frame-marker"),
    pytest.param(
        [b"\x0c\xb8\x00"],
        "VP9 profile 3 header has its reserved bit set",
        id="profile-3-reserved",
    ),
    pytest.param(
        [b"\x0c\x86\x00", b"\x0c\x46\x00"],
        "VP9 frame marker is 1, expected 2",
        id="upper-layer-frame-marker",
    ),
    pytest.param(
        [b"\x0c\x86\x00\xc0"],
        "VP9 frame ends in superframe marker 0xc0 without a matching index",
        id="broken-inner-superframe",
    ),
    pytest.param(
        [b"\x0c" + P0_KEY[:7] + b"\x00"],
        "VP9 uncompressed header truncated at bit 52 (needs 16 more)",
        id="keyframe-header-cut",
    ),
    pytest.param(
        [b"\x0c" + _header(sync=0x123456)],
        "VP9 frame sync code is 123456, expected 498342",
        id="keyframe-sync-code",
    ),
    pytest.param(
        [b"\x0c" + P0_KEY, b"\x0c" + _header(keyframe=False, sync=0)[:4]],
        "VP9 uncompressed header truncated at bit 32 (needs 1 more)",
        id="upper-layer-header-cut-on-a-keyframe",
    ),
]


@pytest.mark.parametrize(("payloads", "message"), MALFORMED_PICTURES)
def test_malformed_picture(payloads: list[bytes], message: str) -> None:
    depacketizer = _depacketizer()
    with pytest.raises(DepacketizeError) as raised:
        _build(payloads, depacketizer)
    assert str(raised.value) == message
    assert depacketizer.config is None


# -- the codec configuration (vpcC fields) ----------------------------------------------------


def test_config_is_kept_while_keyframes_agree_and_replaced_when_they_change() -> None:
    depacketizer = _depacketizer()
    _build([b"\x0c" + P0_KEY], depacketizer)
    first = depacketizer.config
    _build([b"\x0c" + P0_KEY], depacketizer)
    assert depacketizer.config is first
    _build([b"\x4c" + P0_INTER], depacketizer)
    assert depacketizer.config is first
    _build([b"\x0c" + P0_FULL_RANGE_KEY], depacketizer)
    assert depacketizer.config is not first
    assert depacketizer.config is not None
    assert depacketizer.config.full_range is True
    _build([b"\x0c" + _header(size=(1280, 720))], depacketizer)
    assert (depacketizer.config.width, depacketizer.config.height, depacketizer.config.level) == (
        1280,
        720,
        31,
    )
    _build([b"\x0c" + P2_10BIT_KEY], depacketizer)
    assert (depacketizer.config.profile, depacketizer.config.bit_depth) == (2, 10)


# FFmpeg 5.1 `-c copy` to mp4 of libvpx-vp9 IVFs: 160x120 and 192x192 → 10, 320x240 → 20,
# 640x480 → 30, 1024x768 and 1280x720 → 31, 1920x1080 → 40 (frame rate not considered).
@pytest.mark.parametrize(
    ("width", "height", "level"),
    [
        (32, 24, 10),
        (160, 120, 10),
        (192, 192, 10),
        (256, 256, 11),
        (320, 240, 20),
        (480, 360, 21),
        (640, 480, 30),
        (1024, 768, 31),
        (1280, 720, 31),
        (1920, 1080, 40),
        (3840, 2160, 50),
        (7680, 4320, 60),
        (8192, 8192, 0),
    ],
)
def test_level_follows_ffmpeg(width: int, height: int, level: int) -> None:
    assert vp9_level(width, height) == level


# -- tests/vp9_packetizer.py round trips ------------------------------------------------------

REAL_STREAM = [(P0_KEY, True), (P0_INTER, False), (P0_INTER2, False), (ARF_SUPERFRAME, False)]


@pytest.mark.parametrize("flexible", [True, False], ids=["flexible", "non-flexible"])
@pytest.mark.parametrize("picture_id_bits", [0, 7, 15])
@pytest.mark.parametrize("mtu", [12, 50, 1200])
def test_packetizer_round_trip_of_real_frames(
    flexible: bool, picture_id_bits: int, mtu: int
) -> None:
    packetizer = Vp9Packetizer(
        mtu,
        flexible=flexible,
        picture_id_bits=picture_id_bits,
        first_picture_id=126 if picture_id_bits == 7 else 32766,
        picture_group=None if flexible else [(0, False, (1,))],
    )
    depacketizer = _depacketizer()
    for frame, keyframe in REAL_STREAM:
        layer = LayerFrame(frame, inter_picture=not keyframe, p_diffs=() if keyframe else (1,))
        packets = packetizer.picture([layer], keyframe=keyframe)
        assert all(len(payload) <= mtu for payload, _ in packets)
        assert [marker for _, marker in packets] == [False] * (len(packets) - 1) + [True]
        assert depacketizer.starts_frame(_view(packets[0][0])) is True
        assert not any(depacketizer.starts_frame(_view(p)) for p, _ in packets[1:])
        built = _build([p for p, _ in packets], depacketizer)
        assert (built.data, built.keyframe) == (frame, keyframe)


def test_packetizer_descriptor_fields() -> None:
    packetizer = Vp9Packetizer(
        1200, flexible=False, picture_id_bits=7, first_picture_id=127, first_tl0_pic_idx=255
    )
    pictures = [
        packetizer.picture([LayerFrame(P0_KEY)], keyframe=True),
        packetizer.picture([LayerFrame(P0_INTER, tid=1, switching_up=True, inter_picture=True)]),
        packetizer.picture([LayerFrame(P0_INTER2, tid=0, inter_picture=True)]),
    ]
    parsed = [parse_descriptor(packets[0][0]) for packets in pictures]
    assert [d.picture_id for d in parsed] == [127, 0, 1]  # 7 bits wrap
    assert [d.tl0_pic_idx for d in parsed] == [255, 255, 0]  # counts TID 0 pictures, wraps
    assert [(d.tid, d.switching_up) for d in parsed] == [(0, False), (1, True), (0, False)]
    assert [d.ss is not None for d in parsed] == [True, False, False]
    assert parsed[0].ss == ScalabilityStructure(1, (), ())
    assert [d.inter_picture for d in parsed] == [False, True, True]


def test_packetizer_flexible_reference_indices_and_ss() -> None:
    packetizer = Vp9Packetizer(
        1200, resolutions=[(16, 12), (32, 24)], picture_group=[(0, False, (2,))]
    )
    packets = packetizer.picture(
        [
            LayerFrame(P0_INTER, inter_picture=True, p_diffs=(1, 4, 127)),
            LayerFrame(P0_INTER2, sid=1, inter_layer=True, not_upper_reference=True,
                       inter_picture=True, p_diffs=(2,)),
        ],
        keyframe=True,
    )  # fmt: skip
    base, upper = (parse_descriptor(p) for p, _ in packets)
    assert base.p_diffs == (1, 4, 127)
    assert base.ss == ScalabilityStructure(2, ((16, 12), (32, 24)), ((0, False, (2,)),))
    assert (upper.sid, upper.inter_layer, upper.not_upper_reference) == (1, True, True)
    assert (upper.p_diffs, upper.ss) == ((2,), None)
    assert base.picture_id == upper.picture_id == 0


# -- the stream's frame assembly with spatial layers (recorder.stream) -----------------------


def _feed(packets: Sequence[tuple[bytes, bool, int]]) -> tuple[InboundStream, list[Frame]]:
    frames: list[Frame] = []
    stream = InboundStream(0x01020304, _depacketizer(), lambda frame, _: frames.append(frame))
    for sequence, (payload, marker, timestamp) in enumerate(packets):
        data = build_rtp(sequence=sequence, timestamp=timestamp, marker=marker, payload=payload)
        stream.push(RtpPacket.parse(data), sequence * 0.001)
    stream.flush()
    return stream, frames


def _svc_packets(mtu: int = 200) -> list[tuple[bytes, bool, int]]:
    packetizer = Vp9Packetizer(mtu)
    out = []
    for number, (picture, keyframe) in enumerate(
        [(SVC_KEY_PICTURE, True), (SVC_DELTA_PICTURE, False)]
    ):
        layers = [
            LayerFrame(frame, sid=sid, inter_layer=keyframe and sid > 0,
                       inter_picture=not (keyframe and sid == 0), p_diffs=(1,))
            for sid, frame in enumerate(superframe_frames(picture))
        ]  # fmt: skip
        for payload, marker in packetizer.picture(layers, keyframe=keyframe):
            out.append((payload, marker, number * 3000))
    return out


def test_stream_assembles_spatial_layers_into_pictures() -> None:
    _, frames = _feed(_svc_packets())
    assert [frame.data for frame in frames] == [SVC_KEY_PICTURE, SVC_DELTA_PICTURE]
    assert [frame.keyframe for frame in frames] == [True, False]


def test_stream_without_base_layer_does_not_start_at_an_upper_layer() -> None:
    # The key picture's base layer never arrived: its layer 1 frame (D=1) starts nothing, and
    # the delta picture waits for a keyframe.
    packets = _svc_packets()
    base_end = next(i for i, (p, _, _) in enumerate(packets) if parse_descriptor(p).ends)
    stream, frames = _feed(packets[base_end + 1 :])
    assert frames == []
    stats = stream.stats()
    assert (stats["incomplete_frames"], stats["gated_frames"]) == (1, 1)


# -- property tests: only DepacketizeError, and what a success must look like ----------------

DESCRIPTOR_SEEDS: list[bytes] = [
    *[d + b"\x86\x00" for d in (p.values[0] for p in DESCRIPTORS)],
    *[p.values[0] for p in MALFORMED_DESCRIPTORS],
    *[payload for payload, _ in GST_P0_PACKETS[:1] + GST_P0_PACKETS[3:]],
    *[payload for payload, _ in FFMPEG_P0_PACKETS[3:]],
    b"\x8e\x01" + SCALABILITY_STRUCTURES[6].values[0] + b"\x86",
    b"\x8e\x01" + SCALABILITY_STRUCTURES[7].values[0] + b"\x86",
]
HEADER_SEEDS: list[bytes] = [
    *[p.values[0][:24] for p in REAL_HEADERS],
    *[_pack(_fields(**p.values[0])) for p in INVENTED_HEADERS],  # type: ignore[arg-type]
    *[p.values[0] for p in MALFORMED_HEADERS],
]
SUPERFRAME_SEEDS: list[bytes] = [
    ARF_SUPERFRAME,
    SVC_DELTA_PICTURE,
    *[p.values[0] for p in MALFORMED_SUPERFRAMES],
]


def _check_starts_frame(payload: bytes) -> None:
    try:
        starts = _depacketizer().starts_frame(_view(payload))
    except DepacketizeError:
        return
    descriptor = parse_descriptor(payload)
    assert 0 < descriptor.size < len(payload)
    assert starts is (bool(payload[0] & 0x08) and not descriptor.inter_layer)


@FUZZ
@given(st.binary(max_size=32))
def test_fuzz_starts_frame_arbitrary_bytes(payload: bytes) -> None:
    _check_starts_frame(payload)


@FUZZ
@given(mutations(DESCRIPTOR_SEEDS))
def test_fuzz_starts_frame_mutated_payloads(payload: bytes) -> None:
    _check_starts_frame(payload)


def _check_build(payloads: list[bytes]) -> None:
    depacketizer = _depacketizer()
    try:
        frame = _build(payloads, depacketizer)
    except DepacketizeError:
        assert depacketizer.config is None
        return
    assert frame.data
    assert frame.timestamp == 0
    if frame.keyframe:
        assert depacketizer.config is not None
        assert (depacketizer.config.width, depacketizer.config.height) == (
            frame.width,
            frame.height,
        )
        assert 0 < frame.width <= 65536 and 0 < frame.height <= 65536
    else:
        assert depacketizer.config is None
        assert (frame.width, frame.height) == (0, 0)


CAPTURED_PAYLOADS = [payload for payload, _ in GST_P0_PACKETS + FFMPEG_P0_PACKETS]


@FUZZ
@given(st.lists(st.binary(max_size=24), max_size=4))
def test_fuzz_build_arbitrary_payloads(payloads: list[bytes]) -> None:
    _check_build(payloads)


@FUZZ
@given(st.lists(mutations([*DESCRIPTOR_SEEDS, *CAPTURED_PAYLOADS]), min_size=1, max_size=4))
@example([payload for payload, _ in GST_P0_PACKETS[:3]])
@example([payload for payload, _ in FFMPEG_P0_PACKETS[:3]])
def test_fuzz_build_mutated_payloads(payloads: list[bytes]) -> None:
    _check_build(payloads)


@FUZZ
@given(
    st.lists(mutations([p for p, _, _ in _svc_packets(120)]), min_size=1, max_size=12),
)
def test_fuzz_build_mutated_spatial_layer_packets(payloads: list[bytes]) -> None:
    _check_build(payloads)


@st.composite
def _layer_frames(draw: st.DrawFn) -> list[bytes]:
    """1-4 invented non-key frames: a valid first byte, a last byte that is no marker."""
    frames = []
    for _ in range(draw(st.integers(1, 4))):
        body = draw(st.binary(max_size=40))
        frames.append(b"\x86" + body + b"\x00")
    return frames


@FUZZ
@given(_layer_frames(), st.integers(8, 64), st.booleans(), st.sampled_from([0, 7, 15]))
def test_fuzz_packetizer_round_trip(
    frames: list[bytes], mtu: int, flexible: bool, picture_id_bits: int
) -> None:
    packetizer = Vp9Packetizer(mtu, flexible=flexible, picture_id_bits=picture_id_bits)
    packets = packetizer.picture(
        [LayerFrame(frame, sid=sid, inter_picture=True, p_diffs=(1,)) for sid, frame in
         enumerate(frames)]
    )  # fmt: skip
    assert all(len(payload) <= mtu for payload, _ in packets)
    frame = _build([p for p, _ in packets])
    assert frame.data == (frames[0] if len(frames) == 1 else build_superframe(frames))
    assert frame.keyframe is False


def _check_header(data: bytes) -> None:
    try:
        header = parse_frame_header(data)
    except DepacketizeError:
        return
    assert header.profile in (0, 1, 2, 3)
    assert header.bit_depth in (8, 10, 12)
    if header.keyframe or header.intra_only:
        assert 1 <= header.width <= 65536 and 1 <= header.height <= 65536
    if header.keyframe:
        assert header.refresh_frame_flags == 0xFF


@FUZZ
@given(st.binary(max_size=20))
def test_fuzz_header_arbitrary_bytes(data: bytes) -> None:
    _check_header(data)


@FUZZ
@given(mutations(HEADER_SEEDS))
def test_fuzz_header_mutated(data: bytes) -> None:
    _check_header(data)


def _check_superframe(chunk: bytes) -> None:
    try:
        frames = superframe_frames(chunk)
    except DepacketizeError:
        return
    assert all(frames)
    if len(frames) == 1 and frames[0] == chunk:
        return
    index_size = len(chunk) - sum(len(frame) for frame in frames)
    assert b"".join(frames) + chunk[-index_size:] == chunk
    assert chunk[-1] == chunk[-index_size]


@FUZZ
@given(st.binary(max_size=24))
def test_fuzz_superframe_arbitrary_bytes(chunk: bytes) -> None:
    _check_superframe(chunk)


@FUZZ
@given(mutations(SUPERFRAME_SEEDS))
def test_fuzz_superframe_mutated(chunk: bytes) -> None:
    _check_superframe(chunk)
