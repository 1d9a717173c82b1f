"""How errors become answers: a user's mistake is a 4xx naming it, an outage behind the service
503, a full service 503 with Retry-After, a request past its deadline 504. Each refusal is
counted in the service's metrics by its reason."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tasks.audio.errors import AudioError, AudioErrorKind
from tasks.errors import ServiceUnreachableError, UserError
from tasks.search.query import QueryNotFoundError, QueryTooLargeError
from tasks.serve.admission import DeadlineExceededError, ServiceBusyError
from tasks.serve.service import NotInCatalogueError


def add_error_responses(app: FastAPI) -> None:
    app.add_exception_handler(UserError, _user_error)
    app.add_exception_handler(ServiceBusyError, _busy)
    app.add_exception_handler(DeadlineExceededError, _too_slow)


async def _user_error(request: Request, error: UserError) -> JSONResponse:
    if isinstance(error, AudioError):
        _reject(request, str(error.kind))
    elif isinstance(error, QueryTooLargeError):
        _reject(request, "upload_too_large")
    return JSONResponse({"detail": str(error)}, status_code=status_of(error))


async def _busy(request: Request, error: ServiceBusyError) -> JSONResponse:
    _reject(request, "busy")
    return JSONResponse(
        {"detail": str(error)},
        status_code=503,
        headers={"Retry-After": str(error.retry_after_seconds)},
    )


async def _too_slow(request: Request, error: DeadlineExceededError) -> JSONResponse:
    _reject(request, "deadline")
    return JSONResponse({"detail": str(error)}, status_code=504)


def _reject(request: Request, reason: str) -> None:
    request.app.state.service.metrics.reject(reason)


def status_of(error: UserError) -> int:
    if isinstance(error, NotInCatalogueError | QueryNotFoundError):
        return 404
    if isinstance(error, QueryTooLargeError) or (
        isinstance(error, AudioError)
        and error.kind in (AudioErrorKind.TOO_LARGE, AudioErrorKind.TOO_LONG)
    ):
        return 413
    if isinstance(error, AudioError):
        return 422
    if isinstance(error, ServiceUnreachableError):
        return 503
    return 400
