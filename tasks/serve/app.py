"""The HTTP surface of ``audio-embeddings serve`` (FastAPI): routes onto a ``SearchService``.

POST /api/search            multipart ``file`` + top, path_prefix, label, segments, per_file
GET  /api/search            key= | path= | url=, same options
GET  /api/audio/{key}       a catalogue file's audio, with byte ranges (players seek)
GET  /api/anomalies         each scanned clip's newest verdict, furthest over threshold first
GET  /api/labels            the AudioSet labels (filter suggestions)
GET  /api/predicted-labels  each label set's predicted labels with file counts (facets)
POST /api/login             API key -> session cookie (for the page)
GET  /healthz               liveness, what is loaded, batching counters
GET  /metrics               Prometheus metrics (same authentication as /api)
GET  /                      the page; /docs and /openapi.json: the schema
"""

from __future__ import annotations

import math
import mimetypes
from collections.abc import Callable
from importlib.resources import files as package_files
from typing import Annotated

import anyio
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    UploadFile,
)
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from tasks.audio.decode import AudioError, AudioErrorKind
from tasks.errors import ServiceUnreachableError, UserError
from tasks.index.interface import SearchHit
from tasks.model.labels import audioset_labels
from tasks.search.query import QueryAudio, QueryNotFoundError, QueryTooLargeError
from tasks.serve.admission import Deadline, DeadlineExceededError, ServiceBusyError
from tasks.serve.auth import API_KEY_HEADER, SESSION_COOKIE, Authenticator, NotAuthenticatedError
from tasks.serve.metrics import ObservedRequests, json_access_log
from tasks.serve.ranges import RangeNotSatisfiableError, requested_range
from tasks.serve.service import NotInCatalogueError, SearchAnswer, SearchOptions, SearchService
from tasks.settings import ServeSettings
from tasks.storage.sources import file_uri_path

PAGE = package_files("tasks.serve").joinpath("page")
#: Multipart framing and form fields on top of the file itself (bytes).
_FORM_OVERHEAD = 64 * 1024


class Hit(BaseModel):
    """One match: cosine similarity (1 = same direction), where it is, how to hear it."""

    key: str
    path: str
    score: float
    duration_seconds: float
    labels: list[str]
    classes: list[str] = Field(
        default_factory=list, description="Predicted labels, LABEL_SET=LABEL (file matches)"
    )
    start_seconds: float | None = Field(None, description="Segment matches: where it starts (s)")
    end_seconds: float | None = Field(None, description="Segment matches: where it ends (s)")
    audio_url: str = Field(description="The file's audio (seek to start_seconds for a segment)")


class SearchResponse(BaseModel):
    query: str
    hits: list[Hit]
    embed_ms: float = Field(description="Time to get the query's vector (ms)")
    search_ms: float = Field(description="Time the index took (ms)")


class Anomaly(BaseModel):
    """A scanned clip's newest verdict."""

    key: str
    path: str
    group: str | None
    verdict: str = Field(description="normal, anomaly or silent")
    score: float | None = Field(description="The worst window's score; none for a silent clip")
    threshold: float
    worst_window_start_seconds: float | None
    window_seconds: float | None = Field(description="The scan window's length (s)")
    scanned_at: str
    nearest_reference_paths: list[str]
    audio_url: str


class Login(BaseModel):
    api_key: str


