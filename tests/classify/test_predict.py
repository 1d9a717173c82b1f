"""Labelling the catalogue: incremental, abstaining below the threshold, traceable to its model
and snapshot version, and equal to the snapshot's files after deletions."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from tasks.classify.predict import classify_catalogue, label_counts
from tasks.classify.store import Classifier, model_fingerprint
from tasks.classify.training import labelled_embeddings, train
from tasks.resources import classifier_store, label_sets, predictions_table, snapshot_table
from tasks.settings import Settings
from tasks.steps.classify import import_labels
from tasks.storage.snapshots import SnapshotTable
from tests.classify.conftest import PER_LABEL

#: Files per label that are labelled (the rest of the catalogue is predicted).
LABELLED = 6


def _trained(settings: Settings, tmp_path, snapshot: SnapshotTable) -> Classifier:
    paths = snapshot.read(columns=["path"])["path"].to_pylist()
    chosen = [  # the first LABELLED files of each label; a file's folder is its true label
        f"{path},{path.split('/')[0]}"
        for path in paths
        if int(path.split("/")[1][:3]) % PER_LABEL < LABELLED
    ]
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "\n".join(chosen) + "\n")
    import_labels(settings, "machine", str(csv))
    label_set = label_sets(settings).read("machine")
    keys, embeddings, version = labelled_embeddings(snapshot_table(settings), label_set.keys)
    label_of = dict(zip(label_set.keys, label_set.labels, strict=True))
    model, evaluation = train(embeddings, [label_of[k] for k in keys])
    classifier = Classifier(
        "machine",
        model_fingerprint(label_set, snapshot.uri, version, evaluation.algorithm),
        model,
        evaluation,
        label_set.fingerprint,
        label_set.version,
        snapshot.uri,
        version,
        datetime.now(UTC),
    )
    assert classifier_store(settings).save(classifier)
    assert not classifier_store(settings).save(classifier)  # same labels, snapshot: one row
    return classifier_store(settings).latest("machine")


def test_the_catalogue_is_labelled_once_then_only_what_changed(
    settings: Settings, tmp_path, catalogue_snapshot: tuple[SnapshotTable, list[str]]
) -> None:
    snapshot, labels = catalogue_snapshot
    classifier = _trained(settings, tmp_path, snapshot)
    predictions = predictions_table(settings, "machine")

    first = classify_catalogue(snapshot, classifier, predictions, 0.6, "run-1")
    assert (first.predicted, first.deleted, first.unchanged) == (len(labels), 0, 0)
    stored = predictions.read().sort_by("path").to_pylist()
    assert [row["label"] for row in stored] == [row["path"].split("/")[0] for row in stored]
    assert {row["model_fingerprint"] for row in stored} == {classifier.fingerprint}
    assert {row["snapshot_version"] for row in stored} == {snapshot.version()}
    assert label_counts(predictions) == {"fan": 12, "pump": 12, "valve": 12}

    again = classify_catalogue(snapshot, classifier, predictions, 0.6, "run-2")
    assert (again.predicted, again.deleted, again.unchanged) == (0, 0, len(labels))

    # one file changed (new etag), one gone: only those two rows move
    rows = snapshot.read()
    changed = rows.slice(0, 1).set_column(
        rows.schema.get_field_index("etag"), "etag", pa.array(["e2"])
    )
    gone = rows["key"][1].as_py()
    snapshot.commit(changed, [gone], "edit")
    third = classify_catalogue(snapshot, classifier, predictions, 0.6, "run-3")
    assert (third.predicted, third.deleted, third.unchanged) == (1, 1, len(labels) - 2)
    assert set(third.changed) == {rows["key"][0].as_py(), gone}
    assert predictions.read().num_rows == len(labels) - 1
    assert gone not in predictions.read(columns=["key"])["key"].to_pylist()


def test_below_the_threshold_a_prediction_is_abstained_not_guessed(
    settings: Settings, tmp_path, catalogue_snapshot: tuple[SnapshotTable, list[str]]
) -> None:
    snapshot, _ = catalogue_snapshot
    classifier = _trained(settings, tmp_path, snapshot)
    rows = snapshot.read().sort_by("path")
    vectors = np.stack(rows["embedding"].to_numpy(zero_copy_only=False))
    # a file halfway between a fan (first by path) and a pump sounds like neither for sure
    blend = rows.slice(0, 1).set_column(
        rows.schema.get_field_index("embedding"),
        "embedding",
        pa.array([(vectors[0] + vectors[PER_LABEL]) / 2], rows.schema.field("embedding").type),
    )
    blend = blend.set_column(blend.schema.get_field_index("etag"), "etag", pa.array(["blend"]))
    snapshot.commit(blend, [], "blend")
    predictions = predictions_table(settings, "machine")
    result = classify_catalogue(snapshot, classifier, predictions, 0.9, "run")
    by_key = {row["key"]: row for row in predictions.read().to_pylist()}
    blended = by_key[rows["key"][0].as_py()]
    assert blended["abstained"] and blended["label"] is None
    assert blended["best_label"] in {"fan", "pump"} and blended["probability"] < 0.9
    confident = [row for key, row in by_key.items() if key != blended["key"]]
    assert all(not row["abstained"] and row["label"] for row in confident)
    assert result.abstained == 1
    assert label_counts(predictions)["(abstained)"] == 1
    with pytest.raises(Exception, match="no classifier for label set 'speaker'"):
        classifier_store(settings).latest("speaker")
