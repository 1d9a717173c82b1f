"""AudioSet tags: the 527 AudioSet classes in Cnn14's output order (package data; no torch, no
network), and a file's tags, its most probable classes."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np


@dataclass(frozen=True)
class AudioSetTags:
    """The 527 AudioSet classes in Cnn14's output order: the names a file can be tagged with."""

    ids: tuple[str, ...]
    names: tuple[str, ...]


@cache
def audioset_tags() -> AudioSetTags:
    """Read the class CSV shipped as package data (CC BY 4.0, see tasks/model/data/README.md)."""
    text = (
        resources.files("tasks.model")
        .joinpath("data/audioset_class_labels_indices.csv")
        .read_text()
    )
    rows = list(csv.DictReader(text.splitlines()))
    return AudioSetTags(
        ids=tuple(row["mid"] for row in rows), names=tuple(row["display_name"] for row in rows)
    )


def top_tags_of_rows(
    probabilities: np.ndarray, count: int
) -> tuple[list[list[str]], list[list[float]]]:
    """The tags of every row of ``probabilities`` [n, 527]: its ``count`` most probable AudioSet
    classes, best first, with their probabilities, in one pass (ingest tags thousands of
    segments a second on a GPU, where a sort per row would cost more than the model)."""
    rows = len(probabilities)
    if count == 0 or rows == 0:
        return [[] for _ in range(rows)], [[] for _ in range(rows)]
    count = min(count, probabilities.shape[1])
    # the count best of each row (unordered), then ordered best first
    best = np.argpartition(-probabilities, count - 1, axis=1)[:, :count]
    order = np.argsort(-np.take_along_axis(probabilities, best, axis=1), axis=1, kind="stable")
    best = np.take_along_axis(best, order, axis=1)
    scores = np.take_along_axis(probabilities, best, axis=1).astype(float).tolist()
    names = np.asarray(audioset_tags().names, dtype=object)[best].tolist()
    return names, scores
