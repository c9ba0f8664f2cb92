"""The promises the repository makes about itself: README commands, CI, compose file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text(), re.S)


def test_readme_opens_with_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = _readme_commands()
    assert commands[:2] == ["pip install . && rtp-recorder serve", "sh tests/run.sh"]
    # Nothing but prose comes before them.
    assert readme.index("```sh") > 0
    assert readme[: readme.index(commands[1])].count("```sh") == 2


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"exec {_readme_commands()[1]}" in ci


def test_compose_file_is_valid() -> None:
    done = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    config = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "127.0.0.1:8080:8080/tcp" in config
    assert "protocol: udp" in config and "published: 40000" in config
    assert "archive:/data" in config


def test_code_is_ruff_clean() -> None:
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
