"""The ``audio-embeddings`` command: runs the same Prefect flows as the deployments.

Every command shares one guard: a ``UserError`` (tasks.errors) ends the command with one red
line and exit code 2, also when it was raised inside a flow; its traceback is kept out of the
terminal (the flow run's logs on the Prefect server keep it). Any other exception is a bug or an
outage and shows its traceback.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from prefect.settings import PREFECT_API_URL
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from flows.temporary_server import prefect_api
from tasks.anomaly.scoring import DEFAULT_SCORING, Scoring
from tasks.anomaly.windows import DEFAULT_SCAN_HOP_SECONDS, DEFAULT_SCAN_WINDOW_SECONDS
from tasks.audio.decode import decode as decode_audio
from tasks.classify.classes import parse_class_filter
from tasks.errors import UserError
from tasks.model.checkpoint import CheckpointNotFoundError, resolve_checkpoint
from tasks.settings import (
    AudioLimits,
    BlobSettings,
    ModelSettings,
    SearchServiceSettings,
    ServeSettings,
    Settings,
)

console = Console()
# A ValidationError of these models comes from AUDIO_EMBEDDINGS_* variables (or .env): the
# user's to fix, like a UserError.
_SETTINGS_MODELS = frozenset(
    model.__name__
    for model in (
        Settings,
        AudioLimits,
        BlobSettings,
        ModelSettings,
        SearchServiceSettings,
        ServeSettings,
    )
)


class _UserErrorsWithoutTraceback(logging.Formatter):
    """Formats like ``inner``, but a record about a ``UserError`` without its traceback."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and isinstance(record.exc_info[1], UserError):
            record = copy.copy(record)
            record.exc_info, record.exc_text = None, None
        return self.inner.format(record)


def _keep_user_error_tracebacks_off_the_terminal() -> None:
    """Prefect's console handler logs a failed task or flow run with its traceback; for a user
    error the terminal shows the message alone (the API handler still sends the traceback)."""
    import prefect.main  # noqa: F401  (sets up Prefect's logging, console handler included)
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not isinstance(
            handler.formatter, _UserErrorsWithoutTraceback
        ):
            handler.setFormatter(
                _UserErrorsWithoutTraceback(handler.formatter or logging.Formatter())
            )


class _GuardedGroup(TyperGroup):
    """Every command, sub-commands included: a ``UserError`` -> one red line, exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        _keep_user_error_tracebacks_off_the_terminal()
        try:
            return super().invoke(ctx)
        except UserError as error:
            raise _user_error(str(error)) from None
        except ValidationError as error:
            if error.title not in _SETTINGS_MODELS:
                raise
            raise _user_error(f"invalid AUDIO_EMBEDDINGS_* setting: {error}") from None


def _user_error(message: str) -> typer.Exit:
    # soft_wrap: the terminal wraps it, so paths and URLs stay whole when copied
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=2)


app = typer.Typer(
    cls=_GuardedGroup,
    help="PANNs audio embeddings: ingest a catalogue, search by audio, keep an index fresh.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        console.print(f"audio-embeddings {version('audio-embeddings')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """PANNs audio embeddings: ingest a catalogue, search by audio, keep an index fresh."""


Checkpoint = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        help="Cnn14 checkpoint file (else AUDIO_EMBEDDINGS_CHECKPOINT_PATH, "
        "~/panns_data, download)",
    ),
]
IndexUri = Annotated[str | None, typer.Option("--index", help="LanceDB folder of the index")]
SnapshotUri = Annotated[str | None, typer.Option("--snapshot", help="Delta table of embeddings")]


def _preflight(checkpoint: Path | None, query: Path | None = None) -> None:
    """Check what a user supplies before a flow (and a temporary Prefect server) starts."""
    settings = Settings.with_overrides(checkpoint_path=checkpoint)
    resolve_checkpoint(settings.model_settings())
    if query is not None and query.is_file():
        # Validation only: the search flow decodes (and resamples) the query itself.
        decode_audio(str(query), query.read_bytes(), settings.audio_limits(), resample=False)


def _metadata_pairs(values: list[str] | None) -> list[str] | None:
    """Check ``KEY=VALUE`` options as they are parsed (a usage error names the option)."""
    for value in values or []:
        key, equals, _ = value.partition("=")
        if not key or not equals:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE")
    return values


@contextmanager
def _ingest_progress_bar() -> Iterator[None]:
    """A terminal bar for the ingest run in this process: files embedded of the total,
    files/s, ETA, and how many are committed (safe from a kill) so far."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from tasks.reports import IngestProgress, watching_ingest

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


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="Folder of audio files, or az://container/prefix")],
    snapshot: SnapshotUri = None,
    index: IndexUri = None,
    checkpoint: Checkpoint = None,
    shard_size: Annotated[int | None, typer.Option(min=1, help="Files per Prefect task")] = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Skip the index refresh")] = False,
    dask_address: Annotated[
        str | None,
        typer.Option(help="Run shards on this Dask scheduler (or AUDIO_EMBEDDINGS_DASK_ADDRESS)"),
    ] = None,
) -> None:
    """Embed new and changed files of SOURCE and commit a snapshot version."""
    from flows.ingest import ingest as ingest_flow
    from flows.ingest import on_dask
    from tasks.reports import ingest_table

    _preflight(checkpoint)
    address = dask_address or Settings().dask_address
    if address:
        ingest_flow = on_dask(ingest_flow, address)
    with prefect_api(), _ingest_progress_bar():
        summary = ingest_flow(
            source=source,
            snapshot_uri=snapshot,
            index_uri=index,
            checkpoint_path=str(checkpoint) if checkpoint else None,
            shard_size=shard_size,
            refresh_index=not no_index,
        )
    console.print(ingest_table(summary))
    for failure in summary.failures:
        verdict = "will retry" if failure.retryable else "quarantined"
        console.print(f"[yellow]{verdict}[/] {failure.message}")


