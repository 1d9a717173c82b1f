"""``audio-embeddings classify``: train classifiers on label sets, and label the catalogue."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli.output import console, evaluation_table
from flows.temporary_server import prefect_api

app = typer.Typer(
    help="Train classifiers on label sets and label the catalogue.", no_args_is_help=True
)


@app.command("train")
def train(
    name: Annotated[str, typer.Argument(help="The label set to learn")],
    min_per_class: Annotated[
        int | None, typer.Option(min=2, help="Fewest labelled clips a label needs (default 5)")
    ] = None,
) -> None:
    """Train a classifier for label set NAME (k-NN or logistic regression, chosen by
    stratified cross-validation) and show its cross-validated evaluation."""
    from flows.classify import train_classifier

    with prefect_api():
        given = {"min_per_class": min_per_class} if min_per_class else {}
        summary = train_classifier(label_set=name, **given)
    console.print(evaluation_table(name, summary.evaluation))
    console.print(
        f"model {summary.model_fingerprint} stored; confusion matrix and calibration in the "
        f"classifier-{name.replace('_', '-')} artifact"
    )


@app.command("run")
def run(
    names: Annotated[
        list[str] | None, typer.Argument(help="Label sets (default: every trained one)")
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Abstain below this probability (default 0.6)"),
    ] = None,
) -> None:
    """Label the catalogue files new or changed since the last run, and give the index the
    predicted labels (search --predicted LABEL_SET=LABEL)."""
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
