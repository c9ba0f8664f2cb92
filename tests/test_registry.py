"""The codec and container maps: every name leads to its class, imported only when asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest

from recorder.codecs import DEPACKETIZERS
from recorder.mux import WRITERS
from recorder.registry import Registry


def test_every_codec_name_is_its_depacketizer_s() -> None:
    assert sorted(DEPACKETIZERS) == ["AV1", "H264", "H265", "OPUS", "VP8", "VP9"]
    assert all(DEPACKETIZERS[name].codec == name for name in DEPACKETIZERS)


def test_every_container_name_is_its_writer_s() -> None:
    assert list(WRITERS) == ["webm", "mp4"]
    assert all(WRITERS[name].extension == name for name in WRITERS)


def test_membership_and_lookup_of_unknown_names() -> None:
    registry: Registry[type] = Registry({"JSON": "json:JSONDecoder"})
    assert "JSON" in registry and "XML" not in registry and len(registry) == 1
    with pytest.raises(KeyError):
        registry["XML"]
    assert registry["JSON"] is registry["JSON"]


def test_modules_are_imported_on_first_lookup() -> None:
    code = (
        "import sys; from recorder.codecs import DEPACKETIZERS; "
        "assert 'H264' in DEPACKETIZERS and sorted(DEPACKETIZERS); "
        "before = 'recorder.codecs.h264' in sys.modules; "
        "DEPACKETIZERS['H264']; "
        "print(before, 'recorder.codecs.h264' in sys.modules, 'recorder.codecs.vp9' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "True", "False"], done.stderr
