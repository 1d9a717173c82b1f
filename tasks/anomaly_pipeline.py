"""Prefect tasks of the anomaly scan: build references, calibrate, score, report, alert."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.anomaly import (
    Calibration,
    ClipScore,
    ClipWindows,
    Evaluation,
    Reference,
    ReferenceSelector,
    calibrate,
    evaluate,
    score_clip,
)
from tasks.anomaly_store import AnomalyStore
from tasks.audio import AudioError
from tasks.embedding import PannsEmbedder, load_embedder
from tasks.ingestion import embed_items
from tasks.pipeline import snapshot_table
from tasks.settings import AudioLimits, Settings
from tasks.sources import AudioItem, AudioSource, LocalSource, locate

ANOMALY_EVENT = "audio.anomaly.detected"
SCAN_COLUMNS = ("key", "source_uri", "path", "etag", "size_bytes", "last_modified", "metadata")


@dataclass
class ScanPlan:
    """What a scan covers: the snapshot version, reference rows per group, rows to score."""

    snapshot_version: int | None
    references: dict[str, list[dict]] = field(default_factory=dict)
    to_scan: list[dict] = field(default_factory=list)
    without_reference: list[str] = field(default_factory=list)


def anomaly_store(settings: Settings) -> AnomalyStore:
    uri = settings.resolved_anomaly_uri()
    return AnomalyStore(uri, settings.storage_options(uri))


def _metadata(row: dict) -> dict[str, str]:
    """A snapshot row's metadata map (Arrow gives a list of pairs)."""
    return dict(row.get("metadata") or [])


def _cursor_variable(selector: ReferenceSelector, snapshot_uri: str) -> str:
    text = f"{snapshot_uri}|{selector!r}"
    return "anomaly_scan_" + hashlib.sha1(text.encode()).hexdigest()[:16]


@task(name="plan-scan", cache_policy=NO_CACHE)
def plan_scan(
    selector: ReferenceSelector, settings: Settings, paths: Sequence[str] | None = None
) -> ScanPlan:
    """Reference rows per group, and the rows to score: the given paths, or every row new or
    changed since the last scan's snapshot version (the cursor; reference rows excluded)."""
    from prefect.variables import Variable

    snapshot = snapshot_table(settings)
    latest = snapshot.version()
    if latest is None:
        return ScanPlan(None)
    # everything a scan needs to re-read a clip, but not the stored embeddings
    columns = [c for c in SCAN_COLUMNS if c in snapshot.column_names()]
    rows = snapshot.read(latest, columns=columns).to_pylist()
    plan = ScanPlan(latest)
    for row in rows:
        if selector.selects(row["path"], _metadata(row)):
            plan.references.setdefault(selector.group_of(row["path"], _metadata(row)), []).append(
                row
            )
    if paths:
        wanted = set(paths)
        candidates = [r for r in rows if r["path"] in wanted]
    else:
        cursor = Variable.get(_cursor_variable(selector, snapshot.uri), default=None)
        if cursor == latest:
            return plan
        candidates = snapshot.diff(cursor, latest, columns=columns).upserts.to_pylist()
    for row in candidates:
        if selector.selects(row["path"], _metadata(row)):
            continue
        if selector.group_of(row["path"], _metadata(row)) in plan.references:
            plan.to_scan.append(row)
        else:
            plan.without_reference.append(row["path"])
    return plan


@task(name="save-scan-cursor", cache_policy=NO_CACHE)
def save_scan_cursor(selector: ReferenceSelector, settings: Settings, version: int) -> None:
    """Remember the snapshot version scanned, after the results are stored."""
    from prefect.variables import Variable

    Variable.set(
        _cursor_variable(selector, settings.resolved_snapshot_uri()),
        version,
        overwrite=True,
        tags=["audio-embeddings", "anomaly"],
    )


def clip_windows(
    jobs: Sequence[tuple[AudioItem, AudioSource]], embedder: PannsEmbedder
) -> tuple[list[ClipWindows], list[str]]:
    """Scan-window embeddings of items (batched across files); unreadable items are reported."""
    clips, problems = [], []
    for item, outcome in embed_items(jobs, embedder):
        if isinstance(outcome, AudioError):
            problems.append(str(outcome))
            continue
        result = outcome.result
        clips.append(
            ClipWindows(item.key, item.path, result.window_embeddings, result.window_start_seconds)
        )
    return clips, problems


