"""Train a classifier on snapshot embeddings of labelled clips, choosing between k-NN and a
logistic regression by stratified cross-validation, and evaluate the choice honestly.

Every figure of the evaluation comes from cross-validated predictions (each clip predicted by a
model that never saw it): macro-F1 of each candidate and of the majority-class baseline,
per-class precision, recall and F1, the confusion matrix, and calibration (expected calibration
error and a reliability table of the predicted probability against the observed accuracy). The
model that is kept is the chosen candidate refitted on every labelled clip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from sklearn.base import ClassifierMixin, clone
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from tasks.errors import UserError
from tasks.storage.delta import keys_in, scan

if TYPE_CHECKING:
    from tasks.storage.snapshots import SnapshotTable

#: Fewest examples of a class that training accepts: each of the folds needs one to test on.
MIN_EXAMPLES_PER_CLASS = 5
#: Folds of the cross-validation (fewer when the smallest class is smaller).
FOLDS = 5
#: Reliability table bins over the predicted probability of the chosen label.
CALIBRATION_BINS = 10


class TrainingError(UserError):
    """Labels that cannot train a classifier (too few classes or examples)."""


def candidates() -> dict[str, Pipeline]:
    """The models compared: cosine k-NN (the embeddings' own geometry; no fitting) and an
    L2-regularised logistic regression on standardised, L2-normalised embeddings (calibrated
    probabilities by construction)."""
    return {
        "knn": make_pipeline(Normalizer(), KNeighborsClassifier(n_neighbors=7, weights="distance")),
        "logistic_regression": make_pipeline(
            Normalizer(),
            StandardScaler(),
            LogisticRegression(C=0.5, max_iter=2_000, class_weight="balanced"),
        ),
    }


@dataclass(frozen=True)
class ClassMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class CalibrationBin:
    """Clips whose chosen-label probability fell in [low, high): their mean probability and
    how often the chosen label was right."""

    low: float
    high: float
    clips: int
    mean_probability: float
    accuracy: float


@dataclass(frozen=True)
class Evaluation:
    """Cross-validated evaluation of the chosen model (see the module docstring)."""

    algorithm: str
    folds: int
    clips: int
    labels: list[str]
    macro_f1: float
    candidates_macro_f1: dict[str, float]
    majority_macro_f1: float
    per_class: list[ClassMetrics]
    confusion: list[list[int]]  # rows: true label, columns: predicted, in ``labels`` order
    expected_calibration_error: float
    calibration: list[CalibrationBin] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Evaluation:
        return cls(
            **{
                **data,
                "per_class": [ClassMetrics(**row) for row in data["per_class"]],
                "calibration": [CalibrationBin(**row) for row in data["calibration"]],
            }
        )


def check_trainable(labels: list[str], min_per_class: int = MIN_EXAMPLES_PER_CLASS) -> None:
    """Refuse, with the counts, labels that cannot be cross-validated and trained on."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    if len(counts) < 2:
        raise TrainingError(
            f"a classifier needs at least 2 labels; this set has {len(counts)} "
            f"({', '.join(f'{k}: {v}' for k, v in counts.items()) or 'no labelled clip'})"
        )
    small = {label: n for label, n in sorted(counts.items()) if n < min_per_class}
    if small:
        listed = ", ".join(f"{label!r} has {n}" for label, n in small.items())
        raise TrainingError(
            f"too few examples: {listed}; each label needs at least {min_per_class} labelled "
            "clips (label more, or leave that label out of the set)"
        )


def train(
    embeddings: np.ndarray,
    labels: list[str],
    min_per_class: int = MIN_EXAMPLES_PER_CLASS,
    seed: int = 0,
) -> tuple[ClassifierMixin, Evaluation]:
    """Choose the candidate with the best cross-validated macro-F1, evaluate it, and return it
    refitted on every clip. ``embeddings`` [n, 2048] float32, ``labels`` n strings."""
    check_trainable(labels, min_per_class)
    y = np.asarray(labels)
    classes = sorted(set(labels))
    smallest = min(int((y == label).sum()) for label in classes)
    folds = StratifiedKFold(n_splits=min(FOLDS, smallest), shuffle=True, random_state=seed)
    probabilities: dict[str, np.ndarray] = {}
    scores: dict[str, float] = {}
    for name, model in candidates().items():
        predicted = cross_val_predict(model, embeddings, y, cv=folds, method="predict_proba")
        probabilities[name] = predicted
        scores[name] = float(
            f1_score(y, np.asarray(classes)[predicted.argmax(axis=1)], average="macro")
        )
    chosen = max(scores, key=lambda name: (scores[name], name == "logistic_regression"))
    predicted_probabilities = probabilities[chosen]
    predicted = np.asarray(classes)[predicted_probabilities.argmax(axis=1)]
    majority = cross_val_predict(DummyClassifier(strategy="most_frequent"), embeddings, y, cv=folds)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=classes, zero_division=0
    )
    ece, bins = calibration(predicted_probabilities.max(axis=1), predicted == y)
    evaluation = Evaluation(
        algorithm=chosen,
        folds=folds.n_splits,
        clips=len(labels),
        labels=classes,
        macro_f1=scores[chosen],
        candidates_macro_f1=scores,
        majority_macro_f1=float(f1_score(y, majority, average="macro", zero_division=0)),
        per_class=[
            ClassMetrics(label, float(p), float(r), float(f), int(s))
            for label, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        ],
        confusion=confusion_matrix(y, predicted, labels=classes).tolist(),
        expected_calibration_error=ece,
        calibration=bins,
    )
    model = clone(candidates()[chosen]).fit(embeddings, y)
    return model, evaluation


def calibration(
    confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS
) -> tuple[float, list[CalibrationBin]]:
    """Expected calibration error (the clip-weighted mean gap between confidence and accuracy
    over equal-width bins) and the non-empty bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table: list[CalibrationBin] = []
    gap = 0.0
    for index in range(bins):
        inside = which == index
        count = int(inside.sum())
        if not count:
            continue
        mean_probability = float(confidence[inside].mean())
        accuracy = float(correct[inside].mean())
        gap += count * abs(mean_probability - accuracy)
        table.append(
            CalibrationBin(
                float(edges[index]), float(edges[index + 1]), count, mean_probability, accuracy
            )
        )
    return gap / max(len(confidence), 1), table


def labelled_embeddings(
    snapshot: SnapshotTable, keys: list[str]
) -> tuple[list[str], np.ndarray, int]:
    """The snapshot embeddings of ``keys`` that are still in the catalogue (keys, [n, 2048],
    snapshot version)."""
    from tasks.classify.labelsets import LabelSetError

    latest = snapshot.latest()
    if latest.data is None:
        raise LabelSetError("no snapshot yet: ingest the audio before training")
    rows = scan(latest.data, ["key", "embedding"], keys_in(keys))
    found = rows["key"].cast(pa.string()).to_pylist()
    if not found:
        raise LabelSetError("none of the label set's files is in the catalogue any more")
    vectors = np.stack(rows["embedding"].to_numpy(zero_copy_only=False)).astype(np.float32)
    return found, vectors, latest.table.version()
