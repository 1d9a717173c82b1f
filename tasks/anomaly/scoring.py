"""Anomaly scores for predictive maintenance: how unlike a reference of normal sound each scan
window of a clip is.

A reference is a set of clips of normal operation (one per machine when grouped). Every clip is
a sequence of scan windows (pooled from the segments ingest stored, so a one-second knock is not
averaged away), each with an embedding. Two window scores:

- ``knn``: the mean cosine distance to the k nearest reference windows;
- ``mahalanobis``: the squared Mahalanobis distance to the reference windows' mean under a
  Ledoit-Wolf shrunk covariance, divided by the dimension (about 1 for a typical window).

A clip's score is its worst window's, and the report says where it starts.

The threshold is calibrated on the reference itself: every window of each reference clip is
scored without its own clip (k-NN: against the other clips' windows; Mahalanobis: against a fit
on the other folds of at most ``MAHALANOBIS_FOLDS`` folds of clips, and a new window scores the
mean over those fits, so both are out-of-sample scores of the same fits), and the threshold is a
high quantile of those window scores, either empirical or of a fitted gamma distribution (the DCASE
Task 2 baselines fit a gamma). Calibrating on windows, not clips, keeps the threshold
independent of clip length: a clip's score is the maximum over its windows, however many.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tasks.errors import UserError

MIN_REFERENCE_CLIPS = 3

#: Held-out folds of reference clips for calibrating Mahalanobis scores: one refit per fold, so a
#: reference of hundreds of clips costs 10 fits, not hundreds (fewer clips: one fold per clip).
MAHALANOBIS_FOLDS = 10
#: Bump when calibration changes (how thresholds follow from held-out scores, how a window is
#: scored): stored calibrations of another version are made again.
CALIBRATION_VERSION = 2

Scoring = Literal["knn", "mahalanobis"]
SCORINGS: tuple[Scoring, ...] = ("knn", "mahalanobis")
#: The window score scans use unless told otherwise: the one that separated better on the
#: synthetic evaluation of scan windows pooled from stored segments (benchmarks/anomaly_eval.py,
#: README "Anomaly scans": k-NN ranked speed shifts a little better and raised fewer false alarms).
DEFAULT_SCORING: Scoring = "knn"


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

    def description(self) -> str:
        """The criteria in words, for errors: "paths under 'x/' or 2 listed paths"."""
        parts = []
        if self.path_prefix:
            parts.append(f"paths under {self.path_prefix!r}")
        if self.paths:
            parts.append(f"{len(self.paths)} listed paths")
        if self.metadata:
            parts.append("metadata " + ", ".join(f"{k}={v}" for k, v in self.metadata))
        return " or ".join(parts) or "(no criteria)"

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


@dataclass(frozen=True)
class ShrunkGaussian:
    """Mean and Ledoit-Wolf shrunk covariance of windows, kept as an eigen-decomposition.

    The covariance is ``(1 - s) S + s mu I`` (S the sample covariance, mu its mean variance, s
    the shrinkage sklearn estimates). S has rank at most the number of windows, so it is held as
    its principal ``basis`` [r, D] with shrunk ``variances`` [r], and ``floor`` (s mu) along every
    other direction: a fit on a few hundred 2048-dimensional windows costs one thin SVD, not a
    2048 x 2048 inversion.
    """

    mean: np.ndarray
    basis: np.ndarray
    variances: np.ndarray
    floor: float

    @classmethod
    def fit(cls, windows: np.ndarray, group: str = "") -> ShrunkGaussian:
        from sklearn.covariance import ledoit_wolf_shrinkage

        windows = np.asarray(windows, dtype=np.float64)
        mean = windows.mean(axis=0)
        centred = windows - mean
        count, dimension = centred.shape
        _, singular, basis = np.linalg.svd(centred, full_matrices=False)
        eigenvalues = singular**2 / count
        mean_variance = float(eigenvalues.sum() / dimension)
        if mean_variance <= 0:
            raise InvalidReferenceError(
                f"reference {group or '(all)'}: every window is identical, so no spread to "
                "measure distances by"
            )
        shrinkage = float(ledoit_wolf_shrinkage(centred, assume_centered=True))
        # a shrinkage of 0 (many more windows than dimensions) leaves no floor: keep a tiny one
        floor = max(shrinkage * mean_variance, 1e-9 * mean_variance)
        variances = np.maximum((1 - shrinkage) * eigenvalues + shrinkage * mean_variance, floor)
        return cls(mean, basis, variances, floor)

    def scores(self, windows: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each window [n, D] to the mean, divided by D."""
        centred = np.asarray(windows, dtype=np.float64) - self.mean
        projected = centred @ self.basis.T
        outside = (centred**2).sum(axis=1) - (projected**2).sum(axis=1)
        squared = (projected**2 / self.variances).sum(axis=1) + np.maximum(outside, 0) / self.floor
        return squared / centred.shape[1]


