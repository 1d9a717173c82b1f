"""What the service reports about itself: Prometheus metrics at ``/metrics`` and, when asked,
one JSON access-log line per request.

Every metric is named ``audio_embeddings_*``. The ones to alert on:

- ``audio_embeddings_http_requests_total{status=~"5.."}``: server errors (should stay at 0);
- ``audio_embeddings_rejections_total{reason="busy"}``: queries refused because the service
  held as many as it may (add replicas, or raise the queue settings if the CPU allows);
- ``audio_embeddings_http_request_duration_seconds``: the latency histogram (p99 by route).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: The logger access lines go to when ``AUDIO_EMBEDDINGS_SERVE_ACCESS_LOG=json``.
ACCESS_LOGGER = "audio_embeddings.access"
#: The header a request id is read from (when the caller sends a sane one) and answered in.
REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServiceMetrics:
    """The service's instruments, in a registry of its own (one per app: tests run several)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "audio_embeddings_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "audio_embeddings_http_request_duration_seconds",
            "Time from a request's arrival to its answer's last byte (s), by route template",
            ["route"],
            buckets=_SECONDS,
            registry=registry,
        )
        self.decode_seconds = Histogram(
            "audio_embeddings_query_decode_seconds",
            "Time to decode a query's audio and cut its pieces (s)",
            buckets=_SECONDS,
            registry=registry,
        )
        self.forward_pass_seconds = Histogram(
            "audio_embeddings_forward_pass_seconds",
            "Time of one shared forward pass of the model (s)",
            buckets=_SECONDS,
            registry=registry,
        )
        self.forward_pass_queries = Histogram(
            "audio_embeddings_forward_pass_queries",
            "Queries sharing one forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=registry,
        )
        self.rejections = Counter(
            "audio_embeddings_rejections",
            "Requests refused, by reason: busy (503), deadline (504), upload_timeout (408), "
            "upload_too_large (413), or the audio's fault (too_long, not_audio, truncated, ...)",
            ["reason"],
            registry=registry,
        )
        self.queries_in_hand = Gauge(
            "audio_embeddings_queries_in_hand",
            "Queries with audio admitted and not yet answered",
            registry=registry,
        )
        self.queries_decoding = Gauge(
            "audio_embeddings_queries_decoding", "Queries being decoded now", registry=registry
        )
        self.queries_waiting = Gauge(
            "audio_embeddings_queries_waiting_for_model",
            "Decoded queries waiting for a forward pass (the batcher's queue depth)",
            registry=registry,
        )
        self.index_rows = Gauge(
            "audio_embeddings_index_rows",
            "Rows in the vector index (index: files or segments); NaN when it cannot be read",
            ["index"],
            registry=registry,
        )
        self.snapshot_version = Gauge(
            "audio_embeddings_snapshot_version",
            "The embedding snapshot's Delta table version the service reads",
            registry=registry,
        )

    def observe_forward_pass(self, queries: int, seconds: float) -> None:
        self.forward_pass_queries.observe(queries)
        self.forward_pass_seconds.observe(seconds)

    def reject(self, reason: str) -> None:
        self.rejections.labels(reason).inc()

    def render(self) -> bytes:
        """The exposition text of every metric."""
        return generate_latest(self.registry)


def read_or_nan(read: Callable[[], float | int | None]) -> Callable[[], float]:
    """``read`` for a gauge's callback: NaN when it fails or has nothing (a scrape must never
    fail because a store is briefly unreachable)."""

    def reading() -> float:
        try:
            value = read()
        except Exception:
            return math.nan
        return math.nan if value is None else float(value)

    return reading


class ObservedRequests:
    """ASGI middleware: counts and times every request by its route template (never its raw
    path, which would make one series per file key), answers an ``X-Request-ID``, and writes a
    JSON access line when ``json_log``. The path is logged without its query string, which can
    carry a blob URL's SAS token."""

    def __init__(self, app, metrics: ServiceMetrics, json_log: bool) -> None:
        self.app, self.metrics, self.json_log = app, metrics, json_log
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        started = time.perf_counter()
        status, sent_bytes, recorded = 500, 0, False  # an exception before the answer is a 500

        def record() -> None:
            nonlocal recorded
            recorded = True
            self._record(scope, request_id, status, sent_bytes, time.perf_counter() - started)

        async def observed(message) -> None:
            nonlocal status, sent_bytes
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            elif message["type"] == "http.response.body":
                sent_bytes += len(message.get("body", b""))
                if not message.get("more_body", False):
                    record()  # before the last byte leaves: a client that then scrapes sees it
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            if not recorded:
                record()

    def _record(self, scope, request_id: str, status: int, sent_bytes: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.requests.labels(template, scope["method"], str(status)).inc()
        self.metrics.latency.labels(template).observe(seconds)
        if self.json_log:
            self.log.info(
                json.dumps(
                    {
                        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 1),
                        "response_bytes": sent_bytes,
                        "client": (scope.get("client") or ("", 0))[0],
                    }
                )
            )


def _request_id(scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER.encode():
            given = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(given):
                return given
    return uuid.uuid4().hex


def json_access_log() -> logging.Logger:
    """The access logger, at INFO, writing bare JSON lines to stderr (its handler added once)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not any(isinstance(handler, _JsonLines) for handler in logger.handlers):
        logger.addHandler(_JsonLines())
    return logger


class _JsonLines(logging.StreamHandler):
    """stderr, the message alone (it is the JSON line)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))
