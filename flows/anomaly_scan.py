"""Scheduled anomaly scan: score new clips against references of normal sound, report, alert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prefect import flow
from prefect.runtime import flow_run

from tasks.anomaly import ReferenceSelector
from tasks.anomaly_pipeline import (
    build_references,
    emit_anomaly_events,
    plan_scan,
    publish_scan_report,
    save_scan_cursor,
    score_clips,
    store_results,
)
from tasks.ingestion import new_run_id
from tasks.settings import Settings


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

    The reference is the snapshot rows under ``reference_prefix``, or in ``reference_paths``, or
    whose blob metadata holds every ``reference_metadata`` pair; ``group_pattern`` (a regex whose
    first group names the machine, e.g. ``^([^/]+)/``) or ``group_metadata_key`` makes one
    baseline per group. Without ``paths``, the clips new or changed since the last scan are
    scored. Windows of ``window_seconds`` every ``hop_seconds``; k-NN with ``k``; threshold from
    the reference (leave-one-out, ``threshold_method`` at ``quantile``) unless ``threshold``.
    """
    settings = Settings()
    selector = ReferenceSelector(
        reference_prefix,
        tuple(reference_paths or ()),
        group_pattern,
        tuple(sorted((reference_metadata or {}).items())),
        group_metadata_key,
    )
    run_id = str(flow_run.id or new_run_id())
    plan = plan_scan(selector, settings, paths)
    if plan.snapshot_version is None or not plan.to_scan:
        return ScanSummary(plan.snapshot_version, 0, 0, 0, len(plan.without_reference), {})
    references, calibrations = build_references(
        plan, settings, k, threshold_method, quantile, threshold, window_seconds, hop_seconds
    )
    scores, problems = score_clips(
        plan.to_scan, references, calibrations, selector, settings, window_seconds, hop_seconds
    )
    store_results(scores, settings, run_id, plan.snapshot_version)
    anomalies = emit_anomaly_events(scores, run_id)
    publish_scan_report(scores, calibrations, plan, problems)
    if not paths:
        save_scan_cursor(selector, settings, plan.snapshot_version)
    return ScanSummary(
        plan.snapshot_version,
        len(scores),
        anomalies,
        len(problems),
        len(plan.without_reference),
        {g: c.threshold for g, c in calibrations.items()},
    )