@dataclass
class Reference:
    """The windows of a group's normal clips, ready to score windows against."""

    group: str
    clips: list[ClipWindows]
    k: int
    scoring: Scoring = "knn"
    matrix: np.ndarray = field(init=False)
    owner: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if len(self.clips) < MIN_REFERENCE_CLIPS:
            raise InvalidReferenceError(
                f"reference {self.group or '(all)'} has {len(self.clips)} clip(s); at least "
                f"{MIN_REFERENCE_CLIPS} are needed to calibrate a threshold (leave-one-out)"
            )
        if self.k < 1:
            raise InvalidReferenceError("k must be at least 1")
        if self.scoring not in SCORINGS:
            raise InvalidReferenceError(
                f"unknown scoring {self.scoring!r}: use one of {', '.join(SCORINGS)}"
            )
        self.matrix = _unit(np.concatenate([c.embeddings for c in self.clips]))
        self.owner = np.concatenate(
            [np.full(len(c.embeddings), i) for i, c in enumerate(self.clips)]
        )
        self._folds: list[tuple[ShrunkGaussian, np.ndarray]] | None = None

    @property
    def fingerprint(self) -> str:
        """Changes whenever the reference clips change (keys and their embeddings), or the way
        thresholds are calibrated (``CALIBRATION_VERSION``): stored calibrations are reused
        only while it holds."""
        digest = hashlib.sha256(f"calibration-v{CALIBRATION_VERSION}".encode())
        for clip in sorted(self.clips, key=lambda c: c.key):
            digest.update(clip.key.encode())
            digest.update(np.ascontiguousarray(clip.embeddings, dtype=np.float32).tobytes())
        return digest.hexdigest()

    def window_scores(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per window: its score, and the index of the reference clip holding the window
        nearest to it (cosine; for the report whatever the scoring)."""
        similarities = _unit(embeddings) @ self.matrix.T
        closest = self.owner[np.argmax(similarities, axis=1)]
        if self.scoring == "knn":
            return self._knn(1.0 - similarities), closest
        # the mean over the fold fits, the same fits whose held-out scores set the threshold:
        # a new window is out of sample to each, as a held-out window is to its own. One fit on
        # all windows scores new windows lower (more windows span more of the space), which put
        # the threshold far above normal windows: precision 1.00 at recall 0.12 in one fold.
        scores = np.mean([fit.scores(embeddings) for fit, _ in self._fold_fits()], axis=0)
        return scores, closest

    def held_out_scores(self) -> np.ndarray:
        """Every reference window scored without its own clip: k-NN against the other clips'
        windows, Mahalanobis against a fit on the other folds of clips."""
        if self.scoring == "knn":
            held_out = []
            for i, clip in enumerate(self.clips):  # clip by clip: memory of one clip's rows
                distances = 1.0 - _unit(clip.embeddings) @ self.matrix.T
                distances[:, self.owner == i] = np.inf
                held_out.append(self._knn(distances))
            return np.concatenate(held_out)
        windows = self._all_windows()
        scores = np.empty(len(windows))
        for fit, held_out in self._fold_fits():
            scores[held_out] = fit.scores(windows[held_out])
        return scores

    def _fold_fits(self) -> list[tuple[ShrunkGaussian, np.ndarray]]:
        """One Gaussian per fold of clips, fitted without that fold, and the fold's windows
        (a mask): made once per reference."""
        if self._folds is None:
            folds = min(MAHALANOBIS_FOLDS, len(self.clips))
            fold_of_window = self.owner % folds
            windows = self._all_windows()
            self._folds = []
            for fold in range(folds):
                held_out = fold_of_window == fold
                self._folds.append((ShrunkGaussian.fit(windows[~held_out], self.group), held_out))
        return self._folds

    def _knn(self, distances: np.ndarray) -> np.ndarray:
        k = min(self.k, int(np.isfinite(distances[0]).sum()))
        nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
        return np.take_along_axis(distances, nearest, axis=1).mean(axis=1)

    def _all_windows(self) -> np.ndarray:
        return np.concatenate([c.embeddings for c in self.clips])


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
    scoring: Scoring = "knn"

    def answers(
        self, scoring: str, method: str, quantile: float, k: int, threshold: float | None
    ) -> bool:
        """Whether this stored calibration is the one a scan with these settings would make."""
        settings = (self.scoring, self.method, self.quantile, self.k)
        return threshold is None and settings == (scoring, method, quantile, k)


def calibrate(
    reference: Reference,
    method: Literal["quantile", "gamma"] = "gamma",
    quantile: float = 0.99,
    override: float | None = None,
) -> Calibration:
    """Threshold from the held-out window scores of the reference (or the user's
    ``override``) under which ``quantile`` of normal clips should score."""
    if not 0.0 < quantile < 1.0:
        raise ValueError("quantile must be within (0, 1)")
    scores = reference.held_out_scores()
    if not np.isfinite(scores).all():
        raise InvalidReferenceError(
            f"reference {reference.group or '(all)'} gives non-finite scores"
        )
    # a clip's score is its worst window's: for ``quantile`` of normal clips to stay under the
    # threshold, each of its m windows must with quantile ** (1 / m) (exact for independent
    # windows; neighbouring windows are alike, so fewer false alarms than asked, not more). The
    # window quantile itself let 37 % of normal clips through at 0.99 on the synthetic machines.
    windows_per_clip = float(np.median([len(clip.embeddings) for clip in reference.clips]))
    window_quantile = quantile ** (1.0 / max(windows_per_clip, 1.0))
    if override is not None:
        threshold, method = float(override), "override"
    elif method == "quantile":
        threshold = float(np.quantile(scores, window_quantile))
    else:
        threshold = _gamma_quantile(scores, window_quantile)
    return Calibration(
        group=reference.group,
        threshold=threshold,
        method=method,
        quantile=quantile,
        k=reference.k,
        reference_clips=len(reference.clips),
        reference_windows=len(reference.matrix),
        fingerprint=reference.fingerprint,
        scoring=reference.scoring,
    )


@dataclass(frozen=True)
class ClipScore:
    """A scanned clip: its score (worst window), where that window starts, the verdict.

    A ``silent`` clip (quarantined at ingest, below the silence threshold) has no embedding and
    so no score (NaN): a stopped machine or a dead microphone, reported as its own verdict.
    """

    key: str
    path: str
    group: str
    score: float
    threshold: float
    is_anomaly: bool
    worst_window_start_seconds: float
    nearest_reference_paths: list[str]
    silent: bool = False

    @property
    def verdict(self) -> Literal["normal", "anomaly", "silent"]:
        if self.silent:
            return "silent"
        return "anomaly" if self.is_anomaly else "normal"

    @classmethod
    def of_silent_clip(cls, key: str, path: str, group: str, threshold: float) -> ClipScore:
        return cls(key, path, group, math.nan, threshold, False, math.nan, [], silent=True)


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
