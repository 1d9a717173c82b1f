"""What an anomaly scan reports: a markdown artifact with counts, silent clips, the top
anomalies and where they are, and the distribution of scores against the thresholds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from prefect.artifacts import create_markdown_artifact

from tasks.anomaly.scoring import Calibration, ClipScore


def score_histogram(scores: Sequence[float], thresholds: Sequence[float], bins: int = 12) -> str:
    """A text histogram of scores with the threshold(s) marked, for the markdown report."""
    if not scores:
        return "(no clips scored)"
    low = min(min(scores), min(thresholds))
    high = max(max(scores), max(thresholds))
    width = (high - low) / bins or 1.0
    counts = defaultdict(int)
    for value in scores:
        counts[min(int((value - low) / width), bins - 1)] += 1
    lines = []
    for b in range(bins):
        start = low + b * width
        mark = " <- threshold" if any(start <= t < start + width for t in thresholds) else ""
        lines.append(f"{start:8.4f} | {'#' * counts[b]:<30} {counts[b]}{mark}")
    return "\n".join(lines)


def scan_report(
    scores: Sequence[ClipScore],
    calibrations: dict[str, Calibration],
    snapshot_version: int | None,
    without_reference: int,
    problems: Sequence[str],
) -> str:
    """The markdown report of a scan: counts, the silent clips, the top anomalies with where
    they are, the distribution of scores against the thresholds, and the clips not scored."""
    silent = [s for s in scores if s.silent]
    scored = [s for s in scores if not s.silent]
    anomalies = sorted((s for s in scored if s.is_anomaly), key=lambda s: -s.score)
    lines = [
        "# Anomaly scan",
        f"Snapshot version {snapshot_version}: {len(scored)} clips scored, "
        f"**{len(anomalies)} anomalous**, **{len(silent)} silent**, {len(problems)} not "
        f"scored, {without_reference} without a reference group.",
        "",
        "| group | threshold | score | method | reference clips |",
        "|---|---|---|---|---|",
        *(
            f"| {g or '(all)'} | {c.threshold:.4f} | {c.scoring} | {c.method} q={c.quantile} "
            f"k={c.k} | {c.reference_clips} |"
            for g, c in sorted(calibrations.items())
        ),
    ]
    if silent:
        lines += [
            "",
            "## Silent clips (stopped machine or dead microphone?)",
            "| clip | group |",
            "|---|---|",
            *(f"| {s.path} | {s.group or '(all)'} |" for s in sorted(silent, key=lambda s: s.path)),
        ]
    lines += [
        "",
        "## Top anomalies",
        "| clip | group | score | threshold | worst window starts at (s) | nearest normal |",
        "|---|---|---|---|---|---|",
        *(
            f"| {s.path} | {s.group} | {s.score:.4f} | {s.threshold:.4f} | "
            f"{s.worst_window_start_seconds:.1f} | {', '.join(s.nearest_reference_paths[:2])} |"
            for s in anomalies[:20]
        ),
        "",
        "## Score distribution",
        "```",
        score_histogram([s.score for s in scored], [c.threshold for c in calibrations.values()]),
        "```",
    ]
    if problems:
        lines += ["", "## Clips not scored", *(f"- {p}" for p in problems)]
    return "\n".join(lines)


def publish_scan_report(report: str, anomalies: int, scored: int) -> None:
    """The scan report as a markdown artifact (key ``anomaly-scan``)."""
    create_markdown_artifact(
        report, key="anomaly-scan", description=f"{anomalies} anomalies in {scored} clips"
    )
