from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.judges import CAPTURES

CONTAINERS = ("webm", "mp4")


def cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `rtp-recorder` as a user would (through the module, so any virtualenv works)."""
    return subprocess.run(
        [sys.executable, "-m", "recorder.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Any]:
    """Every real capture converted into every container once: (sender, container) -> result."""
    out = tmp_path_factory.mktemp("recordings")
    results = {}
    for sender, (pcap, sdp) in CAPTURES.items():
        for container in CONTAINERS:
            path = out / f"{sender}.{container}"
            done = cli("convert", pcap, "--sdp", sdp, "-o", path)
            assert done.returncode == 0, done.stderr
            results[sender, container] = (path, json.loads(done.stdout))
    return results
