"""Commands that make things to try the pipeline with: a random-weight checkpoint, sample
catalogues, and the demo that runs the main job on them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.catalogue import ingest, search
from flows.cli.output import console
from flows.temporary_server import prefect_api
from tasks.errors import UserError
from tasks.model.checkpoint import CheckpointNotFoundError, resolve_checkpoint
from tasks.settings import Settings


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
