"""Container writers: fragmented MP4 and WebM."""

from __future__ import annotations

from recorder.errors import UnsupportedError
from recorder.mux.base import TrackSpec, Writer, WriterResult
from recorder.mux.mp4 import Mp4Writer
from recorder.mux.webm import WebmWriter

WRITERS: dict[str, type[Writer]] = {cls.extension: cls for cls in (WebmWriter, Mp4Writer)}


def writer_class(container: str) -> type[Writer]:
    try:
        return WRITERS[container]
    except KeyError:
        raise UnsupportedError(
            f"container {container!r} is not supported (supported: {', '.join(WRITERS)})"
        ) from None


__all__ = ["WRITERS", "TrackSpec", "Writer", "WriterResult", "writer_class"]
