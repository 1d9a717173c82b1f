"""``audio-embeddings labels``: label sets, a person's labels for some catalogue files."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from flows.cli.output import console
from tasks.settings import Settings

app = typer.Typer(help="Label sets: a few labelled clips per label.", no_args_is_help=True)


@app.command("import")
def import_label_set(
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


@app.command("list")
def list_label_sets() -> None:
    """The label sets, their label counts, and whether a classifier is trained."""
    from tasks.resources import classifier_store, label_sets

    settings = Settings()
    sets, store = label_sets(settings), classifier_store(settings)
    table = Table("label set", "labels", "classifier")
    for name in sets.names():
        counts = ", ".join(f"{k} {v}" for k, v in sets.read(name).counts().items())
        table.add_row(name, counts, store.latest(name).fingerprint if store.has(name) else "-")
    console.print(table)