def _embed_rows(
    rows: Sequence[dict], embedder: PannsEmbedder, settings: Settings
) -> tuple[list[ClipWindows], list[str]]:
    """Clip windows of snapshot rows, each read again from where its URI points."""
    jobs, problems, paths = [], [], {}
    for row in rows:
        try:
            source, path = locate(row["source_uri"], settings)
        except (OSError, ValueError) as error:
            problems.append(f"{row['path']}: {error}")
            continue
        item = AudioItem(
            row["source_uri"], path, row["etag"], row["size_bytes"], row["last_modified"]
        )
        paths[item.key] = row["path"]
        jobs.append((item, source))
    clips, failed = clip_windows(jobs, embedder)
    # report snapshot paths, not the path within the source that re-read the file
    clips = [ClipWindows(c.key, paths[c.key], c.embeddings, c.start_seconds) for c in clips]
    return clips, problems + failed


def scan_embedder(settings: Settings, window_seconds: float, hop_seconds: float | None):
    """The model with scan windows (they may be shorter than ingest windows)."""
    limits = AudioLimits(
        **{
            **settings.audio_limits().model_dump(),
            "window_seconds": window_seconds,
            "hop_seconds": hop_seconds,
        }
    )
    return load_embedder(settings.model_settings(), limits)


@task(name="calibrate-references", cache_policy=NO_CACHE)
def build_references(
    plan: ScanPlan,
    settings: Settings,
    k: int,
    method: str,
    quantile: float,
    threshold: float | None,
    window_seconds: float,
    hop_seconds: float | None,
) -> tuple[dict[str, Reference], dict[str, Calibration]]:
    """Embed each group's reference and calibrate its threshold (reused while it is unchanged)."""
    embedder = scan_embedder(settings, window_seconds, hop_seconds)
    store = anomaly_store(settings)
    logger = get_run_logger()
    references, calibrations = {}, {}
    for group, rows in sorted(plan.references.items()):
        clips, problems = _embed_rows(rows, embedder, settings)
        for problem in problems:
            logger.warning("reference clip skipped: %s", problem)
        reference = Reference(group, clips, k)
        stored = store.latest_calibration(group, reference.fingerprint)
        if (
            stored is not None
            and threshold is None
            and (stored.method, stored.quantile, stored.k) == (method, quantile, k)
        ):
            calibration = stored
        else:
            calibration = calibrate(reference, method, quantile, threshold)
            store.record_calibration(calibration, plan.snapshot_version)
            logger.info(
                "group %r calibrated: threshold %.4f (%s, %d clips)",
                group,
                calibration.threshold,
                calibration.method,
                len(clips),
            )
        references[group], calibrations[group] = reference, calibration
    return references, calibrations


@task(name="score-clips", cache_policy=NO_CACHE)
def score_clips(
    rows: Sequence[dict],
    references: dict[str, Reference],
    calibrations: dict[str, Calibration],
    selector: ReferenceSelector,
    settings: Settings,
    window_seconds: float,
    hop_seconds: float | None,
) -> tuple[list[ClipScore], list[str]]:
    """Score clips against their group's reference; unreadable clips are reported, not scored."""
    embedder = scan_embedder(settings, window_seconds, hop_seconds)
    groups = {row["key"]: selector.group_of(row["path"], _metadata(row)) for row in rows}
    clips, problems = _embed_rows(rows, embedder, settings)
    scores = []
    for clip in clips:
        group = groups[clip.key]
        scores.append(score_clip(clip, references[group], calibrations[group]))
    return scores, problems


@task(name="store-scan-results", cache_policy=NO_CACHE)
def store_results(
    scores: Sequence[ClipScore], settings: Settings, run_id: str, snapshot_version: int
) -> None:
    anomaly_store(settings).record_results(scores, run_id, snapshot_version)


@task(name="emit-anomaly-events", cache_policy=NO_CACHE)
def emit_anomaly_events(scores: Sequence[ClipScore], run_id: str) -> int:
    """One ``audio.anomaly.detected`` event per anomalous clip (id: run + clip)."""
    from prefect.events import emit_event

    anomalies = [s for s in scores if s.is_anomaly]
    for score in anomalies:
        emit_event(
            event=ANOMALY_EVENT,
            resource={
                "prefect.resource.id": f"audio.clip.{score.key}",
                "prefect.resource.name": score.path,
                "audio.group": score.group,
            },
            payload={
                "path": score.path,
                "score": score.score,
                "threshold": score.threshold,
                "worst_window_start_seconds": score.worst_window_start_seconds,
                "nearest_reference_paths": score.nearest_reference_paths,
                "run_id": run_id,
            },
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{score.key}"),
        )
    return len(anomalies)


