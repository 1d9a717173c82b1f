"""What an ingest run reports: its summary (returned by the flow, published as artifacts), the
files it could not embed, and its progress (a Prefect progress artifact and, in the CLI's
process, a terminal bar)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from tasks.index.interface import RefreshResult
from tasks.ingest.commit import CommitResult
from tasks.ingest.plan import ChangePlan
from tasks.model.checkpoint import ResolvedCheckpoint
from tasks.storage.quarantine import Failure


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
        description=summary.model.note,
    )
    if summary.failures:
        lines = [f"| {f.path} | {f.error_kind} | {f.message} |" for f in summary.failures]
        create_markdown_artifact(
            "# Quarantined inputs\n\n| file | kind | reason |\n|---|---|---|\n" + "\n".join(lines),
            key="ingest-quarantine",
            description=f"{len(lines)} inputs quarantined in run {summary.run_id}",
        )
