"""``/api/login``: an API key for a session cookie, so the page can call the API."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from tasks.serve.api_models import Login
from tasks.serve.auth import SESSION_COOKIE
from tasks.serve.dependencies import Auth

router = APIRouter()


@router.post("/api/login", status_code=204)
def login(body: Login, request: Request, auth: Auth) -> Response:
    if not auth.key_matches(body.api_key):
        raise HTTPException(401, "wrong API key")
    response = Response(status_code=204)
    response.set_cookie(
        SESSION_COOKIE,
        auth.session_token or "",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response
