"""Searching with several examples: "like these, unlike those".

The examples' vectors become one query vector: the mean of the liked examples' unit vectors,
minus ``UNLIKE_WEIGHT`` times the mean of the unliked ones (Rocchio's relevance feedback), so
the search stays one index query whatever the number of examples, and a hit's score is its
cosine to that vector. benchmarks/query_by_examples.py chose this over fusing the ranks of one
search per example (docs/how-to/serve.md has the figures).
"""

from __future__ import annotations

import numpy as np

from tasks.errors import UserError

#: How much the unliked examples pull the query away (chosen by the benchmark).
UNLIKE_WEIGHT = 0.25
#: Examples one query may carry (each may mean a forward pass).
MAX_EXAMPLES = 20


class ExamplesError(UserError):
    """The examples do not make a query."""


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.atleast_2d(np.asarray(vectors, np.float32))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def combined_vector(
    liked: np.ndarray, unliked: np.ndarray | None = None, weight: float = UNLIKE_WEIGHT
) -> np.ndarray:
    """One query vector [d] from liked [n, d] and unliked [m, d] example vectors: the mean of
    the liked unit vectors minus ``weight`` times the mean of the unliked ones."""
    liked = np.asarray(liked, np.float32)
    if liked.size == 0:
        raise ExamplesError("a search needs at least one example it should sound like")
    query = _unit(liked).mean(axis=0)
    if unliked is not None and np.asarray(unliked).size:
        query = query - weight * _unit(unliked).mean(axis=0)
    return query.astype(np.float32)


def check_examples(liked: int, unliked: int) -> None:
    """Refuse queries with no liked example, or more examples than a query may carry."""
    if liked == 0:
        raise ExamplesError("give at least one example to search like (--like, like=)")
    if liked + unliked > MAX_EXAMPLES:
        raise ExamplesError(f"{liked + unliked} examples: a query takes at most {MAX_EXAMPLES}")
