"""How well the anomaly scores separate labelled normal and anomalous clips: ROC AUC, partial
AUC and precision/recall at the calibrated threshold, on folders of audio (the
``anomaly evaluate`` command and benchmarks/anomaly_eval.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.anomaly.scan import clip_windows, scan_embedder
from tasks.anomaly.scoring import (
    Calibration,
    ClipWindows,
    InvalidReferenceError,
    Reference,
    calibrate,
    score_clip,
)
from tasks.model.embedder import PannsEmbedder
from tasks.settings import Settings
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


def embed_folder(folder: Path, embedder: PannsEmbedder) -> tuple[list[ClipWindows], list[str]]:
    """Scan-window embeddings of every audio file in a folder."""
    source = LocalSource(folder)
    return clip_windows([(item, source) for item in source.list_items()], embedder)


def evaluate_folders(
    reference_dir: Path,
    normal_dir: Path,
    anomalous_dir: Path,
    settings: Settings,
    k: int = 3,
    method: str = "gamma",
    quantile: float = 0.99,
    window_seconds: float = 2.0,
    hop_seconds: float | None = 1.0,
) -> tuple[Evaluation, Calibration]:
    """Calibrate on ``reference_dir`` and measure detection on labelled normal/anomalous clips."""
    embedder = scan_embedder(settings, window_seconds, hop_seconds)
    reference = Reference("", embed_folder(reference_dir, embedder)[0], k)
    calibration = calibrate(reference, method, quantile)
    normal = [
        score_clip(c, reference, calibration).score for c in embed_folder(normal_dir, embedder)[0]
    ]
    anomalous = [
        score_clip(c, reference, calibration).score
        for c in embed_folder(anomalous_dir, embedder)[0]
    ]
    return evaluate(normal, anomalous, calibration.threshold), calibration
