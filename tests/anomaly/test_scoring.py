"""Anomaly scores and thresholds on synthetic window embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.anomaly.scoring import (
    ClipWindows,
    InvalidReferenceError,
    Reference,
    ReferenceSelector,
    ShrunkGaussian,
    calibrate,
    score_clip,
)


def _normal_clip(i: int, windows: int = 5, seed: int = 0) -> ClipWindows:
    rng = np.random.default_rng(seed * 1000 + i)
    centre = np.r_[np.ones(8), np.zeros(8)]
    embeddings = np.abs(centre + 0.05 * rng.standard_normal((windows, 16)))
    return ClipWindows(f"k{i}", f"pump/normal/{i}.wav", embeddings, np.arange(windows) * 1.0)


def test_tiny_or_empty_references_are_clear_errors_not_nan() -> None:
    with pytest.raises(InvalidReferenceError, match="has 2 clip"):
        Reference("pump-07", [_normal_clip(0), _normal_clip(1)], k=3)
    with pytest.raises(InvalidReferenceError, match="has 0 clip"):
        Reference("", [], k=3)
    with pytest.raises(InvalidReferenceError, match="path prefix, a list of paths or metadata"):
        ReferenceSelector().selects("x.wav")


@pytest.mark.parametrize("method", ["gamma", "quantile"])
def test_threshold_is_calibrated_leave_one_out(method: str) -> None:
    reference = Reference("", [_normal_clip(i) for i in range(8)], k=3)
    loo = reference.held_out_scores()
    calibration = calibrate(reference, method, quantile=0.99)
    assert np.isfinite(calibration.threshold)
    assert np.median(loo) < calibration.threshold < 10 * loo.max()
    # a clip drawn from the same machine passes, the reference's own clips mostly pass too
    assert not score_clip(_normal_clip(99, seed=3), reference, calibration).is_anomaly
    assert calibrate(reference, method, override=0.5).threshold == 0.5


def test_a_short_transient_in_a_long_clip_is_flagged_and_located() -> None:
    reference = Reference("", [_normal_clip(i) for i in range(6)], k=2)
    calibration = calibrate(reference)
    long_clip = _normal_clip(50, windows=30, seed=9)
    embeddings = long_clip.embeddings.copy()
    embeddings[17] = np.r_[np.zeros(8), np.ones(8)]  # one window sounds like nothing normal
    scored = score_clip(
        ClipWindows("x", "pump/new.wav", embeddings, long_clip.start_seconds),
        reference,
        calibration,
    )
    assert scored.is_anomaly and scored.worst_window_start_seconds == 17.0
    assert scored.nearest_reference_paths  # the closest normal clips, for the report


def test_reference_fingerprint_follows_its_clips() -> None:
    clips = [_normal_clip(i) for i in range(4)]
    assert (
        Reference("", clips, 3).fingerprint == Reference("", list(reversed(clips)), 3).fingerprint
    )
    assert Reference("", clips, 3).fingerprint != Reference("", clips[:3], 3).fingerprint


def test_grouping_by_path() -> None:
    selector = ReferenceSelector(path_prefix="pump-07/normal/", group_pattern=r"^([^/]+)/")
    assert selector.selects("pump-07/normal/a.wav") and not selector.selects("pump-07/new/a.wav")
    assert selector.group_of("pump-07/new/a.wav") == "pump-07"
    assert ReferenceSelector(paths=("a.wav",)).selects("a.wav")


def test_selection_and_grouping_by_metadata() -> None:
    selector = ReferenceSelector(metadata=(("condition", "normal"),), group_metadata_key="machine")
    normal = {"condition": "normal", "machine": "pump-07"}
    assert selector.selects("any/where.wav", normal)
    assert not selector.selects("any/where.wav", {"condition": "suspect", "machine": "pump-07"})
    assert not selector.selects("any/where.wav", None)
    assert selector.group_of("x.wav", normal) == "pump-07"
    assert selector.group_of("x.wav", {}) == ""


def test_mahalanobis_score_equals_sklearns_ledoit_wolf_distance() -> None:
    from sklearn.covariance import LedoitWolf

    rng = np.random.default_rng(4)
    mixing = rng.standard_normal((40, 40))
    windows = rng.standard_normal((60, 40)) @ mixing  # fewer windows than 2 x dimensions
    queries = rng.standard_normal((7, 40)) @ mixing
    ours = ShrunkGaussian.fit(windows).scores(queries)
    theirs = LedoitWolf().fit(windows).mahalanobis(queries) / windows.shape[1]
    np.testing.assert_allclose(ours, theirs, rtol=1e-8)


def test_mahalanobis_flags_a_window_off_the_reference_spread() -> None:
    clips = [_normal_clip(i) for i in range(8)]
    reference = Reference("", clips, k=3, scoring="mahalanobis")
    calibration = calibrate(reference)
    assert calibration.scoring == "mahalanobis"
    assert not score_clip(_normal_clip(99, seed=3), reference, calibration).is_anomaly
    odd = _normal_clip(98, seed=5)
    odd.embeddings[2] = np.r_[np.zeros(8), np.ones(8)]
    scored = score_clip(odd, reference, calibration)
    assert scored.is_anomaly and scored.worst_window_start_seconds == 2.0
    # held out in folds: every reference window is scored by a fit that never saw its clip
    held_out = reference.held_out_scores()
    assert held_out.shape == (40,) and np.isfinite(held_out).all()
    assert (
        held_out.mean()
        > ShrunkGaussian.fit(reference._all_windows()).scores(reference._all_windows()).mean()
    )


def test_mahalanobis_threshold_holds_for_new_normal_windows_when_dimensions_outnumber_them() -> (
    None
):
    """Embeddings have 2048 dimensions and a reference a few hundred windows: new normal windows
    must score like the held-out ones the threshold came from, and the share of normal clips
    flagged must be about the share asked for (a clip scores its worst window)."""
    rng = np.random.default_rng(7)
    mixing = rng.standard_normal((12, 200))  # low-rank structure in 200 dimensions, plus noise

    def clip(i: int) -> ClipWindows:
        windows = rng.standard_normal((5, 12)) @ mixing + 0.3 * rng.standard_normal((5, 200))
        return ClipWindows(f"k{i}", f"n/{i}.wav", np.abs(windows + 5), np.arange(5) * 1.0)

    reference = Reference("", [clip(i) for i in range(30)], k=3, scoring="mahalanobis")
    calibration = calibrate(reference, method="quantile", quantile=0.9)
    new_clips = [clip(100 + i) for i in range(80)]
    scores, _ = reference.window_scores(np.concatenate([c.embeddings for c in new_clips]))
    held_out = reference.held_out_scores()
    assert 0.8 < scores.mean() / held_out.mean() < 1.25
    # a clip is flagged when its worst window is over: about the 10 % of clips asked for
    flagged = np.mean([score_clip(c, reference, calibration).is_anomaly for c in new_clips])
    assert 0.02 < flagged < 0.25, flagged
