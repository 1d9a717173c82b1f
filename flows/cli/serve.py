"""``audio-embeddings serve``: the HTTP service and its page, in one process."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from flows.cli.options import Checkpoint
from flows.cli.output import console
from tasks.model.checkpoint import resolve_checkpoint
from tasks.settings import Settings


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (default 127.0.0.1; others need authentication)"),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000)")] = None,
    checkpoint: Checkpoint = None,
) -> None:
    """Serve search, the catalogue's audio and the anomaly verdicts over HTTP, with a page to
    search and listen at /, from one process that keeps the model loaded."""
    import uvicorn

    from tasks.serve.app import create_app
    from tasks.serve.auth import Authenticator
    from tasks.serve.service import SearchService

    settings = Settings.with_overrides(serve_host=host, serve_port=port, checkpoint_path=checkpoint)
    serve_settings = settings.serve_settings()
    authenticator = Authenticator(serve_settings)  # refuses an open non-loopback bind
    service = SearchService.start(settings)
    checkpoint_warning = resolve_checkpoint(settings.model_settings()).warning
    if checkpoint_warning:
        console.print(f"[yellow]warning:[/] {escape(checkpoint_warning)}")
    console.print(
        f"serving http://{settings.serve_host}:{settings.serve_port}/ "
        f"(API schema at /docs; "
        f"{'authentication required' if authenticator.required else 'loopback, no authentication'})"
    )
    try:
        uvicorn.run(
            create_app(service, authenticator, serve_settings),
            host=settings.serve_host,
            port=settings.serve_port,
            log_level="warning",  # the service writes its own access lines (JSON), if asked
            access_log=False,
        )
    finally:
        service.close()
