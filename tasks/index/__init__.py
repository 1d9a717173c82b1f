"""The vector index: a derived view of one snapshot version, behind one small interface.

Backends: ``LanceDBIndex`` (embedded default, a local folder) and ``AzureSearchIndex``
(Azure AI Search). Every backend records which
snapshot version it reflects, applies only the difference since then, and answers k-NN queries
with cosine similarity (1.0 = same direction) and an optional filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tasks.snapshots import SnapshotDiff


@dataclass(frozen=True)
class SearchFilter:
    """Restrict a search: paths under a prefix and/or files tagged with any of some labels."""

    path_prefix: str | None = None
    any_labels: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.path_prefix and not self.any_labels


@dataclass(frozen=True)
class SearchHit:
    """One match: cosine similarity in [-1, 1] (Cnn14 embeddings are non-negative, so [0, 1])."""

    key: str
    path: str
    source_uri: str
    score: float
    duration_seconds: float
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh did."""

    from_version: int | None
    to_version: int
    upserted: int
    deleted: int


class VectorIndex(Protocol):
    """What the pipeline needs of a vector index."""

    def reflected_version(self, snapshot_uri: str) -> int | None:
        """The snapshot version the index reflects (None: never filled from that table)."""
        ...

    def apply(self, diff: SnapshotDiff, snapshot_uri: str) -> RefreshResult:
        """Upsert the diff's rows, delete its removed keys, then record its ``to_version``."""
        ...

    def rebuild(self, everything: SnapshotDiff, snapshot_uri: str, drop_old: bool = False) -> str:
        """Build a fresh index from a whole snapshot and switch readers to it when complete."""
        ...

    def search(
        self, vector: np.ndarray, k: int = 10, where: SearchFilter | None = None
    ) -> list[SearchHit]:
        """The ``k`` nearest files to ``vector`` (2048 floats) by cosine similarity."""
        ...

    def count(self) -> int:
        """Documents in the index."""
        ...
