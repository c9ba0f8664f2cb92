"""The FastAPI application: routes and error mapping only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from recorder import __version__
from recorder.service import RecorderService, ServiceConfig


def create_app(config: ServiceConfig | None = None) -> FastAPI:
    service = RecorderService(config or ServiceConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The service's resources live exactly as long as the application, not as globals.
        service.start()
        app.state.service = service
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="rtp-recorder", version=__version__, lifespan=lifespan)

    @app.get("/healthz", summary="Liveness and readiness of the recorder")
    async def healthz() -> JSONResponse:
        health = service.health()
        return JSONResponse(health, status_code=200 if health["status"] == "ok" else 503)

    return app
