"""The steps of the anomaly-scan flow: plan, calibrate references, score, store, alert, report,
and remember how far it got."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.anomaly.scan import (
    CalibratedReferences,
    ScanPlan,
    calibrate_references,
    plan_scan,
    scan_cursor_name,
    scan_embedder,
    score_rows,
)
from tasks.anomaly.scoring import ClipScore, ReferenceSelector
from tasks.events.anomaly import anomaly_event
from tasks.events.cursors import load_cursor, save_cursor
from tasks.events.emit import emit
from tasks.reports import publish_scan_report, scan_report
from tasks.resources import anomaly_store, snapshot_table
from tasks.settings import Settings


@task(name="plan-scan", cache_policy=NO_CACHE)
def plan_scan_task(
    selector: ReferenceSelector, settings: Settings, paths: Sequence[str] | None = None
) -> ScanPlan:
    """Reference rows per group, and the rows to score: the given paths, or every row new or
    changed since the last scan (the cursor)."""
    snapshot = snapshot_table(settings)
    scanned = None if paths else load_cursor(scan_cursor_name(selector, snapshot.uri))
    return plan_scan(selector, snapshot, scanned, paths)


@task(name="calibrate-references", cache_policy=NO_CACHE)
def calibrate_references_task(
    plan: ScanPlan,
    settings: Settings,
    k: int,
    method: str,
    quantile: float,
    threshold: float | None,
    window_seconds: float,
    hop_seconds: float | None,
) -> CalibratedReferences:
    """Embed each group's reference and calibrate its threshold (reused while unchanged)."""
    calibrated = calibrate_references(
        plan,
        scan_embedder(settings, window_seconds, hop_seconds),
        anomaly_store(settings),
        settings,
        k,
        method,
        quantile,
        threshold,
    )
    logger = get_run_logger()
    for problem in calibrated.problems:
        logger.warning("reference clip skipped: %s", problem)
    for group in calibrated.recalibrated:
        calibration = calibrated.calibrations[group]
        logger.info(
            "group %r calibrated: threshold %.4f (%s, %d clips)",
            group,
            calibration.threshold,
            calibration.method,
            calibration.reference_clips,
        )
    return calibrated


@task(name="score-clips", cache_policy=NO_CACHE)
def score_clips(
    rows: Sequence[dict],
    calibrated: CalibratedReferences,
    selector: ReferenceSelector,
    settings: Settings,
    window_seconds: float,
    hop_seconds: float | None,
) -> tuple[list[ClipScore], list[str]]:
    """Score clips against their group's reference; unreadable clips are reported, not scored."""
    embedder = scan_embedder(settings, window_seconds, hop_seconds)
    return score_rows(rows, calibrated, selector, embedder, settings)


@task(name="store-scan-results", cache_policy=NO_CACHE)
def store_results(
    scores: Sequence[ClipScore], settings: Settings, run_id: str, snapshot_version: int
) -> None:
    """Append the scores to the results table."""
    anomaly_store(settings).record_results(scores, run_id, snapshot_version)


@task(name="emit-anomaly-events", cache_policy=NO_CACHE)
def emit_anomaly_events(scores: Sequence[ClipScore], run_id: str) -> int:
    """One ``audio.anomaly.detected`` event per anomalous clip (id: run + clip)."""
    return emit(anomaly_event(score, run_id) for score in scores if score.is_anomaly)


@task(name="publish-scan-report", cache_policy=NO_CACHE)
def publish_scan_report_task(
    scores: Sequence[ClipScore],
    calibrated: CalibratedReferences,
    plan: ScanPlan,
    problems: Sequence[str],
) -> str:
    """The markdown report artifact: counts, top anomalies with locations, the distribution."""
    report = scan_report(
        scores,
        calibrated.calibrations,
        plan.snapshot_version,
        len(plan.without_reference),
        [*calibrated.problems, *problems],
    )
    publish_scan_report(report, sum(s.is_anomaly for s in scores), len(scores))
    return report


@task(name="save-scan-cursor", cache_policy=NO_CACHE)
def save_scan_cursor(selector: ReferenceSelector, settings: Settings, version: int) -> None:
    """Remember the snapshot version scanned, after the results are stored."""
    name = scan_cursor_name(selector, settings.resolved_snapshot_uri())
    save_cursor(name, version, ["anomaly"])
