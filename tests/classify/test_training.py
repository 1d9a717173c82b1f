"""Training: the model is chosen by cross-validation, every figure is cross-validated, and
labels that cannot be learned are refused with the counts."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.classify.training import TrainingError, calibration, train
from tests.classify.conftest import clustered_embeddings


def test_separable_labels_beat_the_majority_baseline_with_consistent_figures() -> None:
    labels = ["fan"] * 20 + ["pump"] * 12 + ["valve"] * 8
    embeddings = clustered_embeddings(labels, spread=0.2)
    model, evaluation = train(embeddings, labels)
    assert evaluation.labels == ["fan", "pump", "valve"]
    assert evaluation.macro_f1 == max(evaluation.candidates_macro_f1.values())
    assert evaluation.macro_f1 > 0.9 > evaluation.majority_macro_f1
    assert set(evaluation.candidates_macro_f1) == {"knn", "logistic_regression"}
    confusion = np.asarray(evaluation.confusion)
    assert confusion.sum() == 40 and list(confusion.sum(axis=1)) == [20, 12, 8]
    assert [m.support for m in evaluation.per_class] == [20, 12, 8]
    assert 0.0 <= evaluation.expected_calibration_error <= 1.0
    assert sum(b.clips for b in evaluation.calibration) == 40
    assert list(model.predict(embeddings[[0, 25, 39]])) == ["fan", "pump", "valve"]


def test_labels_that_carry_no_signal_score_near_chance() -> None:
    rng = np.random.default_rng(1)
    labels = ["a", "b"] * 20
    embeddings = rng.random((40, 2048), dtype=np.float32)
    _, evaluation = train(embeddings, labels)
    assert evaluation.macro_f1 < 0.8  # cross-validated: the model cannot memorise its way up


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["a"] * 10, "at least 2 labels; this set has 1 \\(a: 10\\)"),
        (["a"] * 10 + ["b"] * 3 + ["c"] * 4, "'b' has 3, 'c' has 4; each label needs at least 5"),
    ],
)
def test_too_few_classes_or_examples_are_refused_with_the_counts(
    labels: list[str], message: str
) -> None:
    with pytest.raises(TrainingError, match=message):
        train(np.zeros((len(labels), 2048), np.float32), labels)


def test_calibration_error_is_the_weighted_gap_between_confidence_and_accuracy() -> None:
    confidence = np.array([0.95, 0.95, 0.95, 0.95, 0.55, 0.55])
    correct = np.array([True, True, True, False, True, False])
    ece, bins = calibration(confidence, correct)
    assert [(b.clips, b.accuracy) for b in bins] == [(2, 0.5), (4, 0.75)]
    assert ece == pytest.approx((2 * 0.05 + 4 * 0.2) / 6)
