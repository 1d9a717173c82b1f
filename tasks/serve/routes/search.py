"""``/api/search``: query by uploaded audio, by a catalogue file or blob, or by examples
(like these, unlike those)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile

from tasks.search.query import QueryAudio
from tasks.serve.api_models import SearchResponse
from tasks.serve.dependencies import RequestDeadline, ServeConfig, Service
from tasks.serve.service import SearchOptions
from tasks.serve.upload_guard import read_limited

router = APIRouter(prefix="/api/search")

LIKE = "A catalogue file (key or path) the matches should sound like (repeatable)"
UNLIKE = "A catalogue file (key or path) the matches should not sound like (repeatable)"


@router.post("", response_model=SearchResponse)
async def search_upload(
    service: Service,
    settings: ServeConfig,
    deadline: RequestDeadline,
    file: Annotated[UploadFile, File(description="The query audio (any decodable format)")],
    top: Annotated[int, Form(ge=1, le=1000)] = 10,
    path_prefix: Annotated[str | None, Form()] = None,
    tag: Annotated[list[str] | None, Form(description="AudioSet tag (repeatable: any)")] = None,
    segments: Annotated[bool, Form()] = False,
    per_file: Annotated[int, Form(ge=1, le=100)] = 1,
    predicted: Annotated[
        list[str] | None,
        Form(description="Predicted label LABEL_SET=LABEL (repeatable; files only)"),
    ] = None,
    label: Annotated[
        list[str] | None, Form(deprecated=True, description="Deprecated: use tag")
    ] = None,
    where: Annotated[
        list[str] | None, Form(deprecated=True, description="Deprecated: use predicted")
    ] = None,
    like: Annotated[list[str] | None, Form(description=LIKE)] = None,
    unlike: Annotated[list[str] | None, Form(description=UNLIKE)] = None,
) -> SearchResponse:
    """Search with an uploaded file: decoded by the pipeline's checked decoder; with ``like``
    and ``unlike``, the upload is one of the examples."""
    data = await read_limited(file, settings.serve_max_upload_bytes)
    audio = QueryAudio(file.filename or "upload", data)
    options = _options(top, path_prefix, segments, per_file, [tag, label], [predicted, where])
    if like or unlike:
        answer = await anyio.to_thread.run_sync(
            lambda: service.search_examples(like or [], unlike or [], options, audio, deadline)
        )
    else:
        answer = await anyio.to_thread.run_sync(service.search_audio, audio, options, deadline)
    return SearchResponse.of(answer)


@router.get("", response_model=SearchResponse)
def search_by_reference(
    service: Service,
    deadline: RequestDeadline,
    key: Annotated[str | None, Query(description="A catalogue key")] = None,
    path: Annotated[str | None, Query(description="A catalogue path, as listed")] = None,
    url: Annotated[str | None, Query(description="az://container/blob, or the blob's URL")] = None,
    top: Annotated[int, Query(ge=1, le=1000)] = 10,
    path_prefix: str | None = None,
    tag: Annotated[list[str] | None, Query(description="AudioSet tag (repeatable: any)")] = None,
    segments: bool = False,
    per_file: Annotated[int, Query(ge=1, le=100)] = 1,
    predicted: Annotated[
        list[str] | None,
        Query(description="Predicted label LABEL_SET=LABEL (repeatable; files only)"),
    ] = None,
    label: Annotated[
        list[str] | None, Query(deprecated=True, description="Deprecated: use tag")
    ] = None,
    where: Annotated[
        list[str] | None, Query(deprecated=True, description="Deprecated: use predicted")
    ] = None,
    like: Annotated[list[str] | None, Query(description=LIKE)] = None,
    unlike: Annotated[list[str] | None, Query(description=UNLIKE)] = None,
) -> SearchResponse:
    """Search with a file of the catalogue (its stored vector) or a blob; or with examples:
    ``like`` these catalogue files (``key`` or ``path`` counts as one), ``unlike`` those."""
    given = [name for name, value in (("key", key), ("path", path), ("url", url)) if value]
    options = _options(top, path_prefix, segments, per_file, [tag, label], [predicted, where])
    if like or unlike:
        if url or len(given) > 1:
            raise HTTPException(422, "with like or unlike, give at most one of key or path")
        liked = [*(value for value in (key, path) if value), *(like or [])]
        return SearchResponse.of(service.search_examples(liked, unlike or [], options))
    if len(given) != 1:
        raise HTTPException(422, "give exactly one of key, path or url (or like=)")
    if url:
        return SearchResponse.of(service.search_blob(url, options, deadline))
    return SearchResponse.of(service.search_catalogue(key or path or "", options))


def _options(
    top: int,
    path_prefix: str | None,
    segments: bool,
    per_file: int,
    tags: list[list[str] | None],
    predicted: list[list[str] | None],
) -> SearchOptions:
    """A search's options; ``tags`` and ``predicted`` gather a filter's values given under its
    name and under its deprecated one."""
    return SearchOptions(
        top,
        path_prefix,
        tuple(value for values in tags for value in values or ()),
        segments,
        per_file,
        tuple(value for values in predicted for value in values or ()),
    )
