"""`rtp-recorder serve`: starts with its embedded defaults or a configuration, answers, stops
cleanly, and refuses a configuration that cannot work before it binds anything."""

from __future__ import annotations

import os
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


def _environment(**settings: str) -> dict[str, str]:
    # Only the test's own RTP_RECORDER_* settings, none of the developer's.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RTP_RECORDER_")}
    return environment | settings


def _start(
    workdir: Path, port: int, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "recorder.cli", "serve", *args]
    if not args:
        command += ["--port", str(port)]
    process = subprocess.Popen(
        command,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env or _environment(),
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
        env=_environment(),
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "rtp-recorder: error: --archive-dir and --archive-tmp-dir must be different directories"
    )


def test_serve_takes_a_toml_file_and_the_environment_and_guards_the_api(tmp_path: Path) -> None:
    port = _free_port()
    token = "a-token-from-the-environment"
    (tmp_path / "recorder.toml").write_text(
        f'port = {port}\narchive-dir = "files"\nhost = "0.0.0.0"\n'
    )
    process = _start(
        tmp_path,
        port,
        "--config",
        "recorder.toml",
        env=_environment(RTP_RECORDER_API_TOKEN=token, RTP_RECORDER_STATE="db.sqlite3"),
    )
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["status"] == "ok"
        assert Path(health["archive_dir"]) == tmp_path / "files"
        assert Path(health["state"]) == tmp_path / "db.sqlite3"
        url = f"http://127.0.0.1:{port}/openapi.json"
        refused = httpx.get(url)
        assert refused.status_code == 401
        assert refused.json()["error_type"] == "UNAUTHORIZED"
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    assert token not in output


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--host", "0.0.0.0"],
            {},
            "--host 0.0.0.0 is reachable from other machines: set --api-token or pass "
            "--allow-insecure-bind to serve the API without authentication",
        ),
        (
            [],
            {"RTP_RECORDER_RTP_PORT_RANGE": "40001-40999"},
            "--rtp-port-range 40001-40999 must start on an even port (RTP even, RTCP odd) "
            "(set by RTP_RECORDER_RTP_PORT_RANGE)",
        ),
        (["--port", "eighty"], {}, "--port: 'eighty' is not an integer"),
    ],
    ids=["insecure-bind", "odd-port-range", "bad-port"],
)
def test_serve_refuses_a_bad_configuration_in_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "recorder.cli", "serve", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env=_environment(**env),
    )
    assert done.returncode == 1
    assert done.stderr == f"rtp-recorder: error: {message}\n"
    assert not (tmp_path / "state.sqlite3").exists()
