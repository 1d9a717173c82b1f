"""The guard every command runs under: a ``UserError`` (tasks.errors), or an invalid
AUDIO_EMBEDDINGS_* setting, ends the command with one red line and exit code 2, also when it was
raised inside a flow; its traceback is kept out of the terminal (the flow run's logs on the
Prefect server keep it). Any other exception is a bug or an outage and shows its traceback.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import click
import typer
from pydantic import ValidationError
from rich.markup import escape
from typer.core import TyperGroup

from flows.cli.output import console
from tasks.errors import UserError
from tasks.settings import (
    AudioLimits,
    BlobSettings,
    ModelSettings,
    SearchServiceSettings,
    ServeSettings,
    Settings,
)

# A ValidationError of these models comes from AUDIO_EMBEDDINGS_* variables (or .env): the
# user's to fix, like a UserError.
SETTINGS_MODELS = frozenset(
    model.__name__
    for model in (
        Settings,
        AudioLimits,
        BlobSettings,
        ModelSettings,
        SearchServiceSettings,
        ServeSettings,
    )
)


class _UserErrorsWithoutTraceback(logging.Formatter):
    """Formats like ``inner``, but a record about a ``UserError`` without its traceback."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and isinstance(record.exc_info[1], UserError):
            record = copy.copy(record)
            record.exc_info, record.exc_text = None, None
        return self.inner.format(record)


def _keep_user_error_tracebacks_off_the_terminal() -> None:
    """Prefect's console handler logs a failed task or flow run with its traceback; for a user
    error the terminal shows the message alone (the API handler still sends the traceback)."""
    import prefect.main  # noqa: F401  (sets up Prefect's logging, console handler included)
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not isinstance(
            handler.formatter, _UserErrorsWithoutTraceback
        ):
            handler.setFormatter(
                _UserErrorsWithoutTraceback(handler.formatter or logging.Formatter())
            )


class GuardedGroup(TyperGroup):
    """Every command, sub-commands included: a ``UserError`` -> one red line, exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        _keep_user_error_tracebacks_off_the_terminal()
        try:
            return super().invoke(ctx)
        except UserError as error:
            raise user_error(str(error)) from None
        except ValidationError as error:
            if error.title not in SETTINGS_MODELS:
                raise
            raise user_error(f"invalid AUDIO_EMBEDDINGS_* setting: {error}") from None


def user_error(message: str) -> typer.Exit:
    # soft_wrap: the terminal wraps it, so paths and URLs stay whole when copied
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=2)
