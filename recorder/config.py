"""Configuration of `rtp-recorder serve`: command-line flags, environment variables, a TOML file.

Every setting has one name in three spellings; the first place that sets it wins:

    flag --foo-bar > environment RTP_RECORDER_FOO_BAR > TOML key foo_bar (or foo-bar) > default

The defaults are `ServiceConfig`'s own, so `ServiceConfig()` and a bare `rtp-recorder serve` are
the same service. This module turns text (and TOML values) into typed values and says where a bad
one came from; whether the values make sense together is `ServiceConfig.validate`'s job.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from recorder.events import WebhookTarget, check_event_types
from recorder.service import FORMATS, ConfigError, ServiceConfig

ENV_PREFIX = "RTP_RECORDER_"
CONFIG_OPTION = "config"

SERVE_DESCRIPTION = "Run the recorder and its HTTP control plane."
SERVE_EPILOG = """\
Every option can also come from the environment variable named in its help, or from the TOML
file given by --config (key foo_bar or foo-bar for --foo-bar). A flag beats the environment,
which beats the file, which beats the default. An empty environment variable counts as unset.
Relative paths are relative to the working directory. Example file:

    host = "0.0.0.0"
    api_token = "change-me"
    rtp_port_range = "40000-40999"
    min_free_space = "10GiB"
    default_format = "mp4"

    # More webhook receivers (file only), each with its own secret and event types:
    [[webhooks]]
    url = "https://archive-indexer.internal/hooks"
    secret = "another-key"
    events = ["archive.available", "split-archive.available"]

The file alone also takes webhook_max_age: seconds a webhook keeps being retried before it is
kept as failed (default 86400).

When --api-token is set, every API route except GET /healthz requires the header
`Authorization: Bearer <token>`. Prefer the environment or the file for secrets: command lines
are visible to every user of the machine.
"""


# --- value parsers: text from a flag or the environment, or a TOML value -> typed value -------
# Each raises ValueError with a reason; the loader prefixes where the value came from.


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_toml_type(value)}")
    return value


def _path(value: object) -> Path:
    text = _text(value)
    if not text:
        raise ValueError("empty path")
    return Path(text).expanduser()


def _integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(_text(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an integer") from None


def _seconds(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return float(_text(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a number of seconds") from None


# Bare K, M, G, T are powers of 1024 as in `df -h` and WCS's file_recorder_min_space=1g (seed
# 004); KiB... say so explicitly; KB, MB... are the SI powers of 1000.
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(value: object) -> int:
    """Bytes from `1073741824`, `1GiB`, `500MB`, `1g`, `1.5G` (rounded down to a byte)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.fullmatch(_text(value))
    unit = match and _SIZE_UNITS.get(match.group(2).lower())
    if not match or unit is None:
        raise ValueError(f"{value!r} is not a size (bytes, or a number with B, KB, KiB, MB, ...)")
    return int(Decimal(match.group(1)) * unit)


def format_size(size: int) -> str:
    for suffix, unit in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size and size % unit == 0:
            return f"{size // unit}{suffix}"
    return f"{size}B"


def parse_port_range(value: object) -> tuple[int, int]:
    """`40000-40999` (or a TOML `[40000, 40999]`) -> (first, last), both included."""
    if isinstance(value, list):
        if len(value) != 2 or not all(type(port) is int for port in value):
            raise ValueError("expected two port numbers")
        return value[0], value[1]
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", _text(value))
    if not match:
        raise ValueError(f"{value!r} is not a port range like 40000-40999")
    return int(match.group(1)), int(match.group(2))


