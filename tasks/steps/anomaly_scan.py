"""The steps of the anomaly-scan flow: plan, calibrate references, score, store, alert, report,
and remember how far it got."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.anomaly.events import anomaly_event
from tasks.anomaly.report import publish_scan_report, scan_report
from tasks.anomaly.scan import (
    CalibratedReferences,
    ScanCursor,
    ScanPlan,
    ScoringOptions,
    calibrate_references,
    plan_scan,
    scan_cursor_name,
    score_rows,
    silent_verdicts,
)
from tasks.anomaly.scoring import ClipScore, ReferenceSelector
from tasks.events.cursors import load_cursor, save_cursor
from tasks.events.emit import emit
from tasks.resources import anomaly_store, quarantine_table, segments_table, snapshot_table
from tasks.settings import Settings


@task(name="plan-scan", cache_policy=NO_CACHE)
def plan_scan_task(
    selector: ReferenceSelector, settings: Settings, paths: Sequence[str] | None = None
) -> ScanPlan:
    """Reference rows per group, and the rows to score: the given paths, or every row new or
    changed since the last scan (the cursor); and the clips quarantined as silent."""
    snapshot = snapshot_table(settings)
    cursor = ScanCursor.from_json(
        None if paths else load_cursor(scan_cursor_name(selector, snapshot.uri))
    )
    return plan_scan(selector, snapshot, cursor, quarantine_table(settings), paths)


@task(name="calibrate-references", cache_policy=NO_CACHE)
def calibrate_references_task(
    plan: ScanPlan, settings: Settings, options: ScoringOptions
) -> CalibratedReferences:
    """Read each group's reference windows and calibrate its threshold (reused while unchanged)."""
    calibrated = calibrate_references(
        plan, segments_table(settings), anomaly_store(settings), options
    )
    logger = get_run_logger()
    for problem in calibrated.problems:
        logger.warning("reference clip skipped: %s", problem)
    for group in calibrated.recalibrated:
        calibration = calibrated.calibrations[group]
        logger.info(
            "group %r calibrated: threshold %.4f (%s, %s, %d clips)",
            group,
            calibration.threshold,
            calibration.scoring,
            calibration.method,
            calibration.reference_clips,
        )
    return calibrated


@task(name="score-clips", cache_policy=NO_CACHE)
def score_clips(
    plan: ScanPlan,
    calibrated: CalibratedReferences,
    selector: ReferenceSelector,
    settings: Settings,
    options: ScoringOptions,
) -> tuple[list[ClipScore], list[str]]:
    """Score clips against their group's reference, from their stored segments, and give the
    silent clips their verdict; clips without usable segments are reported, not scored."""
    scores, problems = score_rows(
        plan.to_scan, calibrated, selector, segments_table(settings), options.windows
    )
    return [*scores, *silent_verdicts(plan.silent, calibrated, selector)], problems


@task(name="store-scan-results", cache_policy=NO_CACHE)
def store_results(
    scores: Sequence[ClipScore],
    settings: Settings,
    run_id: str,
    snapshot_version: int,
    options: ScoringOptions,
) -> None:
    """Append the scores to the results table, with the scan window's length."""
    window = options.windows.window_seconds or settings.segment_seconds
    anomaly_store(settings).record_results(scores, run_id, snapshot_version, window)


@task(name="emit-anomaly-events", cache_policy=NO_CACHE)
def emit_anomaly_events(scores: Sequence[ClipScore], run_id: str) -> int:
    """One ``audio.anomaly.detected`` event per anomalous or silent clip (id: run + clip)."""
    return emit(anomaly_event(score, run_id) for score in scores if score.verdict != "normal")


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
def save_scan_cursor(selector: ReferenceSelector, settings: Settings, cursor: ScanCursor) -> None:
    """Remember the snapshot and quarantine versions scanned, after the results are stored."""
    name = scan_cursor_name(selector, settings.resolved_snapshot_uri())
    save_cursor(name, cursor.to_json(), ["anomaly"])
