"""What a run leaves in the Prefect UI (artifacts) and prints on a terminal (rich tables)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from rich.table import Table

from tasks.anomaly.scoring import Calibration, ClipScore
from tasks.index.interface import RefreshResult, SearchHit
from tasks.ingest.commit import CommitResult
from tasks.ingest.plan import ChangePlan
from tasks.model.checkpoint import ResolvedCheckpoint
from tasks.storage.quarantine import Failure
from tasks.storage.upkeep import TableUpkeep

if TYPE_CHECKING:  # scikit-learn stays out of the CLI's start-up
    from tasks.classify.predict import ClassifyResult
    from tasks.classify.store import Classifier
    from tasks.classify.training import Evaluation

RANDOM_WEIGHTS_WARNING = (
    "NOT the official Cnn14 checkpoint: embeddings, scores and labels carry no meaning."
)


@dataclass(frozen=True)
class FailedFile:
    """A file a run could not embed: where it is, why, and whether a later run may succeed
    (``retryable``: the source could not deliver it) or it was quarantined."""

    path: str
    error_kind: str
    message: str
    retryable: bool


@dataclass
class IngestSummary:
    """The outcome of one ingest run, as the flow returns it."""

    source: str
    run_id: str
    snapshot_version: int | None
    commits: int
    listed: int
    embedded: int
    unchanged: int
    resumed: int
    deleted: int
    quarantined: int
    retry_later: int
    skipped_quarantined: int
    index_version: int | None
    index_upserted: int
    index_deleted: int
    model: ResolvedCheckpoint
    failures: list[FailedFile] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        source: str,
        run_id: str,
        plan: ChangePlan,
        commits: Sequence[CommitResult],
        resumed: int,
        failures: Sequence[Failure],
        refresh: RefreshResult | None,
        model: ResolvedCheckpoint,
    ) -> IngestSummary:
        """``resumed``: unchanged files that earlier runs committed before they were cut off."""
        versions = [c.version for c in commits if c.version is not None]
        return cls(
            source=source,
            run_id=run_id,
            snapshot_version=versions[-1] if versions else None,
            commits=len(versions),
            listed=plan.listed,
            embedded=sum(c.upserted for c in commits),
            unchanged=plan.unchanged,
            resumed=resumed,
            deleted=sum(c.deleted for c in commits),
            quarantined=sum(c.quarantined for c in commits),
            retry_later=sum(c.retry_later for c in commits),
            skipped_quarantined=plan.skipped_quarantined,
            index_version=refresh.to_version if refresh else None,
            index_upserted=refresh.upserted if refresh else 0,
            index_deleted=refresh.deleted if refresh else 0,
            model=model,
            failures=[
                FailedFile(f.item.path, f.error_kind, f.message, f.retryable) for f in failures
            ],
        )


@dataclass
class IngestProgress:
    """Where a running ingest is: files done of the total, files committed, when it started."""

    total: int
    done: int = 0
    committed: int = 0
    commits: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def files_per_second(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-9)

    def describe(self) -> str:
        return (
            f"{self.done:,} of {self.total:,} files embedded, {self.committed:,} committed "
            f"in {self.commits} snapshot version(s), {self.files_per_second:.1f} files/s"
        )


_progress_listeners: list[Callable[[IngestProgress], None]] = []


@contextmanager
def watching_ingest(listener: Callable[[IngestProgress], None]) -> Iterator[None]:
    """Call ``listener`` with every progress update of ingests run in this process (the CLI's
    terminal bar)."""
    _progress_listeners.append(listener)
    try:
        yield
    finally:
        _progress_listeners.remove(listener)


class ProgressReporter:
    """The ``ingest-progress`` artifact, moved as shards finish and commits land."""

    def __init__(self, total: int) -> None:
        self.progress = IngestProgress(total)
        self._id = create_progress_artifact(
            0.0, key="ingest-progress", description=self.progress.describe()
        )
        self._notify()

    def embedded(self, files: int) -> None:
        self.progress.done += files
        self._notify()

    def committed(self, commit: CommitResult) -> None:
        self.progress.committed += commit.upserted + commit.quarantined + commit.retry_later
        self.progress.commits += commit.version is not None
        self._notify()

    def _notify(self) -> None:
        percent = 100.0 * self.progress.done / max(self.progress.total, 1)
        update_progress_artifact(self._id, percent, description=self.progress.describe())
        for listener in _progress_listeners:
            listener(self.progress)


def publish_ingest_summary(summary: IngestSummary) -> None:
    """A summary table and a markdown list of failures, keyed so runs can be compared."""
    rows = {k: v for k, v in asdict(summary).items() if k not in ("failures", "model")}
    rows["checkpoint"] = summary.model.sha256[:12] + ("" if summary.model.is_official else " (!)")
    create_table_artifact(
        [{"metric": k, "value": str(v)} for k, v in rows.items()],
        key="ingest-summary",
        description=_model_note(summary.model),
    )
    if summary.failures:
        lines = [f"| {f.path} | {f.error_kind} | {f.message} |" for f in summary.failures]
        create_markdown_artifact(
            "# Quarantined inputs\n\n| file | kind | reason |\n|---|---|---|\n" + "\n".join(lines),
            key="ingest-quarantine",
            description=f"{len(lines)} inputs quarantined in run {summary.run_id}",
        )


def publish_search_results(query: str, hits: list[SearchHit], model: ResolvedCheckpoint) -> None:
    """The ranked matches of a query as a table artifact."""
    create_table_artifact(
        [
            {
                "rank": i,
                "score": round(h.score, 4),
                "path": h.path,
                **(
                    {"from_s": round(h.start_seconds, 2), "to_s": round(h.end_seconds, 2)}
                    if h.start_seconds is not None
                    else {"duration_s": round(h.duration_seconds, 2)}
                ),
                "labels": ", ".join(h.labels[:3]),
            }
            for i, h in enumerate(hits, start=1)
        ],
        key="search-results",
        description=f"Matches for {query}. {_model_note(model)}",
    )


def search_table(query: str, hits: list[SearchHit]) -> Table:
    """Matches as a rich table for the terminal."""
    segments = any(hit.start_seconds is not None for hit in hits)
    table = Table(title=f"Nearest {'segments' if segments else 'files'} to {query}")
    where = (
        [("from (s)", "right"), ("to (s)", "right")] if segments else [("duration (s)", "right")]
    )
    for name, justify in [
        ("#", "right"),
        ("score", "right"),
        ("path", "left"),
        *where,
        ("top labels", "left"),
    ]:
        table.add_column(name, justify=justify)
    predicted = any(hit.classes for hit in hits)
    if predicted:
        table.add_column("predicted", justify="left")
    for rank, hit in enumerate(hits, start=1):
        span = (
            [f"{hit.start_seconds:.1f}", f"{hit.end_seconds:.1f}"]
            if segments
            else [f"{hit.duration_seconds:.1f}"]
        )
        extra = [", ".join(hit.classes)] if predicted else []
        table.add_row(
            str(rank), f"{hit.score:.4f}", hit.path, *span, ", ".join(hit.labels[:3]), *extra
        )
    return table


def ingest_table(summary: IngestSummary) -> Table:
    """An ingest summary as a rich table for the terminal."""
    table = Table(title=f"Ingest of {summary.source}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name in (
        "listed",
        "embedded",
        "unchanged",
        "resumed",
        "deleted",
        "quarantined",
        "retry_later",
        "skipped_quarantined",
        "commits",
        "snapshot_version",
        "index_version",
    ):
        table.add_row(name.replace("_", " "), str(getattr(summary, name)))
    return table


def _model_note(model: ResolvedCheckpoint) -> str:
    if model.is_official:
        return f"Model: official Cnn14 checkpoint ({model.origin})."
    return f"Model: {model.path}: {RANDOM_WEIGHTS_WARNING}"


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


def scan_report(
    scores: Sequence[ClipScore],
    calibrations: dict[str, Calibration],
    snapshot_version: int | None,
    without_reference: int,
    problems: Sequence[str],
) -> str:
    """The markdown report of a scan: counts, the silent clips, the top anomalies with where
    they are, the distribution of scores against the thresholds, and the clips not scored."""
    silent = [s for s in scores if s.silent]
    scored = [s for s in scores if not s.silent]
    anomalies = sorted((s for s in scored if s.is_anomaly), key=lambda s: -s.score)
    lines = [
        "# Anomaly scan",
        f"Snapshot version {snapshot_version}: {len(scored)} clips scored, "
        f"**{len(anomalies)} anomalous**, **{len(silent)} silent**, {len(problems)} not "
        f"scored, {without_reference} without a reference group.",
        "",
        "| group | threshold | score | method | reference clips |",
        "|---|---|---|---|---|",
        *(
            f"| {g or '(all)'} | {c.threshold:.4f} | {c.scoring} | {c.method} q={c.quantile} "
            f"k={c.k} | {c.reference_clips} |"
            for g, c in sorted(calibrations.items())
        ),
    ]
    if silent:
        lines += [
            "",
            "## Silent clips (stopped machine or dead microphone?)",
            "| clip | group |",
            "|---|---|",
            *(f"| {s.path} | {s.group or '(all)'} |" for s in sorted(silent, key=lambda s: s.path)),
        ]
    lines += [
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
        score_histogram([s.score for s in scored], [c.threshold for c in calibrations.values()]),
        "```",
    ]
    if problems:
        lines += ["", "## Clips not scored", *(f"- {p}" for p in problems)]
    return "\n".join(lines)


def publish_scan_report(report: str, anomalies: int, scored: int) -> None:
    """The scan report as a markdown artifact (key ``anomaly-scan``)."""
    create_markdown_artifact(
        report, key="anomaly-scan", description=f"{anomalies} anomalies in {scored} clips"
    )


def upkeep_report(
    tables: Sequence[TableUpkeep], index: dict[str, int] | None, dry_run: bool
) -> str:
    """The markdown report of a maintain run: files per table before and after, what vacuum
    deleted (or would delete), the checkpoint, and the index."""
    lines = [
        "# Table upkeep" + (" (dry run: nothing changed)" if dry_run else ""),
        "",
        "| table | version | files before | files after | compacted | vacuumed | checkpoint |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {t.uri} | {t.version_before} | {t.files_before} | {t.files_after} | "
            f"{t.files_compacted} | {len(t.vacuumed)}{' (would be)' if dry_run else ''} | "
            f"{t.checkpoint_version if t.checkpoint_version is not None else '-'} |"
            for t in tables
        ),
    ]
    if index:
        lines += ["", "LanceDB index: " + ", ".join(f"{k} {v}" for k, v in index.items())]
    for table in tables:
        if table.vacuumed:
            shown = table.vacuumed[:50]
            lines += [
                "",
                f"## Files vacuum {'would delete' if dry_run else 'deleted'}: {table.uri}",
            ]
            lines += [f"- {name}" for name in shown]
            if len(table.vacuumed) > len(shown):
                lines.append(f"- ... and {len(table.vacuumed) - len(shown)} more")
    return "\n".join(lines)


def publish_upkeep_report(report: str, tables: int, dry_run: bool) -> None:
    """The upkeep report as a markdown artifact (key ``table-upkeep``)."""
    create_markdown_artifact(
        report,
        key="table-upkeep",
        description=f"{'Dry run over' if dry_run else 'Upkeep of'} {tables} tables",
    )


def evaluation_report(label_set: str, classifier: Classifier, counts: dict[str, int]) -> str:
    """The markdown evaluation of a trained classifier: label counts, the candidates and the
    majority baseline, per-class precision/recall/F1, the confusion matrix and calibration
    (every figure cross-validated)."""
    evaluation = classifier.evaluation
    labels = evaluation.labels
    lines = [
        f"# Classifier for label set `{label_set}`",
        "",
        f"Model `{classifier.fingerprint}`: {evaluation.algorithm}, trained on "
        f"{evaluation.clips} clips (label set version {classifier.label_set_version}, "
        f"snapshot version {classifier.snapshot_version}); figures from "
        f"{evaluation.folds}-fold stratified cross-validation.",
        "",
        "| label | labelled clips |",
        "|---|---:|",
        *(f"| {label} | {count} |" for label, count in counts.items()),
        "",
        "| model | macro-F1 |",
        "|---|---:|",
        *(
            f"| {name}{' (chosen)' if name == evaluation.algorithm else ''} | {score:.3f} |"
            for name, score in evaluation.candidates_macro_f1.items()
        ),
        f"| majority-class baseline | {evaluation.majority_macro_f1:.3f} |",
        "",
        "| label | precision | recall | F1 | clips |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {m.label} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | {m.support} |"
            for m in evaluation.per_class
        ),
        "",
        "Confusion (rows: true label, columns: predicted)",
        "",
        "| | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
        *(
            f"| {label} | " + " | ".join(str(n) for n in row) + " |"
            for label, row in zip(labels, evaluation.confusion, strict=True)
        ),
        "",
        f"Calibration: expected calibration error {evaluation.expected_calibration_error:.3f}",
        "",
        "| probability | clips | mean probability | accuracy |",
        "|---|---:|---:|---:|",
        *(
            f"| {b.low:.1f}-{b.high:.1f} | {b.clips} | {b.mean_probability:.3f} | "
            f"{b.accuracy:.3f} |"
            for b in evaluation.calibration
        ),
    ]
    return "\n".join(lines)


def publish_evaluation_report(
    label_set: str, classifier: Classifier, counts: dict[str, int]
) -> None:
    """The evaluation as a markdown artifact (key ``classifier-<label set>``)."""
    create_markdown_artifact(
        evaluation_report(label_set, classifier, counts),
        key=f"classifier-{label_set.replace('_', '-')}",
        description=f"{label_set}: macro-F1 {classifier.evaluation.macro_f1:.3f}",
    )


def publish_classify_report(
    result: ClassifyResult, counts: dict[str, int], min_confidence: float
) -> None:
    """What a classify run changed and the catalogue's label counts, as a markdown artifact
    (key ``classify-<label set>``)."""
    lines = [
        f"# Predicted labels: `{result.label_set}`",
        "",
        f"Model `{result.model_fingerprint}`, snapshot version {result.snapshot_version}: "
        f"{result.predicted} files predicted ({result.abstained} abstained below "
        f"{min_confidence:.2f}), {result.deleted} deleted, {result.unchanged} unchanged.",
        "",
        "| label | files |",
        "|---|---:|",
        *(f"| {label} | {count} |" for label, count in counts.items()),
    ]
    create_markdown_artifact(
        "\n".join(lines),
        key=f"classify-{result.label_set.replace('_', '-')}",
        description=f"{result.label_set}: {result.predicted} predicted",
    )


def evaluation_table(label_set: str, evaluation: Evaluation) -> Table:
    """Per-class figures of a trained classifier, for a terminal."""
    table = Table(
        title=f"{label_set}: {evaluation.algorithm}, cross-validated macro-F1 "
        f"{evaluation.macro_f1:.3f} (majority baseline {evaluation.majority_macro_f1:.3f}), "
        f"calibration error {evaluation.expected_calibration_error:.3f}"
    )
    for column in ("label", "precision", "recall", "F1", "clips"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for m in evaluation.per_class:
        table.add_row(
            m.label, f"{m.precision:.3f}", f"{m.recall:.3f}", f"{m.f1:.3f}", str(m.support)
        )
    return table
