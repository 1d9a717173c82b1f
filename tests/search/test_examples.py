"""Searching with several examples: one vector from the liked and the unliked."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.search.examples import (
    MAX_EXAMPLES,
    ExamplesError,
    check_examples,
    combined_vector,
)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_liked_examples_count_alike_whatever_their_length() -> None:
    short, long = np.array([1.0, 0.0, 0.0]), np.array([0.0, 10.0, 0.0])
    query = combined_vector(np.stack([short, long]))
    assert cosine(query, short) == pytest.approx(cosine(query, long))


def test_unliked_examples_pull_the_query_away_from_them() -> None:
    rng = np.random.default_rng(0)
    liked, unliked = rng.random((3, 16)), rng.random((2, 16))
    alone = combined_vector(liked)
    pushed = combined_vector(liked, unliked)
    for example in unliked:
        assert cosine(pushed, example) < cosine(alone, example)
    assert np.allclose(combined_vector(liked, unliked, weight=0.0), alone)
    assert np.allclose(combined_vector(liked, np.zeros((0, 16))), alone)


def test_a_query_needs_a_liked_example_and_a_bounded_number() -> None:
    with pytest.raises(ExamplesError, match="at least one example"):
        combined_vector(np.zeros((0, 4)))
    with pytest.raises(ExamplesError, match="at least one example"):
        check_examples(0, 2)
    with pytest.raises(ExamplesError, match=f"at most {MAX_EXAMPLES}"):
        check_examples(MAX_EXAMPLES, 1)
    check_examples(1, MAX_EXAMPLES - 1)
