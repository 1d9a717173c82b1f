"""What commands print: the shared console, the ingest progress bar, and run results as
tables for the terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from tasks.anomaly.scoring import DEFAULT_SCORING
from tasks.index.interface import SearchHit

if TYPE_CHECKING:  # scikit-learn and the ingest machinery stay out of the CLI's start-up
    from tasks.anomaly.evaluate import ScoringEvaluation
    from tasks.classify.training import Evaluation
    from tasks.ingest.report import IngestSummary
    from tasks.search.duplicates import CatalogueNeighbours

console = Console()


@contextmanager
def ingest_progress_bar() -> Iterator[None]:
    """A terminal bar for the ingest run in this process: files embedded of the total,
    files/s, ETA, and how many are committed (safe from a kill) so far."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from tasks.ingest.report import IngestProgress, watching_ingest

    columns = (
        TextColumn("embedding"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} files/s"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[committed]:,} committed in {task.fields[commits]} version(s)"),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("ingest", total=None, rate=0.0, committed=0, commits=0)

        def show(progress: IngestProgress) -> None:
            bar.update(
                task,
                total=progress.total,
                completed=progress.done,
                rate=progress.files_per_second,
                committed=progress.committed,
                commits=progress.commits,
            )

        with watching_ingest(show):
            yield


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
        ("top tags", "left"),
    ]:
        table.add_column(name, justify=justify)
    predicted = any(hit.predicted_labels for hit in hits)
    if predicted:
        table.add_column("predicted", justify="left")
    for rank, hit in enumerate(hits, start=1):
        span = (
            [f"{hit.start_seconds:.1f}", f"{hit.end_seconds:.1f}"]
            if segments
            else [f"{hit.duration_seconds:.1f}"]
        )
        extra = [", ".join(hit.predicted_labels)] if predicted else []
        table.add_row(
            str(rank), f"{hit.score:.4f}", hit.path, *span, ", ".join(hit.tags[:3]), *extra
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


def anomaly_evaluation_table(results: list[ScoringEvaluation]) -> Table:
    """Each window score's detection figures, overall and per machine, for a terminal."""
    table = Table(
        "score",
        "machine",
        "AUC",
        "pAUC",
        "precision",
        "recall",
        "normal",
        "anomalous",
        box=None,
        padding=(0, 1),
        pad_edge=False,
        caption=f"ROC AUC; pAUC at FPR <= 0.1 (standardised, DCASE); precision and recall at "
        f"the calibrated threshold; default score: {DEFAULT_SCORING}",
    )
    for result in results:
        rows = [("all", result.overall)]
        if len(result.per_group) > 1:
            rows += sorted(result.per_group.items())
        for i, (group, evaluation) in enumerate(rows):
            table.add_row(
                result.scoring if i == 0 else "",
                group or "(no group)",
                f"{evaluation.roc_auc:.3f}",
                f"{evaluation.partial_auc:.3f}",
                f"{evaluation.precision:.3f}",
                f"{evaluation.recall:.3f}",
                str(evaluation.normal_clips),
                str(evaluation.anomalous_clips),
            )
        if len(result.per_group) > 1:
            table.add_row(
                "",
                "harmonic mean",
                f"{result.mean_auc:.3f}",
                f"{result.mean_partial_auc:.3f}",
                end_section=True,
            )
    return table


def duplicates_table(found: CatalogueNeighbours) -> Table:
    """Near-duplicate groups, largest first, for a terminal."""
    table = Table(
        title=f"{len(found.groups)} groups of near-duplicates among {found.files:,} files "
        f"(cosine >= {found.threshold:g})"
    )
    table.add_column("#", justify="right")
    table.add_column("files", justify="right")
    table.add_column("weakest link", justify="right")
    table.add_column("paths")
    for number, group in enumerate(found.groups, start=1):
        table.add_row(
            str(number), str(len(group.paths)), f"{group.weakest:.4f}", "\n".join(group.paths)
        )
    return table


def isolated_table(found: CatalogueNeighbours) -> Table:
    """The files least like any other, most isolated first, for a terminal."""
    table = Table(title="Most isolated files (cosine to the nearest other file)")
    for name, justify in (("path", "left"), ("nearest", "right"), ("nearest file", "left")):
        table.add_column(name, justify=justify)
    for file in found.isolated:
        table.add_row(file.path, f"{file.similarity:.4f}", file.nearest_path)
    return table
