"""The AudioSet labels shipped as package data."""

from __future__ import annotations

import numpy as np

from tasks.model.constants import NUM_CLASSES
from tasks.model.labels import audioset_labels, top_labels_of_rows


def test_labels_are_the_527_audioset_classes_in_model_order() -> None:
    labels = audioset_labels()
    assert len(labels.names) == NUM_CLASSES == len(set(labels.ids))
    assert labels.names[0] == "Speech" and labels.names[137] == "Music"


def test_top_labels_are_the_most_probable_best_first() -> None:
    probabilities = np.zeros(NUM_CLASSES, dtype=np.float32)
    probabilities[[137, 0, 74]] = [0.9, 0.5, 0.7]
    names, scores = top_labels_of_rows(probabilities[None], 2)
    assert names == [["Music", audioset_labels().names[74]]]
    assert scores == [[np.float32(0.9), np.float32(0.7)]]
    assert top_labels_of_rows(probabilities[None], 0) == ([[]], [[]])


def test_top_labels_of_rows_match_each_rows_full_sort() -> None:
    probabilities = np.random.default_rng(3).random((40, NUM_CLASSES), dtype=np.float32)
    names, scores = top_labels_of_rows(probabilities, 3)
    for row, row_names, row_scores in zip(probabilities, names, scores, strict=True):
        best = np.argsort(row)[::-1][:3]
        assert row_names == [audioset_labels().names[i] for i in best]
        assert row_scores == [float(row[i]) for i in best]
    assert top_labels_of_rows(probabilities[:0], 3) == ([], [])
    assert top_labels_of_rows(probabilities[:2], 0) == ([[], []], [[], []])
