"""How well the anomaly scores separate labelled normal and anomalous clips, on folders of audio
(the ``anomaly evaluate`` command and benchmarks/anomaly_eval.py): ROC AUC, partial AUC and
precision/recall at the calibrated threshold, for each window score, overall and per machine.

Clips are embedded exactly as ingest embeds them (the configured windows, their segments) and
pooled into scan windows exactly as a scan pools the stored segments, so the figures are those
of a scan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.anomaly.scoring import (
    SCORINGS,
    Calibration,
    ClipWindows,
    InvalidReferenceError,
    Reference,
    ReferenceSelector,
    Scoring,
    calibrate,
    score_clip,
)
from tasks.anomaly.windows import ScanWindows, clip_of_segments
from tasks.audio.errors import AudioError
from tasks.ingest.stream import embed_items
from tasks.model.embedder import PannsEmbedder, load_embedder
from tasks.settings import Settings
from tasks.storage.segments import encode_vectors, segment_vectors
from tasks.storage.sources import LocalSource


@dataclass(frozen=True)
class Evaluation:
    """Detection quality on labelled clips."""

    roc_auc: float
    partial_auc: float
    precision: float
    recall: float
    normal_clips: int
    anomalous_clips: int


@dataclass(frozen=True)
class ScoringEvaluation:
    """One window score's quality: over all clips, and per machine (group) with its threshold.

    ``overall`` ranks clips by score over their own group's threshold, so that machines with
    different score scales can be pooled; ``mean_auc`` and ``mean_partial_auc`` are the
    harmonic means over machines, as the DCASE Task 2 ranking computes them.
    """

    scoring: Scoring
    overall: Evaluation
    per_group: dict[str, Evaluation]
    calibrations: dict[str, Calibration]

    @property
    def mean_auc(self) -> float:
        return _harmonic_mean([e.roc_auc for e in self.per_group.values()])

    @property
    def mean_partial_auc(self) -> float:
        return _harmonic_mean([e.partial_auc for e in self.per_group.values()])


def evaluate(
    normal_scores: Sequence[float],
    anomalous_scores: Sequence[float],
    threshold: float,
    max_fpr: float = 0.1,
) -> Evaluation:
    """ROC AUC, partial AUC at ``max_fpr`` (standardised, as sklearn and the DCASE Task 2
    evaluator compute it), and precision / recall at ``threshold``."""
    from sklearn.metrics import roc_auc_score

    if not normal_scores or not anomalous_scores:
        raise InvalidReferenceError(
            "evaluation needs both normal and anomalous clips: a folder held no readable audio"
        )
    truth = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomalous_scores))]
    predicted = np.r_[normal_scores, anomalous_scores]
    flagged = predicted > threshold
    true_positives = int((flagged & (truth == 1)).sum())
    return Evaluation(
        roc_auc=float(roc_auc_score(truth, predicted)),
        partial_auc=float(roc_auc_score(truth, predicted, max_fpr=max_fpr)),
        precision=true_positives / max(int(flagged.sum()), 1),
        recall=true_positives / len(anomalous_scores),
        normal_clips=len(normal_scores),
        anomalous_clips=len(anomalous_scores),
    )


def embed_folder(
    folder: Path, embedder: PannsEmbedder, windows: ScanWindows, as_stored: bool = True
) -> tuple[list[ClipWindows], list[str]]:
    """The scan windows of every audio file in a folder (paths relative to it), as a scan
    would read them from the segments table (``as_stored``: through its float16 storage);
    unreadable files are reported."""
    source = LocalSource(folder)
    clips, problems = [], []
    for item, outcome in embed_items([(item, source) for item in source.list_items()], embedder):
        if isinstance(outcome, AudioError):
            problems.append(str(outcome))
            continue
        segments = outcome.result.segments
        if as_stored:
            stored = segment_vectors(encode_vectors(segments.embeddings))
            segments = dataclasses.replace(segments, embeddings=stored)
        clips.append(clip_of_segments(item.key, item.path, segments, windows))
    return clips, problems


def evaluate_folders(
    reference_dir: Path,
    normal_dir: Path,
    anomalous_dir: Path,
    settings: Settings,
    windows: ScanWindows | None = None,
    scorings: Sequence[Scoring] = SCORINGS,
    k: int = 3,
    method: str = "gamma",
    quantile: float = 0.99,
    group_pattern: str | None = None,
) -> list[ScoringEvaluation]:
    """Calibrate on ``reference_dir`` and measure detection on labelled normal/anomalous clips,
    for each of ``scorings``; with ``group_pattern`` (a regular expression whose first group,
    matched against a path within each folder, names the machine), per machine."""
    windows = windows or ScanWindows()
    embedder = load_embedder(settings.model_settings(), settings.audio_limits())
    reference, normal, anomalous = (
        embed_folder(folder, embedder, windows)[0]
        for folder in (reference_dir, normal_dir, anomalous_dir)
    )
    return evaluate_clips(
        reference, normal, anomalous, scorings, k, method, quantile, group_pattern
    )


def evaluate_clips(
    reference_clips: Sequence[ClipWindows],
    normal_clips: Sequence[ClipWindows],
    anomalous_clips: Sequence[ClipWindows],
    scorings: Sequence[Scoring] = SCORINGS,
    k: int = 3,
    method: str = "gamma",
    quantile: float = 0.99,
    group_pattern: str | None = None,
) -> list[ScoringEvaluation]:
    """``evaluate_folders`` on clips already cut into scan windows (however they were made)."""
    reference, normal, anomalous = (
        _by_group(clips, group_pattern)
        for clips in (reference_clips, normal_clips, anomalous_clips)
    )
    results = []
    for scoring in scorings:
        per_group, calibrations = {}, {}
        relative_normal: list[float] = []
        relative_anomalous: list[float] = []
        for group, clips in sorted(reference.items()):
            fitted = Reference(group, clips, k, scoring)
            calibration = calibrate(fitted, method, quantile)
            normal_scores = [
                score_clip(c, fitted, calibration).score for c in normal.get(group, [])
            ]
            anomalous_scores = [
                score_clip(c, fitted, calibration).score for c in anomalous.get(group, [])
            ]
            per_group[group] = evaluate(normal_scores, anomalous_scores, calibration.threshold)
            calibrations[group] = calibration
            relative_normal += [s / calibration.threshold for s in normal_scores]
            relative_anomalous += [s / calibration.threshold for s in anomalous_scores]
        overall = evaluate(relative_normal, relative_anomalous, 1.0)
        results.append(ScoringEvaluation(scoring, overall, per_group, calibrations))
    return results


def _by_group(
    clips: Sequence[ClipWindows], group_pattern: str | None
) -> dict[str, list[ClipWindows]]:
    grouping = ReferenceSelector(group_pattern=group_pattern)
    groups: dict[str, list[ClipWindows]] = {}
    for clip in clips:
        groups.setdefault(grouping.group_of(clip.path), []).append(clip)
    return groups


def _harmonic_mean(values: Sequence[float]) -> float:
    values = [max(v, 1e-12) for v in values]
    return len(values) / sum(1 / v for v in values)
