"""Offline recording: a pcap / pcapng capture plus its SDP become one WebM or MP4 file.

The capture is replayed through the same router → stream → archive → writer pipeline that live
recording uses, with each packet's capture time as its arrival time. The file is written next
to the output under a temporary name and renamed into place only when it is complete.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recorder.archive import Archive, ArchiveResult
from recorder.capture import CaptureStats, feed_udp
from recorder.errors import NoMediaError, UnsupportedError
from recorder.ingest import Router, recorded_sections
from recorder.mux import WRITERS, Writer, writer_class
from recorder.sdp import MediaDescription, RtpFormat, SessionDescription


def container_for(output: Path, format_name: str | None = None) -> str:
    name = (format_name or output.suffix.lstrip(".")).lower()
    if name not in WRITERS:
        raise UnsupportedError(
            f"cannot tell the container of {output.name!r}: use a .webm or .mp4 name or --format"
        )
    return name


@dataclass(slots=True)
class Replay:
    router: Router
    capture: CaptureStats
    archive: ArchiveResult


def replay(
    capture: str | Path,
    sections: list[tuple[MediaDescription, RtpFormat]],
    writers: Sequence[Writer],
) -> Replay:
    """Feed every datagram of `capture` through the pipeline into `writers`, then close them."""
    archive = Archive(writers)
    router = Router(sections, archive)
    stats = CaptureStats()
    feed_udp(capture, router.feed, stats)
    router.flush()
    if not any(route.stream for route in router.routes):
        raise NoMediaError(_no_stream_message(router, stats))
    return Replay(router, stats, archive.close())


def convert(
    capture: str | Path,
    sdp: SessionDescription,
    output: str | Path,
    format_name: str | None = None,
) -> dict[str, Any]:
    """Record `capture` into `output`; return the summary printed by `rtp-recorder convert`."""
    output = Path(output)
    container = container_for(output, format_name)
    writer_cls = writer_class(container)
    sections = recorded_sections(sdp.media)
    # Refuse a codec the container cannot hold before any file exists.
    writer_cls.check_codecs([rtp_format.encoding for _, rtp_format in sections])
    temporary = output.with_name(f".{output.name}.part")
    with open(temporary, "w+b") as file:
        try:
            result = replay(capture, sections, [writer_cls(file)])
            file.flush()
            os.fsync(file.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    os.replace(temporary, output)
    stats = result.capture
    return {
        "output": str(output),
        "format": container,
        "duration": round(result.archive.duration, 3),
        "size": output.stat().st_size,
        "streams": [route.stats() for route in result.router.routes],
        "capture": {
            "records": stats.records,
            "udp": stats.udp,
            "unmatched_udp": result.router.unmatched,
            "not_udp": stats.not_udp + stats.not_ip,
            "fragments": stats.fragments,
            "truncated_records": stats.truncated_records,
            "truncated_file": stats.truncated_file,
        },
    }


def _no_stream_message(router: Router, stats: CaptureStats) -> str:
    ports = ", ".join(str(route.port) for route in router.routes)
    malformed = sum(route.malformed for route in router.routes)
    if malformed:
        reasons = {}
        for route in router.routes:
            reasons.update(route.errors)
        top = max(reasons, key=reasons.__getitem__)
        return (
            f"no RTP stream in the capture: {malformed} datagrams to port(s) {ports} are not "
            f"valid RTP (most often: {top})"
        )
    return (
        f"no RTP stream in the capture for port(s) {ports} "
        f"({stats.udp} UDP datagrams, {router.unmatched} to other ports)"
    )
