"""Label the catalogue: predict for the snapshot rows that are new or changed since the last run
(or all of them under a new model), abstain below a confidence threshold, and keep the
predictions table equal to the snapshot's files.

A row needs a prediction when the predictions table has none for its key, or has one made from
another version of the file (etag) or by another model (fingerprint). Embeddings are read only
for those rows, a batch at a time, so a run that finds nothing new reads no vectors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from tasks.classify.store import PREDICTIONS_SCHEMA, Classifier, PredictionsTable
from tasks.storage.delta import UTC_MICROS, keys_in, scan_batches
from tasks.storage.snapshots import SnapshotTable

#: How ``label_counts`` names the files whose prediction abstained.
ABSTAINED = "(abstained)"
#: Snapshot rows read and predicted at a time (8 MB of embeddings).
ROWS_PER_BATCH = 1_024
#: Predictions per table commit (one Delta version each; a killed run keeps the ones before).
ROWS_PER_COMMIT = 50_000


@dataclass
class ClassifyResult:
    """What a run did; ``changed``: the keys whose prediction was made or removed (their index
    documents need new predicted labels)."""

    label_set: str
    model_fingerprint: str
    snapshot_version: int | None
    predicted: int = 0
    abstained: int = 0
    deleted: int = 0
    unchanged: int = 0
    changed: set[str] = field(default_factory=set)


def rows_to_predict(
    snapshot_markers: pa.Table, prediction_markers: pa.Table, fingerprint: str
) -> tuple[list[str], list[str]]:
    """Keys whose prediction is missing or stale, and keys predicted but gone from the snapshot.

    ``snapshot_markers`` has key and etag; ``prediction_markers`` key, etag and
    model_fingerprint."""
    current = prediction_markers.filter(
        pc.equal(prediction_markers["model_fingerprint"], fingerprint)
    )
    todo = snapshot_markers.select(["key", "etag"]).join(
        current.select(["key", "etag"]), ["key", "etag"], join_type="left anti"
    )
    gone = prediction_markers.select(["key"]).join(
        snapshot_markers.select(["key"]), "key", join_type="left anti"
    )
    return sorted(todo["key"].to_pylist()), sorted(gone["key"].to_pylist())


def classify_catalogue(
    snapshot: SnapshotTable,
    classifier: Classifier,
    predictions: PredictionsTable,
    min_confidence: float,
    run_id: str,
    labelled: np.ndarray | None = None,
) -> ClassifyResult:
    """Bring ``predictions`` up to the latest snapshot version with ``classifier``;
    ``labelled`` holds the label set's embeddings [n, 2048], each prediction's distance to which
    is kept (the review queue's "far from every labelled example")."""
    latest = snapshot.latest()
    version = latest.table.version() if latest.table is not None else None
    result = ClassifyResult(classifier.label_set, classifier.fingerprint, version)
    if latest.data is None:
        return result
    snapshot_markers = latest.rows_under(columns=("key", "etag"))
    todo, gone = rows_to_predict(
        snapshot_markers,
        predictions.rows_under(columns=("key", "etag", "model_fingerprint")),
        classifier.fingerprint,
    )
    result.unchanged = snapshot_markers.num_rows - len(todo)
    pending: list[pa.Table] = []
    sequence = 0

    def commit(deleted: list[str]) -> None:
        nonlocal sequence
        sequence += 1
        rows = pa.concat_tables(pending) if pending else PREDICTIONS_SCHEMA.empty_table()
        predictions.commit(rows, deleted, run_id, sequence)
        pending.clear()

    examples = None if labelled is None or len(labelled) == 0 else _unit(labelled)
    predicted = _predicted(latest.data, todo, classifier, min_confidence, version, run_id, examples)
    for rows in predicted:
        pending.append(rows)
        result.predicted += rows.num_rows
        result.abstained += int(pc.sum(rows["abstained"]).as_py() or 0)
        result.changed.update(rows["key"].to_pylist())
        if sum(t.num_rows for t in pending) >= ROWS_PER_COMMIT:
            commit([])
    if pending or gone:
        commit(gone)
    result.deleted = len(gone)
    result.changed.update(gone)
    return result


def _predicted(
    data: ds.Dataset,
    keys: list[str],
    classifier: Classifier,
    min_confidence: float,
    snapshot_version: int | None,
    run_id: str,
    examples: np.ndarray | None,
) -> Iterator[pa.Table]:
    """Prediction rows for the snapshot rows of ``keys``, a batch at a time."""
    if not keys:
        return
    wanted = keys_in(keys)
    columns = ["key", "path", "etag", "embedding"]
    for batch in scan_batches(data, columns, wanted, ROWS_PER_BATCH):
        embeddings = np.stack(batch.column("embedding").to_numpy(zero_copy_only=False)).astype(
            np.float32
        )
        best, probability, margin = classifier.predict(embeddings)
        abstained = probability < min_confidence
        count = batch.num_rows
        similarity = (
            pa.nulls(count, pa.float64())
            if examples is None
            else pa.array((_unit(embeddings) @ examples.T).max(axis=1), pa.float64())
        )
        yield pa.table(
            {
                "key": batch.column("key").cast(pa.string()),
                "key_prefix": pa.nulls(count, pa.string()),
                "label_set": [classifier.label_set] * count,
                "path": batch.column("path").cast(pa.string()),
                "etag": batch.column("etag").cast(pa.string()),
                "label": [None if a else b for a, b in zip(abstained, best, strict=True)],
                "best_label": best,
                "probability": probability.astype(np.float64),
                "margin": margin.astype(np.float64),
                "labelled_similarity": similarity,
                "abstained": abstained,
                "model_fingerprint": [classifier.fingerprint] * count,
                "snapshot_version": pa.array([snapshot_version] * count, pa.int64()),
                "run_id": [run_id] * count,
                "predicted_at": pa.array([datetime.now(UTC)] * count, UTC_MICROS),
            },
            schema=PREDICTIONS_SCHEMA,
        )


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def label_counts(predictions: PredictionsTable) -> dict[str, int]:
    """How many catalogue files carry each predicted label, and how many abstained."""
    rows = predictions.read(columns=["label", "abstained"])
    counts: dict[str, int] = {}
    for label, abstained in zip(
        rows["label"].to_pylist(), rows["abstained"].to_pylist(), strict=True
    ):
        name = ABSTAINED if abstained else label
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))