def create_app(
    service: SearchService, authenticator: Authenticator, settings: ServeSettings
) -> FastAPI:
    """The application; ``service`` is already started (model loaded)."""
    app = FastAPI(
        title="audio-embeddings",
        summary="Query-by-audio search over PANNs Cnn14 embeddings, and anomaly verdicts",
        version="1",
    )
    metrics = service.metrics
    app.add_middleware(
        _UploadGuard,
        file_limit=settings.serve_max_upload_bytes,
        seconds=settings.serve_request_timeout_seconds,
        path="/api/search",
        reject=metrics.reject,
    )
    if settings.serve_access_log == "json":
        json_access_log()
    # added last: the outermost, so it sees every answer, the guard's included
    app.add_middleware(
        ObservedRequests, metrics=metrics, json_log=settings.serve_access_log == "json"
    )

    def authenticated(request: Request) -> None:
        try:
            authenticator.check(
                request.headers.get(API_KEY_HEADER),
                request.cookies.get(SESSION_COOKIE),
                request.headers.get("authorization"),
            )
        except NotAuthenticatedError as error:
            raise HTTPException(401, str(error), {"WWW-Authenticate": "Bearer"}) from None

    api = APIRouter(prefix="/api", dependencies=[Depends(authenticated)])

    def deadline(request: Request) -> Deadline:
        """The request's deadline: set by the upload guard when its body began to arrive."""
        return getattr(request.state, "deadline", None) or service.deadline()

    @app.exception_handler(UserError)
    async def user_error(request: Request, error: UserError) -> JSONResponse:
        status = _status_of(error)
        if isinstance(error, AudioError):
            metrics.reject(str(error.kind))
        elif isinstance(error, QueryTooLargeError):
            metrics.reject("upload_too_large")
        return JSONResponse({"detail": str(error)}, status_code=status)

    @app.exception_handler(ServiceBusyError)
    async def busy(request: Request, error: ServiceBusyError) -> JSONResponse:
        metrics.reject("busy")
        return JSONResponse(
            {"detail": str(error)},
            status_code=503,
            headers={"Retry-After": str(error.retry_after_seconds)},
        )

    @app.exception_handler(DeadlineExceededError)
    async def too_slow(request: Request, error: DeadlineExceededError) -> JSONResponse:
        metrics.reject("deadline")
        return JSONResponse({"detail": str(error)}, status_code=504)

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(authenticated)])
    def metrics_page() -> Response:
        """Prometheus metrics: requests, latency, decode and model time, queues, rejections,
        the index's rows and the snapshot's version."""
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", **service.health()}

    @app.post("/api/login", status_code=204)
    def login(body: Login, request: Request) -> Response:
        if not authenticator.key_matches(body.api_key):
            raise HTTPException(401, "wrong API key")
        response = Response(status_code=204)
        response.set_cookie(
            SESSION_COOKIE,
            authenticator.session_token or "",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @api.post("/search", response_model=SearchResponse)
    async def search_upload(
        request: Request,
        file: Annotated[UploadFile, File(description="The query audio (any decodable format)")],
        top: Annotated[int, Form(ge=1, le=1000)] = 10,
        path_prefix: Annotated[str | None, Form()] = None,
        label: Annotated[list[str] | None, Form()] = None,
        segments: Annotated[bool, Form()] = False,
        per_file: Annotated[int, Form(ge=1, le=100)] = 1,
        where: Annotated[
            list[str] | None,
            Form(description="Predicted label LABEL_SET=LABEL (repeatable; files only)"),
        ] = None,
    ) -> SearchResponse:
        """Search with an uploaded file: decoded by the pipeline's checked decoder."""
        data = await _read_limited(file, settings.serve_max_upload_bytes)
        audio = QueryAudio(file.filename or "upload", data)
        options = SearchOptions(
            top, path_prefix, tuple(label or ()), segments, per_file, tuple(where or ())
        )
        answer = await anyio.to_thread.run_sync(
            service.search_audio, audio, options, deadline(request)
        )
        return _response(answer)

    @api.get("/search", response_model=SearchResponse)
    def search_by_reference(
        request: Request,
        key: Annotated[str | None, Query(description="A catalogue key")] = None,
        path: Annotated[str | None, Query(description="A catalogue path, as listed")] = None,
        url: Annotated[
            str | None, Query(description="az://container/blob, or the blob's URL")
        ] = None,
        top: Annotated[int, Query(ge=1, le=1000)] = 10,
        path_prefix: str | None = None,
        label: Annotated[list[str] | None, Query()] = None,
        segments: bool = False,
        per_file: Annotated[int, Query(ge=1, le=100)] = 1,
        where: Annotated[
            list[str] | None,
            Query(description="Predicted label LABEL_SET=LABEL (repeatable; files only)"),
        ] = None,
    ) -> SearchResponse:
        """Search with a file of the catalogue (its stored vector) or a blob."""
        given = [name for name, value in (("key", key), ("path", path), ("url", url)) if value]
        if len(given) != 1:
            raise HTTPException(422, "give exactly one of key, path or url")
        options = SearchOptions(
            top, path_prefix, tuple(label or ()), segments, per_file, tuple(where or ())
        )
        if url:
            return _response(service.search_blob(url, options, deadline(request)))
        return _response(service.search_catalogue(key or path or "", options))

    @api.get("/audio/{key}", response_class=Response)
    def audio(key: str, request: Request) -> Response:
        """A catalogue file's audio. Only files of the snapshot are served, found by their key
        (never by a path from the request); byte ranges are honoured."""
        item = service.item(key)
        media_type = mimetypes.guess_type(item.path)[0] or "application/octet-stream"
        if item.source_uri.startswith("file://"):
            path = file_uri_path(item.source_uri)
            if not path.is_file():
                raise HTTPException(410, f"{item.path}: no longer at its source")
            return FileResponse(path, media_type=media_type, content_disposition_type="inline")
        return _blob_response(service, item.source_uri, item.size_bytes, media_type, request)

    @api.get("/anomalies", response_model=list[Anomaly])
    def anomalies(
        limit: Annotated[int, Query(ge=1, le=10_000)] = 200, only_anomalies: bool = False
    ) -> list[Anomaly]:
        """Each scanned clip's newest verdict, the furthest above its threshold first."""
        return [
            Anomaly(
                **{name: row[name] for name in ("key", "path", "group", "verdict", "threshold")},
                worst_window_start_seconds=row["worst_window_start_seconds"],
                window_seconds=row.get("window_seconds"),
                score=None if math.isnan(row["score"]) else row["score"],
                scanned_at=row["scanned_at"].isoformat(),
                nearest_reference_paths=row["nearest_reference_paths"] or [],
                audio_url=f"/api/audio/{row['key']}",
            )
            for row in service.latest_anomalies(limit, only_anomalies)
        ]

    @api.get("/labels")
    def labels() -> list[str]:
        """The AudioSet label names files are tagged with."""
        return sorted(audioset_labels().names)

    @api.get("/predicted-labels")
    def predicted_labels() -> dict[str, dict[str, int]]:
        """Each label set's predicted labels and how many files carry each (the page's
        facets; filter with ``where=LABEL_SET=LABEL``)."""
        return service.predicted_labels()

    app.include_router(api)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.joinpath("index.html").read_text())

    app.mount("/static", StaticFiles(directory=str(PAGE)), name="static")
    return app


