"""``/api/label-sets``: a person's labels, given and taken back from the page, each change a
new version of the label sets table that records who made it and when."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from tasks.classify.labelsets import check_name
from tasks.serve.api_models import audio_url
from tasks.serve.dependencies import Caller, Service
from tasks.serve.retraining import RetrainState

router = APIRouter(prefix="/api/label-sets")


class LabelRequest(BaseModel):
    """Files to label, by catalogue key or path."""

    label: str = Field(min_length=1, max_length=200)
    files: list[str] = Field(min_length=1, max_length=500)
    relabel: bool = Field(False, description="Change the label of files labelled otherwise")


class LabelChangeAnswer(BaseModel):
    """One change: who, when (ISO 8601, UTC), the files labelled (path -> label) and taken out,
    and the label sets table version it made (null: nothing changed)."""

    label_set: str
    who: str
    at: str
    added: dict[str, str]
    removed: list[str]
    version: int | None


class LabelSetAnswer(BaseModel):
    name: str
    version: int | None = Field(
        description="Label sets table version of its last change (null: never labelled)"
    )
    labels: dict[str, str] = Field(description="catalogue key -> label")
    counts: dict[str, int]
    history: list[LabelChangeAnswer] = Field(description="Recorded changes, newest first")


@router.get("", response_model=list[str])
def label_set_names(service: Service) -> list[str]:
    """The label sets."""
    return service.label_set_names()


@router.get("/{name}", response_model=LabelSetAnswer)
def label_set(name: str, service: Service) -> LabelSetAnswer:
    """A label set's labels and its history (an unknown name: an empty set, made by its first
    label)."""
    found, history = service.label_set(name)
    # a set whose labels were all taken back still has the version that emptied it
    version = found.version if found else (history[0].version if history else None)
    return LabelSetAnswer(
        name=name,
        version=version,
        labels=dict(zip(found.keys, found.labels, strict=True)) if found else {},
        counts=found.counts() if found else {},
        history=[LabelChangeAnswer(**asdict(change)) for change in history[:50]],
    )


class ReviewEntry(BaseModel):
    """A file to hear, and why (abstained, near miss, unlike every example, spot check)."""

    key: str
    path: str
    reason: str
    best_label: str
    probability: float
    margin: float | None
    labelled_similarity: float | None
    audio_url: str


@router.get("/{name}/review", response_model=list[ReviewEntry])
def review(
    name: str, service: Service, size: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[ReviewEntry]:
    """The files to hear next for a label set with a classifier: the least sure first
    (abstained, then near misses), then files unlike every labelled example, then a few
    confident ones to spot-check; never a file already labelled."""
    return [
        ReviewEntry(**asdict(item), audio_url=audio_url(item.key))
        for item in service.review_queue(name, size)
    ]


class TrainedModel(BaseModel):
    trained_at: str
    algorithm: str
    clips: int
    macro_f1: float = Field(description="Cross-validated macro-F1")
    majority_macro_f1: float = Field(description="The majority-class baseline's")
    fingerprint: str
    label_set_version: int = Field(description="The label sets table version it learned")


class RetrainAnswer(BaseModel):
    """The last retrain from the service: idle, running, done (macro-F1 before and after,
    cross-validated; files labelled by the new model) or failed (error)."""

    status: str
    before_macro_f1: float | None = None
    after_macro_f1: float | None = None
    predicted: int | None = None
    error: str | None = None


class ClassifierAnswer(BaseModel):
    history: list[TrainedModel] = Field(description="Every classifier trained, oldest first")
    labels_since_training: int | None = Field(
        description="Labels given or taken back since the last training (null: none yet)"
    )
    retrain_after: int = Field(description="Labels after which the service retrains (0: never)")
    retrain: RetrainAnswer


@router.get("/{name}/classifier", response_model=ClassifierAnswer)
def classifier(name: str, service: Service) -> ClassifierAnswer:
    """A label set's classifiers (the macro-F1 history), the labels given since the last
    training, and how the last retrain went."""
    return ClassifierAnswer(
        history=[TrainedModel(**row) for row in service.classifier_history(name)],
        labels_since_training=service.labels_since_training(name),
        retrain_after=service.settings.classify_retrain_after_labels,
        retrain=_retrain_answer(service.retraining.state(name)),
    )


@router.post("/{name}/train", status_code=202, response_model=RetrainAnswer)
def train(name: str, service: Service) -> RetrainAnswer:
    """Retrain the classifier now, in the background (cross-validated, then the catalogue's
    predictions and the index's predicted labels): ask ``/classifier`` how it went."""
    check_name(name)
    return _retrain_answer(service.retraining.start(name))


def _retrain_answer(state: RetrainState) -> RetrainAnswer:
    result = state.result
    return RetrainAnswer(
        status=state.status,
        before_macro_f1=result.before.macro_f1 if result and result.before else None,
        after_macro_f1=result.after.macro_f1 if result else None,
        predicted=result.predicted if result else None,
        error=state.error,
    )


@router.post("/{name}/labels", response_model=LabelChangeAnswer)
def add_labels(
    name: str, request: LabelRequest, service: Service, who: Caller
) -> LabelChangeAnswer:
    """Label files (refused whole, with the reason, for a file not in the catalogue, or one
    labelled otherwise unless ``relabel``)."""
    change = service.change_labels(
        name, who, add={file: request.label for file in request.files}, relabel=request.relabel
    )
    return LabelChangeAnswer(**asdict(change))


@router.delete("/{name}/labels", response_model=LabelChangeAnswer)
def remove_labels(
    name: str,
    service: Service,
    who: Caller,
    file: Annotated[list[str], Query(min_length=1, max_length=500)],
) -> LabelChangeAnswer:
    """Take files (``file``: key or path, repeatable) out of the label set."""
    return LabelChangeAnswer(**asdict(service.change_labels(name, who, remove=file)))
