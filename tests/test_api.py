"""The /v1 API on the ASGI app: validation of every field, error types, the body limit, the
happy path of a recording's life, /metrics and the OpenAPI document.

Nothing a client sends may cause a 500; the property tests post arbitrary JSON to each route.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.models import RECORDING_STATES, ArchivingItem, ConnectionView, RecordingView
from api.routes import MAX_BODY_BYTES
from recorder import store
from recorder.service import ServiceConfig

PORTS = 200  # per test app: enough for the property tests' accidental valid recordings

VP8_OPUS: dict[str, Any] = {
    "connection_id": "conn-1",
    "client_id": "alice",
    "audio": {"codec": "OPUS", "payload_type": 111, "clock_rate": 48000, "channels": 2},
    "video": {"codec": "VP8", "payload_type": 96, "clock_rate": 90000},
}
RECORDING: dict[str, Any] = {
    "channel_id": "room-1",
    "session_id": "session-1",
    "format": "webm",
    "expire_time": 600,
    "recording_metadata": {"title": "standup", "tags": ["a", "b"], "n": 1.5},
    "connections": [VP8_OPUS],
}


def _config(tmp_path: Path, **settings: Any) -> ServiceConfig:
    # A random range per app, so parallel runs and leftovers from other tests rarely collide.
    first = random.randrange(20000, 60000 - PORTS, 2)
    return ServiceConfig(
        archive_dir=tmp_path / "archive",
        archive_tmp_dir=tmp_path / "archive_tmp",
        state=tmp_path / "state.sqlite3",
        rtp_port_range=(first, first + PORTS - 1),
        rtp_listen="127.0.0.1",
        **{"workers": 0, **settings},  # recorded in the API process; tests/test_workers.py
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_config(tmp_path))) as test_client:
        yield test_client


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`base` with the field at dotted `path` set to `value` (or removed, for `...`)."""
    body = copy.deepcopy(base)
    *parents, last = (int(part) if part.isdigit() else part for part in path.split("."))
    target: Any = body
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return body


def _refused(
    response: httpx.Response, status: int = 400, error_type: str = "INVALID-PARAMETER"
) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_type", "detail"}
    assert body["error_type"] == error_type, body
    return str(body["detail"])


