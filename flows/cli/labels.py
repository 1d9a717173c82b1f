"""``audio-embeddings labels``: label sets, a person's labels for some catalogue files."""

from __future__ import annotations

import getpass
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

    report = import_labels(Settings(), name, source, getpass.getuser())
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


By = Annotated[
    str | None, typer.Option("--by", help="Who makes the change (default: your login name)")
]


@app.command("add")
def add_labels(
    name: Annotated[str, typer.Argument(help="Label set (made by its first label)")],
    label: Annotated[str, typer.Argument(help="The label the files get")],
    files: Annotated[list[str], typer.Argument(help="Catalogue files: path, key or source URI")],
    relabel: Annotated[
        bool, typer.Option(help="Change the label of files that have another in the set")
    ] = False,
    by: By = None,
) -> None:
    """Label FILES as LABEL in label set NAME: one new version of the label sets, recording
    who and when. Refused, with the reason, for a file not in the catalogue or one labelled
    otherwise in the set (unless --relabel)."""
    from tasks.steps.classify import change_labels

    who = by or getpass.getuser()
    change = change_labels(
        Settings(), name, who, add={file: label for file in files}, relabel=relabel
    )
    _print_change(change)


@app.command("remove")
def remove_labels(
    name: Annotated[str, typer.Argument(help="Label set")],
    files: Annotated[list[str], typer.Argument(help="Catalogue files: path, key or source URI")],
    by: By = None,
) -> None:
    """Take FILES out of label set NAME (one new version, recording who and when)."""
    from tasks.steps.classify import change_labels

    _print_change(change_labels(Settings(), name, by or getpass.getuser(), remove=files))


@app.command("history")
def label_history(name: Annotated[str, typer.Argument(help="Label set")]) -> None:
    """The changes of label set NAME, newest first: table version, when, who, what."""
    from tasks.resources import label_sets

    table = Table("version", "when (UTC)", "who", "labelled", "taken out")
    for change in label_sets(Settings()).history(name):
        added = ", ".join(f"{path} {label}" for path, label in change.added.items())
        table.add_row(
            str(change.version), change.at[:19], escape(change.who), escape(added),
            escape(", ".join(change.removed)),
        )  # fmt: skip
    console.print(table)


def _print_change(change) -> None:
    if change.version is None:
        console.print(f"label set {change.label_set}: nothing to change")
        return
    console.print(
        f"label set {change.label_set}: {len(change.added)} labelled, {len(change.removed)} "
        f"taken out by {escape(change.who)}; table version {change.version}"
    )


@app.command("review")
def review(
    name: Annotated[str, typer.Argument(help="A label set with a classifier")],
    size: Annotated[int, typer.Option(min=1, max=1000, help="Files in the queue")] = 20,
) -> None:
    """The files to hear next for label set NAME: the classifier's least sure first
    (abstained, then near misses), then files unlike every labelled example, then a few
    confident ones to spot-check. Label them with 'labels add'."""
    from tasks.steps.classify import review_labels

    table = Table("", "file", "why", "best label", "probability", "margin", "like an example")
    for rank, item in enumerate(review_labels(Settings(), name, size), start=1):
        table.add_row(
            str(rank),
            escape(item.path),
            item.reason,
            escape(item.best_label),
            f"{item.probability:.2f}",
            "" if item.margin is None else f"{item.margin:.2f}",
            "" if item.labelled_similarity is None else f"{item.labelled_similarity:.3f}",
        )
    console.print(table)
