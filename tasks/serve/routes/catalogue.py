"""The catalogue as the page needs it: a file's audio (with byte ranges, so players seek) and
its spectrogram, the AudioSet tags and the predicted labels to filter by."""

from __future__ import annotations

import base64
import mimetypes
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from tasks.model.tags import audioset_tags
from tasks.search.duplicates import DEFAULT_THRESHOLD
from tasks.serve.api_models import (
    DuplicateGroup,
    Duplicates,
    IsolatedFile,
    Spectrogram,
    audio_url,
)
from tasks.serve.dependencies import RequestDeadline, Service
from tasks.serve.ranges import RangeNotSatisfiableError, requested_range
from tasks.serve.service import SearchService
from tasks.storage.sources import file_uri_path

router = APIRouter(prefix="/api")


@router.get("/audio/{key}", response_class=Response)
def audio(key: str, request: Request, service: Service) -> Response:
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


@router.get("/spectrogram/{key}", response_model=Spectrogram)
def spectrogram(
    key: str, request: Request, service: Service, deadline: RequestDeadline
) -> Response:
    """A catalogue file's log-mel spectrogram, as Cnn14 hears it (64 bands, 50 Hz to 14 kHz),
    max-pooled to at most 512 columns: ``values`` is base64 of uint8 [bands][columns], the
    lowest band first, 255 the loudest. Cached by the file's version (ETag)."""
    etag = f'"{service.item(key).etag}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    picture = service.spectrogram(key, deadline)
    bands, columns = picture.values.shape
    body = Spectrogram(
        seconds=picture.seconds,
        bands=bands,
        columns=columns,
        values=base64.b64encode(picture.values.tobytes()).decode("ascii"),
    )
    return JSONResponse(body.model_dump(), headers=headers)


@router.get("/duplicates", response_model=Duplicates)
def duplicates(
    service: Service,
    threshold: Annotated[
        float, Query(ge=0.0, le=1.0, description="Cosine at or above which files are alike")
    ] = DEFAULT_THRESHOLD,
    isolated: Annotated[int, Query(ge=0, le=1_000)] = 20,
) -> JSONResponse:
    """Groups of near-identical files (largest first) and the most isolated files. The pass
    runs in the background: 202 with the files compared so far (ask again after Retry-After),
    then 200 with the answer, kept until the snapshot changes."""
    state = service.duplicates(threshold, isolated)
    found = state.found
    body = Duplicates(
        status=state.status,
        files=found.files if found else state.files_seen,
        threshold=threshold,
        error=state.error,
        groups=[
            DuplicateGroup(
                paths=g.paths, audio_urls=[audio_url(k) for k in g.keys], weakest=g.weakest
            )
            for g in (found.groups if found else [])
        ],
        isolated=[
            IsolatedFile(
                path=f.path,
                audio_url=audio_url(f.key),
                nearest_path=f.nearest_path,
                similarity=f.similarity,
            )
            for f in (found.isolated if found else [])
        ],
    )
    if state.status == "running":
        return JSONResponse(body.model_dump(), status_code=202, headers={"Retry-After": "2"})
    return JSONResponse(body.model_dump(), status_code=500 if state.status == "failed" else 200)


@router.get(
    "/map",
    responses={
        304: {"description": "Not modified (If-None-Match)"},
        404: {"description": "No catalogue map yet"},
    },
)
def catalogue_map(request: Request, service: Service) -> Response:
    """Every file of the catalogue map: ``keys``, ``paths``, ``x`` and ``y`` (-1..1) in one
    order, and under ``colour_by`` each way to colour them (``folder``, ``tag``, ``verdict``,
    ``predicted:<label set>``): ``values`` (the most common first), their ``counts``, and a
    ``codes`` entry per file (-1: none). Gzipped when the client accepts it; 304 on a matching
    If-None-Match. 404 before the first map (``audio-embeddings map`` or an ingest makes it)."""
    body = service.catalogue_map()
    if body is None:
        raise HTTPException(
            404, "no catalogue map yet: an ingest makes it, or run `audio-embeddings map`"
        )
    headers = {"ETag": body.etag, "Cache-Control": "private, no-cache", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == body.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(body.gzipped, media_type="application/json", headers=headers)
    return Response(body.json, media_type="application/json", headers=headers)


@router.get("/tags")
def tags() -> list[str]:
    """The AudioSet class names files can be tagged with."""
    return sorted(audioset_tags().names)


@router.get("/labels", deprecated=True)
def labels() -> list[str]:
    """Deprecated: the same as ``/api/tags``."""
    return tags()


@router.get("/predicted-labels")
def predicted_labels(service: Service) -> dict[str, dict[str, int]]:
    """Each label set's predicted labels and how many files carry each (the page's
    facets; filter with ``predicted=LABEL_SET=LABEL``)."""
    return service.predicted_labels()


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
