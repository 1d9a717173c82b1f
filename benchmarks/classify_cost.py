"""Classify by example, measured: cross-validated macro-F1 on the synthetic labelled catalogue
against the majority-class baseline, and the time to label a catalogue of 100,000 rows. Not part
of the test suite.

    python benchmarks/classify_cost.py                       # 40 clips per label, 100,000 rows
    python benchmarks/classify_cost.py --per-label 20 --rows 20000

Quality: the labelled catalogue (``make-samples --labelled``: four machine types; speech-like
signals in two pitch ranges) is embedded by the pipeline's embedder with the checkpoint given
(default: random weights, which say little about what the official weights would reach), and
each label set is trained and evaluated as ``classify train`` does.

Cost: a snapshot of ``--rows`` rows (vectors around one centre per label) is written, a
classifier trained on 300 of them, and the classify step run over all of them (read
embeddings, predict, commit the predictions table), then again with nothing changed; for both
algorithms.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from benchmarks.workdir import scratch_folder  # noqa: E402


def quality(args: argparse.Namespace, workdir: Path) -> dict:
    """Cross-validated macro-F1 per label set of the synthetic labelled catalogue."""
    from tasks.audio.samples import LABELLED_MAKERS, make_labelled_catalogue
    from tasks.classify.training import train
    from tasks.ingest.stream import embed_items
    from tasks.model.cnn14 import write_random_checkpoint
    from tasks.model.embedder import PannsEmbedder
    from tasks.storage.sources import LocalSource

    folder = workdir / "labelled"
    make_labelled_catalogue(folder, args.per_label)
    checkpoint = Path(args.checkpoint or workdir / "random-cnn14.pth")
    if not checkpoint.exists():
        write_random_checkpoint(checkpoint)
    embedder = PannsEmbedder.load(checkpoint, device="cpu")
    results = {}
    for label_set in LABELLED_MAKERS:
        source = LocalSource(folder / label_set)
        items = list(source.list_items())
        started = time.perf_counter()
        embedded = list(embed_items([(i, source) for i in items], embedder, workers=2))
        embed_seconds = time.perf_counter() - started
        vectors = np.stack([outcome.result.embedding for _, outcome in embedded])
        labels = [item.path.split("/")[0] for item, _ in embedded]
        started = time.perf_counter()
        _, evaluation = train(vectors, labels)
        results[label_set] = {
            "clips": len(labels),
            "embed_seconds": embed_seconds,
            "train_seconds": time.perf_counter() - started,
            "chosen": evaluation.algorithm,
            "macro_f1": evaluation.macro_f1,
            "candidates_macro_f1": evaluation.candidates_macro_f1,
            "majority_macro_f1": evaluation.majority_macro_f1,
            "expected_calibration_error": evaluation.expected_calibration_error,
        }
        print(
            f"{label_set}: {evaluation.algorithm} macro-F1 {evaluation.macro_f1:.3f} "
            f"(candidates {evaluation.candidates_macro_f1}), majority baseline "
            f"{evaluation.majority_macro_f1:.3f}, ECE {evaluation.expected_calibration_error:.3f}",
            flush=True,
        )
    return results


def cost(args: argparse.Namespace, workdir: Path) -> dict:
    """Seconds to label ``--rows`` snapshot rows with each algorithm, and to find nothing to do."""
    from tasks.classify.labelsets import LabelSet
    from tasks.classify.predict import classify_catalogue
    from tasks.classify.store import Classifier, PredictionsTable, model_fingerprint
    from tasks.classify.training import candidates, train
    from tasks.storage.snapshots import SnapshotTable
    from tests.snapshot_rows import rows_for, synthetic_items  # rows without the model

    labels = [("fan", "pump", "valve")[i % 3] for i in range(args.rows)]
    snapshot = SnapshotTable(str(workdir / "snapshot"))
    started = time.perf_counter()
    items = synthetic_items(args.rows)
    rng = np.random.default_rng(0)
    centres = {label: rng.random(2048) for label in set(labels)}
    noise = 0.3 * rng.standard_normal((args.rows, 2048))
    vectors = np.abs(np.stack([centres[label] for label in labels]) + noise).astype(np.float32)
    for start in range(0, args.rows, 20_000):
        rows = rows_for(items[start : start + 20_000], "setup")
        rows = rows.set_column(
            rows.schema.get_field_index("embedding"),
            "embedding",
            pa.array(list(vectors[start : start + 20_000]), rows.schema.field("embedding").type),
        )
        snapshot.commit(rows, [], "setup", start // 20_000 + 1)
    setup_seconds = time.perf_counter() - started
    results: dict = {"rows": args.rows, "snapshot_setup_seconds": setup_seconds}
    for algorithm in candidates():
        chosen = list(range(300))
        model, evaluation = train(vectors[chosen], [labels[i] for i in chosen])
        if evaluation.algorithm != algorithm:  # the comparison wants both: refit the other
            model = candidates()[algorithm].fit(vectors[chosen], [labels[i] for i in chosen])
        label_set = LabelSet(
            "bench", [items[i].key for i in chosen], [], [labels[i] for i in chosen], 0
        )
        classifier = Classifier(
            "bench",
            model_fingerprint(label_set, snapshot.uri, snapshot.version(), algorithm),
            model,
            evaluation,
            label_set.fingerprint,
            0,
            snapshot.uri,
            snapshot.version(),
            datetime.now(UTC),
        )
        predictions = PredictionsTable(str(workdir / f"predictions-{algorithm}"))
        started = time.perf_counter()
        first = classify_catalogue(snapshot, classifier, predictions, 0.6, "bench-1")
        full_seconds = time.perf_counter() - started
        started = time.perf_counter()
        again = classify_catalogue(snapshot, classifier, predictions, 0.6, "bench-2")
        no_change_seconds = time.perf_counter() - started
        assert first.predicted == args.rows and again.predicted == 0
        results[algorithm] = {
            "label_seconds": full_seconds,
            "rows_per_second": args.rows / full_seconds,
            "no_change_seconds": no_change_seconds,
            "abstained": first.abstained,
        }
        print(
            f"{algorithm}: labelled {args.rows:,} rows in {full_seconds:.1f} s "
            f"({args.rows / full_seconds:,.0f} rows/s; {first.abstained} abstained); "
            f"a run with nothing new {no_change_seconds:.2f} s",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-label", type=int, default=40)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--checkpoint", default=None, help="Cnn14 checkpoint (default: random)")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="6 clips a label, 2,000 rows; no file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.per_label, args.rows = 6, 2_000
    workdir = scratch_folder("audio-embeddings-classify-", args.workdir)
    results = {
        "machine": {"host": socket.gethostname(), "platform": platform.platform()},
        "quality": quality(args, workdir),
        "cost": cost(args, workdir),
    }
    if not args.smoke or args.out:
        out = Path(
            args.out or ROOT / "benchmarks/results" / f"{socket.gethostname()}-classify.json"
        )
        out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
