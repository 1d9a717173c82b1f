"""Detection metrics on labelled scores, per machine (the folder evaluation runs through the CLI
test)."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.anomaly.evaluate import evaluate, evaluate_clips
from tasks.anomaly.scoring import ClipWindows, InvalidReferenceError


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


def _clips(group: str, name: str, count: int, centre: np.ndarray, seed: int) -> list[ClipWindows]:
    rng = np.random.default_rng(seed)
    return [
        ClipWindows(
            f"{group}-{name}{i}",
            f"{group}/{name}{i}.wav",
            np.abs(centre + 0.05 * rng.standard_normal((4, len(centre)))),
            np.arange(4.0),
        )
        for i in range(count)
    ]


def test_each_machine_is_scored_against_its_own_reference_for_both_scores() -> None:
    hum, whine = np.r_[np.ones(8), np.zeros(8)], np.r_[np.zeros(8), np.ones(8)]
    reference = _clips("easy", "r", 6, hum, 1) + _clips("hard", "r", 6, hum, 2)
    normal = _clips("easy", "n", 4, hum, 3) + _clips("hard", "n", 4, hum, 4)
    # the easy machine's anomalies sound like nothing normal; the hard one's are normal clips
    anomalous = _clips("easy", "a", 4, whine, 5) + _clips("hard", "a", 4, hum, 6)
    results = evaluate_clips(reference, normal, anomalous, group_pattern=r"^([^/]+)/")
    assert [r.scoring for r in results] == ["knn", "mahalanobis"]
    for result in results:
        assert set(result.per_group) == {"easy", "hard"}
        assert result.per_group["easy"].roc_auc == 1.0
        assert result.per_group["hard"].roc_auc < 0.9
        hard, easy = result.per_group["hard"].partial_auc, result.per_group["easy"].partial_auc
        assert result.mean_partial_auc == pytest.approx(2 / (1 / hard + 1 / easy))
