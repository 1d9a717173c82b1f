"""One anomaly scan, as plain functions: which snapshot rows form each group's reference and
which are to be scored, their scan windows (read from the segments ingest stored: a scan loads
no model and embeds nothing), calibration (reused while a reference is unchanged), scores, and
the clips that ingest found silent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tasks.anomaly.scoring import (
    DEFAULT_SCORING,
    Calibration,
    ClipScore,
    InvalidReferenceError,
    Reference,
    ReferenceSelector,
    Scoring,
    calibrate,
    score_clip,
)
from tasks.anomaly.store import AnomalyStore
from tasks.anomaly.windows import ScanWindows, stored_clips
from tasks.audio.errors import AudioErrorKind
from tasks.events.cursors import cursor_name
from tasks.storage.quarantine import QuarantineTable
from tasks.storage.segments import SegmentsTable
from tasks.storage.snapshots import SnapshotTable

#: Snapshot columns a scan needs to find a clip's segments and group it (no embeddings).
SCAN_COLUMNS = ("key", "path", "etag", "metadata")


@dataclass(frozen=True)
class ScanCursor:
    """How far the scans with one reference selector have got: the snapshot version and the
    quarantine version (for silent clips) last scanned. Kept as JSON in a Prefect Variable."""

    snapshot_version: int | None = None
    quarantine_version: int | None = None

    @classmethod
    def from_json(cls, value: object) -> ScanCursor:
        if isinstance(value, int):  # saved before silent clips were reported
            return cls(snapshot_version=value)
        if isinstance(value, dict):
            return cls(value.get("snapshot_version"), value.get("quarantine_version"))
        return cls()

    def to_json(self) -> dict[str, int | None]:
        return {
            "snapshot_version": self.snapshot_version,
            "quarantine_version": self.quarantine_version,
        }


@dataclass
class ScanPlan:
    """What a scan covers: the versions read, reference rows per group, rows to score, and the
    silent clips (quarantined at ingest) of groups with a reference."""

    snapshot_version: int | None
    quarantine_version: int | None = None
    references: dict[str, list[dict]] = field(default_factory=dict)
    to_scan: list[dict] = field(default_factory=list)
    silent: list[dict] = field(default_factory=list)
    without_reference: list[str] = field(default_factory=list)

    @property
    def cursor(self) -> ScanCursor:
        """Where the next scan starts once this one's results are stored."""
        return ScanCursor(self.snapshot_version, self.quarantine_version)

    @property
    def has_work(self) -> bool:
        return bool(self.to_scan or self.silent)


def metadata_of(row: dict) -> dict[str, str]:
    """A snapshot row's metadata map (Arrow gives a list of pairs)."""
    return dict(row.get("metadata") or [])


def scan_cursor_name(selector: ReferenceSelector, snapshot_uri: str) -> str:
    """The Prefect Variable that holds the cursor (``ScanCursor``) of scans with ``selector``."""
    return cursor_name("anomaly_scan", snapshot_uri, repr(selector))


def plan_scan(
    selector: ReferenceSelector,
    snapshot: SnapshotTable,
    cursor: ScanCursor,
    quarantine: QuarantineTable | None = None,
    paths: Sequence[str] | None = None,
) -> ScanPlan:
    """Reference rows per group, and the rows to score: the given ``paths``, or every row new or
    changed since the cursor (reference rows are never scored); with ``quarantine``, the clips
    quarantined as silent since the cursor (or among ``paths``)."""
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
    if rows and not plan.references:
        # a typo in a scheduled scan's reference would otherwise never alert anyone
        raise InvalidReferenceError(
            f"no file of the catalogue ({len(rows)} files) is in the reference "
            f"{selector.description()}: nothing can be scanned; check the reference options"
        )
    if paths:
        wanted = set(paths)
        candidates = [r for r in rows if r["path"] in wanted]
    elif cursor.snapshot_version == latest:
        candidates = []
    else:
        candidates = snapshot.diff(cursor.snapshot_version, latest, columns=columns).upserts
        candidates = candidates.to_pylist()
    if quarantine is not None:
        plan.quarantine_version, silent = _silent_clips(quarantine, cursor, paths)
        candidates += silent
    for row in candidates:
        metadata = metadata_of(row)
        if selector.selects(row["path"], metadata):
            continue
        if selector.group_of(row["path"], metadata) not in plan.references:
            plan.without_reference.append(row["path"])
        elif row.get("error_kind") == AudioErrorKind.SILENT:
            plan.silent.append(row)
        else:
            plan.to_scan.append(row)
    return plan


