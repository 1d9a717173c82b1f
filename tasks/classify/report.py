"""What classifier training and classify runs report, as markdown artifacts: the
cross-validated evaluation, and the labels a run predicted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect.artifacts import create_markdown_artifact

if TYPE_CHECKING:  # scikit-learn stays out of the CLI's start-up
    from tasks.classify.predict import ClassifyResult
    from tasks.classify.store import Classifier


def evaluation_report(label_set: str, classifier: Classifier, counts: dict[str, int]) -> str:
    """The markdown evaluation of a trained classifier: label counts, the candidates and the
    majority baseline, per-class precision/recall/F1, the confusion matrix and calibration
    (every figure cross-validated)."""
    evaluation = classifier.evaluation
    labels = evaluation.labels
    lines = [
        f"# Classifier for label set `{label_set}`",
        "",
        f"Model `{classifier.fingerprint}`: {evaluation.algorithm}, trained on "
        f"{evaluation.clips} clips (label set version {classifier.label_set_version}, "
        f"snapshot version {classifier.snapshot_version}); figures from "
        f"{evaluation.folds}-fold stratified cross-validation.",
        "",
        "| label | labelled clips |",
        "|---|---:|",
        *(f"| {label} | {count} |" for label, count in counts.items()),
        "",
        "| model | macro-F1 |",
        "|---|---:|",
        *(
            f"| {name}{' (chosen)' if name == evaluation.algorithm else ''} | {score:.3f} |"
            for name, score in evaluation.candidates_macro_f1.items()
        ),
        f"| majority-class baseline | {evaluation.majority_macro_f1:.3f} |",
        "",
        "| label | precision | recall | F1 | clips |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {m.label} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | {m.support} |"
            for m in evaluation.per_class
        ),
        "",
        "Confusion (rows: true label, columns: predicted)",
        "",
        "| | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
        *(
            f"| {label} | " + " | ".join(str(n) for n in row) + " |"
            for label, row in zip(labels, evaluation.confusion, strict=True)
        ),
        "",
        f"Calibration: expected calibration error {evaluation.expected_calibration_error:.3f}",
        "",
        "| probability | clips | mean probability | accuracy |",
        "|---|---:|---:|---:|",
        *(
            f"| {b.low:.1f}-{b.high:.1f} | {b.clips} | {b.mean_probability:.3f} | "
            f"{b.accuracy:.3f} |"
            for b in evaluation.calibration
        ),
    ]
    return "\n".join(lines)


def publish_evaluation_report(
    label_set: str, classifier: Classifier, counts: dict[str, int]
) -> None:
    """The evaluation as a markdown artifact (key ``classifier-<label set>``)."""
    create_markdown_artifact(
        evaluation_report(label_set, classifier, counts),
        key=f"classifier-{label_set.replace('_', '-')}",
        description=f"{label_set}: macro-F1 {classifier.evaluation.macro_f1:.3f}",
    )


def publish_classify_report(
    result: ClassifyResult, counts: dict[str, int], min_confidence: float
) -> None:
    """What a classify run changed and the catalogue's label counts, as a markdown artifact
    (key ``classify-<label set>``)."""
    lines = [
        f"# Predicted labels: `{result.label_set}`",
        "",
        f"Model `{result.model_fingerprint}`, snapshot version {result.snapshot_version}: "
        f"{result.predicted} files predicted ({result.abstained} abstained below "
        f"{min_confidence:.2f}), {result.deleted} deleted, {result.unchanged} unchanged.",
        "",
        "| label | files |",
        "|---|---:|",
        *(f"| {label} | {count} |" for label, count in counts.items()),
    ]
    create_markdown_artifact(
        "\n".join(lines),
        key=f"classify-{result.label_set.replace('_', '-')}",
        description=f"{result.label_set}: {result.predicted} predicted",
    )