@app.command()
def search(
    query: Annotated[
        str,
        typer.Argument(
            help="Audio file to search with; or a blob (az://container/x.wav), or a file of the "
            "catalogue by its path or key"
        ),
    ],
    top: Annotated[int, typer.Option(min=1, max=1000, help="How many matches")] = 10,
    path_prefix: Annotated[str | None, typer.Option(help="Only files under this path")] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(help="Only files with this AudioSet label (repeatable: any of them)"),
    ] = None,
    index: IndexUri = None,
    checkpoint: Checkpoint = None,
    segments: Annotated[
        bool, typer.Option("--segments", help="Find where: segments (file, from, to), not files")
    ] = False,
    per_file: Annotated[
        int, typer.Option(min=1, help="With --segments: at most this many hits from one file")
    ] = 1,
    where: Annotated[
        list[str] | None,
        typer.Option(
            help="Only files with this predicted label, LABEL_SET=LABEL (repeatable: any label "
            "of one set, every set named)"
        ),
    ] = None,
) -> None:
    """Find the files that sound most like QUERY (with --segments: where in them).

    QUERY is an audio file, a blob, or a file already in the catalogue (its stored vector is
    used: no model runs).

    With a Prefect API configured (PREFECT_API_URL) this runs the search flow, which the UI
    shows; without one, the same steps run in this process, with no temporary server.
    """
    from flows.search import search as search_flow
    from flows.search import search_in_process
    from tasks.reports import search_table

    _preflight(checkpoint, Path(query))
    arguments = {
        "query": query,
        "top": top,
        "path_prefix": path_prefix,
        "labels": label,
        "index_uri": index,
        "checkpoint_path": str(checkpoint) if checkpoint else None,
        "segments": segments,
        "per_file": per_file,
        "classes": [parse_class_filter(value) for value in where or []] or None,
    }
    if PREFECT_API_URL.value():
        hits = search_flow(**arguments)
    else:
        hits, model = search_in_process(**arguments)
        if model.warning:
            console.print(f"[yellow]warning:[/] {escape(model.warning)}")
    console.print(search_table(query, hits))


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (default 127.0.0.1; others need authentication)"),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000)")] = None,
    checkpoint: Checkpoint = None,
) -> None:
    """Serve search, the catalogue's audio and the anomaly verdicts over HTTP, with a page to
    search and listen at /, from one process that keeps the model loaded."""
    import uvicorn

    from tasks.serve.app import create_app
    from tasks.serve.auth import Authenticator
    from tasks.serve.service import SearchService

    settings = Settings.with_overrides(serve_host=host, serve_port=port, checkpoint_path=checkpoint)
    serve_settings = settings.serve_settings()
    authenticator = Authenticator(serve_settings)  # refuses an open non-loopback bind
    service = SearchService.start(settings)
    checkpoint_warning = resolve_checkpoint(settings.model_settings()).warning
    if checkpoint_warning:
        console.print(f"[yellow]warning:[/] {escape(checkpoint_warning)}")
    console.print(
        f"serving http://{settings.serve_host}:{settings.serve_port}/ "
        f"(API schema at /docs; "
        f"{'authentication required' if authenticator.required else 'loopback, no authentication'})"
    )
    try:
        uvicorn.run(
            create_app(service, authenticator, serve_settings),
            host=settings.serve_host,
            port=settings.serve_port,
            log_level="warning",  # the service writes its own access lines (JSON), if asked
            access_log=False,
        )
    finally:
        service.close()


