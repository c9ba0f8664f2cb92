"""One module per RTP payload format; `depacketizer_class` maps an SDP encoding name to it."""

from __future__ import annotations

from recorder.codecs.base import Depacketizer
from recorder.errors import UnsupportedError
from recorder.registry import Registry

# Encoding name (upper case) -> depacketizer; each codec's module is imported when first used.
DEPACKETIZERS: Registry[type[Depacketizer]] = Registry(
    {
        "VP8": "recorder.codecs.vp8:Vp8Depacketizer",
        "VP9": "recorder.codecs.vp9:Vp9Depacketizer",
        "AV1": "recorder.codecs.av1:Av1Depacketizer",
        "H264": "recorder.codecs.h264:H264Depacketizer",
        "H265": "recorder.codecs.h265:H265Depacketizer",
        "OPUS": "recorder.codecs.opus:OpusDepacketizer",
    }
)


def depacketizer_class(encoding_name: str) -> type[Depacketizer]:
    """The depacketizer for an rtpmap encoding name (case-insensitive, RFC 4566 section 6)."""
    try:
        return DEPACKETIZERS[encoding_name.upper()]
    except KeyError:
        supported = ", ".join(sorted(DEPACKETIZERS))
        raise UnsupportedError(
            f"codec {encoding_name!r} is not supported (supported: {supported})"
        ) from None


__all__ = ["DEPACKETIZERS", "Depacketizer", "depacketizer_class"]
