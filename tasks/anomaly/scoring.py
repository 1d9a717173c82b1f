"""Anomaly scores for predictive maintenance: k-NN cosine distance to a reference of normal sound.

A reference is a set of clips of normal operation (one per machine when grouped). Every clip is
cut into scan windows (they may be shorter than ingest windows, so that a one-second knock is not
averaged away) and each window is embedded. A window's score is the mean cosine distance to its
k nearest reference windows; a clip's score is its worst window's, and the report says where.

The threshold is calibrated on the reference itself: every window of each reference clip is
scored leave-one-out (against the other clips' windows), and the threshold is a high quantile of
those window scores, either empirical or of a fitted gamma distribution (the DCASE Task 2
baselines fit a gamma). Calibrating on windows, not clips, keeps the threshold independent of
clip length: a clip's score is the maximum over its windows, however many it has.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tasks.errors import UserError

MIN_REFERENCE_CLIPS = 3


class InvalidReferenceError(UserError, ValueError):
    """Clips that cannot give a meaningful threshold or evaluation (empty, too few, degenerate)."""


@dataclass(frozen=True)
class ClipWindows:
    """The scan-window embeddings of one clip: ``embeddings`` [T, D], starts in seconds [T]."""

    key: str
    path: str
    embeddings: np.ndarray
    start_seconds: np.ndarray


@dataclass(frozen=True)
class ReferenceSelector:
    """Which snapshot rows form a reference, and how to split it into groups.

    A row is in the reference when its path starts with ``path_prefix``, or is one of
    ``paths``, or its metadata holds every ``metadata`` pair (any one criterion suffices).
    Groups come from ``group_metadata_key`` (that metadata value) or ``group_pattern``, a regular
    expression whose first group, matched against the path, names the group (``^([^/]+)/``: one
    baseline per top-level folder, i.e. per machine).
    """

    path_prefix: str | None = None
    paths: tuple[str, ...] = ()
    group_pattern: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    group_metadata_key: str | None = None

    def selects(self, path: str, metadata: Mapping[str, str] | None = None) -> bool:
        if not self.path_prefix and not self.paths and not self.metadata:
            raise InvalidReferenceError(
                "a reference needs a path prefix, a list of paths or metadata"
            )
        metadata = metadata or {}
        return (
            bool(self.path_prefix and path.startswith(self.path_prefix))
            or path in self.paths
            or bool(self.metadata and all(metadata.get(k) == v for k, v in self.metadata))
        )

    def group_of(self, path: str, metadata: Mapping[str, str] | None = None) -> str:
        """The group of a clip ("" when not grouped or nothing matches)."""
        if self.group_metadata_key:
            return (metadata or {}).get(self.group_metadata_key, "")
        if not self.group_pattern:
            return ""
        match = re.search(self.group_pattern, path)
        return match.group(1) if match and match.groups() else ""


@dataclass
class Reference:
    """The windows of a group's normal clips, ready for k-NN queries."""

    group: str
    clips: list[ClipWindows]
    k: int
    matrix: np.ndarray = field(init=False)
    owner: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if len(self.clips) < MIN_REFERENCE_CLIPS:
            raise InvalidReferenceError(
                f"reference {self.group or '(all)'} has {len(self.clips)} clip(s); at least "
                f"{MIN_REFERENCE_CLIPS} are needed to calibrate a threshold (leave-one-out)"
            )
        self.matrix = _unit(np.concatenate([c.embeddings for c in self.clips]))
        self.owner = np.concatenate(
            [np.full(len(c.embeddings), i) for i, c in enumerate(self.clips)]
        )
        if self.k < 1:
            raise InvalidReferenceError("k must be at least 1")

    @property
    def fingerprint(self) -> str:
        """Changes whenever the reference clips change (keys and their embeddings)."""
        digest = hashlib.sha256()
        for clip in sorted(self.clips, key=lambda c: c.key):
            digest.update(clip.key.encode())
            digest.update(np.ascontiguousarray(clip.embeddings, dtype=np.float32).tobytes())
        return digest.hexdigest()

    def window_scores(
        self, embeddings: np.ndarray, exclude_clip: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per window: mean cosine distance to the k nearest reference windows, and the index
        of the reference clip holding the nearest one."""
        distances = 1.0 - _unit(embeddings) @ self.matrix.T
        if exclude_clip is not None:
            distances[:, self.owner == exclude_clip] = np.inf
        k = min(self.k, int(np.isfinite(distances[0]).sum()))
        nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
        scores = np.take_along_axis(distances, nearest, axis=1).mean(axis=1)
        closest = self.owner[np.argmin(distances, axis=1)]
        return scores, closest

    def leave_one_out_scores(self) -> np.ndarray:
        """Every reference window scored against the other clips' windows."""
        return np.concatenate(
            [
                self.window_scores(clip.embeddings, exclude_clip=i)[0]
                for i, clip in enumerate(self.clips)
            ]
        )


@dataclass(frozen=True)
class Calibration:
    """A group's threshold and how it was obtained."""

    group: str
    threshold: float
    method: str
    quantile: float
    k: int
    reference_clips: int
    reference_windows: int
    fingerprint: str


def calibrate(
    reference: Reference,
    method: Literal["quantile", "gamma"] = "gamma",
    quantile: float = 0.99,
    override: float | None = None,
) -> Calibration:
    """Threshold from leave-one-out scores of the reference (or the user's ``override``)."""
    if not 0.0 < quantile < 1.0:
        raise ValueError("quantile must be within (0, 1)")
    scores = reference.leave_one_out_scores()
    if not np.isfinite(scores).all():
        raise InvalidReferenceError(
            f"reference {reference.group or '(all)'} gives non-finite scores"
        )
    if override is not None:
        threshold, method = float(override), "override"
    elif method == "quantile":
        threshold = float(np.quantile(scores, quantile))
    else:
        threshold = _gamma_quantile(scores, quantile)
    return Calibration(
        group=reference.group,
        threshold=threshold,
        method=method,
        quantile=quantile,
        k=reference.k,
        reference_clips=len(reference.clips),
        reference_windows=len(reference.matrix),
        fingerprint=reference.fingerprint,
    )


@dataclass(frozen=True)
class ClipScore:
    """A scanned clip: its score (worst window), where that window starts, the verdict."""

    key: str
    path: str
    group: str
    score: float
    threshold: float
    is_anomaly: bool
    worst_window_start_seconds: float
    nearest_reference_paths: list[str]


def score_clip(clip: ClipWindows, reference: Reference, calibration: Calibration) -> ClipScore:
    """Score one clip against its group's reference."""
    scores, closest = reference.window_scores(clip.embeddings)
    worst = int(np.argmax(scores))
    ranked = np.argsort(scores)
    nearest = list(dict.fromkeys(reference.clips[closest[i]].path for i in ranked))[:3]
    return ClipScore(
        key=clip.key,
        path=clip.path,
        group=reference.group,
        score=float(scores[worst]),
        threshold=calibration.threshold,
        is_anomaly=bool(scores[worst] > calibration.threshold),
        worst_window_start_seconds=float(clip.start_seconds[worst]),
        nearest_reference_paths=nearest,
    )


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def _gamma_quantile(scores: np.ndarray, quantile: float) -> float:
    from scipy import stats

    if np.ptp(scores) == 0:  # all equal: a fit is degenerate, the value itself is the answer
        return float(scores[0])
    shape, location, scale = stats.gamma.fit(np.maximum(scores, 1e-12), floc=0)
    return float(stats.gamma.ppf(quantile, shape, loc=location, scale=scale))