@app.command("refresh-index")
def refresh_index(
    snapshot: SnapshotUri = None,
    index: IndexUri = None,
    rebuild: Annotated[bool, typer.Option(help="Build a new index, switch when complete")] = False,
    drop_old: Annotated[bool, typer.Option(help="With --rebuild: delete the old index")] = False,
) -> None:
    """Apply the snapshot changes since the version the index reflects."""
    from flows.refresh_index import refresh_index as refresh_flow

    with prefect_api():
        result = refresh_flow(
            snapshot_uri=snapshot, index_uri=index, rebuild=rebuild, drop_old=drop_old
        )
    if result is None:
        console.print("no snapshot yet: nothing to index")
    else:
        console.print(
            f"index reflects snapshot version {result.to_version} "
            f"({result.upserted} upserted, {result.deleted} deleted)"
        )


@app.command()
def maintain(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing; list what vacuum would delete")
    ] = False,
    retention_hours: Annotated[
        int | None,
        typer.Option(min=0, help="Vacuum unreferenced files older than this (h; default 168)"),
    ] = None,
) -> None:
    """Compact, vacuum and checkpoint the tables; compact the LanceDB index."""
    from flows.maintain import maintain as maintain_flow

    with prefect_api():
        tables = maintain_flow(dry_run=dry_run, retention_hours=retention_hours)
    for table in tables:
        verb = "would delete" if dry_run else "deleted"
        console.print(
            f"{table.uri}: {table.files_before} -> {table.files_after} files, "
            f"vacuum {verb} {len(table.vacuumed)}"
        )


@app.command("make-random-checkpoint")
def make_random_checkpoint(
    path: Annotated[Path, typer.Argument(help="Where to write the .pth file")],
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
) -> None:
    """Write a random-weight Cnn14 checkpoint (327 MB) for offline trials and tests."""
    from tasks.model.cnn14 import write_random_checkpoint

    try:
        write_random_checkpoint(path, seed)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None
    console.print(f"wrote {path} (random weights: embeddings carry no meaning)")


@app.command("make-samples")
def make_samples(
    folder: Annotated[Path, typer.Argument(help="Where to write the sample catalogue")],
    labelled: Annotated[
        bool,
        typer.Option(
            "--labelled",
            help="The labelled catalogue instead: machines/<type>/ and speech/<low|high>/, "
            "with <set>-labels.csv",
        ),
    ] = False,
    per_label: Annotated[int, typer.Option(min=1, help="With --labelled: clips per label")] = 40,
) -> None:
    """Write the synthetic sample catalogue (tones, noise, sweeps, machine sounds), or with
    --labelled one to try classification on (machine types; two speaker pitch groups)."""
    from tasks.audio.samples import make_labelled_catalogue, make_sample_catalogue

    try:
        if labelled:
            paths = make_labelled_catalogue(folder, per_label)
        else:
            paths = make_sample_catalogue(folder)
    except OSError as error:
        raise UserError(
            f"cannot write the samples to {folder}: {error.strerror or error}"
        ) from None
    console.print(f"{len(paths)} sample files in {folder}")


@app.command()
def demo(
    folder: Annotated[
        Path, typer.Option(help="Where the demo keeps its samples and stores")
    ] = Path(".audio-embeddings/demo"),
) -> None:
    """The main job on the embedded default: ingest the sample catalogue, then search with one file.

    Uses the official checkpoint when it can be found or downloaded; otherwise, and only here,
    falls back to a random-weight checkpoint and says so.
    """
    from tasks.audio.samples import SAMPLE_CATALOGUE, make_sample_catalogue
    from tasks.model.cnn14 import write_random_checkpoint

    samples_dir = folder / "samples"
    make_sample_catalogue(samples_dir)
    os.environ.setdefault("AUDIO_EMBEDDINGS_DATA_DIR", str(folder))
    checkpoint: Path | None = None
    try:
        resolve_checkpoint(Settings().model_settings())
    except CheckpointNotFoundError as error:
        checkpoint = folder / "random-cnn14.pth"
        console.print(f"[yellow]{error}[/]")
        console.print(
            f"[bold yellow]Demo falls back to a random-weight checkpoint at {checkpoint}: the "
            "pipeline runs end to end, but similarities and labels carry no meaning.[/]"
        )
        if not checkpoint.exists():
            write_random_checkpoint(checkpoint)
    with prefect_api():  # one temporary server for both
        ingest(source=str(samples_dir), checkpoint=checkpoint)
        search(
            query=str(samples_dir / SAMPLE_CATALOGUE[0].relative_path), top=5, checkpoint=checkpoint
        )


