"""The promise of the product: a recording plays in a browser the moment it is finished.

Headless Chromium (Debian's package) loads each container in a <video> element from a local
HTTP server that answers Range requests, as any file server in front of an archive would,
plays it to the end and seeks in it.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.judges import SOURCE_DURATION, SOURCE_HEIGHT, SOURCE_WIDTH, require, source_md5

PAGE = Path(__file__).parent / "browser" / "player.html"
BROWSER_TIMEOUT = 90
# Flags that work on this kind of machine (../shared/PEERS.md): no GPU, no sandbox as root,
# and no background connections to a network that is closed.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with byte ranges (browsers seek media through them); POST /result."""

    results: ClassVar[list[Any]] = []
    done = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).results = json.loads(body)
        self.send_response(204)
        self.end_headers()
        type(self).done.set()

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if match is None or not path.is_file():
            super().do_GET()
            return
        size = path.stat().st_size
        start = int(match[1] or 0)
        end = min(int(match[2]) if match[2] else size - 1, size - 1)
        with open(path, "rb") as file:
            file.seek(start)
            data = file.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def played(recordings: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    chromium = require("chromium")
    root = tmp_path_factory.mktemp("site")
    shutil.copy(PAGE, root / "player.html")
    for container in ("webm", "mp4"):
        shutil.copy(recordings["gst", container][0], root / f"recording.{container}")
    _Handler.done.clear()
    handler = lambda *args: _Handler(*args, directory=str(root))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = (
        f"http://127.0.0.1:{server.server_port}/player.html?file=recording.webm&file=recording.mp4"
    )
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            finished = _Handler.done.wait(BROWSER_TIMEOUT)
        finally:
            browser.kill()
            browser.wait()
            server.shutdown()
    assert finished, "the page never reported: Chromium did not load or play the files"
    return {Path(result["src"]).suffix.lstrip("."): result for result in _Handler.results}


@pytest.mark.parametrize("container", ["webm", "mp4"])
def test_chromium_plays_the_recording_to_the_end(played: dict, container: str) -> None:
    result = played[container]
    assert result["error"] is None
    assert (result["width"], result["height"]) == (SOURCE_WIDTH, SOURCE_HEIGHT)
    assert result["duration"] == pytest.approx(SOURCE_DURATION, abs=1 / 30)
    assert result["played"] is True
    assert result["ended"] == "ended"
    assert result["decoded"] == len(source_md5("video"))


@pytest.mark.parametrize("container", ["webm", "mp4"])
def test_chromium_seeks_in_the_recording(played: dict, container: str) -> None:
    result = played[container]
    [(start, end)] = result["seekable"]
    assert start == 0 and end == pytest.approx(SOURCE_DURATION, abs=1 / 30)
    assert result["seeks"] == pytest.approx([2.0, 3.5, 1.0], abs=0.01)