def _workers(value: object) -> int | None:
    """`auto` (None: one per core), or a count; 0 records in the API process itself."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    try:
        return _integer(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of processes or auto") from None


def _format(value: object) -> str:
    text = _text(value).strip().lower()
    if text not in FORMATS:
        raise ValueError(f"{value!r} is not one of {', '.join(FORMATS)}")
    return text


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _switch(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(f"{value!r} is not a boolean (true/false, yes/no, on/off, 1/0)")


def _toml_type(value: object) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", list: "an array"}.get(
        type(value), "a table" if isinstance(value, dict) else type(value).__name__
    )


# --- the options ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Option:
    name: str  # ServiceConfig field, argparse dest and TOML key
    help: str
    parse: Callable[[object], Any]
    metavar: str | None = None
    describe: Callable[[Any], str] = str  # how --help shows the default
    switch: bool = False  # --foo / --no-foo instead of --foo VALUE

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return env_name(self.name)


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _describe_path(path: Path) -> str:
    return str(path) if path.is_absolute() else f"./{path}"


def _describe_optional(value: object) -> str:
    return "unset" if value is None else str(value)


OPTIONS: tuple[Option, ...] = (
    Option("host", "address the HTTP API listens on", _text, "ADDRESS"),
    Option("port", "port of the HTTP API", _integer, "PORT"),
    Option("archive_dir", "where finished archives go", _path, "DIR", _describe_path),
    Option(
        "archive_tmp_dir",
        "where archives are written until finished; must differ from --archive-dir",
        _path,
        "DIR",
        _describe_path,
    ),
    Option("state", "SQLite state file", _path, "FILE", _describe_path),
    Option(
        "rtp_port_range",
        "UDP ports handed out for RTP, first-last, both included (an even start within 1024-65535)",
        parse_port_range,
        "FIRST-LAST",
        lambda ports: f"{ports[0]}-{ports[1]}",
    ),
    Option("rtp_listen", "address the RTP/RTCP ports are bound on", _text, "ADDRESS"),
    Option(
        "default_format",
        f"container of recordings that name none ({', '.join(FORMATS)})",
        _format,
        "FORMAT",
    ),
    Option(
        "max_expire_time",
        "largest expire_time a recording may ask for, in seconds",
        _integer,
        "SECONDS",
    ),
    Option(
        "min_free_space",
        "free space to keep on the archive disks: below it new recordings are refused and "
        "running ones finalized; bytes or 500MB, 1GiB, 1g ...",
        parse_size,
        "SIZE",
        format_size,
    ),
    Option(
        "api_token",
        "bearer token required by every API route but GET /healthz",
        _text,
        "TOKEN",
        _describe_optional,
    ),
    Option(
        "allow_insecure_bind",
        "serve the API on a non-loopback address without --api-token",
        _switch,
        describe=lambda on: "on" if on else "off",
        switch=True,
    ),
    Option(
        "workers",
        "processes that receive and record RTP, each owning the connections it is given: "
        "auto is one per CPU core, 0 records in the API process",
        _workers,
        "N|auto",
        lambda workers: "auto" if workers is None else str(workers),
    ),
    Option(
        "pli_interval",
        "seconds between periodic keyframe requests (PLI), 1-240",
        _seconds,
        "SECONDS",
        lambda seconds: f"{seconds:g}",
    ),
    Option(
        "webhook_url",
        "where lifecycle events are POSTed (http:// or https://)",
        _text,
        "URL",
        _describe_optional,
    ),
    Option(
        "webhook_secret",
        "HMAC-SHA256 key signing webhook requests",
        _text,
        "SECRET",
        _describe_optional,
    ),
)
OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}


_WEBHOOK_KEYS = ("url", "secret", "events")


def _webhooks(value: object) -> tuple[WebhookTarget, ...]:
    """The `[[webhooks]]` array of tables: `url`, optional `secret` and `events` (types)."""
    if not isinstance(value, list):
        raise ValueError(f"expected an array of tables ([[webhooks]]), got {_toml_type(value)}")
    targets = []
    for number, entry in enumerate(value, 1):
        try:
            targets.append(_webhook(entry))
        except ValueError as error:
            raise ValueError(f"entry {number}: {error}") from None
    return tuple(targets)


def _webhook(entry: object) -> WebhookTarget:
    if not isinstance(entry, dict):
        raise ValueError(f"expected a table, got {_toml_type(entry)}")
    for key in entry:
        if key not in _WEBHOOK_KEYS:
            raise ValueError(f"unknown key {key!r} (one of {', '.join(_WEBHOOK_KEYS)})")
    if "url" not in entry:
        raise ValueError("url is missing")
    values: dict[str, Any] = {}
    for key in ("url", "secret"):
        if key in entry:
            try:
                values[key] = _text(entry[key])
            except ValueError as error:
                # Never the value itself: the secret ends up in logs otherwise.
                raise ValueError(f"{key}: {error}") from None
    if "events" in entry:
        events = entry["events"]
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise ValueError("events: expected an array of event types")
        values["events"] = check_event_types(events)
    return WebhookTarget(**values)


# Settings that only the TOML file can give: a flag or a variable cannot spell an array of
# tables, and the retry horizon is a deployment policy rather than a per-run switch.
FILE_ONLY_OPTIONS: tuple[Option, ...] = (
    Option("webhooks", "more webhook receivers: url, secret, events", _webhooks),
    Option(
        "webhook_max_age",
        "seconds a webhook is retried before it is kept as failed",
        _seconds,
    ),
)
FILE_OPTIONS_BY_NAME = {option.name: option for option in (*OPTIONS, *FILE_ONLY_OPTIONS)}


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Install the serve options. Their defaults are None so the loader can tell 'not given'."""
    defaults = ServiceConfig()
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=_help("TOML file with any of these options", env_name(CONFIG_OPTION), "none"),
    )
    for option in OPTIONS:
        help_text = _help(option.help, option.env, option.describe(getattr(defaults, option.name)))
        if option.switch:
            parser.add_argument(option.flag, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(option.flag, metavar=option.metavar, help=help_text)


def _help(text: str, env: str, default: str) -> str:
    return f"{text} [env {env}; default: {default}]".replace("%", "%%")


# --- loading -------------------------------------------------------------------------------


def load_service_config(
    args: argparse.Namespace, environ: Mapping[str, str] = os.environ
) -> ServiceConfig:
    """The validated configuration from `args` (the serve parser's), `environ` and the file."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def take(option: Option, raw: object, source: str) -> None:
        try:
            values[option.name] = option.parse(raw)
        except ValueError as error:
            # Reasons quote the value, except for strings (tokens, secrets), which only fail
            # by not being strings.
            raise ConfigError(f"{source}: {error}") from None
        sources[option.name] = source

    # Lowest precedence first, so each later source overwrites; every value present is parsed,
    # so a broken setting is reported even where something else overrides it.
    for option, raw, source in _read_config_file(args, environ):
        take(option, raw, source)
    for option in OPTIONS:
        raw = environ.get(option.env)
        if raw:
            take(option, raw, option.env)
    for option in OPTIONS:
        raw = getattr(args, option.name, None)
        if raw is not None:
            take(option, raw, option.flag)

    config = ServiceConfig(**values)
    try:
        config.validate()
    except ConfigError as error:
        # Messages name flags; say so when the value was really set elsewhere.
        elsewhere = [
            sources[name]
            for name in error.options
            if name in sources
            and (name not in OPTIONS_BY_NAME or sources[name] != OPTIONS_BY_NAME[name].flag)
        ]
        if not elsewhere:
            raise
        raise ConfigError(f"{error} (set by {', '.join(elsewhere)})", error.options) from None
    return config


def _read_config_file(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> list[tuple[Option, object, str]]:
    """(option, value, where) for each setting of the TOML file, if one is configured."""
    if getattr(args, CONFIG_OPTION, None):
        path, given_by = Path(args.config), "--config"
    elif environ.get(env_name(CONFIG_OPTION)):
        path, given_by = Path(environ[env_name(CONFIG_OPTION)]), env_name(CONFIG_OPTION)
    else:
        return []
    path = path.expanduser()
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as error:
        raise ConfigError(f"{given_by} {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8") from None

    found: dict[str, str] = {}
    settings = []
    for key, value in document.items():
        name = key.replace("-", "_")
        option = FILE_OPTIONS_BY_NAME.get(name)
        if option is None:
            close = difflib.get_close_matches(name, FILE_OPTIONS_BY_NAME, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{path}:{key}: unknown setting{hint}")
        if name in found:
            raise ConfigError(f"{path}: {found[name]} and {key} are the same setting")
        found[name] = key
        settings.append((option, value, f"{path}:{key}"))
    return settings
