"""One anomaly scan, as plain functions: which snapshot rows form each group's reference and
which are to be scored, their scan-window embeddings (each clip read again from its source),
calibration (reused while a reference is unchanged), and scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tasks.anomaly.scoring import (
    Calibration,
    ClipScore,
    ClipWindows,
    Reference,
    ReferenceSelector,
    calibrate,
    score_clip,
)
from tasks.anomaly.store import AnomalyStore
from tasks.audio.decode import AudioError
from tasks.events.cursors import cursor_name
from tasks.ingest.stream import embed_items
from tasks.model.embedder import PannsEmbedder, load_embedder
from tasks.resources import locate
from tasks.settings import AudioLimits, BlobSettings, Settings
from tasks.storage.snapshots import SnapshotTable
from tasks.storage.sources import AudioItem, AudioSource

#: Snapshot columns a scan needs to re-read a clip and group it (no stored embeddings).
SCAN_COLUMNS = ("key", "source_uri", "path", "etag", "size_bytes", "last_modified", "metadata")


@dataclass
class ScanPlan:
    """What a scan covers: the snapshot version, reference rows per group, rows to score."""

    snapshot_version: int | None
    references: dict[str, list[dict]] = field(default_factory=dict)
    to_scan: list[dict] = field(default_factory=list)
    without_reference: list[str] = field(default_factory=list)


def metadata_of(row: dict) -> dict[str, str]:
    """A snapshot row's metadata map (Arrow gives a list of pairs)."""
    return dict(row.get("metadata") or [])


def scan_cursor_name(selector: ReferenceSelector, snapshot_uri: str) -> str:
    """The Prefect Variable that holds the last snapshot version scanned with ``selector``."""
    return cursor_name("anomaly_scan", snapshot_uri, repr(selector))


def plan_scan(
    selector: ReferenceSelector,
    snapshot: SnapshotTable,
    scanned_version: int | None,
    paths: Sequence[str] | None = None,
) -> ScanPlan:
    """Reference rows per group, and the rows to score: the given ``paths``, or every row new or
    changed since ``scanned_version`` (reference rows are never scored)."""
    latest = snapshot.version()
    if latest is None:
        return ScanPlan(None)
    columns = [c for c in SCAN_COLUMNS if c in snapshot.column_names()]
    rows = snapshot.read(latest, columns=columns).to_pylist()
    plan = ScanPlan(latest)
    for row in rows:
        if selector.selects(row["path"], metadata_of(row)):
            group = selector.group_of(row["path"], metadata_of(row))
            plan.references.setdefault(group, []).append(row)
    if paths:
        wanted = set(paths)
        candidates = [r for r in rows if r["path"] in wanted]
    elif scanned_version == latest:
        return plan
    else:
        candidates = snapshot.diff(scanned_version, latest, columns=columns).upserts.to_pylist()
    for row in candidates:
        if selector.selects(row["path"], metadata_of(row)):
            continue
        if selector.group_of(row["path"], metadata_of(row)) in plan.references:
            plan.to_scan.append(row)
        else:
            plan.without_reference.append(row["path"])
    return plan


def scan_embedder(
    settings: Settings, window_seconds: float, hop_seconds: float | None
) -> PannsEmbedder:
    """The model with scan windows (they may be shorter than ingest windows)."""
    limits = AudioLimits(
        **{
            **settings.audio_limits().model_dump(),
            "window_seconds": window_seconds,
            "hop_seconds": hop_seconds,
        }
    )
    return load_embedder(settings.model_settings(), limits)


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


def embed_rows(
    rows: Sequence[dict], embedder: PannsEmbedder, blob_settings: BlobSettings
) -> tuple[list[ClipWindows], list[str]]:
    """Clip windows of snapshot rows, each read again from where its URI points."""
    jobs, problems, paths = [], [], {}
    for row in rows:
        try:
            source, path = locate(row["source_uri"], blob_settings)
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


@dataclass
class CalibratedReferences:
    """Each group's reference and threshold, what was calibrated anew, and unreadable clips."""

    references: dict[str, Reference] = field(default_factory=dict)
    calibrations: dict[str, Calibration] = field(default_factory=dict)
    recalibrated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def calibrate_references(
    plan: ScanPlan,
    embedder: PannsEmbedder,
    store: AnomalyStore,
    blob_settings: BlobSettings,
    k: int,
    method: str,
    quantile: float,
    threshold: float | None,
) -> CalibratedReferences:
    """Embed each group's reference and calibrate its threshold; a stored calibration of the
    same reference (fingerprint) with the same method is reused, a new one is recorded."""
    out = CalibratedReferences()
    for group, rows in sorted(plan.references.items()):
        clips, problems = embed_rows(rows, embedder, blob_settings)
        out.problems.extend(problems)
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
            out.recalibrated.append(group)
        out.references[group], out.calibrations[group] = reference, calibration
    return out


def score_rows(
    rows: Sequence[dict],
    calibrated: CalibratedReferences,
    selector: ReferenceSelector,
    embedder: PannsEmbedder,
    blob_settings: BlobSettings,
) -> tuple[list[ClipScore], list[str]]:
    """Score clips against their group's reference; unreadable clips are reported, not scored."""
    groups = {row["key"]: selector.group_of(row["path"], metadata_of(row)) for row in rows}
    clips, problems = embed_rows(rows, embedder, blob_settings)
    scores = [
        score_clip(
            clip,
            calibrated.references[groups[clip.key]],
            calibrated.calibrations[groups[clip.key]],
        )
        for clip in clips
    ]
    return scores, problems
