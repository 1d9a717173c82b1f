"""Scheduled anomaly scan: score new clips against references of normal sound, report, alert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prefect import flow
from prefect.runtime import flow_run

from tasks.anomaly.scoring import ReferenceSelector
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
    unreadable: int
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
    k: int = 3,
    threshold_method: Literal["gamma", "quantile"] = "gamma",
    quantile: float = 0.99,
    threshold: float | None = None,
    window_seconds: float = 2.0,
    hop_seconds: float | None = 1.0,
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
        k: Reference windows averaged per window score (k nearest neighbours).
        threshold_method: How the threshold is read from the reference's leave-one-out scores:
            a fitted gamma distribution, or the empirical quantile.
        quantile: Quantile of normal window scores used as the threshold.
        threshold: A fixed threshold instead of the calibrated one.
        window_seconds: Scan window length (s); shorter than ingest windows so that a short
            knock is not averaged away.
        hop_seconds: Time between scan window starts (s); empty: the window length.
    """
    settings = Settings()
    selector = ReferenceSelector(
        reference_prefix,
        tuple(reference_paths or ()),
        group_pattern,
        tuple(sorted((reference_metadata or {}).items())),
        group_metadata_key,
    )
    run_id = str(flow_run.id)
    plan = plan_scan_task(selector, settings, paths)
    if plan.snapshot_version is None or not plan.to_scan:
        return ScanSummary(plan.snapshot_version, 0, 0, 0, len(plan.without_reference), {})
    calibrated = calibrate_references_task(
        plan, settings, k, threshold_method, quantile, threshold, window_seconds, hop_seconds
    )
    scores, problems = score_clips(
        plan.to_scan, calibrated, selector, settings, window_seconds, hop_seconds
    )
    store_results(scores, settings, run_id, plan.snapshot_version)
    anomalies = emit_anomaly_events(scores, run_id)
    publish_scan_report_task(scores, calibrated, plan, problems)
    if not paths:
        save_scan_cursor(selector, settings, plan.snapshot_version)
    return ScanSummary(
        plan.snapshot_version,
        len(scores),
        anomalies,
        len(problems),
        len(plan.without_reference),
        {g: c.threshold for g, c in calibrated.calibrations.items()},
    )
