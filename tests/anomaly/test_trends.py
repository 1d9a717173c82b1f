"""A machine's trend: each clip's newest verdict at the time it was recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from tasks.anomaly.store import RESULTS_SCHEMA
from tasks.anomaly.trends import machine_trends

DAY = datetime(2026, 11, 1, tzinfo=UTC)


def _verdicts(*rows: dict) -> pa.Table:
    defaults = {
        "run_id": "scan-1",
        "scanned_at": DAY + timedelta(days=30),
        "snapshot_version": 1,
        "is_anomaly": False,
        "verdict": "normal",
        "threshold": 1.0,
        "worst_window_start_seconds": 2.0,
        "window_seconds": 1.0,
        "nearest_reference_paths": [],
    }
    return pa.Table.from_pylist([{**defaults, **row} for row in rows], RESULTS_SCHEMA)


def test_points_sit_at_their_recording_time_and_keep_their_own_threshold() -> None:
    verdicts = _verdicts(
        {"key": "a", "path": "p/a.wav", "group": "pump", "score": 0.5},
        {
            "key": "b",
            "path": "p/b.wav",
            "group": "pump",
            "score": 1.5,
            "verdict": "anomaly",
            "threshold": 1.2,
        },
        {"key": "c", "path": "f/c.wav", "group": "fan", "score": 0.2},
        {
            "key": "d",
            "path": "p/d.wav",
            "group": "pump",
            "score": float("nan"),
            "verdict": "silent",
            "worst_window_start_seconds": float("nan"),
        },
    )
    # a backfill scanned them all on one day: the trend spreads them over their recording days
    recorded = {"a": DAY + timedelta(days=2), "b": DAY, "c": DAY, "d": DAY + timedelta(days=1)}
    points = machine_trends(verdicts, recorded, machine="pump")
    assert [(p.key, p.at) for p in points] == [
        ("b", DAY),
        ("d", DAY + timedelta(days=1)),
        ("a", DAY + timedelta(days=2)),
    ]
    assert [p.threshold for p in points] == [1.2, 1.0, 1.0]
    silent = points[1]
    assert silent.verdict == "silent" and silent.score is None
    assert silent.worst_window_start_seconds is None
    assert {p.machine for p in machine_trends(verdicts, recorded)} == {"pump", "fan"}


def test_a_clip_gone_from_the_snapshot_falls_back_to_its_scan_time_and_bounds_apply() -> None:
    verdicts = _verdicts(
        {"key": "a", "path": "a.wav", "group": "", "score": 0.5},
        {"key": "b", "path": "b.wav", "group": "", "score": 0.6},
    )
    points = machine_trends(verdicts, {"a": DAY})
    assert [(p.key, p.at) for p in points] == [("a", DAY), ("b", DAY + timedelta(days=30))]
    # naive bounds are UTC; since is inclusive, until exclusive
    naive = DAY.replace(tzinfo=None)
    assert [p.key for p in machine_trends(verdicts, {"a": DAY}, since=naive)] == ["a", "b"]
    assert [p.key for p in machine_trends(verdicts, {"a": DAY}, until=naive)] == []
    assert [p.key for p in machine_trends(verdicts, {"a": DAY}, limit=1)] == ["b"]  # newest
