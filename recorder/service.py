"""`RecorderService`: the one facade the HTTP API calls.

It owns the process-wide resources (directories, the state store) for the lifetime of the API
application; recording control lands here with the lifecycle work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recorder import __version__
from recorder.errors import RecorderError
from recorder.store import Store


class ConfigError(RecorderError):
    """The service configuration cannot work."""


@dataclass(slots=True)
class ServiceConfig:
    archive_dir: Path = Path("archive")
    archive_tmp_dir: Path = Path("archive_tmp")
    state: Path = Path("state.sqlite3")

    def validate(self) -> None:
        # Finished archives are moved out of the temporary directory atomically; the two must
        # be different places (the reference product refuses the same directory too).
        if self.archive_dir.resolve() == self.archive_tmp_dir.resolve():
            raise ConfigError("--archive-dir and --archive-tmp-dir must be different directories")


class RecorderService:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self._store: Store | None = None

    def start(self) -> None:
        self.config.validate()
        for directory in (self.config.archive_dir, self.config.archive_tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._store = Store.open(self.config.state)

    def stop(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def health(self) -> dict[str, Any]:
        store = self._store
        directories_ok = all(
            os.access(directory, os.W_OK)
            for directory in (self.config.archive_dir, self.config.archive_tmp_dir)
        )
        state_ok = store is not None and store.schema_version() >= 1
        return {
            "status": "ok" if directories_ok and state_ok else "degraded",
            "version": __version__,
            "archive_dir": str(self.config.archive_dir.resolve()),
            "archive_tmp_dir": str(self.config.archive_tmp_dir.resolve()),
            "archive_dir_writable": directories_ok,
            "state": str(self.config.state.resolve()),
            "state_ok": state_ok,
        }
