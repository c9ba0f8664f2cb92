"""The promise of the product: a recording plays in a browser the moment it is finished.

Headless Chromium (Debian's package) loads each container in a <video> element from a local
HTTP server that answers Range requests, as any file server in front of an archive would,
plays it to the end and seeks in it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import open_page
from tests.judges import SOURCE_DURATION, SOURCE_HEIGHT, SOURCE_WIDTH, source_md5

PAGE = Path(__file__).parent / "browser" / "player.html"


@pytest.fixture(scope="module")
def played(recordings: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("site")
    shutil.copy(PAGE, root / "player.html")
    for container in ("webm", "mp4"):
        shutil.copy(recordings["gst", container][0], root / f"recording.{container}")
    results = open_page(root, "player.html?file=recording.webm&file=recording.mp4")
    return {Path(result["src"]).suffix.lstrip("."): result for result in results}


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
