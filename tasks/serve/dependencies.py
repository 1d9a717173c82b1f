"""What routes receive through ``Depends``: the running service, its settings, the request's
deadline, and the authentication check. ``create_app`` puts the objects on ``app.state``; a
test can mount one router on an app of its own and set the same state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from tasks.serve.admission import Deadline
from tasks.serve.auth import API_KEY_HEADER, SESSION_COOKIE, Authenticator, NotAuthenticatedError
from tasks.serve.service import SearchService
from tasks.settings import ServeSettings


def running_service(request: Request) -> SearchService:
    return request.app.state.service


def serve_settings(request: Request) -> ServeSettings:
    return request.app.state.serve_settings


def authenticator(request: Request) -> Authenticator:
    return request.app.state.authenticator


Service = Annotated[SearchService, Depends(running_service)]
ServeConfig = Annotated[ServeSettings, Depends(serve_settings)]
Auth = Annotated[Authenticator, Depends(authenticator)]


def authenticated(request: Request, auth: Auth) -> None:
    """401 unless the request carries the API key, a session cookie or a bearer token; who
    the caller is goes to ``request.state.identity`` (audit trails record it)."""
    try:
        request.state.identity = auth.check(
            request.headers.get(API_KEY_HEADER),
            request.cookies.get(SESSION_COOKIE),
            request.headers.get("authorization"),
        )
    except NotAuthenticatedError as error:
        raise HTTPException(401, str(error), {"WWW-Authenticate": "Bearer"}) from None


def caller(request: Request) -> str:
    """Who sent the request, as ``authenticated`` found (``local`` without authentication)."""
    return getattr(request.state, "identity", "local")


Caller = Annotated[str, Depends(caller)]


def request_deadline(request: Request, service: Service) -> Deadline:
    """The request's deadline: set by the upload guard when its body began to arrive, else
    from now."""
    return getattr(request.state, "deadline", None) or service.deadline()


RequestDeadline = Annotated[Deadline, Depends(request_deadline)]
