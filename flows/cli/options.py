"""Options several commands share, and the checks made before a flow starts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.output import console
from tasks.audio.decode import decode as decode_audio
from tasks.model.checkpoint import resolve_checkpoint
from tasks.settings import Settings

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


def preflight(checkpoint: Path | None, *queries: Path) -> None:
    """Check what a user supplies before a flow (and a temporary Prefect server) starts."""
    settings = Settings.with_overrides(checkpoint_path=checkpoint)
    resolve_checkpoint(settings.model_settings())
    for query in queries:
        if query.is_file():
            # Validation only: the search flow decodes (and resamples) the query itself.
            decode_audio(str(query), query.read_bytes(), settings.audio_limits(), resample=False)


def metadata_pairs(values: list[str] | None) -> list[str] | None:
    """Check ``KEY=VALUE`` options as they are parsed (a usage error names the option)."""
    for value in values or []:
        key, equals, _ = value.partition("=")
        if not key or not equals:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE")
    return values


def deprecated_option(old: str, new: str, values: list[str] | None) -> list[str]:
    """The values given with a renamed option's old name, with a warning that names the new
    one (old names work for one release)."""
    if values:
        console.print(f"[yellow]warning:[/] {old} is deprecated: use {new}")
    return list(values or ())
