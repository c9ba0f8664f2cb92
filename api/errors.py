"""Every API error is JSON `{"error_type": ..., "detail": ...}`.

Routes raise `ApiError(status, error_type, detail)`; `install_error_handlers` maps it, FastAPI's
request validation errors (400 `INVALID-PARAMETER`) and Starlette's HTTP errors (404 `NOT-FOUND`,
405 `METHOD-NOT-ALLOWED`, ...) to that shape, so a client reads one format whatever failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

INVALID_PARAMETER = "INVALID-PARAMETER"
UNAUTHORIZED = "UNAUTHORIZED"
NOT_FOUND = "NOT-FOUND"
INTERNAL_ERROR = "INTERNAL-ERROR"

# Statuses Starlette raises by itself (routing, body reading), with the error_type they get.
_HTTP_ERROR_TYPES = {
    400: INVALID_PARAMETER,
    401: UNAUTHORIZED,
    403: "FORBIDDEN",
    404: NOT_FOUND,
    405: "METHOD-NOT-ALLOWED",
    413: "PAYLOAD-TOO-LARGE",
    415: "UNSUPPORTED-MEDIA-TYPE",
}


class ApiError(Exception):
    """An error a route answers with: HTTP status, `error_type` and a human `detail`."""

    def __init__(
        self,
        status: int,
        error_type: str,
        detail: Any,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error_type}: {detail}")
        self.status = status
        self.error_type = error_type
        self.detail = detail
        self.headers = dict(headers or {})


def error_response(
    status: int, error_type: str, detail: Any, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error_type": error_type, "detail": detail}, status_code=status, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(error.status, error.error_type, error.detail, error.headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # A client error, so 400 like the reference's INVALID-PARAMETER rather than FastAPI's 422.
    return error_response(400, INVALID_PARAMETER, describe_validation_errors(error.errors()))


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """`body.channel_id: Field required; body.expire_time: ...` - one line, no input echoed.

    Pydantic's own entries carry the offending input (possibly megabytes of a hostile body) and
    exception objects that are not JSON; the location and message say enough.
    """
    parts = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "invalid"))
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts) or "invalid request"


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    error_type = _HTTP_ERROR_TYPES.get(error.status_code, "HTTP-ERROR")
    return error_response(error.status_code, error_type, error.detail, error.headers)


async def _internal_error(request: Request, error: Exception) -> JSONResponse:
    # Starlette logs the exception and re-raises it after this response has been sent; the
    # client only learns that it was not its fault.
    return error_response(500, INTERNAL_ERROR, "internal error")