def _create(client: TestClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/v1/recordings", json=RECORDING if body is None else body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


# --- validation of POST /v1/recordings -------------------------------------------------------

INVALID_RECORDINGS = {
    "no channel_id": ("channel_id", ...),
    "channel_id number": ("channel_id", 42),
    "channel_id null": ("channel_id", None),
    "channel_id list": ("channel_id", ["room"]),
    "channel_id empty": ("channel_id", ""),
    "channel_id too long": ("channel_id", "c" * 256),
    "session_id number": ("session_id", 7),
    "format avi": ("format", "avi"),
    "format upper case": ("format", "WEBM"),
    "format number": ("format", 1),
    "split_duration 0": ("split_duration", 0),
    "split_duration too long": ("split_duration", 86401),
    "split_duration string": ("split_duration", "60"),
    "split_duration float": ("split_duration", 1.5),
    "split_duration bool": ("split_duration", True),
    "split_only string": ("split_only", "yes"),
    "split_only number": ("split_only", 1),
    "expire_time 0": ("expire_time", 0),
    "expire_time negative": ("expire_time", -5),
    "expire_time huge": ("expire_time", 10**30),
    "expire_time string": ("expire_time", "600"),
    "unknown field": ("split_duraton", 60),
    "connections object": ("connections", {"connection_id": "c"}),
    "connections too many": (
        "connections",
        [{**VP8_OPUS, "connection_id": f"c{i}"} for i in range(101)],
    ),
    "connection string": ("connections.0", "conn-1"),
    "no connection_id": ("connections.0.connection_id", ...),
    "connection_id number": ("connections.0.connection_id", 1),
    "connection_id too long": ("connections.0.connection_id", "c" * 256),
    "client_id list": ("connections.0.client_id", ["alice"]),
    "recording_block string": ("connections.0.recording_block", "true"),
    "connection extra field": ("connections.0.participant", "bob"),
    "media string": ("connections.0.video", "VP8"),
    "media extra field": ("connections.0.video.bitrate", 1000),
    "no codec": ("connections.0.video.codec", ...),
    "codec empty": ("connections.0.video.codec", ""),
    "codec too long": ("connections.0.video.codec", "V" * 33),
    "no payload_type": ("connections.0.video.payload_type", ...),
    "payload_type negative": ("connections.0.video.payload_type", -1),
    "payload_type 128": ("connections.0.video.payload_type", 128),
    "payload_type string": ("connections.0.video.payload_type", "96"),
    "payload_type float": ("connections.0.video.payload_type", 96.0),
    "ssrc negative": ("connections.0.video.ssrc", -1),
    "ssrc 2**32": ("connections.0.video.ssrc", 2**32),
    "clock_rate 0": ("connections.0.video.clock_rate", 0),
    "clock_rate too high": ("connections.0.video.clock_rate", 1_000_001),
    "channels 0": ("connections.0.audio.channels", 0),
    "channels 9": ("connections.0.audio.channels", 9),
    "fmtp list": ("connections.0.video.fmtp", ["a=b"]),
    "fmtp value number": ("connections.0.video.fmtp", {"max-fs": 3600}),
    "fmtp key empty": ("connections.0.video.fmtp", {"": "1"}),
    "fmtp value too long": ("connections.0.video.fmtp", {"a": "x" * 1025}),
    "fmtp too many": ("connections.0.video.fmtp", {f"k{i}": "1" for i in range(33)}),
    "srtp without key": ("connections.0.video.srtp", {"suite": "AES_CM_128_HMAC_SHA1_80"}),
    "srtp without suite": ("connections.0.video.srtp", {"key": "a2V5"}),
    "srtp extra field": (
        "connections.0.video.srtp",
        {"suite": "AES_CM_128_HMAC_SHA1_80", "key": "a2V5", "mki": "1"},
    ),
    "srtp string": ("connections.0.video.srtp", "inline:a2V5"),
    "metadata too large": ("recording_metadata", {"blob": "x" * (64 * 1024)}),
    "metadata too deep": ("recording_metadata", json.loads("[" * 33 + "]" * 33)),
}


@pytest.mark.parametrize(
    ("path", "value"), list(INVALID_RECORDINGS.values()), ids=list(INVALID_RECORDINGS)
)
def test_invalid_recording_fields(client: TestClient, path: str, value: Any) -> None:
    detail = _refused(client.post("/v1/recordings", json=_with(RECORDING, path, value)))
    # The detail names the offending field, without echoing the (possibly huge) input.
    assert path.split(".")[-1] in detail or "connections" in detail
    assert len(detail) < 1000
    assert client.get("/v1/recordings").json() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**RECORDING, "split_only": True}, "split_only requires split_duration"),
        ({**RECORDING, "split_only": True, "split_duration": None}, "split_only requires"),
        (
            _with(RECORDING, "connections.0", {"connection_id": "mute"}),
            "needs audio or video unless recording_block",
        ),
        (
            _with(RECORDING, "connections.0", {"connection_id": "m", "recording_block": False}),
            "needs audio or video",
        ),
    ],
    ids=["split_only", "split_only null duration", "no media", "no media, not blocked"],
)
def test_rules_across_fields(client: TestClient, body: dict[str, Any], message: str) -> None:
    assert message in _refused(client.post("/v1/recordings", json=body))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[]",
        b'"room-1"',
        b"42",
        b"{not json",
        b'{"channel_id": "room-1",}',
        # Python's json module takes these; no JSON response could carry them back.
        b'{"channel_id": "room-1", "recording_metadata": NaN}',
        b'{"channel_id": "room-1", "recording_metadata": [Infinity]}',
        b'{"channel_id": "room-1", "recording_metadata": {"big": 1e999}}',
        # A lone surrogate cannot be encoded as UTF-8 for the store or the response.
        b'{"channel_id": "room-\\ud800"}',
        b'{"channel_id": "room-1", "recording_metadata": "\\udfff"}',
        b'{"channel_id": "room-1", "connections": [{"connection_id": "c", '
        b'"video": {"codec": "VP8", "payload_type": 96, "fmtp": {"\\ud800": "1"}}}]}',
        # Deeper than the JSON parser's recursion limit, and an integer beyond its digit limit.
        b'{"channel_id": "room-1", "recording_metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"channel_id": "room-1", "expire_time": ' + b"9" * 5000 + b"}",
        b"\xff\xfe{}",
    ],
    ids=lambda raw: raw[:40].decode("utf-8", "replace"),
)
def test_malformed_bodies(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/v1/recordings", content=raw, headers={"Content-Type": "application/json"}
    )
    _refused(response)


