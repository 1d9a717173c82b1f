"""Commands on the catalogue: ingest a source, search it, refresh its index, keep its tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from prefect.settings import PREFECT_API_URL
from rich.markup import escape

from flows.cli.options import Checkpoint, IndexUri, SnapshotUri, deprecated_option, preflight
from flows.cli.output import (
    console,
    duplicates_table,
    ingest_progress_bar,
    ingest_table,
    isolated_table,
    search_table,
)
from flows.temporary_server import prefect_api
from tasks.classify.predicted_labels import parse_predicted_label
from tasks.errors import UserError
from tasks.search.duplicates import DEFAULT_THRESHOLD
from tasks.settings import Settings


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

    preflight(checkpoint)
    address = dask_address or Settings().dask_address
    if address:
        ingest_flow = on_dask(ingest_flow, address)
    with prefect_api(), ingest_progress_bar():
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


def search(
    query: Annotated[
        str | None,
        typer.Argument(
            help="Audio file to search with; or a blob (az://container/x.wav), or a file of the "
            "catalogue by its path or key (may be left out with --like)"
        ),
    ] = None,
    top: Annotated[int, typer.Option(min=1, max=1000, help="How many matches")] = 10,
    path_prefix: Annotated[str | None, typer.Option(help="Only files under this path")] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(help="Only files with this AudioSet tag (repeatable: any of them)"),
    ] = None,
    index: IndexUri = None,
    checkpoint: Checkpoint = None,
    segments: Annotated[
        bool, typer.Option("--segments", help="Find where: segments (file, from, to), not files")
    ] = False,
    per_file: Annotated[
        int, typer.Option(min=1, help="With --segments: at most this many hits from one file")
    ] = 1,
    predicted: Annotated[
        list[str] | None,
        typer.Option(
            help="Only files with this predicted label, LABEL_SET=LABEL (repeatable: any label "
            "of one set, every set named)"
        ),
    ] = None,
    label: Annotated[list[str] | None, typer.Option(hidden=True, help="Deprecated: --tag")] = None,
    where: Annotated[
        list[str] | None, typer.Option(hidden=True, help="Deprecated: --predicted")
    ] = None,
    like: Annotated[
        list[str] | None,
        typer.Option(help="Another example to sound like, named as QUERY is (repeatable)"),
    ] = None,
    unlike: Annotated[
        list[str] | None,
        typer.Option(help="An example the matches should not sound like (repeatable)"),
    ] = None,
) -> None:
    """Find the files that sound most like QUERY (with --segments: where in them); with
    --like and --unlike, like all these examples and unlike those.

    QUERY is an audio file, a blob, or a file already in the catalogue (its stored vector is
    used: no model runs). Catalogue files given as examples are left out of the matches.

    With a Prefect API configured (PREFECT_API_URL) this runs the search flow, which the UI
    shows; without one, the same steps run in this process, with no temporary server.
    """
    from flows.search import search as search_flow
    from flows.search import search_in_process

    tag = [*(tag or ()), *deprecated_option("--label", "--tag", label)]
    predicted = [*(predicted or ()), *deprecated_option("--where", "--predicted", where)]
    liked, unliked = [*([query] if query else []), *(like or ())], list(unlike or ())
    if not liked:
        raise UserError("search with a QUERY, or with examples: --like FILE (repeatable)")
    preflight(checkpoint, *(Path(example) for example in [*liked, *unliked]))
    arguments = {
        "query": query,
        "like": like or None,
        "unlike": unlike or None,
        "top": top,
        "path_prefix": path_prefix,
        "tags": tag or None,
        "index_uri": index,
        "checkpoint_path": str(checkpoint) if checkpoint else None,
        "segments": segments,
        "per_file": per_file,
        "predicted_labels": [parse_predicted_label(value) for value in predicted] or None,
    }
    if PREFECT_API_URL.value():
        hits = search_flow(**arguments)
    else:
        hits, model = search_in_process(**arguments)
        if model.warning:
            console.print(f"[yellow]warning:[/] {escape(model.warning)}")
    shown = liked[0] if len(liked) == 1 else "like " + ", ".join(liked)
    console.print(search_table(shown + (", unlike " + ", ".join(unliked) if unliked else ""), hits))


def duplicates(
    threshold: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Cosine similarity of two files' vectors at or above which they are "
            "near-duplicates (1.0: the same vector)",
        ),
    ] = DEFAULT_THRESHOLD,
    isolated: Annotated[
        int, typer.Option(min=0, help="How many of the most isolated files to list")
    ] = 10,
    snapshot: SnapshotUri = None,
    index: IndexUri = None,
) -> None:
    """List groups of near-identical files (re-encodes, gain changes, trimmed copies) and the
    files least like any other: one nearest-neighbour query of the index per file, no model."""
    from tasks.resources import open_index, snapshot_table
    from tasks.search.duplicates import catalogue_neighbours, file_vectors

    settings = Settings.with_overrides(snapshot_uri=snapshot, index_uri=index)
    found = catalogue_neighbours(
        file_vectors(snapshot_table(settings)), open_index(settings), threshold, isolated
    )
    console.print(duplicates_table(found))
    if found.isolated:
        console.print(isolated_table(found))


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


def map_(
    refit: Annotated[
        bool, typer.Option(help="Fit a new projection now, whatever drift says")
    ] = False,
    snapshot: SnapshotUri = None,
) -> None:
    """Bring the catalogue map (every file as a point; the page's Map view) up to date: place
    new files, drop the ones that left, refit when drift says so. Ingest does this too."""
    from flows.update_map import update_map

    with prefect_api():
        update = update_map(snapshot_uri=snapshot, refit=refit)
    if update.projection_version is None:
        console.print("no files in the snapshot: the map is empty")
        return
    what = f"refitted ({escape(update.reason or '')})" if update.refitted else "updated"
    kept = "" if update.preservation is None else f"; neighbours kept {update.preservation:.2f}"
    console.print(
        f"map {what}: {update.files} files, {update.placed} placed, {update.removed} removed, "
        f"projection {update.projection_version} ({update.method}){kept}"
    )


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
