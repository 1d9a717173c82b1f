"""Which file vector: the mean of a file's 10 s window vectors, or Cnn14's own pooling (max +
mean over time) of the whole file's frames, compared on labelled sets of long files.

    python benchmarks/file_vector.py [--checkpoint Cnn14_mAP=0.431.pth] [--files 8] [--seconds 30]

Two labelled sets of synthetic recordings, ``--files`` per class, ``--seconds`` long:

- ``events``: a varying machine background with a few short events of one kind planted at random
  times (knock, whistle, sweep, noise burst, click train, voice): the label lives in a few
  seconds of the file;
- ``stationary``: the labelled catalogue's machines and voices, steady over the whole file.

Both vectors come from the same frames of one pass. For each, on each set: leave-one-out 1-NN
accuracy and mean precision at 5 (cosine; what file search gives), and the 5-fold accuracy of a
logistic regression (what classify gives). ``--smoke`` runs a tiny version (the test suite does).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workdir import scratch_folder  # noqa: E402
from tasks.audio import samples  # noqa: E402

RATE = 32_000


def _event(kind: str, rng: np.random.Generator) -> np.ndarray:
    seconds = {"voice": 1.0, "click_train": 0.8}.get(kind, 0.6)
    t = np.arange(round(seconds * RATE)) / RATE
    decay = np.exp(-t / 0.1)
    if kind == "knock":
        out = (np.sin(2 * np.pi * rng.uniform(600, 800) * t) + rng.standard_normal(len(t))) * decay
    elif kind == "whistle":
        out = np.sin(2 * np.pi * rng.uniform(1800, 2400) * t) * np.hanning(len(t))
    elif kind == "sweep":
        out = samples.chirp(seconds, RATE, rng.uniform(300, 500), rng.uniform(4000, 6000))
    elif kind == "noise_burst":
        out = rng.standard_normal(len(t)) * np.hanning(len(t))
    elif kind == "click_train":
        out = samples.clicks(seconds, RATE, 20.0, int(rng.integers(1 << 30)))
    else:
        out = samples.speech_like(seconds, RATE, rng.uniform(90, 250), int(rng.integers(1 << 30)))
    return (0.6 * out / max(np.abs(out).max(), 1e-6)).astype(np.float32)


EVENT_KINDS = ("knock", "whistle", "sweep", "noise_burst", "click_train", "voice")


def event_recording(kind: str, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    audio = samples.engine(seconds, RATE, rng.uniform(1200, 3000), seed)
    audio = audio * rng.uniform(0.3, 1.0)
    for _ in range(int(rng.integers(2, 5))):
        event = _event(kind, rng)
        start = int(rng.uniform(0, seconds - 1.2) * RATE)
        audio[start : start + len(event)] += event
    return audio.astype(np.float32)


def stationary_recording(label: str, seconds: float, seed: int) -> np.ndarray:
    group, name = label.split("/")
    rng = np.random.default_rng(seed)
    return samples.LABELLED_MAKERS[group][name](seconds, RATE, rng, seed)


def both_vectors(embedder, clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean of window vectors, Cnn14 pooling of the whole file's frames) from one pass."""
    from tasks.audio.pieces import cut_pieces

    result = embedder.embed_files([cut_pieces(clip, embedder.limits)])[0]
    return result.window_embeddings.mean(axis=0), result.embedding


def scores(vectors: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    order = np.argsort(-similarity, axis=1)
    same = labels[order] == labels[:, None]
    top = min(5, int((labels == labels[0]).sum()) - 1)
    folds = min(5, int(np.bincount(np.unique(labels, return_inverse=True)[1]).min()))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    return {
        "nn1_accuracy": round(float(same[:, 0].mean()), 4),
        f"precision_at_{top}": round(float(same[:, :top].mean()), 4),
        "logistic_cv_accuracy": round(
            float(cross_val_score(model, vectors, labels, cv=cv).mean()), 4
        ),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=8, help="files per class")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--smoke", action="store_true", help="a tiny run, to check it works")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.smoke:
        args.files, args.seconds = 2, 11.0

    from tasks.model.cnn14 import write_random_checkpoint
    from tasks.model.embedder import PannsEmbedder
    from tasks.settings import AudioLimits

    work = scratch_folder("file-vector-bench-")
    checkpoint = args.checkpoint or write_random_checkpoint(work / "random-cnn14.pth")
    embedder = PannsEmbedder.load(Path(checkpoint), limits=AudioLimits(window_seconds=10.0))
    stationary = [f"{g}/{n}" for g, names in samples.LABELLED_MAKERS.items() for n in names]
    sets = {
        "events": (EVENT_KINDS, event_recording),
        "stationary": (stationary, stationary_recording),
    }
    results: dict = {"files_per_class": args.files, "seconds": args.seconds, "sets": {}}
    for name, (labels, make) in sets.items():
        means, wholes, truth = [], [], []
        for j, label in enumerate(labels):
            for i in range(args.files):
                mean, whole = both_vectors(embedder, make(label, args.seconds, 1000 * j + i))
                means.append(mean)
                wholes.append(whole)
                truth.append(label)
        truth_array = np.asarray(truth)
        results["sets"][name] = {
            "mean_of_windows": scores(np.stack(means), truth_array),
            "whole_file_pooling": scores(np.stack(wholes), truth_array),
        }
        print(name, json.dumps(results["sets"][name]), flush=True)
    if not args.smoke:
        out = Path(
            args.out or ROOT / "benchmarks/results" / f"{socket.gethostname()}-file-vector.json"
        )
        out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