def _response(answer: SearchAnswer) -> SearchResponse:
    return SearchResponse(
        query=answer.query,
        hits=[_hit(hit) for hit in answer.hits],
        embed_ms=round(answer.embed_ms, 1),
        search_ms=round(answer.search_ms, 1),
    )


def _hit(hit: SearchHit) -> Hit:
    return Hit(
        key=hit.key,
        path=hit.path,
        score=hit.score,
        duration_seconds=hit.duration_seconds,
        labels=hit.labels,
        classes=hit.classes,
        start_seconds=hit.start_seconds,
        end_seconds=hit.end_seconds,
        audio_url=f"/api/audio/{hit.key}",
    )


def _status_of(error: UserError) -> int:
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


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes; 413 as soon as it passes ``limit``."""
    chunks, total = [], 0
    while chunk := await upload.read(1 << 20):
        total += len(chunk)
        if total > limit:
            raise HTTPException(413, f"the upload is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _blob_response(
    service: SearchService, source_uri: str, size: int, media_type: str, request: Request
) -> Response:
    from tasks.resources import locate

    source, blob_name = locate(source_uri, service.settings)
    headers = {"Accept-Ranges": "bytes"}
    try:
        wanted = requested_range(request.headers.get("range"), size)
    except RangeNotSatisfiableError:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = wanted or (0, size - 1)
    headers["Content-Length"] = str(end - start + 1)
    if wanted:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(
        source.stream_range(blob_name, start, end - start + 1),
        status_code=206 if wanted else 200,
        media_type=media_type,
        headers=headers,
    )


class _UploadGuard:
    """For requests to ``path`` (uploads): answers 413 to a body past ``file_limit`` bytes (plus
    the form's framing), by its Content-Length or, for a chunked body, as it arrives, so an
    oversized upload is never spooled whole; and 408 to a body still arriving after ``seconds``
    (a slow or stalled client holds no more than a connection until then). Sets the request's
    deadline, which the search then keeps to."""

    def __init__(
        self, app, file_limit: int, seconds: float, path: str, reject: Callable[[str], None]
    ) -> None:
        self.app, self.file_limit, self.seconds, self.path = app, file_limit, seconds, path
        self.limit = file_limit + _FORM_OVERHEAD
        self.reject = reject

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        deadline = Deadline.after(self.seconds)
        scope.setdefault("state", {})["deadline"] = deadline
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, 413, self._too_large())
            return
        received, answered = 0, False

        async def guarded():
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            with anyio.move_on_after(deadline.remaining()) as waited:
                message = await receive()
            if waited.cancelled_caught:
                await self._refuse(
                    send,
                    408,
                    f"the upload did not arrive within {self.seconds:g} s "
                    "(AUDIO_EMBEDDINGS_SERVE_REQUEST_TIMEOUT_SECONDS)",
                )
                answered = True
                return {"type": "http.disconnect"}
            received += len(message.get("body", b""))
            if received > self.limit:  # answer now; the app sees the client gone
                await self._refuse(send, 413, self._too_large())
                answered = True
                return {"type": "http.disconnect"}
            return message

        async def unless_answered(message) -> None:
            if not answered:
                await send(message)

        try:
            await self.app(scope, guarded, unless_answered)
        except Exception:
            if not answered:  # the app's own failure; after our answer, only the lost body's
                raise

    def _too_large(self) -> str:
        return f"the upload is over the limit of {self.file_limit:,} bytes"

    async def _refuse(self, send, status: int, detail: str) -> None:
        self.reject("upload_too_large" if status == 413 else "upload_timeout")
        response = JSONResponse({"detail": detail}, status_code=status)
        await response({"type": "http"}, None, send)