def score_histogram(scores: Sequence[float], thresholds: Sequence[float], bins: int = 12) -> str:
    """A text histogram of scores with the threshold(s) marked, for the markdown report."""
    if not scores:
        return "(no clips scored)"
    low = min(min(scores), min(thresholds))
    high = max(max(scores), max(thresholds))
    width = (high - low) / bins or 1.0
    counts = defaultdict(int)
    for value in scores:
        counts[min(int((value - low) / width), bins - 1)] += 1
    lines = []
    for b in range(bins):
        start = low + b * width
        mark = " <- threshold" if any(start <= t < start + width for t in thresholds) else ""
        lines.append(f"{start:8.4f} | {'#' * counts[b]:<30} {counts[b]}{mark}")
    return "\n".join(lines)


@task(name="publish-scan-report", cache_policy=NO_CACHE)
def publish_scan_report(
    scores: Sequence[ClipScore],
    calibrations: dict[str, Calibration],
    plan: ScanPlan,
    problems: Sequence[str],
) -> str:
    """The markdown report: counts, the top anomalies with where they are, the distribution."""
    from prefect.artifacts import create_markdown_artifact

    anomalies = sorted((s for s in scores if s.is_anomaly), key=lambda s: -s.score)
    lines = [
        "# Anomaly scan",
        f"Snapshot version {plan.snapshot_version}: {len(scores)} clips scored, "
        f"**{len(anomalies)} anomalous**, {len(problems)} unreadable, "
        f"{len(plan.without_reference)} without a reference group.",
        "",
        "| group | threshold | method | reference clips |",
        "|---|---|---|---|",
        *(
            f"| {g or '(all)'} | {c.threshold:.4f} | {c.method} q={c.quantile} k={c.k} | "
            f"{c.reference_clips} |"
            for g, c in sorted(calibrations.items())
        ),
        "",
        "## Top anomalies",
        "| clip | group | score | threshold | worst window starts at (s) | nearest normal |",
        "|---|---|---|---|---|---|",
        *(
            f"| {s.path} | {s.group} | {s.score:.4f} | {s.threshold:.4f} | "
            f"{s.worst_window_start_seconds:.1f} | {', '.join(s.nearest_reference_paths[:2])} |"
            for s in anomalies[:20]
        ),
        "",
        "## Score distribution",
        "```",
        score_histogram([s.score for s in scores], [c.threshold for c in calibrations.values()]),
        "```",
    ]
    if problems:
        lines += ["", "## Unreadable clips", *(f"- {p}" for p in problems)]
    report = "\n".join(lines)
    create_markdown_artifact(
        report, key="anomaly-scan", description=f"{len(anomalies)} anomalies in {len(scores)} clips"
    )
    return report


def embed_folder(folder: Path, embedder: PannsEmbedder) -> tuple[list[ClipWindows], list[str]]:
    """Scan-window embeddings of every audio file in a folder (for evaluation)."""
    source = LocalSource(folder)
    return clip_windows([(item, source) for item in source.list_items()], embedder)


def evaluate_folders(
    reference_dir: Path,
    normal_dir: Path,
    anomalous_dir: Path,
    settings: Settings,
    k: int = 3,
    method: str = "gamma",
    quantile: float = 0.99,
    window_seconds: float = 2.0,
    hop_seconds: float | None = 1.0,
) -> tuple[Evaluation, Calibration]:
    """Calibrate on ``reference_dir`` and measure detection on labelled normal/anomalous clips."""
    embedder = scan_embedder(settings, window_seconds, hop_seconds)
    reference = Reference("", embed_folder(reference_dir, embedder)[0], k)
    calibration = calibrate(reference, method, quantile)
    normal = [
        score_clip(c, reference, calibration).score for c in embed_folder(normal_dir, embedder)[0]
    ]
    anomalous = [
        score_clip(c, reference, calibration).score
        for c in embed_folder(anomalous_dir, embedder)[0]
    ]
    return evaluate(normal, anomalous, calibration.threshold), calibration
