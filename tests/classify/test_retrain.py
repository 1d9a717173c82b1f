"""Retraining after new labels: a new classifier on more clips, and the catalogue labelled again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.resources import snapshot_table
from tasks.steps.classify import change_labels, fit_classifier, label_catalogue
from tests.classify.test_predict import _trained


@pytest.mark.usefixtures("catalogue_snapshot")
def test_a_retrain_reports_the_evaluation_before_and_after(settings, tmp_path: Path) -> None:
    first = _trained(settings, tmp_path, snapshot_table(settings))
    paths = snapshot_table(settings).read(columns=["path"])["path"].to_pylist()
    more = {p: p.split("/")[0] for p in paths if int(p.split("/")[1][:3]) % 12 in (6, 7, 8)}
    change_labels(settings, "machine", "tester", add=more)
    classifier, _, stored = fit_classifier(settings, "machine")
    assert stored and classifier.fingerprint != first.fingerprint
    assert classifier.evaluation.clips == first.evaluation.clips + len(more)
    result = label_catalogue(settings, "machine", "retrain")
    assert result.predicted == len(paths)  # the new model labels every file again
