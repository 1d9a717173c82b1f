"""The catalogue map's projection: file vectors to 2-D points.

A projection is fitted on a sample of the catalogue and places every other file without
refitting, so a new file lands on the map in milliseconds:

1. PCA to ``REDUCED_DIMENSIONS`` (fitted on the sample): the space files are compared in;
2. t-SNE (openTSNE) of the sample's reduced vectors: the sample's points, the *anchors*;
3. any other file goes where its nearest anchors are, weighted by closeness in the reduced
   space (``Projection.place``).

How well placed files keep their neighbours is measured the same way at the fit and later
(``Projection.placement_preservation``): of each file's nearest anchors in the reduced space,
the fraction that are also its nearest anchors on the map. docs/how-to/catalogue-map.md has the
measurements that chose t-SNE and this placement over UMAP, PaCMAP, PCA and t-SNE's own
transform.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

#: Dimensions files are compared and placed in (PCA of the 2048-float vectors).
REDUCED_DIMENSIONS = 50
#: Files the projection is fitted on; the rest are placed among them.
FIT_SAMPLE = 10_000
#: Below this many files t-SNE has too few neighbours to work with: the map is their PCA.
MIN_TSNE_FILES = 20
#: A placed file goes near its nearest anchor, pulled ``PLACEMENT_PULL`` of the way towards
#: the mean of its ``PLACEMENT_NEIGHBOURS`` nearest (weighted 1 / distance squared): files that
#: share a nearest anchor stay together around it (kNN preservation 0.17 where the full mean
#: gives 0.10 and the anchor itself 0.16, in benchmarks/map_projection.py) without stacking.
PLACEMENT_NEIGHBOURS = 5
PLACEMENT_PULL = 0.1
#: Neighbours compared by ``placement_preservation``.
PRESERVATION_NEIGHBOURS = 10
#: Files a preservation measurement looks at (a seeded sample of those asked about).
PRESERVATION_SAMPLE = 1_000
#: Placed files scored per call of ``Projection.place`` (bounds the distance matrix's memory).
_PLACE_BATCH = 4_096


@dataclass(frozen=True)
class Projection:
    """A fitted map: ``mean`` and ``components`` [REDUCED_DIMENSIONS, vector size] reduce a
    vector; ``anchors`` [n, REDUCED_DIMENSIONS] are the fit sample reduced, ``anchor_points``
    [n, 2] where the fit put them. ``preservation`` and ``explained`` were measured on the files
    placed at the fit (see ``placement_preservation`` and ``explained_fraction``)."""

    version: int
    method: str
    fitted_at: datetime
    fitted_files: int
    mean: np.ndarray
    components: np.ndarray
    anchors: np.ndarray
    anchor_points: np.ndarray
    preservation: float | None
    explained: float

    def reduce(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors [n, vector size] in the reduced space [n, REDUCED_DIMENSIONS]."""
        return ((np.asarray(vectors, np.float32) - self.mean) @ self.components.T).astype(
            np.float32
        )

    def explained_fraction(self, vectors: np.ndarray) -> np.ndarray:
        """Per vector, the share of its spread (around the fit's mean) that the reduced space
        keeps: near 1 for files like the fit sample, low for sounds it never saw."""
        centred = np.asarray(vectors, np.float32) - self.mean
        kept = np.square(centred @ self.components.T).sum(axis=1)
        total = np.square(centred).sum(axis=1)
        return np.where(total > 0, kept / np.maximum(total, 1e-30), 1.0)

    def place(self, reduced: np.ndarray, leave_anchors_out: bool = False) -> np.ndarray:
        """Map points [n, 2] of reduced vectors: among the nearest anchors, the nearest weighs
        the most (a file equal to an anchor lands on it). With ``leave_anchors_out``, an anchor
        is placed among the others, as if the fit had not seen it (how a new file like the fit's
        would land: what ``placement_preservation`` at the fit measures)."""
        if len(reduced) == 0:
            return np.zeros((0, 2), np.float32)
        k = min(PLACEMENT_NEIGHBOURS, len(self.anchors) - int(leave_anchors_out))
        if k < 1:
            return np.zeros((len(reduced), 2), np.float32)
        finder = NearestNeighbors(n_neighbors=k + int(leave_anchors_out)).fit(self.anchors)
        placed = []
        for start in range(0, len(reduced), _PLACE_BATCH):
            distances, nearest = finder.kneighbors(reduced[start : start + _PLACE_BATCH])
            if leave_anchors_out:  # drop the anchor itself where there is one, else the farthest
                itself = distances[:, :1] < 1e-4
                keep = np.where(itself, np.arange(1, k + 1), np.arange(k))
                distances = np.take_along_axis(distances, keep, axis=1)
                nearest = np.take_along_axis(nearest, keep, axis=1)
            placed.append(self._weighted(distances, nearest))
        return np.concatenate(placed).astype(np.float32)

    def placement_preservation(
        self, reduced: np.ndarray, points: np.ndarray, seed: int = 0
    ) -> float | None:
        """How well placed files keep their neighbours: of each file's
        ``PRESERVATION_NEIGHBOURS`` nearest anchors in the reduced space, the mean fraction that
        are also its nearest anchors on the map (``reduced`` [n, d] and its ``points`` [n, 2];
        at most ``PRESERVATION_SAMPLE`` files, seeded). A file that is an anchor is compared
        without itself. Against anchors only, so the figure does not move as the map fills up.
        None with too few anchors."""
        k = PRESERVATION_NEIGHBOURS
        if len(self.anchors) <= k or len(reduced) == 0:
            return None
        if len(reduced) > PRESERVATION_SAMPLE:
            chosen = np.random.default_rng(seed).choice(len(reduced), PRESERVATION_SAMPLE, False)
            reduced, points = reduced[chosen], points[chosen]
        distances, in_space = (
            NearestNeighbors(n_neighbors=k + 1).fit(self.anchors).kneighbors(reduced)
        )
        on_map = (
            NearestNeighbors(n_neighbors=k + 1)
            .fit(self.anchor_points)
            .kneighbors(points, return_distance=False)
        )
        shared = []
        for near, seen, distance in zip(in_space, on_map, distances, strict=True):
            itself = near[0] if distance[0] < 1e-4 else None
            shared.append(len(set(near[near != itself][:k]) & set(seen[seen != itself][:k])))
        return float(np.mean(shared) / k)

    def _weighted(self, distances: np.ndarray, nearest: np.ndarray) -> np.ndarray:
        # relative to the nearest distance, so that the squares cannot underflow
        closest = np.maximum(distances[:, :1], 1e-12)
        relative = np.maximum(distances / closest, 1.0)
        weights = np.where(distances[:, :1] > 1e-9, relative**-2.0, 0.0)
        weights[:, 0] = 1.0
        weights /= weights.sum(axis=1, keepdims=True)
        mean = (self.anchor_points[nearest] * weights[..., None]).sum(axis=1)
        anchor = self.anchor_points[nearest[:, 0]]
        return anchor + PLACEMENT_PULL * (mean - anchor)


