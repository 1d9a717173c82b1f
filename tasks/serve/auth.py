"""Who may call the service.

On loopback with nothing configured, anyone on the machine may (the default). Anywhere else the
service refuses to start unless callers must prove themselves, with either:

- the API key (``AUDIO_EMBEDDINGS_SERVE_API_KEY``), sent as ``X-API-Key``; the page logs in with
  it once and then holds an HttpOnly, SameSite=Strict session cookie (an audio element cannot
  send headers), which is an HMAC of the key, so the key itself is never stored in the browser;
- a Microsoft Entra ID access token (``Authorization: Bearer``) issued by the configured tenant
  for the configured audience, checked against the tenant's published signing keys.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from functools import cached_property

from tasks.errors import UserError
from tasks.settings import ServeSettings

SESSION_COOKIE = "audio_embeddings_session"
API_KEY_HEADER = "X-API-Key"


class ServiceNotSecuredError(UserError):
    """The service was asked to listen beyond loopback with no way to check callers."""


class NotAuthenticatedError(Exception):
    """The request carries no valid credential (the message says what was wrong)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Authenticator:
    """Checks requests against the configured API key and/or Entra ID tenant."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.api_key = settings.serve_api_key.get_secret_value() if settings.serve_api_key else None
        self.entra = bool(settings.serve_entra_tenant_id and settings.serve_entra_audience)
        if not is_loopback(settings.serve_host) and not (self.api_key or self.entra):
            raise ServiceNotSecuredError(
                f"refusing to listen on {settings.serve_host} without authentication: set "
                "AUDIO_EMBEDDINGS_SERVE_API_KEY, or AUDIO_EMBEDDINGS_SERVE_ENTRA_TENANT_ID and "
                "AUDIO_EMBEDDINGS_SERVE_ENTRA_AUDIENCE (or listen on 127.0.0.1)"
            )

    @property
    def required(self) -> bool:
        return bool(self.api_key or self.entra)

    @property
    def session_token(self) -> str | None:
        """The session cookie's value: an HMAC of the key (changes when the key does)."""
        if not self.api_key:
            return None
        return hmac.new(
            self.api_key.encode(), b"audio-embeddings session", hashlib.sha256
        ).hexdigest()

    def key_matches(self, candidate: str | None) -> bool:
        return bool(self.api_key and candidate) and hmac.compare_digest(
            candidate.encode(), self.api_key.encode()
        )

    @property
    def key_identity(self) -> str:
        """Who an API key holder is in an audit trail: the key's fingerprint, never the key."""
        digest = hashlib.sha256((self.api_key or "").encode()).hexdigest()
        return f"api-key:{digest[:12]}"

    def check(self, api_key: str | None, session: str | None, authorization: str | None) -> str:
        """Who the caller is (``local`` when no authentication is configured, on loopback;
        an API key's fingerprint; ``entra:`` and the token's user), or raise
        ``NotAuthenticatedError``."""
        if not self.required:
            return "local"
        if self.key_matches(api_key):
            return self.key_identity
        token = self.session_token
        if token and session and hmac.compare_digest(session.encode(), token.encode()):
            return self.key_identity
        scheme, _, bearer = (authorization or "").partition(" ")
        if self.entra and scheme.lower() == "bearer" and bearer:
            claims = self._check_entra_token(bearer.strip())
            user = claims.get("preferred_username") or claims.get("oid") or claims.get("sub")
            return f"entra:{user}"
        raise NotAuthenticatedError(
            "send X-API-Key, log in on the page, or send an Entra ID bearer token"
        )

    @cached_property
    def _signing_keys(self):
        import jwt

        tenant = self.settings.serve_entra_tenant_id
        url = (
            self.settings.serve_entra_jwks_url
            or f"https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys"
        )
        return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=10)

    def _check_entra_token(self, token: str) -> dict:
        import jwt

        tenant = self.settings.serve_entra_tenant_id
        try:
            key = self._signing_keys.get_signing_key_from_jwt(token)
            return jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.settings.serve_entra_audience,
                # v2.0 tokens, and v1.0 tokens (apps whose manifest still asks for them)
                issuer=[
                    f"https://login.microsoftonline.com/{tenant}/v2.0",
                    f"https://sts.windows.net/{tenant}/",
                ],
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise NotAuthenticatedError(f"bearer token rejected: {error}") from None
