"""The AudioSet classes shipped as package data, and the tags ranked from them."""

from __future__ import annotations

import numpy as np

from tasks.model.constants import NUM_CLASSES
from tasks.model.tags import audioset_tags, top_tags_of_rows


def test_the_tag_vocabulary_is_the_527_audioset_predicted_labels_in_model_order() -> None:
    classes = audioset_tags()
    assert len(classes.names) == NUM_CLASSES == len(set(classes.ids))
    assert classes.names[0] == "Speech" and classes.names[137] == "Music"


def test_tags_are_the_most_probable_classes_best_first() -> None:
    probabilities = np.zeros(NUM_CLASSES, dtype=np.float32)
    probabilities[[137, 0, 74]] = [0.9, 0.5, 0.7]
    names, scores = top_tags_of_rows(probabilities[None], 2)
    assert names == [["Music", audioset_tags().names[74]]]
    assert scores == [[np.float32(0.9), np.float32(0.7)]]
    assert top_tags_of_rows(probabilities[None], 0) == ([[]], [[]])


def test_top_tags_of_rows_match_each_rows_full_sort() -> None:
    probabilities = np.random.default_rng(3).random((40, NUM_CLASSES), dtype=np.float32)
    names, scores = top_tags_of_rows(probabilities, 3)
    for row, row_names, row_scores in zip(probabilities, names, scores, strict=True):
        best = np.argsort(row)[::-1][:3]
        assert row_names == [audioset_tags().names[i] for i in best]
        assert row_scores == [float(row[i]) for i in best]
    assert top_tags_of_rows(probabilities[:0], 3) == ([], [])
    assert top_tags_of_rows(probabilities[:2], 0) == ([[], []], [[], []])
