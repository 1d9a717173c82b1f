"""The whole classify loop on the synthetic labelled catalogue, with the real (random-weight)
model: ingest, import labels, train, label the catalogue, search by a predicted label; then an
edit and a deletion, which only the changed rows follow."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.classify import classify, train_classifier
from flows.ingest import ingest
from flows.search import search
from tasks.audio import samples
from tasks.resources import open_index, predictions_table
from tasks.settings import Settings
from tasks.steps.classify import import_labels

pytestmark = pytest.mark.usefixtures("prefect_server")


def _artifact(key: str) -> str:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert found, key
    return str(found[-1].data)


def _classes_by_path() -> dict[str, list[str]]:
    index = open_index(Settings())
    table = index._documents_table().to_arrow()  # the stored documents themselves
    return {
        path: sorted(classes or [])
        for path, classes in zip(
            table["path"].to_pylist(), table["predicted_labels"].to_pylist(), strict=True
        )
    }


def test_label_train_classify_and_search_by_predicted_label(
    tmp_path: Path, stores: dict[str, str]
) -> None:
    folder = tmp_path / "labelled"
    samples.make_labelled_catalogue(folder, per_label=6, seconds=2.0, rate=16_000)
    ingest(source=str(folder))
    settings = Settings()
    report = import_labels(settings, "machine", str(folder / "machines-labels.csv"))
    assert report.counts == {"compressor": 6, "fan": 6, "pump": 6, "valve": 6}
    assert import_labels(settings, "speaker", str(folder / "speech")).counts == {
        "high": 6,
        "low": 6,
    }

    trained = train_classifier(label_set="machine")
    assert (
        trained.evaluation.clips == 24
        and trained.evaluation.macro_f1 > trained.evaluation.majority_macro_f1
    )
    evaluation = _artifact("classifier-machine")
    assert "majority-class baseline" in evaluation and "Confusion" in evaluation
    with pytest.raises(Exception, match="no classifier for label set 'speaker'"):
        classify(label_sets=["speaker"])

    (summary,) = classify()  # every trained set: machine only
    assert (summary.label_set, summary.predicted, summary.unchanged) == ("machine", 36, 0)
    assert "| compressor |" in _artifact("classify-machine")
    predicted = {
        row["path"]: row["label"]
        for row in predictions_table(settings, "machine").read().to_pylist()
    }
    pumps = sorted(path for path, label in predicted.items() if label == "pump")
    assert {f"machines/pump/clip-{i:03d}.wav" for i in range(6)} <= set(pumps)
    stored = _classes_by_path()
    assert all(stored[path] == ["machine=pump"] for path in pumps)

    query = str(folder / "machines/fan/clip-000.wav")
    hits = search(query=query, top=50, predicted_labels=["machine=pump"])
    assert sorted(h.path for h in hits) == pumps
    assert all(h.predicted_labels == ["machine=pump"] for h in hits)
    assert search(query=query, top=50, predicted_labels=["machine=nothing"]) == []

    # an edited file keeps no stale label in the index; a deleted one leaves the predictions
    edited, deleted = folder / pumps[0], folder / "machines/valve/clip-005.wav"
    samples.write(edited, samples.chirp(2.0, 16_000), 16_000)
    deleted.unlink()
    ingest(source=str(folder))
    stored = _classes_by_path()
    assert stored[pumps[0]] == [] and stored[pumps[-1]] == ["machine=pump"]
    (again,) = classify()
    assert (again.predicted, again.deleted, again.unchanged) == (1, 1, 34)
    paths = predictions_table(settings, "machine").read()["path"].to_pylist()
    assert "machines/valve/clip-005.wav" not in paths and len(paths) == 35
    row = next(
        r
        for r in predictions_table(settings, "machine").read().to_pylist()
        if r["path"] == pumps[0]
    )
    assert row["etag"] != "" and row["best_label"]  # predicted again from the edited file
    assert _classes_by_path()[pumps[0]] == ([] if row["abstained"] else [f"machine={row['label']}"])