@dataclass(frozen=True)
class Fit:
    """A new projection's reduction and its sample's map points (the anchors)."""

    method: str
    mean: np.ndarray
    components: np.ndarray
    anchors: np.ndarray
    anchor_points: np.ndarray

    def projection(self) -> Projection:
        """This fit as an (unrecorded, version 0) projection, to place files with."""
        return Projection(
            version=0,
            method=self.method,
            fitted_at=datetime.now(UTC),
            fitted_files=len(self.anchors),
            mean=self.mean,
            components=self.components,
            anchors=self.anchors,
            anchor_points=self.anchor_points,
            preservation=None,
            explained=1.0,
        )


#: A layout: the sample's reduced vectors [n, REDUCED_DIMENSIONS] to map points [n, 2].
Layout = Callable[[np.ndarray], np.ndarray]


def tsne_layout(seed: int = 0, n_jobs: int = 1) -> Layout:
    """openTSNE's t-SNE (the map's method: docs/how-to/catalogue-map.md says why)."""

    def layout(anchors: np.ndarray) -> np.ndarray:
        from openTSNE import TSNE

        # perplexity is bounded by the sample: openTSNE needs 3 x perplexity neighbours
        perplexity = min(30.0, (len(anchors) - 1) / 3)
        return np.asarray(
            TSNE(perplexity=perplexity, n_jobs=n_jobs, random_state=seed, verbose=False).fit(
                anchors
            )
        )

    return layout


def fit(
    sample: np.ndarray, seed: int = 0, n_jobs: int = 1, layout: tuple[str, Layout] | None = None
) -> Fit:
    """Fit the reduction and the map on ``sample`` [n, vector size] (at most a few thousand
    rows more than ``FIT_SAMPLE``: t-SNE's time grows with n). ``layout`` (name, function)
    replaces t-SNE (the benchmark compares others)."""
    sample = np.asarray(sample, np.float32)
    files, size = sample.shape
    if files == 0:
        raise ValueError("a map needs at least one file")
    # the reduced space keeps REDUCED_DIMENSIONS columns whatever the sample: a small fit pads
    components = np.zeros((REDUCED_DIMENSIONS, size), np.float32)
    mean = sample.mean(axis=0)
    if files > 1:
        dimensions = min(REDUCED_DIMENSIONS, files - 1, size)
        pca = PCA(dimensions, random_state=seed).fit(sample)
        components[:dimensions] = pca.components_
        mean = pca.mean_.astype(np.float32)
    anchors = ((sample - mean) @ components.T).astype(np.float32)
    if files < MIN_TSNE_FILES:
        name, points = "pca", anchors[:, :2].copy()
    else:
        name, function = layout or ("tsne", tsne_layout(seed, n_jobs))
        points = function(anchors)
    return Fit(name, mean, components, anchors, _spread(np.asarray(points, np.float32)))


def _spread(points: np.ndarray) -> np.ndarray:
    """Points centred, and scaled so that the farthest is at distance 1 (maps of any method
    and size draw alike)."""
    points = points - points.mean(axis=0)
    radius = float(np.sqrt(np.square(points).sum(axis=1).max())) if len(points) else 0.0
    return (points / radius if radius > 0 else points).astype(np.float32)


def to_bytes(array: np.ndarray) -> bytes:
    """An array as stored (``.npy``: dtype and shape travel with it, no pickle)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def from_bytes(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)
