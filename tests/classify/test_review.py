"""The review queue: the least certain first, then files unlike every example, then spot checks;
never a file already labelled."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tasks.classify.labelsets import LabelSetError
from tasks.classify.predict import classify_catalogue
from tasks.classify.review import ABSTAINED, SPOT_CHECK, UNLIKE_EXAMPLES, review_queue
from tasks.classify.training import labelled_embeddings
from tasks.model.constants import EMBEDDING_SIZE
from tasks.resources import label_sets, predictions_table
from tasks.settings import Settings
from tasks.steps.classify import review_labels
from tasks.storage.snapshots import SnapshotTable
from tests.classify.conftest import PER_LABEL
from tests.classify.test_predict import _trained


def _add(snapshot: SnapshotTable, rows: pa.Table, key: str, vector: np.ndarray, path: str) -> None:
    row = rows.slice(0, 1)
    for name, value in (("key", key), ("path", path), ("etag", "new")):
        row = row.set_column(row.schema.get_field_index(name), name, pa.array([value]))
    row = row.set_column(
        row.schema.get_field_index("embedding"),
        "embedding",
        pa.array([vector.astype(np.float32)], row.schema.field("embedding").type),
    )
    snapshot.commit(row, [], f"add-{key[:4]}")


def test_the_queue_puts_doubt_first_then_the_unknown_then_spot_checks(
    settings: Settings, tmp_path, catalogue_snapshot: tuple[SnapshotTable, list[str]]
) -> None:
    snapshot, _ = catalogue_snapshot
    with pytest.raises(LabelSetError, match="no classifier yet"):
        review_labels(settings, "machine")
    classifier = _trained(settings, tmp_path, snapshot)
    rows = snapshot.read().sort_by("path")
    vectors = np.stack(rows["embedding"].to_numpy(zero_copy_only=False))
    # halfway between a fan and a pump: the classifier hesitates; far from everything: unknown
    _add(snapshot, rows, "b" * 64, (vectors[0] + vectors[PER_LABEL]) / 2, "mixed/blend.wav")
    far = np.random.default_rng(5).random(EMBEDDING_SIZE) * 3
    _add(snapshot, rows, "f" * 64, far, "odd/far.wav")
    labelled = label_sets(settings).read("machine")
    examples = labelled_embeddings(snapshot, labelled.keys)[1]
    predictions = predictions_table(settings, "machine")
    classify_catalogue(snapshot, classifier, predictions, 0.9, "run", examples)

    stored = {r["path"]: r for r in predictions.read().to_pylist()}
    for row in stored.values():  # the margin over the next label; cosine to the nearest example
        assert 0.0 <= row["margin"] <= row["probability"] <= 1.0
        assert -1.0 <= row["labelled_similarity"] <= 1.0 + 1e-6
    assert stored["mixed/blend.wav"]["margin"] < min(
        r["margin"] for p, r in stored.items() if p != "mixed/blend.wav" and p != "odd/far.wav"
    )
    assert stored["odd/far.wav"]["labelled_similarity"] == min(
        r["labelled_similarity"] for r in stored.values()
    )

    queue = review_labels(settings, "machine", size=10)
    assert len(queue) == 10
    assert queue[0].path == "mixed/blend.wav" and queue[0].reason == ABSTAINED
    assert not set(labelled.paths) & {item.path for item in queue}  # never a labelled file
    reasons = [item.reason for item in queue]
    assert reasons.count(UNLIKE_EXAMPLES) >= 1 and reasons.count(SPOT_CHECK) >= 1
    assert reasons == sorted(
        reasons, key=[ABSTAINED, "near miss", UNLIKE_EXAMPLES, SPOT_CHECK].index
    )
    # the near misses come by growing margin
    near = [item.margin for item in queue if item.reason == "near miss"]
    assert near == sorted(near)
    unknown = [item for item in queue if item.reason == UNLIKE_EXAMPLES]
    assert "odd/far.wav" in {
        item.path for item in queue if item.reason in (ABSTAINED, UNLIKE_EXAMPLES)
    }
    assert all(item.labelled_similarity is not None for item in unknown)
    # the same state gives the same queue
    assert review_labels(settings, "machine", size=10) == queue


def test_a_queue_of_predictions_stored_before_margins_orders_by_probability() -> None:
    rows = pa.table(
        {
            "key": ["a", "b", "c", "d"],
            "path": ["a.wav", "b.wav", "c.wav", "d.wav"],
            "best_label": ["x", "y", "x", "y"],
            "probability": [0.95, 0.55, 0.7, 0.4],
            "margin": pa.nulls(4, pa.float64()),
            "labelled_similarity": pa.nulls(4, pa.float64()),
            "abstained": [False, False, False, True],
        }
    )
    queue = review_queue(rows, labelled={"c"}, size=3)
    assert [item.key for item in queue] == ["d", "b", "a"]
    assert review_queue(rows, labelled={"a", "b", "c", "d"}) == []
