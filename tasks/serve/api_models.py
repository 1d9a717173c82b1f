"""The service's JSON shapes (its OpenAPI schema), and how a search answer becomes one."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tasks.index.interface import SearchHit
from tasks.serve.service import SearchAnswer


class Hit(BaseModel):
    """One match: cosine similarity (1 = same direction), where it is, how to hear it."""

    key: str
    path: str
    score: float
    duration_seconds: float
    tags: list[str] = Field(description="AudioSet tags, most probable first")
    predicted_labels: list[str] = Field(
        default_factory=list, description="Predicted labels, LABEL_SET=LABEL (file matches)"
    )
    start_seconds: float | None = Field(None, description="Segment matches: where it starts (s)")
    end_seconds: float | None = Field(None, description="Segment matches: where it ends (s)")
    audio_url: str = Field(description="The file's audio (seek to start_seconds for a segment)")
    labels: list[str] = Field(deprecated=True, description="Deprecated: the same as tags")
    classes: list[str] = Field(
        deprecated=True, description="Deprecated: the same as predicted_labels"
    )

    @classmethod
    def of(cls, hit: SearchHit) -> Hit:
        return cls(
            key=hit.key,
            path=hit.path,
            score=hit.score,
            duration_seconds=hit.duration_seconds,
            tags=hit.tags,
            predicted_labels=hit.predicted_labels,
            labels=hit.tags,
            classes=hit.predicted_labels,
            start_seconds=hit.start_seconds,
            end_seconds=hit.end_seconds,
            audio_url=audio_url(hit.key),
        )


class SearchResponse(BaseModel):
    query: str
    hits: list[Hit]
    embed_ms: float = Field(description="Time to get the query's vector (ms)")
    search_ms: float = Field(description="Time the index took (ms)")

    @classmethod
    def of(cls, answer: SearchAnswer) -> SearchResponse:
        return cls(
            query=answer.query,
            hits=[Hit.of(hit) for hit in answer.hits],
            embed_ms=round(answer.embed_ms, 1),
            search_ms=round(answer.search_ms, 1),
        )


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


def audio_url(key: str) -> str:
    """Where the service plays a catalogue file's audio."""
    return f"/api/audio/{key}"


class TrendPoint(BaseModel):
    """One clip on a machine's trend, at the time it was recorded."""

    key: str
    path: str
    machine: str
    at: str = Field(description="When the clip was recorded (its file's last_modified), ISO 8601")
    verdict: str = Field(description="normal, anomaly or silent")
    score: float | None = Field(description="The worst window's score; none for a silent clip")
    threshold: float = Field(description="The threshold the clip's scan judged it against")
    worst_window_start_seconds: float | None
    window_seconds: float | None
    audio_url: str


class Trend(BaseModel):
    """Every machine scanned, and the points asked for, oldest first."""

    machines: list[str]
    points: list[TrendPoint]


class Spectrogram(BaseModel):
    """A file's log-mel spectrogram as a picture."""

    seconds: float = Field(description="The audio the picture spans (s)")
    bands: int = Field(description="Mel bands (rows), the lowest first")
    columns: int = Field(description="Columns; a column spans seconds / columns")
    values: str = Field(description="base64 of uint8 [bands][columns], 255 the loudest")


class DuplicateGroup(BaseModel):
    """Files linked by near-duplicate pairs; ``weakest`` is the least similar link (cosine)."""

    paths: list[str]
    audio_urls: list[str]
    weakest: float


class IsolatedFile(BaseModel):
    """A file far from every other: cosine ``similarity`` to its nearest other file."""

    path: str
    audio_url: str
    nearest_path: str
    similarity: float


class Duplicates(BaseModel):
    """The catalogue's near-duplicates and most isolated files, or how far the pass is."""

    status: str = Field(description="done, running (ask again; see Retry-After) or failed")
    files: int = Field(description="Files compared so far")
    threshold: float
    groups: list[DuplicateGroup] = Field(default_factory=list)
    isolated: list[IsolatedFile] = Field(default_factory=list)
    error: str | None = None
