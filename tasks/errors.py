"""The errors a user can fix: every one derives from ``UserError``.

The command line turns a ``UserError`` into one red line and exit code 2; anything else is a
bug or an outage and keeps its traceback. Raise a ``UserError`` only when the message says what
was wrong and what to do about it (which file, which setting).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager


class UserError(Exception):
    """A mistake in what the user supplied (a path, a URL, a setting, an input file)."""


class ServiceUnreachableError(UserError):
    """A configured service (Blob Storage, Azure AI Search) could not be reached or refused
    the credentials; the message names the setting to check."""


@contextmanager
def reaching(service: str, settings_hint: str, secrets: Sequence[str] = ()) -> Iterator[None]:
    """Turn azure-core's "could not connect" and "credentials refused" errors raised inside the
    block into a ``ServiceUnreachableError`` that names ``service`` and the settings to check.

    Other errors pass through unchanged. ``secrets`` are scrubbed from the message (a SAS token
    can appear in a request URL).
    """
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

    try:
        yield
    except ServiceRequestError as error:
        raise ServiceUnreachableError(
            scrub_secrets(
                f"cannot reach {service}: {_reason(error)}; check {settings_hint}", secrets
            )
        ) from None
    except ClientAuthenticationError as error:
        status = f"HTTP {error.status_code}" if error.status_code else "authentication failed"
        raise ServiceUnreachableError(
            scrub_secrets(
                f"{service} refused the credentials ({status}); check {settings_hint}", secrets
            )
        ) from None


def _reason(error: Exception) -> str:
    # azure-core wraps urllib3's "<HTTPConnection object at 0x..>: Failed to establish a new
    # connection: [Errno 111] Connection refused"; the part after the object is the reason.
    text = str(getattr(error, "message", None) or error).splitlines()[0]
    return text.split(">: ", 1)[-1]


def scrub_secrets(message: str, secrets: Sequence[str]) -> str:
    """``message`` with every secret value replaced by ``***`` (longest first)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        message = message.replace(secret, "***")
    return message
