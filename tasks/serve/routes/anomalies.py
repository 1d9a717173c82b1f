"""``/api/anomalies``: the newest verdict of each scanned clip."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Query

from tasks.serve.api_models import Anomaly, audio_url
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
