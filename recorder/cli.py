"""`rtp-recorder`: the command line.

    rtp-recorder serve      run the recorder with its HTTP control plane
    rtp-recorder convert    record a pcap / pcapng capture (plus its SDP) into WebM or MP4
    rtp-recorder record     record live RTP arriving on the ports of an SDP into WebM or MP4

Errors end in one line on stderr and a non-zero exit status, never a traceback (set
RTP_RECORDER_DEBUG=1 to see one for an unexpected error).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from recorder import __version__
from recorder.errors import RecorderError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h)
# Sub-commands that use nothing of the service: their runs skip the `serve` options, whose
# definitions import the whole service (config, lifecycle, store, events: ~0.2 s of CPU).
STANDALONE_COMMANDS = ("convert", "record")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The first word that is not an option is the sub-command (the top level takes no values).
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = _parser(with_serve_options=command not in STANDALONE_COMMANDS)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except RecorderError as error:
        _fail(str(error))
        return EXIT_ERROR
    except OSError as error:
        reason = error.strerror or str(error)
        _fail(f"{error.filename}: {reason}" if error.filename else reason)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # the promise is one line, not a traceback
        if os.environ.get("RTP_RECORDER_DEBUG"):
            raise
        _fail(f"internal error: {type(error).__name__}: {error}")
        return EXIT_INTERNAL


def _fail(message: str) -> None:
    print(f"rtp-recorder: error: {' '.join(message.split())}", file=sys.stderr)


def _parser(with_serve_options: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtp-recorder",
        description="Record RTP from a WebRTC SFU into WebM and fragmented MP4, no transcoding.",
    )
    parser.add_argument("--version", action="version", version=f"rtp-recorder {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_help = "run the recorder and its HTTP API"
    if with_serve_options:
        from recorder.config import SERVE_DESCRIPTION, SERVE_EPILOG, add_serve_arguments

        serve = commands.add_parser(
            "serve",
            help=serve_help,
            description=SERVE_DESCRIPTION,
            epilog=SERVE_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_serve_arguments(serve)
    else:
        serve = commands.add_parser("serve", help=serve_help)
    serve.set_defaults(run=_serve)

    convert = commands.add_parser(
        "convert",
        help="record a capture file into WebM or MP4",
        description="Replay the RTP in a pcap / pcapng capture through the recorder. Prints a "
        "one-line JSON summary: per stream packets, lost, duplicates, frames, dropped frames, "
        "keyframes; the file's duration and size.",
    )
    convert.add_argument("capture", type=Path, help="pcap or pcapng file")
    convert.add_argument(
        "--sdp", type=Path, required=True, help="SDP mapping ports and payload types"
    )
    convert.add_argument(
        "-o", "--output", type=Path, required=True, help="output file, .webm or .mp4"
    )
    convert.add_argument(
        "--format", choices=("webm", "mp4"), help="container (default: from the output name)"
    )
    convert.set_defaults(run=_convert)

    record = commands.add_parser(
        "record",
        help="record live RTP described by an SDP into WebM or MP4",
        description="Listen on the SDP's ports (like `ffmpeg -i session.sdp -c copy`), record "
        "until SIGINT / SIGTERM or --duration, finalize the file and print a one-line JSON "
        "summary. SRTP keys come from the SDP's a=crypto lines.",
    )
    record.add_argument("--sdp", type=Path, required=True, help="SDP of what is sent to us")
    record.add_argument(
        "-o", "--output", type=Path, required=True, help="output file, .webm or .mp4"
    )
    record.add_argument(
        "--format", choices=("webm", "mp4"), help="container (default: from the output name)"
    )
    record.add_argument("--duration", type=float, help="stop after this many seconds")
    record.add_argument(
        "--listen", default="0.0.0.0", help="address to bind the ports on (default: 0.0.0.0)"
    )
    record.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="accept RTP only from this address or CIDR (repeatable; default: any, the "
        "first source of each port is latched)",
    )
    record.add_argument(
        "--keyframe-interval",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="request a keyframe this often, 1-240 s (default: 20)",
    )
    record.set_defaults(run=_record)
    return parser


def _convert(args: argparse.Namespace) -> int:
    from recorder.convert import convert
    from recorder.sdp import load_sdp

    sdp = load_sdp(args.sdp)
    # What start-up made (modules, classes, functions) lives as long as this process: frozen,
    # the cyclic collector no longer walks it, in its runs nor in the full one at exit.
    gc.freeze()
    summary = convert(args.capture, sdp, args.output, args.format)
    print(json.dumps(summary, separators=(",", ":")))
    return 0


def _record(args: argparse.Namespace) -> int:
    import asyncio
    import ipaddress

    from recorder.live import LiveRecording
    from recorder.sdp import load_sdp

    for entry in args.allow:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise RecorderError(f"--allow {entry!r} is not an address or CIDR") from None
    if args.duration is not None and not args.duration > 0:
        raise RecorderError("--duration must be positive")
    recording = LiveRecording(
        load_sdp(args.sdp),
        args.output,
        args.format,
        listen=args.listen,
        allow=args.allow,
        keyframe_interval=args.keyframe_interval,
    )

    def ready(bound: list[tuple[str, int]]) -> None:
        ports = ", ".join(str(port) for _, port in bound)
        print(
            f"rtp-recorder: recording {args.output} from {args.listen} ports {ports}",
            file=sys.stderr,
            flush=True,
        )

    async def run() -> dict:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop_signal, stop.set)
        return await recording.run(stop, args.duration, ready)

    summary = asyncio.run(run())
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from recorder.config import load_service_config

    # Flags, environment and the TOML file, validated; a bad value ends here in one line.
    config = load_service_config(args, os.environ)
    # uvicorn shuts down gracefully on SIGINT / SIGTERM, then restores the handlers it found
    # and raises the signal again. Finding these, that second delivery ends the process with
    # status 0 instead of "killed by SIGTERM"; before uvicorn starts, it simply exits.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _exit_cleanly)
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")
    return 0


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