def _silent_clips(
    quarantine: QuarantineTable, cursor: ScanCursor, paths: Sequence[str] | None
) -> tuple[int | None, list[dict]]:
    """(quarantine version now, silent records to report: among ``paths``, or new since the
    cursor). A cursor saved before silent clips were reported starts watching now."""
    latest = quarantine.version()
    legacy_cursor = cursor.quarantine_version is None and cursor.snapshot_version is not None
    if paths:
        records = quarantine.read()
    elif latest is None or latest == cursor.quarantine_version or legacy_cursor:
        return latest, []
    else:
        records = quarantine.added_since(cursor.quarantine_version)
    silent = [r for r in records.to_pylist() if r["error_kind"] == AudioErrorKind.SILENT]
    if paths:
        wanted = set(paths)
        silent = [r for r in silent if r["path"] in wanted]
    return latest, list({(r["key"], r["etag"]): r for r in silent}.values())


@dataclass
class CalibratedReferences:
    """Each group's reference and threshold, what was calibrated anew, and unreadable clips."""

    references: dict[str, Reference] = field(default_factory=dict)
    calibrations: dict[str, Calibration] = field(default_factory=dict)
    recalibrated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ScoringOptions:
    """How a scan scores: windows, the window score, neighbours, threshold estimation."""

    windows: ScanWindows = field(default_factory=ScanWindows)
    scoring: Scoring = DEFAULT_SCORING
    k: int = 3
    method: str = "gamma"
    quantile: float = 0.99
    threshold: float | None = None


def calibrate_references(
    plan: ScanPlan, segments: SegmentsTable, store: AnomalyStore, options: ScoringOptions
) -> CalibratedReferences:
    """Read each group's reference windows and calibrate its threshold; a stored calibration of
    the same reference (fingerprint) with the same settings is reused, a new one recorded."""
    out = CalibratedReferences()
    for group, rows in sorted(plan.references.items()):
        clips, problems = stored_clips(segments, rows, options.windows)
        out.problems.extend(problems)
        try:
            reference = Reference(group, clips, options.k, options.scoring)
        except InvalidReferenceError as error:
            if not problems:
                raise
            raise InvalidReferenceError(
                f"{error}; {len(problems)} more could not be read, e.g. {problems[0]}"
            ) from None
        stored = store.latest_calibration(group, reference.fingerprint)
        if stored is not None and stored.answers(
            options.scoring, options.method, options.quantile, options.k, options.threshold
        ):
            calibration = stored
        else:
            calibration = calibrate(reference, options.method, options.quantile, options.threshold)
            store.record_calibration(calibration, plan.snapshot_version)
            out.recalibrated.append(group)
        out.references[group], out.calibrations[group] = reference, calibration
    return out


def score_rows(
    rows: Sequence[dict],
    calibrated: CalibratedReferences,
    selector: ReferenceSelector,
    segments: SegmentsTable,
    windows: ScanWindows,
) -> tuple[list[ClipScore], list[str]]:
    """Score clips against their group's reference; clips without usable stored segments are
    reported, not scored."""
    groups = {row["key"]: selector.group_of(row["path"], metadata_of(row)) for row in rows}
    clips, problems = stored_clips(segments, rows, windows)
    scores = [
        score_clip(
            clip,
            calibrated.references[groups[clip.key]],
            calibrated.calibrations[groups[clip.key]],
        )
        for clip in clips
    ]
    return scores, problems


def silent_verdicts(
    rows: Sequence[dict], calibrated: CalibratedReferences, selector: ReferenceSelector
) -> list[ClipScore]:
    """The ``silent`` verdicts of clips quarantined as silent, in their groups."""
    verdicts = []
    for row in rows:
        group = selector.group_of(row["path"], metadata_of(row))
        threshold = calibrated.calibrations[group].threshold
        verdicts.append(ClipScore.of_silent_clip(row["key"], row["path"], group, threshold))
    return verdicts