Neighbours = Annotated[int, typer.Option(min=1, help="Reference windows averaged per score (k)")]
Quantile = Annotated[
    float, typer.Option(min=0.5, max=0.9999, help="Share of normal clips under the threshold")
]
ScanWindow = Annotated[
    float, typer.Option(help="Scan window (s): a whole multiple of the stored segments")
]
ScanHop = Annotated[
    float, typer.Option(help="Time between scan windows (s), a multiple of the segments too")
]
labels_app = typer.Typer(help="Label sets: a few labelled clips per label.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")


@labels_app.command("import")
def labels_import(
    name: Annotated[str, typer.Argument(help="Label set name, e.g. gender (a search field)")],
    source: Annotated[
        str,
        typer.Argument(
            help="A CSV (label, and key or path), a folder of <label>/ folders, or "
            "metadata:FIELD (the blob metadata ingest stored)"
        ),
    ],
) -> None:
    """Import (or replace) label set NAME: each row is matched to a catalogue file; rows that
    match none, have no label or contradict another are reported and skipped."""
    from tasks.steps.classify import import_labels

    report = import_labels(Settings(), name, source)
    counts = ", ".join(f"{label} {count}" for label, count in report.counts.items())
    console.print(
        f"label set {name}: {report.kept} files ({counts}), table version {report.version}; "
        f"{len(report.skipped)} rows skipped"
    )
    for origin, reason in report.skipped[:20]:
        console.print(f"  skipped {escape(origin)}: {escape(reason)}")
    if len(report.skipped) > 20:
        console.print(f"  ... and {len(report.skipped) - 20} more")


@labels_app.command("list")
def labels_list() -> None:
    """The label sets, their label counts, and whether a classifier is trained."""
    from tasks.resources import classifier_store, label_sets

    settings = Settings()
    sets, store = label_sets(settings), classifier_store(settings)
    table = Table("label set", "labels", "classifier")
    for name in sets.names():
        counts = ", ".join(f"{k} {v}" for k, v in sets.read(name).counts().items())
        table.add_row(name, counts, store.latest(name).fingerprint if store.has(name) else "-")
    console.print(table)


classify_app = typer.Typer(
    help="Train classifiers on label sets and label the catalogue.", no_args_is_help=True
)
app.add_typer(classify_app, name="classify")


@classify_app.command("train")
def classify_train(
    name: Annotated[str, typer.Argument(help="The label set to learn")],
    min_per_class: Annotated[
        int | None, typer.Option(min=2, help="Fewest labelled clips a label needs (default 5)")
    ] = None,
) -> None:
    """Train a classifier for label set NAME (k-NN or logistic regression, chosen by
    stratified cross-validation) and show its cross-validated evaluation."""
    from flows.classify import train_classifier
    from tasks.reports import evaluation_table

    with prefect_api():
        given = {"min_per_class": min_per_class} if min_per_class else {}
        summary = train_classifier(label_set=name, **given)
    console.print(evaluation_table(name, summary.evaluation))
    console.print(
        f"model {summary.model_fingerprint} stored; confusion matrix and calibration in the "
        f"classifier-{name.replace('_', '-')} artifact"
    )


@classify_app.command("run")
def classify_run(
    names: Annotated[
        list[str] | None, typer.Argument(help="Label sets (default: every trained one)")
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Abstain below this probability (default 0.6)"),
    ] = None,
) -> None:
    """Label the catalogue files new or changed since the last run, and give the index the
    predicted labels (search --where LABEL_SET=LABEL)."""
    from flows.classify import classify

    with prefect_api():
        summaries = classify(label_sets=names or None, min_confidence=min_confidence)
    if not summaries:
        console.print("no trained classifier: run 'audio-embeddings classify train NAME' first")
    for summary in summaries:
        console.print(
            f"{summary.label_set}: {summary.predicted} files predicted ({summary.abstained} "
            f"abstained), {summary.deleted} deleted, {summary.unchanged} unchanged "
            f"(model {summary.model_fingerprint}, snapshot version {summary.snapshot_version})"
        )


