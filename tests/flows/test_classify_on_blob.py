"""The classify loop where everything lives on Blob Storage (Azurite): labels from the blob
metadata ingest stored, and the label sets, classifiers and predictions as Delta tables there."""

from __future__ import annotations

import numpy as np
import pytest
from azure.storage.blob import ContainerClient

from flows.classify import classify, train_classifier
from flows.ingest import ingest
from flows.search import search
from tasks.audio import samples
from tasks.resources import label_sets, predictions_table
from tasks.settings import Settings
from tasks.steps.classify import import_labels

pytestmark = pytest.mark.usefixtures("prefect_server")

MACHINES = {
    "pump": lambda rng, i: samples.engine(2.0, 16_000, rng.uniform(1_400, 2_000), i),
    "valve": lambda rng, i: samples.clicks(2.0, 16_000, rng.uniform(1.5, 4.0), i),
}


def test_labels_from_blob_metadata_and_every_table_on_blob(
    blob_env: ContainerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = Settings().resolved_snapshot_uri().rsplit("/", 1)[0]  # az://stores-<suffix>
    monkeypatch.setenv("AUDIO_EMBEDDINGS_CLASSIFY_URI", f"{stores}/classify")
    rng = np.random.default_rng(0)
    for label, make in MACHINES.items():
        for i in range(6):
            data = samples.encode(make(rng, i), 16_000, "wav")
            metadata = {"machine": label} if i < 5 else {}  # one of each left unlabelled
            blob_env.upload_blob(f"plant/{label}-{i}.wav", data, metadata=metadata)
    ingest(source=f"az://{blob_env.container_name}/")
    settings = Settings()

    report = import_labels(settings, "machine", "metadata:machine")
    assert report.counts == {"pump": 5, "valve": 5} and not report.skipped
    assert label_sets(settings).uri.startswith("az://")
    trained = train_classifier(label_set="machine").evaluation
    assert trained.macro_f1 > trained.majority_macro_f1
    (summary,) = classify()
    assert summary.predicted == 12
    predictions = predictions_table(settings, "machine")
    assert predictions.uri.startswith("az://")
    predicted = {row["path"]: row["best_label"] for row in predictions.read().to_pylist()}
    assert predicted["plant/pump-5.wav"] == "pump" and predicted["plant/valve-5.wav"] == "valve"
    hits = search(query="plant/pump-5.wav", top=20, predicted_labels=["machine=valve"])
    assert hits and {h.path.split("-")[0] for h in hits} == {"plant/valve"}
