"""Detection metrics on labelled scores (the folder evaluation runs through the CLI test)."""

from __future__ import annotations

import pytest

from tasks.anomaly.evaluate import evaluate
from tasks.anomaly.scoring import InvalidReferenceError


def test_evaluation_metrics() -> None:
    perfect = evaluate([0.1, 0.2, 0.15], [0.8, 0.9], threshold=0.5)
    assert perfect.roc_auc == 1.0 and perfect.partial_auc == 1.0
    assert (perfect.precision, perfect.recall) == (1.0, 1.0)
    mixed = evaluate([0.1, 0.6, 0.2, 0.3], [0.5, 0.9], threshold=0.55)
    assert 0.5 < mixed.roc_auc < 1.0
    assert mixed.precision == 0.5 and mixed.recall == 0.5


def test_an_empty_side_is_a_user_error() -> None:
    with pytest.raises(InvalidReferenceError, match="both normal and anomalous"):
        evaluate([0.1, 0.2], [], threshold=0.5)
