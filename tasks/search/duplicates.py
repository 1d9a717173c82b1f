"""Near-duplicates and outliers of the catalogue, from the vector index: each file asks the index
for its nearest neighbours (an ANN query, never all pairs), files at least ``threshold`` alike
are linked, and linked files form a group. The same pass finds the most isolated files: those
whose nearest other file is least alike.

Alike is the cosine similarity of the file vectors: 1.0 is the same vector, and a copy of a
recording (re-encoded, quieter, trimmed) stays close to 1.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from tasks.index.interface import VectorIndex
from tasks.storage.snapshots import SnapshotTable, embeddings_of

#: Cosine similarity at or above which two files are near-duplicates: a starting point, not yet
#: measured with the official weights (docs/how-to/duplicates.md says what was measured).
DEFAULT_THRESHOLD = 0.98
#: Neighbours each file asks the index for: a group larger than this is still found whole,
#: through its members' own queries.
NEIGHBOURS = 10
#: Files read from the snapshot at a time (their vectors: 8 MB).
_READ_ROWS = 1_024


@dataclass(frozen=True)
class DuplicateGroup:
    """Files linked by near-duplicate pairs, by path; ``weakest`` is the least similar link
    that holds the group together (cosine)."""

    paths: list[str]
    keys: list[str]
    weakest: float


@dataclass(frozen=True)
class IsolatedFile:
    """A file far from every other: ``similarity`` (cosine) to its nearest other file."""

    key: str
    path: str
    nearest_path: str
    similarity: float


@dataclass
class CatalogueNeighbours:
    """What one pass over the catalogue found."""

    files: int
    threshold: float
    groups: list[DuplicateGroup] = field(default_factory=list)
    isolated: list[IsolatedFile] = field(default_factory=list)


def file_vectors(snapshot: SnapshotTable) -> Iterator[tuple[str, str, np.ndarray]]:
    """(key, path, vector) of every file of the snapshot's latest version, a batch at a time."""
    for batch in snapshot.latest().batches(["key", "path", "embedding"], batch_size=_READ_ROWS):
        yield from zip(
            batch.column("key").to_pylist(),
            batch.column("path").to_pylist(),
            embeddings_of(batch),
            strict=True,
        )


def catalogue_neighbours(
    files: Iterable[tuple[str, str, np.ndarray]],
    index: VectorIndex,
    threshold: float = DEFAULT_THRESHOLD,
    isolated: int = 20,
    neighbours: int = NEIGHBOURS,
) -> CatalogueNeighbours:
    """Near-duplicate groups (largest first) and the ``isolated`` most isolated files (least
    alike first) of ``files``, each a (key, path, vector) in ``index``."""
    parent: dict[str, str] = {}
    weakest: dict[str, float] = {}
    paths: dict[str, str] = {}
    loneliest: list[tuple[float, str, str, str | None]] = []  # a max-heap by -similarity
    count = 0

    def root(key: str) -> str:
        while parent.get(key, key) != key:
            parent[key] = parent.get(parent[key], parent[key])  # path halving
            key = parent[key]
        return key

    for key, path, vector in files:
        count += 1
        paths[key] = path
        others = [hit for hit in index.search(vector, k=neighbours + 1) if hit.key != key]
        if others and isolated:
            entry = (-others[0].score, key, path, others[0].path)
            if len(loneliest) < isolated:
                heapq.heappush(loneliest, entry)
            else:
                heapq.heappushpop(loneliest, entry)
        for hit in others:
            if hit.score < threshold:
                break  # hits come most similar first
            paths.setdefault(hit.key, hit.path)
            a, b = root(key), root(hit.key)
            if a != b:
                parent[b] = a
                weakest[a] = min(weakest.get(a, 1.0), weakest.get(b, 1.0), hit.score)
            else:
                weakest[a] = min(weakest.get(a, 1.0), hit.score)

    members: dict[str, list[str]] = {}
    for key in parent:
        members.setdefault(root(key), []).append(key)
    for key in list(members):
        if key not in members[key]:
            members[key].append(key)
    groups = [
        DuplicateGroup(
            paths=sorted(paths[k] for k in keys),
            keys=[k for _, k in sorted((paths[k], k) for k in keys)],
            weakest=round(weakest.get(top, 1.0), 6),
        )
        for top, keys in members.items()
        if len(keys) > 1
    ]
    groups.sort(key=lambda g: (-len(g.paths), g.paths))
    isolated_files = [
        IsolatedFile(key, path, nearest_path, round(-negative, 6))
        for negative, key, path, nearest_path in sorted(loneliest, reverse=True)
    ]
    return CatalogueNeighbours(count, threshold, groups, isolated_files)
