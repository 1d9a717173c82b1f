"""The steps of label import, classifier training and the classify flow."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.classify.labelsets import (
    CatalogueIndex,
    ImportReport,
    LabelChange,
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
from tasks.classify.review import ReviewItem, prediction_rows, review_queue
from tasks.classify.store import Classifier, model_fingerprint
from tasks.classify.training import MIN_EXAMPLES_PER_CLASS, labelled_embeddings, train
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


def import_labels(
    settings: Settings, name: str, source: str, who: str | None = None
) -> ImportReport:
    """Import label set ``name`` from ``source`` (as ``who``): a CSV file, a folder of
    ``<label>/`` folders, or ``metadata:<field>`` (the field of the metadata ingest stored with
    each file)."""
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
    rows, report = label_rows(name, raw, catalogue, source, who)
    if report.kept == 0:
        reasons = "; ".join(f"{origin}: {why}" for origin, why in report.skipped[:3])
        raise LabelSetError(
            f"no row of {source} names a catalogue file with a label ({reasons or 'empty'})"
        )
    report.version = label_sets(settings).replace(name, rows)
    return report


def change_labels(
    settings: Settings,
    name: str,
    who: str,
    add: dict[str, str] | None = None,
    remove: list[str] | None = None,
    relabel: bool = False,
) -> LabelChange:
    """Label catalogue files (``add``: file -> label) and take files out (``remove``) of label
    set ``name`` as ``who``: one new version of the label sets table (``LabelSets.change``)."""
    rows = snapshot_table(settings).read(columns=["key", "path", "source_uri"])
    return label_sets(settings).change(
        name, CatalogueIndex.of(rows), who, add, remove or (), relabel
    )


def review_labels(settings: Settings, name: str, size: int = 20) -> list[ReviewItem]:
    """The review queue of label set ``name`` (tasks.classify.review): refused, with what to
    do, before the set has a classifier and its predictions."""
    if not classifier_store(settings).has(name):
        raise LabelSetError(
            f"label set {name!r} has no classifier yet: train one ('audio-embeddings classify "
            f"train {name}') and run it ('audio-embeddings classify run {name}')"
        )
    predictions = predictions_table(settings, name).read()
    if predictions.num_rows == 0:
        raise LabelSetError(
            f"no predictions for {name!r} yet: run 'audio-embeddings classify run {name}'"
        )
    sets = label_sets(settings)
    labelled = sets.read(name) if name in sets.names() else None
    return review_queue(
        prediction_rows(predictions),
        set(labelled.keys) if labelled else set(),
        size,
        seed=labelled.version if labelled else 0,
    )


@task(name="train-classifier", cache_policy=NO_CACHE)
def train_classifier_task(settings: Settings, name: str, min_per_class: int) -> Classifier:
    """Train, evaluate and store a classifier for label set ``name``; publishes the evaluation."""
    logger = get_run_logger()
    classifier, left_out, stored = fit_classifier(settings, name, min_per_class)
    if left_out:
        logger.warning(
            "%d labelled files are no longer in the catalogue and were left out", left_out
        )
    evaluation = classifier.evaluation
    logger.info(
        "%s: %s chosen, cross-validated macro-F1 %.3f (majority baseline %.3f), model %s%s",
        name,
        evaluation.algorithm,
        evaluation.macro_f1,
        evaluation.majority_macro_f1,
        classifier.fingerprint,
        "" if stored else " (already stored: same labels and snapshot)",
    )
    publish_evaluation_report(name, classifier, label_sets(settings).read(name).counts())
    return classifier


def fit_classifier(
    settings: Settings, name: str, min_per_class: int = MIN_EXAMPLES_PER_CLASS
) -> tuple[Classifier, int, bool]:
    """Train and evaluate (cross-validated) a classifier for label set ``name`` and store it:
    the classifier, how many labelled files were left out (gone from the catalogue), and
    whether it was stored (False: the same labels and snapshot were trained on before)."""
    labels = label_sets(settings).read(name)
    found, embeddings, version = labelled_embeddings(snapshot_table(settings), labels.keys)
    label_of = dict(zip(labels.keys, labels.labels, strict=True))
    model, evaluation = train(embeddings, [label_of[key] for key in found], min_per_class)
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
    return classifier, len(labels.keys) - len(found), stored


@task(name="trained-label-sets", cache_policy=NO_CACHE)
def trained_label_sets_task(settings: Settings) -> list[str]:
    """The label sets that have a trained classifier (what a classify run labels by default)."""
    return classifier_store(settings).label_sets()


@task(name="classify-catalogue", cache_policy=NO_CACHE)
def classify_task(settings: Settings, name: str, run_id: str) -> ClassifyResult:
    """Predict for new and changed files with the latest classifier of ``name``, then give the
    index the changed files' predicted labels."""
    logger = get_run_logger()
    result = label_catalogue(settings, name, run_id)
    logger.info(
        "%s: %d predicted (%d abstained below %.2f), %d deleted, %d unchanged, model %s",
        name,
        result.predicted,
        result.abstained,
        settings.classify_min_confidence,
        result.deleted,
        result.unchanged,
        result.model_fingerprint,
    )
    predictions = predictions_table(settings, name)
    publish_classify_report(result, label_counts(predictions), settings.classify_min_confidence)
    return result


def label_catalogue(settings: Settings, name: str, run_id: str) -> ClassifyResult:
    """Predict for the files new or changed since the last run with the latest classifier of
    ``name`` (each prediction's distance to the labelled files kept for the review queue),
    then give the index the changed files' predicted labels."""
    classifier = classifier_store(settings).latest(name)
    snapshot = snapshot_table(settings)
    sets = label_sets(settings)
    labelled = sets.read(name).keys if name in sets.names() else []
    examples = labelled_embeddings(snapshot, labelled)[1] if labelled else None
    result = classify_catalogue(
        snapshot,
        classifier,
        predictions_table(settings, name),
        settings.classify_min_confidence,
        run_id,
        examples,
    )
    if result.changed:
        push_predicted_labels(
            snapshot_table(settings),
            predicted_labels_of_files(settings),
            open_index(settings),
            list(result.changed),
        )
    return result
