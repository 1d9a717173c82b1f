"""``audio-embeddings anomaly``: scans against references of normal sound, and their
evaluation on labelled folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.options import Checkpoint, metadata_pairs, preflight
from flows.cli.output import anomaly_evaluation_table, console
from flows.temporary_server import prefect_api
from tasks.anomaly.scoring import DEFAULT_SCORING, Scoring
from tasks.anomaly.windows import DEFAULT_SCAN_HOP_SECONDS, DEFAULT_SCAN_WINDOW_SECONDS
from tasks.settings import Settings

app = typer.Typer(help="Anomaly scans against references of normal sound.", no_args_is_help=True)

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


@app.command("scan")
def scan(
    reference_prefix: Annotated[
        str | None, typer.Option(help="Snapshot path prefix of the normal clips")
    ] = None,
    reference_metadata: Annotated[
        list[str] | None,
        typer.Option(
            help="Blob metadata KEY=VALUE of the normal clips (repeatable: all match)",
            callback=metadata_pairs,
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


@app.command("evaluate")
def evaluate(
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

    preflight(checkpoint)
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
    console.print(anomaly_evaluation_table(results))
