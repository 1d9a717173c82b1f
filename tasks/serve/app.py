"""The HTTP surface of ``audio-embeddings serve`` (FastAPI): routers onto a ``SearchService``.

POST /api/search            multipart ``file`` + top, path_prefix, tag, predicted, segments,
                            per_file
GET  /api/search            key= | path= | url=, same options
GET  /api/audio/{key}       a catalogue file's audio, with byte ranges (players seek)
GET  /api/spectrogram/{key} a catalogue file's log-mel spectrogram (cached by its version)
GET  /api/anomalies         each scanned clip's newest verdict, furthest over threshold first
GET  /api/anomalies/trend   each machine's scores over the time its clips were recorded
GET  /api/duplicates        near-duplicate groups and the most isolated files (background pass)
GET  /api/map               every file as a map point, with what it can be coloured by
GET  /api/tags              the AudioSet tags (filter suggestions)
GET  /api/predicted-labels  each label set's predicted labels with file counts (facets)
GET  /api/label-sets[/{name}] label sets; one's labels and its history (who, when, what)
POST /api/label-sets/{name}/labels    label files; DELETE: take them out (audited)
GET  /api/label-sets/{name}/review    the files to hear next (least certain first)
POST /api/label-sets/{name}/train     retrain in the background; GET .../classifier: history
POST /api/login             API key -> session cookie (for the page)
GET  /healthz               liveness, what is loaded, batching counters
GET  /metrics               Prometheus metrics (same authentication as /api)
GET  /                      the page; /docs and /openapi.json: the schema

Routes live in ``tasks.serve.routes``, one router per concern; what they need comes through
``Depends`` (``tasks.serve.dependencies``) from the app's state.
"""

from __future__ import annotations

from importlib.resources import files as package_files

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from tasks.serve.auth import Authenticator
from tasks.serve.dependencies import authenticated
from tasks.serve.error_responses import add_error_responses
from tasks.serve.metrics import ObservedRequests, json_access_log
from tasks.serve.routes import anomalies, catalogue, labels, operations, search, session
from tasks.serve.service import SearchService
from tasks.serve.upload_guard import UploadGuard
from tasks.settings import ServeSettings

PAGE = package_files("tasks.serve").joinpath("page")


def create_app(
    service: SearchService, authenticator: Authenticator, settings: ServeSettings
) -> FastAPI:
    """The application; ``service`` is already started (model loaded)."""
    app = FastAPI(
        title="audio-embeddings",
        summary="Query-by-audio search over PANNs Cnn14 embeddings, and anomaly verdicts",
        version="1",
    )
    app.state.service = service
    app.state.authenticator = authenticator
    app.state.serve_settings = settings
    app.add_middleware(
        UploadGuard,
        file_limit=settings.serve_max_upload_bytes,
        seconds=settings.serve_request_timeout_seconds,
        path="/api/search",
        reject=service.metrics.reject,
    )
    if settings.serve_access_log == "json":
        json_access_log()
    # added last: the outermost, so it sees every answer, the guard's included
    app.add_middleware(
        ObservedRequests, metrics=service.metrics, json_log=settings.serve_access_log == "json"
    )
    add_error_responses(app)

    app.include_router(operations.router)
    app.include_router(session.router)
    for concern in (search, catalogue, anomalies, labels):  # each carries its full paths
        app.include_router(concern.router, dependencies=[Depends(authenticated)])

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.joinpath("index.html").read_text())

    app.mount("/static", StaticFiles(directory=str(PAGE)), name="static")
    return app
