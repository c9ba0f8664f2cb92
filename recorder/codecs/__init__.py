"""One module per RTP payload format; `depacketizer_class` maps an SDP encoding name to it."""

from __future__ import annotations

from recorder.codecs.av1 import Av1Depacketizer
from recorder.codecs.base import Depacketizer
from recorder.codecs.h264 import H264Depacketizer
from recorder.codecs.h265 import H265Depacketizer
from recorder.codecs.opus import OpusDepacketizer
from recorder.codecs.vp8 import Vp8Depacketizer
from recorder.codecs.vp9 import Vp9Depacketizer
from recorder.errors import UnsupportedError

DEPACKETIZERS: dict[str, type[Depacketizer]] = {
    cls.codec: cls
    for cls in (
        Vp8Depacketizer,
        Vp9Depacketizer,
        Av1Depacketizer,
        H264Depacketizer,
        H265Depacketizer,
        OpusDepacketizer,
    )
}


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
