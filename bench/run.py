#!/usr/bin/env python3
"""rtp-recorder's benchmark (issue 7). Run from anywhere; see bench/README.md.

    python3 bench/run.py [offline|live|stop|profile|all] [--quick] [--runs N]

offline   `rtp-recorder convert` vs the equivalent GStreamer pipeline, CPU-us per packet
live      N concurrent VP8+Opus connections in real time into `rtp-recorder serve`
soak      one live step (N = --soak-connections, 100) held 10 minutes: RSS over time
stop      stop request -> archive file + JSON in archive_dir, for 10 s, 10 min and 1 h of media
profile   cProfile of `convert`, top functions per packet
all       all of them, in that order (the default; about 40 minutes once inputs exist)

--quick uses 30 s inputs (a smoke run of a few minutes); without it the inputs are 10 minutes
long, made once and cached in bench/.cache/. Results are merged into bench/results/latest.json
and latest.md (one section per part, each with its own command, time and machine), and every
run is also kept as bench/results/<time>-<part>.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import inputs, offline, report
from bench.common import machine

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("offline", "stop", "live", "soak", "profile")


def log(message: str) -> None:
    print(message, flush=True)


def run_part(part: str, args: argparse.Namespace) -> dict[str, Any]:
    seconds = 30 if args.quick else 600
    started = time.time()
    facts = machine()
    if part == "offline":
        captures = inputs.ensure(seconds)
        log(f"offline: {args.runs} alternating runs per tool on {seconds} s captures")
        result = offline.run(captures, args.runs, log)
    elif part == "profile":
        captures = inputs.ensure(seconds)
        log("profile: cProfile of rtp-recorder convert per capture")
        result = {"runs": [offline.profile(capture) for capture in captures.values()]}
    elif part == "stop":
        from bench import stop

        captures = inputs.ensure(seconds, ("vp8", "opus"))
        result = stop.run(
            captures, quick=args.quick, repeat=args.stop_repeat, log=log, workers=args.workers
        )
    elif part == "live":
        from bench import live

        captures = inputs.ensure(seconds, ("vp8", "opus"))
        steps = args.steps or (live.QUICK_STEPS if args.quick else live.STEPS)
        duration = args.live_seconds or (15.0 if args.quick else 60.0)
        result = live.run(
            captures, steps, duration, log=log, workers=args.workers, sender=args.sender
        )
    elif part == "soak":
        from bench import live

        captures = inputs.ensure(seconds, ("vp8", "opus"))
        duration = args.live_seconds or (30.0 if args.quick else live.SOAK_SECONDS)
        result = live.run(
            captures,
            [args.soak_connections],
            duration,
            log=log,
            workers=args.workers,
            sender=args.sender,
        )
    else:
        raise ValueError(part)
    result["command"] = "python3 bench/run.py " + shlex.join(args.argv)
    result["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started))
    result["elapsed_s"] = round(time.time() - started, 1)
    result["machine"] = facts
    result["quick"] = args.quick
    return result


def save(part: str, result: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    quick = "-quick" if result.get("quick") else ""
    (RESULTS / f"{stamp}-{part}{quick}.json").write_text(json.dumps(result, indent=2) + "\n")
    latest_path = RESULTS / "latest.json"
    latest = json.loads(latest_path.read_text()) if latest_path.exists() else {}
    if result.get("quick") and part in latest and not latest[part].get("quick"):
        # A smoke run never replaces a full result in latest.*.
        log(f"{part}: quick run kept as {stamp}-{part}{quick}.json only")
        return
    latest[part] = result
    latest_path.write_text(json.dumps(latest, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(report.markdown(latest))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", nargs="?", default="all", choices=(*PARTS, "all"))
    parser.add_argument("--quick", action="store_true", help="30 s inputs, short runs")
    parser.add_argument("--runs", type=int, default=5, help="runs per tool (offline; >= 5)")
    parser.add_argument(
        "--steps", type=lambda text: [int(n) for n in text.split(",")], help="live: N list"
    )
    parser.add_argument("--live-seconds", type=float, help="live: seconds per step")
    parser.add_argument("--soak-connections", type=int, default=100, help="soak: N")
    parser.add_argument("--stop-repeat", type=int, default=3, help="stop: runs per length")
    parser.add_argument(
        "--workers", help="live, soak, stop: serve's --workers (default: its own, one per core)"
    )
    parser.add_argument(
        "--sender",
        choices=("auto", "c", "python"),
        default="auto",
        help="live, soak: load generator (default: bench/sender.c if gcc builds it, else Python)",
    )
    args = parser.parse_args(argv)
    args.argv = argv
    parts = PARTS if args.part == "all" else (args.part,)
    for part in parts:
        result = run_part(part, args)
        save(part, result)
        log(report.summary(part, result))
    log(f"results: {RESULTS / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