def test_metadata_up_to_the_limits_is_accepted(client: TestClient) -> None:
    deep: Any = "bottom"
    for _ in range(31):
        deep = [deep]
    # 64 KiB as compact JSON, multi-byte characters counted in bytes.
    blob = {"blob": "é" * ((64 * 1024 - len('{"blob": ""}')) // 2)}
    for metadata in (deep, blob, None, 0, "text", [1, {"a": None}]):
        body = {"channel_id": f"metadata-{random.getrandbits(32)}", "recording_metadata": metadata}
        assert _create(client, body)["recording_metadata"] == metadata
    too_big = {"blob": "é" * (64 * 1024 // 2)}
    detail = _refused(client.post("/v1/recordings", json={**body, "recording_metadata": too_big}))
    assert "at most 65536 bytes" in detail


def test_extra_fields_are_refused_at_every_level(client: TestClient) -> None:
    for path in ("x", "connections.0.x", "connections.0.audio.x"):
        detail = _refused(client.post("/v1/recordings", json=_with(RECORDING, path, 1)))
        assert "Extra inputs are not permitted" in detail


@pytest.mark.parametrize("bad_id", ["../x", "a/b", ".", "..", "a\\b", "-rf", "x\x00y", "ü"])
def test_ids_that_could_name_other_files_are_refused(client: TestClient, bad_id: str) -> None:
    for field in ("connections.0.connection_id", "channel_id", "session_id"):
        body = _with(RECORDING, field, bad_id)
        assert field.split(".")[-1] in _refused(client.post("/v1/recordings", json=body))
    recording = _create(client)
    response = client.post(
        f"/v1/recordings/{recording['recording_id']}/connections",
        json={**VP8_OPUS, "connection_id": bad_id},
    )
    assert "connection_id" in _refused(response)
    view = client.get(f"/v1/recordings/{recording['recording_id']}").json()
    assert [connection["connection_id"] for connection in view["connections"]] == ["conn-1"]


def test_path_and_query_parameters(client: TestClient) -> None:
    _refused(client.get("/v1/recordings/" + "r" * 256))
    _refused(client.post("/v1/recordings/" + "r" * 256 + "/stop"))
    _refused(client.get("/v1/recordings", params={"state": "sleeping"}))
    _refused(client.get("/v1/recordings", params={"channel_id": "c" * 256}))
    _refused(client.get("/v1/recordings", params={"channel_id": ""}))
    # Traversal in the URL names no recording (dot segments are normalised away by clients;
    # encoded ones arrive as ids).
    for ident in ("%2E%2E", "%2E", "..%2Fx", "a%2Fb", "%00"):
        response = client.get(f"/v1/recordings/{ident}")
        assert response.status_code in (400, 404), response.text
        assert response.json()["error_type"] in (
            "INVALID-PARAMETER",
            "RECORDING-NOT-FOUND",
            "NOT-FOUND",
        )


# --- the body limit --------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_before_parsing(client: TestClient) -> None:
    big = b'{"channel_id": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = client.post(
        "/v1/recordings", content=big, headers={"Content-Type": "application/json"}
    )
    assert "larger than 1048576 bytes" in _refused(response, 413)

    def chunks() -> Iterator[bytes]:
        # No Content-Length: the limit is enforced on the bytes as they arrive.
        yield b'{"channel_id": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    response = client.post(
        "/v1/recordings", content=chunks(), headers={"Content-Type": "application/json"}
    )
    _refused(response, 413)
    # A declared length over the limit is refused before a single byte is read.
    response = client.post(
        "/v1/recordings/X/connections",
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": str(MAX_BODY_BYTES + 1)},
    )
    _refused(response, 413)


def test_a_body_at_the_limit_is_parsed(client: TestClient) -> None:
    body = json.dumps({"channel_id": "room", "recording_metadata": "x" * 100}).encode()
    padded = body + b" " * (MAX_BODY_BYTES - len(body))
    response = client.post(
        "/v1/recordings", content=padded, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text


def test_unauthenticated_big_bodies_get_401_not_413(tmp_path: Path) -> None:
    app = create_app(_config(tmp_path, api_token="t0ken"))
    with TestClient(app) as test_client:
        response = test_client.post("/v1/recordings", content=b"x" * (MAX_BODY_BYTES + 1))
        assert response.status_code == 401
        response = test_client.post(
            "/v1/recordings",
            content=b"x" * (MAX_BODY_BYTES + 1),
            headers={"Authorization": "Bearer t0ken"},
        )
        assert response.status_code == 413


# --- the life of a recording -----------------------------------------------------------------


def test_a_recording_from_start_to_stop(client: TestClient) -> None:
    config: ServiceConfig = client.app.state.service.config  # type: ignore[attr-defined]
    first, last = config.rtp_port_range
    recording = _create(client)
    RecordingView.model_validate(recording)
    recording_id = recording["recording_id"]
    assert len(recording_id) == 26 and recording_id.isalnum()
    assert recording["state"] == "running"
    assert recording["channel_id"] == "room-1" and recording["session_id"] == "session-1"
    assert recording["recording_metadata"] == RECORDING["recording_metadata"]
    assert recording["expire_time"] == 600 and recording["format"] == "webm"
    (connection,) = recording["connections"]
    assert connection["connection_id"] == "conn-1" and connection["client_id"] == "alice"
    ports = {connection["audio"]["port"], connection["video"]["port"]}
    assert len(ports) == 2 and all(first <= port <= last and port % 2 == 0 for port in ports)
    assert connection["video"]["codec"] == "VP8" and connection["audio"]["codec"] == "OPUS"

    got = client.get(f"/v1/recordings/{recording_id}")
    assert got.status_code == 200 and got.json() == recording
    listed = client.get("/v1/recordings").json()
    assert [item["recording_id"] for item in listed] == [recording_id]
    assert client.get("/v1/recordings", params={"state": "running"}).json() == listed
    assert client.get("/v1/recordings", params={"channel_id": "room-1"}).json() == listed
    assert client.get("/v1/recordings", params={"state": "stopped"}).json() == []
    assert client.get("/v1/recordings", params={"channel_id": "room-2"}).json() == []

    archiving = client.get("/v1/archiving")
    assert archiving.status_code == 200
    (item,) = archiving.json()
    ArchivingItem.model_validate(item)
    assert item["recording_id"] == recording_id and item["connection_id"] == "conn-1"
    assert item["packets"] == 0

    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "rtp_recorder_recordings_running 1.0" in metrics.text
    assert 'rtp_recorder_recordings{state="running"} 1.0' in metrics.text
    assert 'rtp_recorder_recordings{state="stopped"} 0.0' in metrics.text
    assert re.search(r"^# TYPE rtp_recorder_packets(_total)? counter$", metrics.text, re.M)
    assert "rtp_recorder_packets_total 0.0" in metrics.text

    stopped = client.post(f"/v1/recordings/{recording_id}/stop")
    assert stopped.status_code == 202
    RecordingView.model_validate(stopped.json())
    got = client.get(f"/v1/recordings/{recording_id}").json()
    assert got["state"] in ("stopping", "stopped") and got["stopped_at"] is not None
    assert client.get("/v1/archiving").json() == []
    assert client.get("/v1/recordings", params={"state": "running"}).json() == []
    # Stopping again is harmless.
    assert client.post(f"/v1/recordings/{recording_id}/stop").status_code == 202
    assert 'rtp_recorder_recordings{state="running"} 0.0' in client.get("/metrics").text


def test_connections_come_and_go(client: TestClient) -> None:
    recording_id = _create(client, {"channel_id": "room-c"})["recording_id"]
    base = f"/v1/recordings/{recording_id}/connections"
    added = client.post(base, json=VP8_OPUS)
    assert added.status_code == 201, added.text
    ConnectionView.model_validate(added.json())
    assert added.json()["video"]["port"] != added.json()["audio"]["port"]
    _refused(client.post(base, json=VP8_OPUS), 409, "CONNECTION-EXISTS")
    blocked = client.post(base, json={"connection_id": "muted", "recording_block": True})
    assert blocked.status_code == 201 and blocked.json()["state"] == "blocked"
    view = client.get(f"/v1/recordings/{recording_id}").json()
    assert [c["connection_id"] for c in view["connections"]] == ["conn-1", "muted"]

    removed = client.delete(f"{base}/conn-1")
    assert removed.status_code == 200, removed.text
    assert removed.json()["state"] in ("ended", "failed")  # failed: no media ever arrived
    _refused(client.delete(f"{base}/conn-1"), 404, "CONNECTION-NOT-FOUND")
    _refused(client.delete(f"{base}/nobody"), 404, "CONNECTION-NOT-FOUND")

    assert client.post(f"/v1/recordings/{recording_id}/stop").status_code == 202
    response = client.post(base, json={**VP8_OPUS, "connection_id": "late"})
    assert 400 <= response.status_code < 500, response.text


def test_h265_needs_mp4(client: TestClient) -> None:
    h265 = {"connection_id": "cam", "video": {"codec": "H265", "payload_type": 98}}
    body = {"channel_id": "room-h", "format": "webm", "connections": [h265]}
    _refused(client.post("/v1/recordings", json=body), 400, "WEBM-H265-UNSUPPORTED")
    recording = _create(client, {**body, "format": "mp4"})
    assert recording["format"] == "mp4"
    # Adding H.265 to a WebM recording is refused the same way.
    webm = _create(client, {"channel_id": "room-w", "format": "webm"})
    response = client.post(f"/v1/recordings/{webm['recording_id']}/connections", json=h265)
    _refused(response, 400, "WEBM-H265-UNSUPPORTED")


def test_one_recording_per_channel_and_session(client: TestClient) -> None:
    first = _create(client)
    _refused(client.post("/v1/recordings", json=RECORDING), 409, "STARTED-RECORDING")
    assert len(client.get("/v1/recordings").json()) == 1
    client.post(f"/v1/recordings/{first['recording_id']}/stop")
    _create(client)  # the channel is free again


def test_unknown_recordings(client: TestClient) -> None:
    unknown = "0" * 26
    _refused(client.get(f"/v1/recordings/{unknown}"), 404, "RECORDING-NOT-FOUND")
    _refused(client.post(f"/v1/recordings/{unknown}/stop"), 404, "RECORDING-NOT-FOUND")
    response = client.post(f"/v1/recordings/{unknown}/connections", json=VP8_OPUS)
    _refused(response, 404, "RECORDING-NOT-FOUND")
    _refused(client.delete(f"/v1/recordings/{unknown}/connections/c"), 404, "RECORDING-NOT-FOUND")


@pytest.mark.parametrize(
    ("body", "error_type", "status"),
    [
        (
            {"connections": [{**VP8_OPUS, "video": {"codec": "THEORA", "payload_type": 96}}]},
            "INVALID-PARAMETER",
            400,
        ),
        ({"expire_time": 86401}, "INVALID-PARAMETER", 400),
        ({"connections": [VP8_OPUS, VP8_OPUS]}, "CONNECTION-EXISTS", 409),
    ],
    ids=[
        "unknown codec",
        "expire_time over the maximum",
        "same connection twice",
    ],
)
def test_refused_by_the_manager(
    client: TestClient, body: dict[str, Any], error_type: str, status: int
) -> None:
    _refused(client.post("/v1/recordings", json={**RECORDING, **body}), status, error_type)
    assert client.get("/v1/recordings").json() == []


def test_split_only_recording(client: TestClient) -> None:
    body = {**RECORDING, "split_duration": 60, "split_only": True, "format": "mp4"}
    recording = _create(client, body)
    assert recording["split_only"] is True and recording["split_duration"] == 60


def test_recording_block_connection_without_media(client: TestClient) -> None:
    body = {
        "channel_id": "room-b",
        "connections": [{"connection_id": "x", "recording_block": True}],
    }
    (connection,) = _create(client, body)["connections"]
    assert connection["state"] == "blocked" and connection["audio"] is None


def test_srtp_keys_that_do_not_decode(client: TestClient) -> None:
    srtp = {"suite": "AES_CM_128_HMAC_SHA1_80", "key": "not base64!"}
    body = _with(RECORDING, "connections.0.video.srtp", srtp)
    assert "SRTP" in _refused(client.post("/v1/recordings", json=body))
    body = _with(body, "connections.0.video.srtp.suite", "NULL_CIPHER")
    assert "NULL_CIPHER" in _refused(client.post("/v1/recordings", json=body))


def test_metrics_before_the_service_started(tmp_path: Path) -> None:
    async def scrape() -> httpx.Response:
        # ASGITransport runs no lifespan: the service and its manager never start.
        transport = httpx.ASGITransport(app=create_app(_config(tmp_path)))
        async with httpx.AsyncClient(transport=transport, base_url="http://recorder") as http:
            return await http.get("/metrics")

    response = asyncio.run(scrape())
    assert response.status_code == 200
    assert "process_" in response.text and "rtp_recorder_" not in response.text


# --- documentation ---------------------------------------------------------------------------


def test_openapi_documents_the_models(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    assert set(paths) >= {
        "/v1/recordings",
        "/v1/recordings/{recording_id}",
        "/v1/recordings/{recording_id}/connections",
        "/v1/recordings/{recording_id}/connections/{connection_id}",
        "/v1/recordings/{recording_id}/stop",
        "/v1/archiving",
        "/metrics",
        "/healthz",
    }
    create = paths["/v1/recordings"]["post"]
    assert set(create["responses"]) >= {"201", "400", "409"}
    assert "RecordingView" in json.dumps(create["responses"]["201"])
    assert "202" in paths["/v1/recordings/{recording_id}/stop"]["post"]["responses"]
    schemas = document["components"]["schemas"]
    new = schemas["NewRecording"]
    assert new["required"] == ["channel_id"]
    assert new["additionalProperties"] is False
    assert new["examples"][0]["connections"]
    assert new["properties"]["split_duration"]["description"]
    media = schemas["Media"]["properties"]
    assert media["payload_type"]["maximum"] == 127 and media["payload_type"]["examples"] == [96]
    assert schemas["Srtp"]["required"] == ["suite", "key"]
    assert {"Connection", "RecordingView", "ConnectionView", "ArchivingItem", "ErrorBody"} <= set(
        schemas
    )


# --- nothing a client sends is a 500 ---------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["VP8", "OPUS", "H265", "webm", "mp4", "../x", "a/b", ".", "", "x" * 300]),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
FIELDS = [
    "channel_id",
    "session_id",
    "format",
    "split_duration",
    "split_only",
    "expire_time",
    "recording_metadata",
    "connections",
    "connection_id",
    "client_id",
    "bundle_id",
    "recording_block",
    "audio",
    "video",
    "codec",
    "payload_type",
    "ssrc",
    "clock_rate",
    "channels",
    "fmtp",
    "srtp",
    "suite",
    "key",
]


@st.composite
def near_valid(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """`base` with a few fields replaced, removed or added: most of the rules get exercised."""
    body = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        target = body
        # Walk down into a nested object now and then.
        while True:
            nested = [k for k, v in target.items() if isinstance(v, dict)]
            lists = [
                k for k, v in target.items() if isinstance(v, list) and v and isinstance(v[0], dict)
            ]
            if not (nested or lists) or draw(st.booleans()):
                break
            key = draw(st.sampled_from(nested + lists))
            target = target[key] if key in nested else target[key][0]
        key = draw(st.sampled_from(FIELDS + list(target)))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(JSON_VALUES)
    return body


BODIES = st.one_of(JSON_VALUES, near_valid(RECORDING), near_valid(VP8_OPUS))
IDS = st.one_of(st.text(min_size=1, max_size=30), st.sampled_from(["..", ".", "a/b", "0" * 26]))


def _post(client: TestClient, path: str, body: Any) -> httpx.Response:
    # Serialised here, so NaN and Infinity reach the server as Python's json writes them.
    return client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})


def _no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500 or response.json()["error_type"] == "NO-PORTS-AVAILABLE", (
        response.status_code,
        response.text,
    )
    assert response.headers["content-type"].startswith("application/json")


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_random_bodies_never_cause_a_server_error(tmp_path: Path) -> None:
    with TestClient(create_app(_config(tmp_path))) as test_client:
        running = _create(test_client, {"channel_id": "fuzz-target"})["recording_id"]

        @PROPERTY
        @given(body=BODIES, ident=IDS)
        def check(body: Any, ident: str) -> None:
            _no_server_error(_post(test_client, "/v1/recordings", body))
            _no_server_error(_post(test_client, f"/v1/recordings/{running}/connections", body))
            _no_server_error(
                _post(test_client, f"/v1/recordings/{quote(ident, safe='')}/connections", body)
            )
            _no_server_error(test_client.get(f"/v1/recordings/{quote(ident, safe='')}"))
            _no_server_error(
                test_client.delete(f"/v1/recordings/{running}/connections/{quote(ident, safe='')}")
            )

        check()


QUERIES = st.dictionaries(
    st.sampled_from(["state", "channel_id", "other"]), st.text(max_size=300), max_size=3
)


def test_random_queries_never_cause_a_server_error(client: TestClient) -> None:
    @PROPERTY
    @given(query=QUERIES)
    def check(query: dict[str, str]) -> None:
        _no_server_error(client.get("/v1/recordings", params=query))

    check()


def test_stop_of_random_ids(client: TestClient) -> None:
    idents = ["..", ".", "a/b", "x" * 255, "".join(random.choices(string.printable, k=40))]
    for ident in idents:
        _no_server_error(client.post(f"/v1/recordings/{quote(ident, safe='')}/stop"))


def test_the_documented_states_are_the_stores() -> None:
    # The API lists them for the `state` filter and the docs; the store is where they live.
    assert RECORDING_STATES == store.RECORDING_STATES
