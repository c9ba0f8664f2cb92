"""Opus over RTP (RFC 7587) and Opus packet validation (RFC 6716 section 3).

RFC 7587 section 4.2: one RTP payload is exactly one Opus packet, so every packet is a frame.
The marker bit is not used to frame anything: FFmpeg sets it on every packet, GStreamer on the
first only, Chrome never.
"""

from __future__ import annotations

from collections.abc import Sequence

from recorder.codecs.base import Depacketizer
from recorder.errors import DepacketizeError
from recorder.media import CodecConfig, Frame

# RFC 7587 section 4.1: "the RTP timestamp clock frequency ... MUST be 48000".
OPUS_CLOCK_RATE = 48000
# RTP cannot carry the encoder's pre-skip. libopus, which Chrome, Firefox, FFmpeg and
# GStreamer all use, has a lookahead of 2.5 ms + 4 ms = 312 samples at 48 kHz and reports
# exactly that as pre-skip in its own Ogg output; Chrome's MediaRecorder writes the same.
DEFAULT_PRE_SKIP = 312
# RFC 6716 section 3.2.1: "the maximum frame size is 1275 bytes".
MAX_FRAME_BYTES = 1275
# RFC 6716 section 3.2.5 R5: a packet holds at most 120 ms of audio.
MAX_PACKET_SAMPLES = 5760
# RFC 6716 section 3.1, table 2: frame duration of each TOC configuration, in 48 kHz samples.
_FRAME_SAMPLES = (
    (480, 960, 1920, 2880) * 3  # SILK-only: NB, MB, WB
    + (480, 960) * 2  # Hybrid: SWB, FB
    + (120, 240, 480, 960) * 4  # CELT-only: NB, WB, SWB, FB
)


def packet_samples(packet: memoryview | bytes) -> int:
    """Samples (at 48 kHz) one Opus packet decodes to; raise if it breaks RFC 6716 3.4."""
    size = len(packet)
    if size == 0:
        raise DepacketizeError("Opus packet is empty (RFC 6716 R1)")
    toc = packet[0]
    frame_samples = _FRAME_SAMPLES[toc >> 3]
    code = toc & 0x03
    if code == 0:
        if size - 1 > MAX_FRAME_BYTES:
            raise DepacketizeError(f"Opus frame of {size - 1} bytes exceeds 1275 (RFC 6716 R2)")
        return frame_samples
    if code == 1:
        if (size - 1) % 2:
            raise DepacketizeError("Opus code 1 packet has an odd payload length (RFC 6716 R3)")
        if (size - 1) // 2 > MAX_FRAME_BYTES:
            raise DepacketizeError("Opus code 1 frame exceeds 1275 bytes (RFC 6716 R2)")
        return 2 * frame_samples
    if code == 2:
        first, offset = _frame_length(packet, 1, "code 2")
        if offset + first > size:
            raise DepacketizeError("Opus code 2 first frame overruns the packet (RFC 6716 R4)")
        if size - offset - first > MAX_FRAME_BYTES:
            raise DepacketizeError("Opus code 2 second frame exceeds 1275 bytes (RFC 6716 R2)")
        return 2 * frame_samples
    return _code3_samples(packet, frame_samples)


def _frame_length(packet: memoryview | bytes, offset: int, what: str) -> tuple[int, int]:
    """RFC 6716 section 3.2.1: a frame length in one byte, or two when the first is >= 252."""
    if offset >= len(packet):
        raise DepacketizeError(f"Opus {what} packet truncated in a frame length")
    first = packet[offset]
    if first < 252:
        return first, offset + 1
    if offset + 1 >= len(packet):
        raise DepacketizeError(f"Opus {what} packet truncated in a two-byte frame length")
    return first + 4 * packet[offset + 1], offset + 2


def _code3_samples(packet: memoryview | bytes, frame_samples: int) -> int:
    size = len(packet)
    if size < 2:
        raise DepacketizeError("Opus code 3 packet has no frame count byte (RFC 6716 R6)")
    count_byte = packet[1]
    count = count_byte & 0x3F
    if count == 0:
        raise DepacketizeError("Opus code 3 packet declares zero frames (RFC 6716 R5)")
    if count * frame_samples > MAX_PACKET_SAMPLES:
        raise DepacketizeError(f"Opus code 3 packet of {count} frames exceeds 120 ms (RFC 6716 R5)")
    offset = 2
    padding = 0
    if count_byte & 0x40:
        # Padding length: bytes of 255 add 254 each, the first other byte ends the run.
        while True:
            if offset >= size:
                raise DepacketizeError("Opus code 3 packet truncated in its padding length")
            value = packet[offset]
            offset += 1
            padding += 254 if value == 255 else value
            if value != 255:
                break
    available = size - offset - padding
    if available < 0:
        raise DepacketizeError("Opus code 3 padding overruns the packet (RFC 6716 R6/R7)")
    if count_byte & 0x80:  # VBR: explicit lengths for all frames but the last
        total = 0
        for _ in range(count - 1):
            # A coded length is at most 255 + 4 * 255 = 1275: within R2 by construction.
            length, offset = _frame_length(packet, offset, "code 3")
            total += length
        last = size - offset - padding - total
        if last < 0:
            raise DepacketizeError("Opus code 3 frame lengths overrun the packet (RFC 6716 R7)")
        if last > MAX_FRAME_BYTES:
            raise DepacketizeError("Opus code 3 last frame exceeds 1275 bytes (RFC 6716 R2)")
    else:
        if available % count:
            raise DepacketizeError(
                "Opus code 3 CBR payload does not split into equal frames (RFC 6716 R6)"
            )
        if available // count > MAX_FRAME_BYTES:
            raise DepacketizeError("Opus code 3 frame exceeds 1275 bytes (RFC 6716 R2)")
    return count * frame_samples


class OpusDepacketizer(Depacketizer):
    codec = "OPUS"
    kind = "audio"
    single_packet_frames = True

    __slots__ = ()

    def starts_frame(self, payload: memoryview) -> bool:
        return True

    def build(self, payloads: Sequence[memoryview], timestamp: int) -> Frame:
        if len(payloads) != 1:
            raise DepacketizeError(f"Opus frame from {len(payloads)} packets, expected 1")
        packet = payloads[0]
        samples = packet_samples(packet)
        if self.config is None:
            self.config = self._config_from(packet[0])
        return Frame(timestamp, bytes(packet), True, samples)

    def _config_from(self, toc: int) -> CodecConfig:
        # RFC 7587 section 6.1: the rtpmap always says 2 channels; what the sender produces
        # is sprop-stereo ("stereo" is only the receiver's preference). Without a valid
        # sprop-stereo, the first packet's TOC stereo flag tells.
        hint = self.fmtp.get("sprop-stereo")
        stereo = hint == "1" if hint in ("0", "1") else bool(toc & 0x04)
        return CodecConfig(
            codec=self.codec,
            kind=self.kind,
            clock_rate=OPUS_CLOCK_RATE,
            channels=2 if stereo else 1,
            sample_rate=OPUS_CLOCK_RATE,
            pre_skip=DEFAULT_PRE_SKIP,
        )
