"""``audio.anomaly.detected``: one event per anomalous or silent clip of a scan, for automations
to act on (see infra/automations/anomaly-detected.yaml). ``payload.verdict`` says which: a silent
clip has no score (its score and window fields are null)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

from tasks.anomaly.scoring import ClipScore

ANOMALY_DETECTED = "audio.anomaly.detected"


def anomaly_event(score: ClipScore, run_id: str) -> dict:
    """The event (JSON-ready) for an anomalous or silent clip; its id is derived from the run
    and clip."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{score.key}")),
        "occurred": datetime.now(UTC).isoformat(),
        "event": ANOMALY_DETECTED,
        "resource": {
            "prefect.resource.id": f"audio.clip.{score.key}",
            "prefect.resource.name": score.path,
            "audio.group": score.group,
            "audio.verdict": score.verdict,
        },
        "payload": {
            "path": score.path,
            "verdict": score.verdict,
            "score": _finite_or_none(score.score),  # JSON has no NaN
            "threshold": _finite_or_none(score.threshold),
            "worst_window_start_seconds": _finite_or_none(score.worst_window_start_seconds),
            "nearest_reference_paths": score.nearest_reference_paths,
            "run_id": run_id,
        },
    }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
