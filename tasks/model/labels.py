"""The 527 AudioSet classes in Cnn14's output order, from package data (no torch, no network)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np


@dataclass(frozen=True)
class AudioSetLabels:
    """The 527 AudioSet classes in Cnn14's output order."""

    ids: tuple[str, ...]
    names: tuple[str, ...]


@cache
def audioset_labels() -> AudioSetLabels:
    """Read the label CSV shipped as package data (CC BY 4.0, see tasks/model/data/README.md)."""
    text = (
        resources.files("tasks.model")
        .joinpath("data/audioset_class_labels_indices.csv")
        .read_text()
    )
    rows = list(csv.DictReader(text.splitlines()))
    return AudioSetLabels(
        ids=tuple(row["mid"] for row in rows), names=tuple(row["display_name"] for row in rows)
    )


def top_labels(probabilities: np.ndarray, count: int) -> tuple[list[str], list[float]]:
    """The ``count`` most probable AudioSet labels, best first, with their probabilities."""
    if count == 0:
        return [], []
    names = audioset_labels().names
    best = np.argsort(probabilities)[::-1][:count]
    return [names[i] for i in best], [float(probabilities[i]) for i in best]
