"""What the pipeline needs of a vector index, whatever the backend.

Every backend records which snapshot version it reflects, applies only the difference since
then, and answers k-NN queries with cosine similarity (1.0 = same direction) and an optional
filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import numpy as np

from tasks.index.filters import SearchFilter
from tasks.model.constants import EMBEDDING_SIZE
from tasks.storage.keyed_table import TableDiff


@dataclass(frozen=True)
class SearchHit:
    """One match: cosine similarity in [-1, 1] (Cnn14 embeddings are non-negative, so [0, 1]).
    ``key`` is the file's; a segment match also says where in the file (s)."""

    key: str
    path: str
    source_uri: str
    score: float
    duration_seconds: float
    #: AudioSet tags, most probable first
    tags: list[str] = field(default_factory=list)
    #: predicted labels, ``<label set>=<label>`` (file hits only)
    predicted_labels: list[str] = field(default_factory=list)
    start_seconds: float | None = None
    end_seconds: float | None = None


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh did; ``rebuilt_index`` names the index a rebuild filled."""

    from_version: int | None
    to_version: int
    upserted: int
    deleted: int
    rebuilt_index: str | None = None


class VectorIndex(Protocol):
    """What the pipeline needs of a vector index."""

    def reflected_version(self, snapshot_uri: str) -> int | None:
        """The snapshot version the index reflects (None: never filled from that table)."""
        ...

    def needs_rebuild(self) -> bool:
        """Whether the index holds documents written before a field it copies from the table
        existed (a field renamed since): only a rebuild fills it."""
        ...

    def apply(self, diff: TableDiff, snapshot_uri: str) -> RefreshResult:
        """Upsert the diff's rows, delete its removed keys, then record its ``to_version``."""
        ...

    def rebuild(self, everything: TableDiff, snapshot_uri: str, drop_old: bool = False) -> str:
        """Build a fresh index from a whole snapshot and switch readers to it when complete.

        A rebuild that failed part-way and is run again must not leave a second new index.
        """
        ...

    def search(
        self,
        vector: np.ndarray,
        k: int = 10,
        where: SearchFilter | None = None,
        per_file: int = 1,
    ) -> list[SearchHit]:
        """The ``k`` nearest documents to ``vector`` (2048 floats) by cosine similarity; for a
        segments index, at most ``per_file`` segments of one file."""
        ...

    def count(self) -> int:
        """Documents in the index."""
        ...

    def set_predicted_labels(self, by_key: dict[str, list[str]]) -> None:
        """Replace the predicted labels of the documents of ``by_key``'s keys (files layout);
        keys not indexed yet are skipped (a refresh adds them with their predicted labels)."""
        ...

    def maintain(self, retention: timedelta, dry_run: bool = False) -> dict[str, int] | None:
        """Upkeep of the index's storage (None where the service does its own)."""
        ...


def check_query_vector(vector: np.ndarray) -> np.ndarray:
    """``vector`` as float32 if it has the embedding's shape; ValueError otherwise."""
    if vector.shape != (EMBEDDING_SIZE,):
        raise ValueError(f"query vector must have {EMBEDDING_SIZE} values, got {vector.shape}")
    return vector.astype(np.float32, copy=False)
