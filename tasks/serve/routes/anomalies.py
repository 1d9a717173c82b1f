"""``/api/anomalies``: the newest verdict of each scanned clip, and each machine's scores over
time."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from tasks.anomaly.trends import MAX_TREND_POINTS
from tasks.serve.api_models import Anomaly, Trend, TrendPoint, audio_url
from tasks.serve.dependencies import Service

router = APIRouter(prefix="/api")


@router.get("/anomalies", response_model=list[Anomaly])
def anomalies(
    service: Service,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    only_anomalies: bool = False,
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
            audio_url=audio_url(row["key"]),
        )
        for row in service.latest_anomalies(limit, only_anomalies)
    ]


@router.get("/anomalies/trend", response_model=Trend)
def trend(
    service: Service,
    machine: Annotated[str | None, Query(description="One machine (default: all)")] = None,
    since: Annotated[datetime | None, Query(description="Clips recorded from (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="... and before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_TREND_POINTS)] = MAX_TREND_POINTS,
) -> Trend:
    """Each clip's newest verdict placed at the time it was recorded, with its threshold: the
    score over days, per machine, oldest first (at most ``limit``, the newest)."""
    machines, points = service.anomaly_trend(machine, since, until, limit)
    return Trend(
        machines=machines,
        points=[
            TrendPoint(**{**asdict(p), "at": p.at.isoformat(), "audio_url": audio_url(p.key)})
            for p in points
        ],
    )
