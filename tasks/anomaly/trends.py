"""Each machine's scores over time: the newest verdict of every scanned clip, placed at the time
the clip was recorded, with the threshold it was judged against.

A clip's time is its file's ``last_modified`` (when the recording landed in storage), so a
backfill that scans a month of clips at once still draws a month; a clip no longer in the
snapshot falls back to when it was scanned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

#: The most points one trend answer carries (the newest are kept): a year of a clip every ten
#: minutes for one machine is about 50,000.
MAX_TREND_POINTS = 50_000


@dataclass(frozen=True)
class TrendPoint:
    """One clip on a machine's trend: when it was recorded, its verdict, its score (None for a
    silent clip) against the threshold of its scan, and where its worst window starts (s)."""

    key: str
    path: str
    machine: str
    at: datetime
    verdict: str
    score: float | None
    threshold: float
    worst_window_start_seconds: float | None
    window_seconds: float | None


def machine_trends(
    verdicts: pa.Table,
    recorded_at: dict[str, datetime],
    machine: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = MAX_TREND_POINTS,
) -> list[TrendPoint]:
    """The points of one machine (``machine``; None: every machine), oldest first, recorded in
    [``since``, ``until``), at most the newest ``limit``. ``verdicts`` holds each clip's newest
    scan result; ``recorded_at`` maps a clip's key to its file's ``last_modified``."""
    since, until = _utc(since), _utc(until)
    points = []
    for row in verdicts.to_pylist():
        group = row["group"] or ""
        if machine is not None and group != machine:
            continue
        at = recorded_at.get(row["key"]) or row["scanned_at"]
        if (since is not None and at < since) or (until is not None and at >= until):
            continue
        score = row["score"]
        points.append(
            TrendPoint(
                key=row["key"],
                path=row["path"],
                machine=group,
                at=at,
                verdict=row["verdict"],
                score=None if score is None or math.isnan(score) else score,
                threshold=row["threshold"],
                worst_window_start_seconds=_finite(row["worst_window_start_seconds"]),
                window_seconds=_finite(row.get("window_seconds")),
            )
        )
    points.sort(key=lambda p: (p.at, p.path))
    return points[-limit:] if limit else []


def _utc(moment: datetime | None) -> datetime | None:
    """A bound without a time zone is UTC, as every stored time is."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value
