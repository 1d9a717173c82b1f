"""What a run leaves in the Prefect UI (artifacts) and prints on a terminal (rich tables)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

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

RANDOM_WEIGHTS_WARNING = (
    "NOT the official Cnn14 checkpoint: embeddings, scores and labels carry no meaning."
)


@dataclass
class IngestSummary:
    """The outcome of one ingest run, as the flow returns it."""

    source: str
    run_id: str
    snapshot_version: int | None
    listed: int
    embedded: int
    unchanged: int
    deleted: int
    quarantined: int
    retry_later: int
    skipped_quarantined: int
    index_version: int | None
    index_upserted: int
    index_deleted: int
    model: ResolvedCheckpoint
    failures: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        source: str,
        run_id: str,
        plan: ChangePlan,
        commit: CommitResult,
        failures: list[Failure],
        refresh: RefreshResult | None,
        model: ResolvedCheckpoint,
    ) -> IngestSummary:
        listed = len(plan.to_embed) + plan.unchanged + plan.skipped_quarantined
        return cls(
            source=source,
            run_id=run_id,
            snapshot_version=commit.version,
            listed=listed,
            embedded=commit.upserted,
            unchanged=plan.unchanged,
            deleted=commit.deleted,
            quarantined=commit.quarantined,
            retry_later=commit.retry_later,
            skipped_quarantined=plan.skipped_quarantined,
            index_version=refresh.to_version if refresh else None,
            index_upserted=refresh.upserted if refresh else 0,
            index_deleted=refresh.deleted if refresh else 0,
            model=model,
            failures=[
                {
                    "path": f.item.path,
                    "error_kind": f.error_kind,
                    "message": f.message,
                    "retryable": str(f.retryable).lower(),
                }
                for f in failures
            ],
        )


class ProgressReporter:
    """A progress artifact that moves as shards finish."""

    def __init__(self, total: int, description: str) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.description = description
        self._id = create_progress_artifact(0.0, key="ingest-progress", description=description)

    def advance(self, count: int) -> None:
        self.done += count
        update_progress_artifact(
            self._id, 100.0 * self.done / self.total, description=self.description
        )


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
        lines = [f"| {f['path']} | {f['error_kind']} | {f['message']} |" for f in summary.failures]
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
                "duration_s": round(h.duration_seconds, 2),
                "labels": ", ".join(h.labels[:3]),
            }
            for i, h in enumerate(hits, start=1)
        ],
        key="search-results",
        description=f"Matches for {query}. {_model_note(model)}",
    )


def search_table(query: str, hits: list[SearchHit]) -> Table:
    """Matches as a rich table for the terminal."""
    table = Table(title=f"Nearest files to {query}")
    for name, justify in [
        ("#", "right"),
        ("score", "right"),
        ("path", "left"),
        ("duration (s)", "right"),
        ("top labels", "left"),
    ]:
        table.add_column(name, justify=justify)
    for rank, hit in enumerate(hits, start=1):
        table.add_row(
            str(rank),
            f"{hit.score:.4f}",
            hit.path,
            f"{hit.duration_seconds:.1f}",
            ", ".join(hit.labels[:3]),
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
        "deleted",
        "quarantined",
        "retry_later",
        "skipped_quarantined",
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
    """The markdown report of a scan: counts, the top anomalies with where they are, the
    distribution of scores against the thresholds, and the clips that could not be read."""
    anomalies = sorted((s for s in scores if s.is_anomaly), key=lambda s: -s.score)
    lines = [
        "# Anomaly scan",
        f"Snapshot version {snapshot_version}: {len(scores)} clips scored, "
        f"**{len(anomalies)} anomalous**, {len(problems)} unreadable, "
        f"{without_reference} without a reference group.",
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
    return "\n".join(lines)


def publish_scan_report(report: str, anomalies: int, scored: int) -> None:
    """The scan report as a markdown artifact (key ``anomaly-scan``)."""
    create_markdown_artifact(
        report, key="anomaly-scan", description=f"{anomalies} anomalies in {scored} clips"
    )
