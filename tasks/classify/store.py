"""Where classifiers and their predictions are kept: Delta tables under the classify folder.

- ``models``: one row per trained classifier (the fitted scikit-learn model pickled, its
  evaluation, and the fingerprint of what it was trained on). The pickle is read back only from
  this table, which the pipeline alone writes: keep the folder as private as the snapshot.
- ``predictions/<label set>``: one row per catalogue file (a keyed table like the snapshot):
  the label, its probability, whether it abstained, and the model and snapshot version it
  came from.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sklearn
from deltalake import write_deltalake
from sklearn.base import ClassifierMixin

from tasks.classify.labelsets import LabelSet, LabelSetError
from tasks.classify.training import Evaluation
from tasks.storage.delta import UTC_MICROS, read_or_empty
from tasks.storage.keyed_table import KeyedTable

MODELS_SCHEMA = pa.schema(
    [
        pa.field("label_set", pa.string()),
        pa.field("fingerprint", pa.string()),
        pa.field("trained_at", UTC_MICROS),
        pa.field("algorithm", pa.string()),
        # the labels the model can predict (scikit-learn calls them classes; so does the column)
        pa.field("classes", pa.list_(pa.string())),
        pa.field("label_set_fingerprint", pa.string()),
        pa.field("label_set_version", pa.int64()),
        pa.field("snapshot_uri", pa.string()),
        pa.field("snapshot_version", pa.int64()),
        pa.field("sklearn_version", pa.string()),
        pa.field("evaluation", pa.string()),  # JSON of training.Evaluation
        pa.field("model", pa.binary()),  # pickled scikit-learn pipeline
    ]
)

PREDICTIONS_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string()),
        pa.field("key_prefix", pa.string()),
        pa.field("label_set", pa.string()),
        pa.field("path", pa.string()),
        pa.field("etag", pa.string()),  # of the snapshot row predicted from
        pa.field("label", pa.string()),  # null when abstained
        pa.field("best_label", pa.string()),  # the most probable label, abstained or not
        pa.field("probability", pa.float64()),  # of best_label
        # best_label's probability less the next label's: small when the classifier hesitates
        pa.field("margin", pa.float64()),
        # cosine to the nearest labelled file of the set: small for sounds unlike any example
        pa.field("labelled_similarity", pa.float64()),
        pa.field("abstained", pa.bool_()),
        pa.field("model_fingerprint", pa.string()),
        pa.field("snapshot_version", pa.int64()),
        pa.field("run_id", pa.string()),
        pa.field("predicted_at", UTC_MICROS),
    ]
)


@dataclass(frozen=True)
class Classifier:
    """A trained classifier and what it came from."""

    label_set: str
    fingerprint: str
    model: ClassifierMixin
    evaluation: Evaluation
    label_set_fingerprint: str
    label_set_version: int
    snapshot_uri: str
    snapshot_version: int
    trained_at: datetime

    @property
    def labels(self) -> list[str]:
        """The label set's labels the model can predict, in its output order."""
        return [str(c) for c in self.model.classes_]

    def predict(self, embeddings: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The most probable label of each embedding [n, 2048], its probability, and its margin
        over the next most probable label."""
        probabilities = self.model.predict_proba(embeddings)
        ranked = np.sort(probabilities, axis=1)
        best = probabilities.argmax(axis=1)
        margin = ranked[:, -1] - (ranked[:, -2] if ranked.shape[1] > 1 else 0.0)
        return [self.labels[i] for i in best], ranked[:, -1], margin


def model_fingerprint(
    labels: LabelSet, snapshot_uri: str, snapshot_version: int, algorithm: str
) -> str:
    """What a model's predictions are traceable to: its labels, the snapshot version it read,
    the algorithm and scikit-learn's version. Training again on the same gives the same."""
    text = "\n".join(
        [
            labels.fingerprint,
            snapshot_uri,
            str(snapshot_version),
            algorithm,
            sklearn.__version__,
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ClassifierStore:
    """The ``models`` table at ``uri``."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri
        self.storage_options = storage_options

    def save(self, classifier: Classifier) -> bool:
        """Append ``classifier`` unless one with its fingerprint is already stored (a retrain on
        the same labels and snapshot); returns whether it was written."""
        if self._rows(classifier.label_set, classifier.fingerprint).num_rows:
            return False
        row = {
            "label_set": classifier.label_set,
            "fingerprint": classifier.fingerprint,
            "trained_at": classifier.trained_at,
            "algorithm": classifier.evaluation.algorithm,
            "classes": classifier.labels,
            "label_set_fingerprint": classifier.label_set_fingerprint,
            "label_set_version": classifier.label_set_version,
            "snapshot_uri": classifier.snapshot_uri,
            "snapshot_version": classifier.snapshot_version,
            "sklearn_version": sklearn.__version__,
            "evaluation": json.dumps(classifier.evaluation.to_dict()),
            "model": pickle.dumps(classifier.model),
        }
        write_deltalake(
            self.uri,
            pa.Table.from_pylist([row], schema=MODELS_SCHEMA),
            mode="append",
            storage_options=self.storage_options,
        )
        return True

    def history(self, label_set: str) -> list[dict]:
        """Every classifier of ``label_set``, oldest first (no model is unpickled): trained_at
        (ISO 8601), algorithm, clips, macro_f1 and majority_macro_f1 (cross-validated),
        fingerprint, and the label sets table version it was trained on."""
        rows = sorted(self._rows(label_set).to_pylist(), key=lambda r: r["trained_at"])
        history = []
        for row in rows:
            evaluation = Evaluation.from_dict(json.loads(row["evaluation"]))
            history.append(
                {
                    "trained_at": row["trained_at"].isoformat(),
                    "algorithm": evaluation.algorithm,
                    "clips": evaluation.clips,
                    "macro_f1": evaluation.macro_f1,
                    "majority_macro_f1": evaluation.majority_macro_f1,
                    "fingerprint": row["fingerprint"],
                    "label_set_version": row["label_set_version"],
                }
            )
        return history

    def has(self, label_set: str) -> bool:
        """Whether a classifier of ``label_set`` is stored."""
        return self._rows(label_set).num_rows > 0

    def label_sets(self) -> list[str]:
        """The label sets that have a trained classifier."""
        rows = read_or_empty(self.uri, MODELS_SCHEMA, self.storage_options, ["label_set"])
        return sorted(set(rows["label_set"].to_pylist()))

    def latest(self, label_set: str) -> Classifier:
        """The most recently trained classifier of ``label_set``."""
        rows = self._rows(label_set).to_pylist()
        if not rows:
            raise LabelSetError(
                f"no classifier for label set {label_set!r} yet: train one with "
                f"'audio-embeddings classify train {label_set}'"
            )
        row = max(rows, key=lambda r: r["trained_at"])
        return Classifier(
            label_set=row["label_set"],
            fingerprint=row["fingerprint"],
            model=pickle.loads(row["model"]),
            evaluation=Evaluation.from_dict(json.loads(row["evaluation"])),
            label_set_fingerprint=row["label_set_fingerprint"],
            label_set_version=row["label_set_version"],
            snapshot_uri=row["snapshot_uri"],
            snapshot_version=row["snapshot_version"],
            trained_at=row["trained_at"],
        )

    def _rows(self, label_set: str, fingerprint: str | None = None) -> pa.Table:
        rows = read_or_empty(self.uri, MODELS_SCHEMA, self.storage_options)
        keep = pc.equal(rows["label_set"], label_set)
        if fingerprint is not None:
            keep = pc.and_(keep, pc.equal(rows["fingerprint"], fingerprint))
        return rows.filter(keep)


class PredictionsTable(KeyedTable):
    """The predictions of one label set: a row per catalogue file (``KeyedTable.commit``
    upserts predictions and deletes those of files gone from the snapshot)."""

    schema = PREDICTIONS_SCHEMA
    name = "audio_predictions"
    description = "Labels predicted for catalogue files by a classifier trained on a label set"
    app = "audio-embeddings-classify"
