"""`rtp-recorder serve` with its embedded defaults: starts, answers, stops cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

STARTUP_TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(workdir: Path, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "recorder.cli", "serve", "--port", str(port)],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early: {process.stdout.read()}")  # type: ignore[union-attr]
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("serve did not answer in time")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_answers_and_stops_cleanly(tmp_path: Path, stop_signal: signal.Signals) -> None:
    port = _free_port()
    process = _start(tmp_path, port)
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["status"] == "ok"
        assert health["state_ok"] and health["archive_dir_writable"]
        # Embedded defaults: directories and state relative to where it was started.
        assert Path(health["archive_dir"]) == tmp_path / "archive"
        assert Path(health["archive_tmp_dir"]) == tmp_path / "archive_tmp"
        assert (tmp_path / "state.sqlite3").exists()
        docs = httpx.get(f"http://127.0.0.1:{port}/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        assert "/healthz" in httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["paths"]
    finally:
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert "Application shutdown complete" in output


def test_serve_refuses_the_same_archive_and_temporary_directory(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "recorder.cli",
            "serve",
            "--archive-dir",
            "a",
            "--archive-tmp-dir",
            "a",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "rtp-recorder: error: --archive-dir and --archive-tmp-dir must be different directories"
    )
