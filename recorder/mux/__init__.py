"""Container writers: fragmented MP4 and WebM."""

from __future__ import annotations

from recorder.errors import UnsupportedError
from recorder.mux.base import TrackSpec, Writer, WriterResult
from recorder.registry import Registry

# Container (file extension) -> writer; each writer's module is imported when first used.
WRITERS: Registry[type[Writer]] = Registry(
    {"webm": "recorder.mux.webm:WebmWriter", "mp4": "recorder.mux.mp4:Mp4Writer"}
)


def writer_class(container: str) -> type[Writer]:
    try:
        return WRITERS[container]
    except KeyError:
        raise UnsupportedError(
            f"container {container!r} is not supported (supported: {', '.join(WRITERS)})"
        ) from None


__all__ = ["WRITERS", "TrackSpec", "Writer", "WriterResult", "writer_class"]
