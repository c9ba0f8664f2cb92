"""The FastAPI application: routes, bearer-token auth and error mapping only."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import UNAUTHORIZED, error_response, install_error_handlers
from api.routes import install as install_routes
from recorder import __version__
from recorder.service import RecorderService, ServiceConfig


def create_app(config: ServiceConfig | None = None) -> FastAPI:
    config = config or ServiceConfig()
    service = RecorderService(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The service's resources live exactly as long as the application, not as globals;
        # the async start and stop run the webhook delivery on the application's event loop.
        await service.astart()
        app.state.service = service
        try:
            yield
        finally:
            await service.astop()

    app = FastAPI(title="rtp-recorder", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    # Before the auth middleware, which then sits outside the body limit: an unauthenticated
    # client is refused before its body is read.
    install_routes(app)
    if config.api_token is not None:
        app.add_middleware(BearerAuth, token=config.api_token)

    @app.get("/healthz", summary="Liveness and readiness of the recorder")
    async def healthz() -> JSONResponse:
        health = service.health()
        return JSONResponse(health, status_code=200 if health["status"] == "ok" else 503)

    return app


class BearerAuth:
    """Requires `Authorization: Bearer <token>` on every request except GET /healthz.

    A middleware rather than a route dependency, so it also covers /docs, /openapi.json and
    paths that match no route (a 404 would tell an unauthenticated client what exists).
    """

    # Health checks (Docker, orchestrators) carry no credentials.
    OPEN = frozenset({("GET", "/healthz"), ("HEAD", "/healthz")})
    CHALLENGE = 'Bearer realm="rtp-recorder"'

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or (
            (scope.get("method"), scope["path"]) in self.OPEN
        ):
            await self.app(scope, receive, send)
            return
        given = self._credentials(scope)
        # Constant time, so response timing does not reveal how much of a guess was right.
        if given is not None and hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            # Closing before accepting answers the handshake with 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        if given is None:
            response = error_response(
                401, UNAUTHORIZED, "missing bearer token", {"WWW-Authenticate": self.CHALLENGE}
            )
        else:
            # RFC 6750 section 3.1: a token that was presented but is wrong is "invalid_token".
            response = error_response(
                401,
                UNAUTHORIZED,
                "invalid bearer token",
                {"WWW-Authenticate": f'{self.CHALLENGE}, error="invalid_token"'},
            )
        await response(scope, receive, send)

    @staticmethod
    def _credentials(scope: Scope) -> bytes | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                # The scheme is case-insensitive (RFC 7235 section 2.1).
                return credentials.strip() if scheme.lower() == b"bearer" else None
        return None
