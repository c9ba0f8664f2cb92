"""`rtp-recorder serve` configuration (flags > environment > TOML > defaults) and API access.

The option list is read from the serve parser itself, so a flag added without its environment
variable, TOML key, help text or a sample value here fails these tests.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from api.app import create_app
from api.errors import ApiError
from recorder.cli import _parser, main
from recorder.config import format_size, load_service_config, parse_port_range, parse_size
from recorder.service import ConfigError, ServiceConfig

# One valid, non-default value per option: (as text for a flag or the environment, typed).
SAMPLES: dict[str, tuple[str, Any]] = {
    "host": ("0.0.0.0", "0.0.0.0"),
    "port": ("9090", 9090),
    "archive_dir": ("/srv/rec/archive", Path("/srv/rec/archive")),
    "archive_tmp_dir": ("/srv/rec/tmp", Path("/srv/rec/tmp")),
    "state": ("/srv/rec/state.db", Path("/srv/rec/state.db")),
    "rtp_port_range": ("50000-50099", (50000, 50099)),
    "rtp_listen": ("127.0.0.1", "127.0.0.1"),
    "default_format": ("mp4", "mp4"),
    "max_expire_time": ("3600", 3600),
    "min_free_space": ("500MB", 500_000_000),
    "api_token": ("s3cret-token", "s3cret-token"),
    "allow_insecure_bind": ("true", True),
    "pli_interval": ("2.5", 2.5),
    "workers": ("3", 3),
    "webhook_url": ("https://hooks.example/recorder", "https://hooks.example/recorder"),
    "webhook_secret": ("hmac-key", "hmac-key"),
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # main() reads os.environ; a developer's own RTP_RECORDER_* must not leak into the tests.
    import os

    for name in list(os.environ):
        if name.startswith("RTP_RECORDER_"):
            monkeypatch.delenv(name)


def _serve_parser() -> argparse.ArgumentParser:
    commands = next(
        action for action in _parser()._actions if isinstance(action, argparse._SubParsersAction)
    )
    return commands.choices["serve"]


def _serve_options() -> list[argparse.Action]:
    return [action for action in _serve_parser()._actions if action.dest != "help"]


def _args(*argv: str) -> argparse.Namespace:
    return _parser().parse_args(["serve", *argv])


def _load(*argv: str, env: dict[str, str] | None = None) -> ServiceConfig:
    return load_service_config(_args(*argv), env or {})


def _refusal(*argv: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as refused:
        _load(*argv, env=env)
    return str(refused.value)


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recorder.toml"
    path.write_text(text)
    return path


# --- every option in every spelling ----------------------------------------------------------


def test_every_flag_is_named_after_its_setting_and_documents_env_and_default() -> None:
    options = _serve_options()
    assert {action.dest for action in options} == {*SAMPLES, "config"}
    for action in options:
        assert f"--{action.dest.replace('_', '-')}" in action.option_strings
        env = f"RTP_RECORDER_{action.dest.upper()}"
        assert action.help and env in action.help, action.dest
        assert "default: " in action.help, action.dest
    assert {name for name in SAMPLES} <= set(ServiceConfig.__dataclass_fields__)


def test_samples_differ_from_the_defaults() -> None:
    defaults = ServiceConfig()
    for name, (_, value) in SAMPLES.items():
        assert getattr(defaults, name) != value, name


def _settings() -> list[str]:
    return [action.dest for action in _serve_options() if action.dest != "config"]


def test_every_setting_comes_from_its_environment_variable() -> None:
    env = {f"RTP_RECORDER_{name.upper()}": SAMPLES[name][0] for name in _settings()}
    config = _load(env=env)
    for name in _settings():
        assert getattr(config, name) == SAMPLES[name][1], name


def test_every_setting_comes_from_its_flag() -> None:
    argv: list[str] = []
    for action in _serve_options():
        if action.dest == "config":
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(action.option_strings[0])
        else:
            argv += [action.option_strings[0], SAMPLES[action.dest][0]]
    config = _load(*argv)
    for name in _settings():
        assert getattr(config, name) == SAMPLES[name][1], name


@pytest.mark.parametrize("spelling", ["snake", "kebab"])
def test_every_setting_comes_from_its_toml_key(tmp_path: Path, spelling: str) -> None:
    lines = []
    for name in _settings():
        key = name if spelling == "snake" else name.replace("_", "-")
        lines.append(f'{key} = "{SAMPLES[name][0]}"')
    config = _load("--config", str(_toml(tmp_path, "\n".join(lines))))
    for name in _settings():
        assert getattr(config, name) == SAMPLES[name][1], name


def test_toml_takes_native_types(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        "port = 9000\nmax_expire_time = 60\nmin_free_space = 0\npli_interval = 5\n"
        "rtp_port_range = [41000, 41001]\nallow-insecure-bind = true\nhost = '::'\n",
    )
    config = _load("--config", str(path))
    assert (config.port, config.max_expire_time, config.min_free_space) == (9000, 60, 0)
    assert config.pli_interval == 5.0 and config.rtp_port_range == (41000, 41001)
    assert config.allow_insecure_bind and config.host == "::"


def test_the_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = 9001\n")
    assert _load(env={"RTP_RECORDER_CONFIG": str(path)}).port == 9001
    # The flag names a different file and wins.
    other = tmp_path / "other.toml"
    other.write_text("port = 9002\n")
    assert _load("--config", str(other), env={"RTP_RECORDER_CONFIG": str(path)}).port == 9002


def test_defaults_are_service_config_defaults() -> None:
    assert _load() == ServiceConfig()
    assert ServiceConfig().host == "127.0.0.1" and ServiceConfig().port == 8080
    assert ServiceConfig().rtp_port_range == (40000, 40999)
    assert ServiceConfig().min_free_space == 1024**3
    ServiceConfig().validate()


# --- precedence ------------------------------------------------------------------------------


def test_flag_beats_environment_beats_toml_beats_default(tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = 1111\npli_interval = 3\nmax_expire_time = 30\n")
    env = {"RTP_RECORDER_PORT": "2222", "RTP_RECORDER_PLI_INTERVAL": "4"}
    config = _load("--config", str(path), "--port", "3333", env=env)
    assert config.port == 3333  # flag, env and file
    assert config.pli_interval == 4.0  # env and file
    assert config.max_expire_time == 30  # file only
    assert config.default_format == "webm"  # nothing: default


def test_switch_can_be_turned_off_by_a_flag_over_the_environment() -> None:
    env = {"RTP_RECORDER_ALLOW_INSECURE_BIND": "yes"}
    assert _load(env=env).allow_insecure_bind
    assert not _load("--no-allow-insecure-bind", env=env).allow_insecure_bind


def test_an_empty_environment_variable_counts_as_unset() -> None:
    # docker-compose's ${RTP_RECORDER_API_TOKEN:-} passes an empty string when unset.
    config = _load(env={"RTP_RECORDER_API_TOKEN": "", "RTP_RECORDER_PORT": ""})
    assert config.api_token is None and config.port == 8080


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1073741824", 1024**3),
        ("1GiB", 1024**3),
        ("1 GiB", 1024**3),
        ("1g", 1024**3),
        ("1024m", 1024**3),
        ("500MB", 500_000_000),
        ("500mb", 500_000_000),
        ("1.5G", 3 * 1024**3 // 2),
        ("2TiB", 2 * 1024**4),
        ("10kB", 10_000),
        ("10K", 10_240),
        ("7B", 7),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GiB", "1 GiBs", "-1GiB", "1e9", "1,5G", "ten"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


def test_size_formatting() -> None:
    assert [format_size(n) for n in (1024**3, 3 * 1024**2, 1000, 0)] == [
        "1GiB",
        "3MiB",
        "1000B",
        "0B",
    ]


def test_port_ranges() -> None:
    assert parse_port_range("40000-40999") == (40000, 40999)
    assert parse_port_range(" 40000 - 40001 ") == (40000, 40001)
    assert parse_port_range([40000, 40002]) == (40000, 40002)
    for bad in ("40000", "40000:40999", "a-b", "-1-5"):
        with pytest.raises(ValueError, match="not a port range"):
            parse_port_range(bad)
    with pytest.raises(ValueError, match="two port numbers"):
        parse_port_range([40000])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("40001-40999", "must start on an even port"),
        ("1000-2000", "1024 <= start < end <= 65535"),
        ("40000-70000", "1024 <= start < end <= 65535"),
        ("40000-40000", "1024 <= start < end <= 65535"),
        ("40998-40000", "1024 <= start < end <= 65535"),
    ],
)
def test_unusable_port_ranges_are_refused(value: str, reason: str) -> None:
    assert reason in _refusal("--rtp-port-range", value)
    # From elsewhere, the message says where the value was set.
    message = _refusal(env={"RTP_RECORDER_RTP_PORT_RANGE": value})
    assert message.endswith("(set by RTP_RECORDER_RTP_PORT_RANGE)")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--port", "http"), "--port: 'http' is not an integer"),
        (("--port", "0"), "--port 0 is not a port (1-65535)"),
        (("--port", "65536"), "--port 65536 is not a port (1-65535)"),
        (("--pli-interval", "0.5"), "--pli-interval 0.5 is outside 1-240 seconds"),
        (("--pli-interval", "241"), "--pli-interval 241 is outside 1-240 seconds"),
        (("--pli-interval", "nan"), "--pli-interval nan is outside 1-240 seconds"),
        (("--pli-interval", "soon"), "--pli-interval: 'soon' is not a number of seconds"),
        (("--default-format", "mkv"), "--default-format: 'mkv' is not one of webm, mp4"),
        (("--workers", "many"), "--workers: 'many' is not a number of processes or auto"),
        (("--workers", "-1"), "--workers -1 is outside 0-256"),
        (("--workers", "257"), "--workers 257 is outside 0-256"),
        (("--max-expire-time", "0"), "--max-expire-time must be at least 1 second"),
        (("--min-free-space", "lots"), "--min-free-space: 'lots' is not a size"),
        (("--rtp-listen", "any"), "--rtp-listen 'any' is not an IP address"),
        (("--webhook-url", "ftp://x/"), "--webhook-url 'ftp://x/' is not an http:// or"),
        (("--api-token", "two words"), "--api-token must be non-empty visible ASCII"),
        (("--archive-dir", ""), "--archive-dir: empty path"),
        (
            ("--archive-dir", "same", "--archive-tmp-dir", "./same/"),
            "--archive-dir and --archive-tmp-dir must be different directories",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_flag(argv: tuple[str, ...], message: str) -> None:
    assert _refusal(*argv).startswith(message)


def test_workers_are_a_count_or_auto() -> None:
    assert _load().workers is None  # auto: one per core
    assert _load("--workers", "auto").workers is None
    assert _load("--workers", "0").workers == 0
    assert _load(env={"RTP_RECORDER_WORKERS": "AUTO"}).workers is None


def test_bad_environment_values_name_the_variable() -> None:
    assert _refusal(env={"RTP_RECORDER_PORT": "x"}) == ("RTP_RECORDER_PORT: 'x' is not an integer")
    assert _refusal(env={"RTP_RECORDER_ALLOW_INSECURE_BIND": "maybe"}).startswith(
        "RTP_RECORDER_ALLOW_INSECURE_BIND: 'maybe' is not a boolean"
    )
    assert _refusal(env={"RTP_RECORDER_PLI_INTERVAL": "500"}) == (
        "--pli-interval 500 is outside 1-240 seconds (set by RTP_RECORDER_PLI_INTERVAL)"
    )


def test_an_overridden_bad_value_is_still_refused() -> None:
    # A broken setting is a mistake to fix, not something a flag should hide.
    assert _refusal("--port", "9000", env={"RTP_RECORDER_PORT": "x"}).startswith(
        "RTP_RECORDER_PORT:"
    )


def test_secrets_are_not_echoed(tmp_path: Path) -> None:
    message = _refusal("--api-token", "bad token", "--webhook-secret", "hidden")
    assert "bad token" not in message
    config = _load("--api-token", "t0ken", "--webhook-secret", "hidden")
    assert "t0ken" not in repr(config) and "hidden" not in repr(config)
    path = _toml(tmp_path, "api_token = 12345\n")
    assert _refusal("--config", str(path)) == f"{path}:api_token: expected a string, got an integer"


# --- the TOML file ---------------------------------------------------------------------------


def test_unknown_toml_keys_are_refused_with_a_suggestion(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'port = 8080\nrtp_lisen = "0.0.0.0"\n')
    assert _refusal("--config", str(path)) == (
        f"{path}:rtp_lisen: unknown setting (did you mean rtp_listen?)"
    )
    path = _toml(tmp_path, "[server]\nport = 1\n")
    assert _refusal("--config", str(path)) == f"{path}:server: unknown setting"
    # A file cannot name another file.
    path = _toml(tmp_path, 'config = "other.toml"\n')
    assert _refusal("--config", str(path)).startswith(f"{path}:config: unknown setting")


def test_toml_errors(tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = \n")
    assert _refusal("--config", str(path)).startswith(f"{path}: invalid TOML: ")
    path = _toml(tmp_path, "port = 1\nport-x = 2\n")
    assert "unknown setting" in _refusal("--config", str(path))
    path = _toml(tmp_path, "api-token = 'a'\napi_token = 'b'\n")
    assert _refusal("--config", str(path)) == (
        f"{path}: api-token and api_token are the same setting"
    )
    path = _toml(tmp_path, "port = true\n")
    assert _refusal("--config", str(path)) == f"{path}:port: True is not an integer"
    path = _toml(tmp_path, "port = 'eighty'\n")
    assert _refusal("--config", str(path)) == f"{path}:port: 'eighty' is not an integer"
    path = _toml(tmp_path, "default_format = 'avi'\n")
    assert _refusal("--config", str(path)).startswith(f"{path}:default_format: 'avi'")
    path = _toml(tmp_path, "pli_interval = 900\n")
    assert _refusal("--config", str(path)) == (
        f"--pli-interval 900 is outside 1-240 seconds (set by {path}:pli_interval)"
    )
    missing = tmp_path / "missing.toml"
    assert _refusal("--config", str(missing)) == f"--config {missing}: No such file or directory"
    assert _refusal(env={"RTP_RECORDER_CONFIG": str(missing)}) == (
        f"RTP_RECORDER_CONFIG {missing}: No such file or directory"
    )
    (tmp_path / "binary.toml").write_bytes(b"port = '\xff'\n")
    assert "invalid TOML" in _refusal("--config", str(tmp_path / "binary.toml"))


def test_cli_reports_config_errors_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path, "nope = 1\n")
    assert main(["serve", "--config", str(path)]) == 1
    assert capsys.readouterr().err == f"rtp-recorder: error: {path}:nope: unknown setting\n"
    monkeypatch.setenv("RTP_RECORDER_MIN_FREE_SPACE", "plenty")
    assert main(["serve"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("rtp-recorder: error: RTP_RECORDER_MIN_FREE_SPACE: 'plenty'")
    assert error.count("\n") == 1


# --- binding the API beyond loopback ---------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "recorder.example", ""])
def test_a_non_loopback_api_without_token_is_refused(host: str) -> None:
    message = _refusal("--host", host)
    assert message == (
        f"--host {host} is reachable from other machines: set --api-token or pass "
        "--allow-insecure-bind to serve the API without authentication"
    )
    assert _load("--host", host, "--api-token", "t0ken").api_token == "t0ken"
    assert _load("--host", host, "--allow-insecure-bind").allow_insecure_bind


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    assert _load("--host", host).host == host


def test_insecure_bind_refusal_names_where_the_host_came_from(tmp_path: Path) -> None:
    assert _refusal(env={"RTP_RECORDER_HOST": "0.0.0.0"}).endswith("(set by RTP_RECORDER_HOST)")
    path = _toml(tmp_path, "host = '0.0.0.0'\n")
    assert _refusal("--config", str(path)).endswith(f"(set by {path}:host)")
    env = {"RTP_RECORDER_HOST": "0.0.0.0", "RTP_RECORDER_API_TOKEN": "t"}
    assert _load(env=env).api_token == "t"
    assert _load("--config", str(path), env={"RTP_RECORDER_ALLOW_INSECURE_BIND": "1"})


# --- API access and error shapes -------------------------------------------------------------

TOKEN = "correct-horse-battery-staple"


class Body(BaseModel):
    channel_id: str
    expire_time: int = Field(default=60, ge=1)


def _app(tmp_path: Path, token: str | None) -> FastAPI:
    config = ServiceConfig(
        archive_dir=tmp_path / "archive",
        archive_tmp_dir=tmp_path / "archive_tmp",
        state=tmp_path / "state.sqlite3",
        api_token=token,
        workers=0,
    )
    app = create_app(config)

    # Stand-ins for the routes to come: they only need validation and ApiError.
    @app.post("/v1/things/{number}")
    async def things(number: int, body: Body) -> dict[str, Any]:
        if body.channel_id == "taken":
            raise ApiError(409, "STARTED-RECORDING", "channel taken already recording")
        return {"number": number, "channel_id": body.channel_id}

    @app.get("/v1/broken")
    async def broken() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(_app(tmp_path, TOKEN)) as test_client:
        yield test_client


def _bearer(token: str = TOKEN, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


def test_healthz_needs_no_token(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert client.head("/healthz").status_code != 401


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/v1/recordings", "/nowhere"])
def test_everything_else_needs_the_token(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.json() == {"error_type": "UNAUTHORIZED", "detail": "missing bearer token"}
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="rtp-recorder"'
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "headers",
    [
        _bearer("wrong"),
        _bearer(TOKEN + "x"),
        _bearer(TOKEN[:-1]),
        _bearer(""),
    ],
    ids=["wrong", "longer", "shorter", "empty"],
)
def test_a_wrong_token_is_refused(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/openapi.json", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error_type": "UNAUTHORIZED", "detail": "invalid bearer token"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_other_schemes_count_as_missing(client: TestClient) -> None:
    response = client.get("/openapi.json", headers=_bearer(TOKEN, scheme="Basic"))
    assert response.status_code == 401 and response.json()["detail"] == "missing bearer token"
    assert client.post("/healthz").status_code == 401  # only GET /healthz is open


def test_the_right_token_opens_every_route(client: TestClient) -> None:
    assert client.get("/openapi.json", headers=_bearer()).status_code == 200
    assert client.get("/docs", headers=_bearer()).status_code == 200
    # The scheme is case-insensitive.
    assert client.get("/openapi.json", headers=_bearer(scheme="bearer")).status_code == 200
    response = client.post("/v1/things/7", json={"channel_id": "c"}, headers=_bearer())
    assert response.status_code == 200 and response.json() == {"number": 7, "channel_id": "c"}


def test_no_token_configured_means_an_open_api(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, None)) as open_client:
        assert open_client.get("/openapi.json").status_code == 200


def test_through_httpx_asgi_transport(tmp_path: Path) -> None:
    async def run() -> tuple[int, int, int]:
        transport = httpx.ASGITransport(app=_app(tmp_path, TOKEN))
        async with httpx.AsyncClient(transport=transport, base_url="http://recorder") as http:
            without = await http.get("/openapi.json")
            with_token = await http.get("/openapi.json", headers=_bearer())
            health = await http.get("/healthz")  # no lifespan here: degraded, but not 401
            return without.status_code, with_token.status_code, health.status_code

    assert asyncio.run(run()) == (401, 200, 503)


def test_validation_errors_are_400_invalid_parameter(client: TestClient) -> None:
    response = client.post("/v1/things/seven", json={"expire_time": 0}, headers=_bearer())
    assert response.status_code == 400
    body = response.json()
    assert body["error_type"] == "INVALID-PARAMETER"
    assert set(body) == {"error_type", "detail"}
    assert "path.number: Input should be a valid integer" in body["detail"]
    assert "body.channel_id: Field required" in body["detail"]
    assert "body.expire_time: Input should be greater than or equal to 1" in body["detail"]


def test_a_hostile_body_is_not_echoed(client: TestClient) -> None:
    huge = "A" * 100_000
    response = client.post("/v1/things/1", json={"channel_id": [huge]}, headers=_bearer())
    assert response.status_code == 400 and huge not in response.text
    response = client.post(
        "/v1/things/1",
        content=b"{not json",
        headers={**_bearer(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error_type"] == "INVALID-PARAMETER"


def test_route_errors_and_unknown_routes(client: TestClient) -> None:
    response = client.post("/v1/things/1", json={"channel_id": "taken"}, headers=_bearer())
    assert response.status_code == 409
    assert response.json() == {
        "error_type": "STARTED-RECORDING",
        "detail": "channel taken already recording",
    }
    response = client.get("/v1/nowhere", headers=_bearer())
    assert response.status_code == 404
    assert response.json() == {"error_type": "NOT-FOUND", "detail": "Not Found"}
    response = client.delete("/healthz", headers=_bearer())
    assert response.status_code == 405
    assert response.json()["error_type"] == "METHOD-NOT-ALLOWED"
    assert "GET" in response.headers["allow"]


def test_a_bug_is_a_json_500(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, None), raise_server_exceptions=False) as open_client:
        response = open_client.get("/v1/broken")
    assert response.status_code == 500
    assert response.json() == {"error_type": "INTERNAL-ERROR", "detail": "internal error"}
