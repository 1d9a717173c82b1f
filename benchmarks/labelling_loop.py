"""What the review queue is worth: a simulated person labels what the queue asks for, against
the same person labelling files drawn at random.

    python benchmarks/labelling_loop.py --out benchmarks/results/vm-labelling-loop.json

The catalogue is synthetic vectors with known classes (benchmarks/map_projection.py's families,
made hard: sub-families overlap): ``--classes`` classes, five of them siblings of one family
(hard to tell apart) and the rest from other families, ``--files`` files, a quarter of them held
out to score on. Both runs start from the same 5 labels per class; each round trains the
classifier as ``classify train`` does (cosine k-NN or logistic regression, chosen by
cross-validation), then adds ``--per-round`` labels: the review queue's files (its order, as
``labels review`` gives it), or random unlabelled files. Macro-F1 on the held-out files after
each round, over ``--seeds`` seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.map_projection import structured_vectors  # noqa: E402
from benchmarks.workdir import machine  # noqa: E402

START_PER_CLASS = 5


def labelled_set(files: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectors and their class: the sub-families of family 0 (siblings), then one sub-family of
    each next family, until ``classes``."""
    vectors, kinds = structured_vectors(files * 20, seed=seed, apart=0.2, noise=1.5)
    wanted = [k for k in range(5)] + [5 * f for f in range(1, classes - 4)]
    wanted = wanted[:classes]
    rng = np.random.default_rng(seed)
    picked = []
    for index, kind in enumerate(wanted):
        members = np.flatnonzero(kinds == kind)
        take = files // classes
        picked.extend((int(i), index) for i in rng.choice(members, take, replace=False))
    picked = np.array(picked)
    return vectors[picked[:, 0]], picked[:, 1]


def _queue_rows(classifier, vectors: np.ndarray, pool: np.ndarray, labelled: np.ndarray):
    """The pool's predictions as the predictions table stores them."""
    probabilities = classifier.predict_proba(vectors[pool])
    ranked = np.sort(probabilities, axis=1)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = (unit[pool] @ unit[labelled].T).max(axis=1)
    return pa.table(
        {
            "key": [str(i) for i in pool],
            "path": [str(i) for i in pool],
            "best_label": [str(c) for c in classifier.classes_[probabilities.argmax(axis=1)]],
            "probability": ranked[:, -1],
            "margin": ranked[:, -1] - ranked[:, -2],
            "labelled_similarity": similarity,
            "abstained": ranked[:, -1] < 0.6,
        }
    )


def run(args: argparse.Namespace, seed: int) -> dict[str, list[float]]:
    from sklearn.metrics import f1_score

    from tasks.classify.review import review_queue
    from tasks.classify.training import train

    vectors, truth = labelled_set(args.files, args.classes, seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(truth))
    test, pool_all = order[: len(order) // 4], order[len(order) // 4 :]
    start = np.concatenate(
        [pool_all[truth[pool_all] == c][:START_PER_CLASS] for c in range(args.classes)]
    )
    curves: dict[str, list[float]] = {}
    for strategy in ("queue", "random"):
        labelled = list(start)
        picker = np.random.default_rng(seed + 1)
        scores = []
        for _ in range(args.rounds + 1):
            model, _ = train(vectors[labelled], [str(t) for t in truth[labelled]], min_per_class=2)
            predicted = model.predict(vectors[test])
            scores.append(
                round(float(f1_score([str(t) for t in truth[test]], predicted, average="macro")), 4)
            )
            pool = np.setdiff1d(pool_all, labelled)
            if strategy == "queue":
                rows = _queue_rows(model, vectors, pool, np.array(labelled))
                chosen = [int(item.key) for item in review_queue(rows, set(), args.per_round)]
            else:
                chosen = [int(i) for i in picker.choice(pool, args.per_round, replace=False)]
            labelled.extend(chosen)
        curves[strategy] = scores
    return curves


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="3 rounds, 1 seed; no file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.seeds, args.out = 3, 1, None
    runs = [run(args, seed) for seed in range(args.seeds)]
    labels = [args.classes * START_PER_CLASS + r * args.per_round for r in range(args.rounds + 1)]
    mean = {
        strategy: [
            round(float(np.mean([r[strategy][i] for r in runs])), 4) for i in range(len(labels))
        ]
        for strategy in ("queue", "random")
    }
    gap = [round(q - r, 4) for q, r in zip(mean["queue"], mean["random"], strict=True)]
    results = {
        "machine": machine(),
        "files": args.files,
        "classes": args.classes,
        "per_round": args.per_round,
        "seeds": args.seeds,
        "labels": labels,
        "macro_f1_mean": mean,
        "queue_minus_random": gap,
        "runs": runs,
    }
    print(
        json.dumps(
            {k: results[k] for k in ("labels", "macro_f1_mean", "queue_minus_random")}, indent=1
        )
    )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
