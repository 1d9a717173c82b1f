"""Classify by example: train a classifier on a label set, and label the catalogue with it.

``train-classifier`` fits and evaluates (cross-validated) a classifier for a label set and
stores it; ``classify`` predicts for the files new or changed since its last run (everything
under a new model), marks low-confidence predictions abstained, and gives the index the
predicted labels as a filterable field. The ``classify`` deployment runs after each ingest and
on a schedule.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from prefect import flow
from prefect.runtime import flow_run

from tasks.classify.training import MIN_EXAMPLES_PER_CLASS, Evaluation
from tasks.settings import Settings
from tasks.steps.classify import classify_task, train_classifier_task, trained_label_sets_task


@dataclass
class TrainingSummary:
    """What training chose and how well it did (cross-validated)."""

    label_set: str
    model_fingerprint: str
    evaluation: Evaluation


@dataclass
class ClassifySummary:
    """What a classify run did, per label set."""

    label_set: str
    model_fingerprint: str
    snapshot_version: int | None
    predicted: int
    abstained: int
    deleted: int
    unchanged: int


@flow(name="train-classifier")
def train_classifier(
    label_set: str, min_per_class: int = MIN_EXAMPLES_PER_CLASS
) -> TrainingSummary:
    """Fit k-NN and a logistic regression on the snapshot embeddings of a label set's clips,
    keep the better by stratified cross-validation, and store it with its evaluation.

    Args:
        label_set: The label set to learn (imported with `audio-embeddings labels import`).
        min_per_class: Fewest labelled clips a label needs; a set with fewer is refused.
    """
    classifier = train_classifier_task(Settings(), label_set, min_per_class)
    return TrainingSummary(label_set, classifier.fingerprint, classifier.evaluation)


@flow(name="classify")
def classify(
    label_sets: list[str] | None = None, min_confidence: float | None = None
) -> list[ClassifySummary]:
    """Predict labels for the catalogue files that are new or changed since the last run.

    Args:
        label_sets: Label sets to predict (each needs a trained classifier); empty: every
            label set that has one.
        min_confidence: Below this probability a prediction is marked abstained (no label);
            empty: the worker's AUDIO_EMBEDDINGS_CLASSIFY_MIN_CONFIDENCE (0.6).
    """
    settings = Settings.with_overrides(classify_min_confidence=min_confidence)
    names = label_sets or trained_label_sets_task(settings)
    run_id = str(flow_run.get_id() or uuid.uuid4())
    summaries = []
    for name in names:
        result = classify_task(settings, name, run_id)
        summaries.append(
            ClassifySummary(
                name,
                result.model_fingerprint,
                result.snapshot_version,
                result.predicted,
                result.abstained,
                result.deleted,
                result.unchanged,
            )
        )
    return summaries
