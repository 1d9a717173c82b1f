"""Scheduled anomaly scan: score new clips against references of normal sound, from the segment
embeddings ingest stored (no model is loaded), report, alert; silent clips are reported too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prefect import flow
from prefect.runtime import flow_run

from tasks.anomaly.scan import ScoringOptions
from tasks.anomaly.scoring import DEFAULT_SCORING, ReferenceSelector, Scoring
from tasks.anomaly.windows import (
    DEFAULT_SCAN_HOP_SECONDS,
    DEFAULT_SCAN_WINDOW_SECONDS,
    ScanWindows,
)
from tasks.settings import Settings
from tasks.steps.anomaly_scan import (
    calibrate_references_task,
    emit_anomaly_events,
    plan_scan_task,
    publish_scan_report_task,
    save_scan_cursor,
    score_clips,
    store_results,
)


@dataclass
class ScanSummary:
    """What a scan did."""

    snapshot_version: int | None
    scanned: int
    anomalies: int
    silent: int
    not_scored: int
    without_reference: int
    thresholds: dict[str, float]


@flow(name="anomaly-scan")
def anomaly_scan(
    reference_prefix: str | None = None,
    reference_paths: list[str] | None = None,
    group_pattern: str | None = None,
    reference_metadata: dict[str, str] | None = None,
    group_metadata_key: str | None = None,
    paths: list[str] | None = None,
    scoring: Scoring = DEFAULT_SCORING,
    k: int = 3,
    threshold_method: Literal["gamma", "quantile"] = "gamma",
    quantile: float = 0.99,
    threshold: float | None = None,
    window_seconds: float | None = DEFAULT_SCAN_WINDOW_SECONDS,
    hop_seconds: float | None = DEFAULT_SCAN_HOP_SECONDS,
) -> ScanSummary:
    """Score clips against the reference of normal operation that their group belongs to.

    Args:
        reference_prefix: Snapshot paths under this prefix are the normal reference (e.g.
            pump-07/normal/).
        reference_paths: Or: these snapshot paths are the normal reference.
        group_pattern: Regular expression whose first group, matched against a path, names the
            machine (^([^/]+)/ : one baseline per top-level folder); empty: one group.
        reference_metadata: Or: clips whose blob metadata holds every one of these pairs are
            the normal reference (e.g. condition = normal).
        group_metadata_key: Or: this blob metadata key names the machine.
        paths: Score these snapshot paths; empty: every clip new or changed since the last scan.
        scoring: Window score: knn (mean cosine distance to the k nearest reference windows)
            or mahalanobis (distance to the reference's mean under a shrunk covariance).
        k: Reference windows averaged per window score (knn scoring).
        threshold_method: How the threshold is read from the reference's leave-one-out scores:
            a fitted gamma distribution, or the empirical quantile.
        quantile: Share of normal clips that should score under the threshold.
        threshold: A fixed threshold instead of the calibrated one.
        window_seconds: Scan window length (s): a whole multiple of the stored segments
            (AUDIO_EMBEDDINGS_SEGMENT_SECONDS, 1 s); empty: one window per segment.
        hop_seconds: Time between scan window starts (s), a multiple of the segments too;
            empty: the segment length.
    """
    settings = Settings()
    selector = ReferenceSelector(
        reference_prefix,
        tuple(reference_paths or ()),
        group_pattern,
        tuple(sorted((reference_metadata or {}).items())),
        group_metadata_key,
    )
    options = ScoringOptions(
        ScanWindows(window_seconds, hop_seconds), scoring, k, threshold_method, quantile, threshold
    )
    run_id = str(flow_run.id)
    plan = plan_scan_task(selector, settings, paths)
    if plan.snapshot_version is None or not plan.has_work:
        if not paths and plan.snapshot_version is not None:
            save_scan_cursor(selector, settings, plan.cursor)
        return ScanSummary(plan.snapshot_version, 0, 0, 0, 0, len(plan.without_reference), {})
    calibrated = calibrate_references_task(plan, settings, options)
    scores, problems = score_clips(plan, calibrated, selector, settings, options)
    store_results(scores, settings, run_id, plan.snapshot_version, options)
    emit_anomaly_events(scores, run_id)
    publish_scan_report_task(scores, calibrated, plan, problems)
    if not paths:
        save_scan_cursor(selector, settings, plan.cursor)
    silent = sum(s.silent for s in scores)
    return ScanSummary(
        plan.snapshot_version,
        len(scores) - silent,
        sum(s.is_anomaly for s in scores),
        silent,
        len(problems),
        len(plan.without_reference),
        {g: c.threshold for g, c in calibrated.calibrations.items()},
    )
