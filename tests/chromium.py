"""Headless Chromium loading a page from a local HTTP server that answers Range requests.

The page reports what the browser saw by POSTing JSON to /result; `open_page` returns it.
"""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, ClassVar

from tests.judges import require

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

    results: ClassVar[Any] = None
    done: ClassVar[threading.Event] = threading.Event()

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


def open_page(root: Path, page_and_query: str) -> Any:
    """Serve `root`, open `page_and_query` in headless Chromium, return what the page posted."""
    chromium = require("chromium")
    _Handler.done.clear()
    _Handler.results = None
    handler = lambda *args: _Handler(*args, directory=str(root))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/{page_and_query}"
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
            server.server_close()
    assert finished, "the page never reported: Chromium did not load or play the files"
    return _Handler.results