anomaly_app = typer.Typer(
    help="Anomaly scans against references of normal sound.", no_args_is_help=True
)
app.add_typer(anomaly_app, name="anomaly")


@anomaly_app.command("scan")
def anomaly_scan(
    reference_prefix: Annotated[
        str | None, typer.Option(help="Snapshot path prefix of the normal clips")
    ] = None,
    reference_metadata: Annotated[
        list[str] | None,
        typer.Option(
            help="Blob metadata KEY=VALUE of the normal clips (repeatable: all match)",
            callback=_metadata_pairs,
        ),
    ] = None,
    group_pattern: Annotated[
        str | None, typer.Option(help="Regex whose first group names the machine, e.g. '^([^/]+)/'")
    ] = None,
    group_metadata_key: Annotated[
        str | None, typer.Option(help="Blob metadata key that names the machine")
    ] = None,
    path: Annotated[
        list[str] | None,
        typer.Option(
            help="Scan these paths (repeatable) instead of the clips new since the last scan"
        ),
    ] = None,
    scoring: Annotated[
        Scoring,
        typer.Option(
            help="Window score: distance to the reference's mean under a shrunk covariance "
            "(mahalanobis) or to the k nearest reference windows (knn)",
        ),
    ] = DEFAULT_SCORING,
    k: Neighbours = 3,
    quantile: Quantile = 0.99,
    threshold: Annotated[float | None, typer.Option(help="Override the calibration")] = None,
    window_seconds: ScanWindow = DEFAULT_SCAN_WINDOW_SECONDS,
    hop_seconds: ScanHop = DEFAULT_SCAN_HOP_SECONDS,
) -> None:
    """Score new clips against their reference, from the segments ingest stored (no model is
    loaded); report anomalies, where they are, and silent clips."""
    from flows.anomaly_scan import anomaly_scan as scan_flow

    if not reference_prefix and not reference_metadata:
        raise typer.BadParameter("give --reference-prefix or --reference-metadata KEY=VALUE")
    pairs = [item.split("=", 1) for item in reference_metadata or []]
    with prefect_api():
        summary = scan_flow(
            reference_prefix=reference_prefix,
            reference_metadata=dict(pairs) or None,
            group_pattern=group_pattern,
            group_metadata_key=group_metadata_key,
            paths=path,
            scoring=scoring,
            k=k,
            quantile=quantile,
            threshold=threshold,
            window_seconds=window_seconds,
            hop_seconds=hop_seconds,
        )
    console.print(
        f"scanned {summary.scanned} clips: {summary.anomalies} anomalous, {summary.silent} "
        f"silent, {summary.not_scored} not scored (thresholds {summary.thresholds}); details "
        "in the anomaly-scan artifact"
    )


@anomaly_app.command("evaluate")
def anomaly_evaluate(
    reference: Annotated[Path, typer.Argument(help="Folder of normal clips (the reference)")],
    normal: Annotated[Path, typer.Argument(help="Folder of held-out normal clips")],
    anomalous: Annotated[Path, typer.Argument(help="Folder of anomalous clips")],
    group_pattern: Annotated[
        str | None,
        typer.Option(
            help="Regex whose first group, on a path within each folder, names the machine "
            "(e.g. '^([^/]+)/'): one reference and one score per machine"
        ),
    ] = None,
    k: Neighbours = 3,
    quantile: Quantile = 0.99,
    window_seconds: ScanWindow = DEFAULT_SCAN_WINDOW_SECONDS,
    hop_seconds: ScanHop = DEFAULT_SCAN_HOP_SECONDS,
    checkpoint: Checkpoint = None,
) -> None:
    """ROC AUC, partial AUC (p = 0.1) and precision/recall at the calibrated threshold, for
    both window scores, overall and per machine (clips embedded as ingest embeds them)."""
    from tasks.anomaly.evaluate import evaluate_folders
    from tasks.anomaly.windows import ScanWindows

    _preflight(checkpoint)
    settings = Settings.with_overrides(checkpoint_path=checkpoint)
    results = evaluate_folders(
        reference,
        normal,
        anomalous,
        settings,
        ScanWindows(window_seconds, hop_seconds),
        k=k,
        quantile=quantile,
        group_pattern=group_pattern,
    )
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
    console.print(table)


if __name__ == "__main__":
    app()
