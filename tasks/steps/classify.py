"""The steps of label import, classifier training and the classify flow."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.classify.labelsets import (
    CatalogueIndex,
    ImportReport,
    LabelSetError,
    check_name,
    label_rows,
    read_csv_labels,
    read_folder_labels,
    read_metadata_labels,
)
from tasks.classify.predict import ClassifyResult, classify_catalogue, label_counts
from tasks.classify.predicted_labels import push_predicted_labels
from tasks.classify.report import publish_classify_report, publish_evaluation_report
from tasks.classify.store import Classifier, model_fingerprint
from tasks.classify.training import labelled_embeddings, train
from tasks.resources import (
    classifier_store,
    label_sets,
    open_index,
    predicted_labels_of_files,
    predictions_table,
    snapshot_table,
)
from tasks.settings import Settings

METADATA_SOURCE = "metadata:"


def import_labels(settings: Settings, name: str, source: str) -> ImportReport:
    """Import label set ``name`` from ``source``: a CSV file, a folder of ``<label>/`` folders,
    or ``metadata:<field>`` (the field of the metadata ingest stored with each file)."""
    check_name(name)
    snapshot = snapshot_table(settings)
    catalogue_rows = snapshot.read(columns=["key", "path", "source_uri", "metadata"])
    if catalogue_rows.num_rows == 0:
        raise LabelSetError(
            f"the catalogue at {snapshot.uri} is empty: ingest the audio before labelling it"
        )
    catalogue = CatalogueIndex.of(catalogue_rows)
    if source.startswith(METADATA_SOURCE):
        raw = read_metadata_labels(catalogue_rows, source[len(METADATA_SOURCE) :])
    else:
        path = Path(source)
        if path.is_dir():
            raw = read_folder_labels(path)
        elif path.is_file():
            raw = read_csv_labels(path.read_text(encoding="utf-8-sig"), path.name)
        else:
            raise LabelSetError(
                f"label source {source!r} is neither a CSV file, a folder nor metadata:<field>"
            )
    rows, report = label_rows(name, raw, catalogue, source)
    if report.kept == 0:
        reasons = "; ".join(f"{origin}: {why}" for origin, why in report.skipped[:3])
        raise LabelSetError(
            f"no row of {source} names a catalogue file with a label ({reasons or 'empty'})"
        )
    report.version = label_sets(settings).replace(name, rows)
    return report


@task(name="train-classifier", cache_policy=NO_CACHE)
def train_classifier_task(settings: Settings, name: str, min_per_class: int) -> Classifier:
    """Train, evaluate and store a classifier for label set ``name``; publishes the evaluation."""
    logger = get_run_logger()
    labels = label_sets(settings).read(name)
    found, embeddings, version = labelled_embeddings(snapshot_table(settings), labels.keys)
    label_of = dict(zip(labels.keys, labels.labels, strict=True))
    if len(found) < len(labels.keys):
        logger.warning(
            "%d labelled files are no longer in the catalogue and were left out",
            len(labels.keys) - len(found),
        )
    targets = [label_of[key] for key in found]
    model, evaluation = train(embeddings, targets, min_per_class)
    snapshot_uri = settings.resolved_snapshot_uri()
    classifier = Classifier(
        label_set=name,
        fingerprint=model_fingerprint(labels, snapshot_uri, version, evaluation.algorithm),
        model=model,
        evaluation=evaluation,
        label_set_fingerprint=labels.fingerprint,
        label_set_version=labels.version,
        snapshot_uri=snapshot_uri,
        snapshot_version=version,
        trained_at=datetime.now(UTC),
    )
    stored = classifier_store(settings).save(classifier)
    logger.info(
        "%s: %s chosen, cross-validated macro-F1 %.3f (majority baseline %.3f), model %s%s",
        name,
        evaluation.algorithm,
        evaluation.macro_f1,
        evaluation.majority_macro_f1,
        classifier.fingerprint,
        "" if stored else " (already stored: same labels and snapshot)",
    )
    publish_evaluation_report(name, classifier, labels.counts())
    return classifier


@task(name="trained-label-sets", cache_policy=NO_CACHE)
def trained_label_sets_task(settings: Settings) -> list[str]:
    """The label sets that have a trained classifier (what a classify run labels by default)."""
    return classifier_store(settings).label_sets()


@task(name="classify-catalogue", cache_policy=NO_CACHE)
def classify_task(settings: Settings, name: str, run_id: str) -> ClassifyResult:
    """Predict for new and changed files with the latest classifier of ``name``, then give the
    index the changed files' predicted labels."""
    logger = get_run_logger()
    classifier = classifier_store(settings).latest(name)
    snapshot = snapshot_table(settings)
    predictions = predictions_table(settings, name)
    result = classify_catalogue(
        snapshot, classifier, predictions, settings.classify_min_confidence, run_id
    )
    logger.info(
        "%s: %d predicted (%d abstained below %.2f), %d deleted, %d unchanged, model %s",
        name,
        result.predicted,
        result.abstained,
        settings.classify_min_confidence,
        result.deleted,
        result.unchanged,
        classifier.fingerprint,
    )
    if result.changed:
        push_predicted_labels(
            snapshot_table(settings),
            predicted_labels_of_files(settings),
            open_index(settings),
            list(result.changed),
        )
    publish_classify_report(result, label_counts(predictions), settings.classify_min_confidence)
    return result
