"""Near-duplicate detection on planted copies: of ``--files`` distinct synthetic clips, the first
``--planted`` get three copies each (an MP3 re-encode, the same clip 6 dB quieter, and the clip
with its first 0.25 s cut off). The catalogue is ingested as ingest does it, then
``audio-embeddings duplicates`` runs at several thresholds: recall of the planted pairs, pairs
grouped that were not planted, and the time of the pass (one index query per file).

    python benchmarks/duplicates.py --files 10000 --planted 300 \
        --out benchmarks/results/vm-duplicates.json

Clips last 2 s and the analysis window is 2 s, so a 10,000-file catalogue ingests in minutes on
a CPU. With a random-weight checkpoint every clip is alike to the model, so the figures say how
the pass behaves and what it costs, not which threshold suits real weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workdir import machine, scratch_folder  # noqa: E402

RATE = 22_050
SECONDS = 2.0
VARIANTS = ("mp3", "quieter", "trimmed")


def _clip(i: int):
    """Distinct sounds: engines, tones, noise and sweeps with parameters from ``i``."""
    from tasks.audio import samples

    kind = i % 4
    if kind == 0:
        return samples.engine(SECONDS, RATE, 600.0 + (i * 7) % 3000, i)
    if kind == 1:
        return samples.tone(SECONDS, RATE, 80.0 + (i * 13) % 6000)
    if kind == 2:
        return samples.noise(SECONDS, RATE, i, 0.05 + (i % 7) * 0.04)
    return samples.chirp(SECONDS, RATE, 50.0 + i % 500, 1000.0 + (i * 11) % 8000)


def write_catalogue(root: Path, files: int, planted: int) -> dict[str, str]:
    """The catalogue; returns each copy's path -> its original's path."""
    from tasks.audio import samples

    originals = {}
    for i in range(files):
        sound = _clip(i)
        path = f"{i // 1000:03d}/clip-{i:05d}.wav"
        samples.write(root / path, sound, RATE)
        if i < planted:
            copies = {
                f"copies/{i:05d}-mp3.mp3": sound,
                f"copies/{i:05d}-quieter.wav": sound * 0.5,
                f"copies/{i:05d}-trimmed.wav": sound[int(0.25 * RATE) :],
            }
            for copy, audio in copies.items():
                samples.write(root / copy, audio, RATE)
                originals[copy] = path
    return originals


def score(groups: list[list[str]], originals: dict[str, str]) -> dict:
    """Recall of the planted (original, copy) pairs, by kind of copy, and unplanted pairs."""
    family = {path: originals.get(path, path) for group in groups for path in group}
    grouped = {frozenset(pair) for group in groups for pair in combinations(group, 2)}
    found = {kind: 0 for kind in VARIANTS}
    for copy, original in originals.items():
        kind = next(k for k in VARIANTS if f"-{k}." in copy)
        found[kind] += frozenset((copy, original)) in grouped
    per_kind = len(originals) // len(VARIANTS)
    false_pairs = sum(1 for pair in grouped if len({family[p] for p in pair}) > 1)
    return {
        "planted_pair_recall": round(sum(found.values()) / max(len(originals), 1), 4),
        "recall_by_copy": {kind: round(n / max(per_kind, 1), 4) for kind, n in found.items()},
        "unplanted_pairs": false_pairs,
        "groups": len(groups),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--planted", type=int, default=300)
    parser.add_argument("--thresholds", default="0.98,0.99,0.995,0.999,0.9999")
    parser.add_argument("--checkpoint", default=None, help="default: a random-weight one")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="40 files, 4 planted; no file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.files, args.planted, args.thresholds, args.out = 40, 4, "0.99,0.9999", None
    workdir = scratch_folder("duplicates-bench-", args.workdir)
    from tasks.model.cnn14 import write_random_checkpoint

    checkpoint = args.checkpoint or str(write_random_checkpoint(workdir / "random-cnn14.pth"))
    settings = {
        "AUDIO_EMBEDDINGS_WINDOW_SECONDS": str(SECONDS),
        "AUDIO_EMBEDDINGS_CHECKPOINT_PATH": checkpoint,
        "AUDIO_EMBEDDINGS_DATA_DIR": str(workdir / "data"),
    }
    saved = {name: os.environ.get(name) for name in settings}
    saved_tempdir, tempfile.tempdir = tempfile.tempdir, str(workdir)
    os.environ.update(settings)
    try:
        results = _run(args, workdir)
    finally:  # the caller's environment as it was (the test suite runs this in-process)
        tempfile.tempdir = saved_tempdir
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


def _run(args: argparse.Namespace, workdir: Path) -> dict:
    from flows.ingest import ingest
    from flows.temporary_server import prefect_api
    from tasks.resources import open_index, snapshot_table
    from tasks.search.duplicates import catalogue_neighbours, file_vectors
    from tasks.settings import Settings

    started = time.perf_counter()
    originals = write_catalogue(workdir / "catalogue", args.files, args.planted)
    written = time.perf_counter()
    with prefect_api():
        summary = ingest(source=str(workdir / "catalogue"))
    ingested = time.perf_counter()
    settings = Settings()
    runs = []
    for threshold in (float(t) for t in args.thresholds.split(",")):
        start = time.perf_counter()
        found = catalogue_neighbours(
            file_vectors(snapshot_table(settings)), open_index(settings), threshold, isolated=10
        )
        seconds = time.perf_counter() - start
        runs.append(
            {
                "threshold": threshold,
                "seconds": round(seconds, 2),
                "files_per_second": round(found.files / seconds, 1),
                **score([g.paths for g in found.groups], originals),
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    results = {
        "machine": machine(),
        "checkpoint": "given" if args.checkpoint else "random weights",
        "files": summary.embedded,
        "planted_copies": len(originals),
        "write_seconds": round(written - started, 1),
        "ingest_seconds": round(ingested - written, 1),
        "runs": runs,
    }
    return results


if __name__ == "__main__":
    main()
