"""The ``audio-embeddings`` command: runs the same Prefect flows as the deployments.

One module per command group; every command runs under the guard in ``flows.cli.guard``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli import anomaly, catalogue, classify, labels, samples, serve
from flows.cli.guard import GuardedGroup
from flows.cli.output import console

HELP = "PANNs audio embeddings: ingest a catalogue, search by audio, keep an index fresh."

app = typer.Typer(cls=GuardedGroup, help=HELP, no_args_is_help=True, pretty_exceptions_enable=False)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        console.print(f"audio-embeddings {version('audio-embeddings')}")
        raise typer.Exit()


@app.callback(help=HELP)
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass


app.command()(catalogue.ingest)
app.command()(catalogue.search)
app.command()(serve.serve)
app.command()(catalogue.duplicates)
app.command("map")(catalogue.map_)
app.command("refresh-index")(catalogue.refresh_index)
app.command()(catalogue.maintain)
app.command("make-random-checkpoint")(samples.make_random_checkpoint)
app.command("make-samples")(samples.make_samples)
app.command()(samples.demo)
app.add_typer(labels.app, name="labels")
app.add_typer(classify.app, name="classify")
app.add_typer(anomaly.app, name="anomaly")
