"""Anomaly detection on synthetic machine sounds: both window scores, per machine, and where the
scan windows come from (segments pooled from ingest's forward pass against separate windows).

    python benchmarks/anomaly_eval.py [--checkpoint Cnn14_mAP=0.431.pth] [--clips 10]

Machines (``--machines``, 3 by default) are rotating machines at different speeds (1500, 2200,
2950 rpm: a hum with harmonics, the speed jittering by +-1 %, broadband noise), each recorded N
times for its reference and N times as held-out normal data. Anomalies: a 1 s burst of impacts
at a random time and a bearing whine (a 3.2 kHz tone), each mixed at several signal-to-anomaly
ratios (SAR, dB: the machine's RMS over the anomaly's), and a speed shift of +2 or +4 %.

Each cell reports, for each score (knn, mahalanobis) and each way of making the 2 s scan
windows (every 1 s):

- ``pooled``: what a scan reads: the 1 s segments of ingest's 10 s forward pass (float16, as
  stored), two neighbours averaged per window. The model runs once per clip, at ingest.
- ``pooled-float32``: the same, without the float16 storage (what float16 costs in quality).
- ``separate``: every 2 s window sent through the model on its own (1.8x the ingest's compute
  per clip, at every scan).
- ``separate-1s``: the plain anchor: every 1 s window (every 1 s) embedded on its own and
  scored alone; the default scan must score at least this.

ROC AUC and pAUC (p = 0.1) are pooled over machines (scores relative to each machine's
threshold) and, as DCASE Task 2 ranks them, the harmonic mean over machines of the per-machine
figures; precision/recall at the thresholds calibrated on the references (gamma, q = 0.99).
The seconds per clip (decode and model) of each way are measured on the same clips in the
same run.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workdir import scratch_folder  # noqa: E402
from tasks.audio import samples  # noqa: E402
from tasks.audio.pieces import cut_pieces  # noqa: E402

RATE = 16_000
SECONDS = 10.0
MACHINE_RPM = (1500.0, 2200.0, 2950.0)


def machine(rpm: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return samples.engine(SECONDS, RATE, rpm * (1 + rng.uniform(-0.01, 0.01)), seed)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def anomaly(kind: str, rpm: float, seed: int, level: float) -> np.ndarray:
    """An anomalous recording: ``level`` is the SAR in dB, or the speed shift in percent."""
    rng = np.random.default_rng(10_000 + seed)
    if kind == "speed_shift":  # not additive: the machine itself runs faster
        return samples.engine(SECONDS, RATE, rpm * (1 + level / 100), seed)
    base = machine(rpm, seed)
    if kind == "impacts":
        signal = np.zeros_like(base)
        start = int(rng.uniform(1.0, SECONDS - 2.0) * RATE)
        burst = samples.clicks(1.0, RATE, 20.0, seed)
        signal[start : start + len(burst)] = burst
    else:  # bearing whine
        signal = samples.tone(SECONDS, RATE, 3200.0, 0.5)
    scale = _rms(base) / (_rms(signal[signal != 0]) * 10 ** (level / 20))
    return (base + scale * signal).astype(np.float32)


def separate_windows(folder: Path, embedder, seconds: float, hop_seconds: float) -> list:
    """Every ``seconds`` window (every ``hop_seconds``) of each clip embedded as a clip of its
    own (its edges mirrored, as any file's): the plain anchor."""
    from tasks.anomaly.scoring import ClipWindows
    from tasks.model.constants import MODEL_SAMPLE_RATE
    from tasks.settings import AudioLimits
    from tasks.storage.sources import LocalSource

    short = embedder.with_options(
        AudioLimits(window_seconds=seconds, segment_seconds=seconds), embedder.batch_size
    )
    length, hop = (int(s * MODEL_SAMPLE_RATE) for s in (seconds, hop_seconds))
    source, clips = LocalSource(folder), []
    for item in source.list_items():
        audio = short.decode(item.path, source.read_bytes(item))
        starts = range(0, len(audio.samples) - length + 1, hop)
        pieces = [cut_pieces(audio.samples[s : s + length], short.limits) for s in starts]
        embeddings = np.stack([f.embedding for f in short.embed_files(pieces)])
        starts_seconds = np.array([s / MODEL_SAMPLE_RATE for s in starts])
        clips.append(ClipWindows(item.key, item.path, embeddings, starts_seconds))
    return clips


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=10, help="clips per set and machine")
    parser.add_argument("--machines", type=int, default=3, choices=range(1, 4))
    parser.add_argument("--sars", default="-10,-20,-30")
    parser.add_argument("--shifts", default="2,4", help="speed shifts (percent)")
    parser.add_argument("--kinds", default="impacts,bearing_whine,speed_shift")
    parser.add_argument("--ways", default="pooled,pooled-float32,separate,separate-1s")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="a tiny run, to check it works")
    args = parser.parse_args(argv)
    if args.smoke:
        args.clips, args.machines, args.kinds, args.sars = 3, 1, "impacts", "-10"
        args.ways = "pooled,separate-1s"

    from tasks.anomaly.evaluate import embed_folder, evaluate_clips
    from tasks.anomaly.windows import ScanWindows
    from tasks.model.cnn14 import write_random_checkpoint
    from tasks.model.embedder import load_embedder
    from tasks.settings import Settings

    work = scratch_folder("anomaly-bench-")
    checkpoint = (
        Path(args.checkpoint)
        if args.checkpoint
        else write_random_checkpoint(work / "random-cnn14.pth")
    )
    settings = Settings.with_overrides(checkpoint_path=checkpoint)
    embedder = load_embedder(settings.model_settings(), settings.audio_limits())
    windows = ScanWindows()  # what a scan uses by default: 2 s every 1 s
    ways = args.ways.split(",")
    model_seconds = {way: 0.0 for way in ways}
    clips_embedded = {way: 0 for way in ways}

    def embed(folder: Path, way: str) -> list:
        started = time.perf_counter()
        if way.startswith("pooled"):
            clips = embed_folder(folder, embedder, windows, as_stored=way == "pooled")[0]
        elif way == "separate-1s":
            clips = separate_windows(folder, embedder, 1.0, 1.0)
        else:
            clips = separate_windows(folder, embedder, windows.window_seconds, windows.hop_seconds)
        model_seconds[way] += time.perf_counter() - started
        clips_embedded[way] += len(clips)
        return clips

    machines = {f"m{j}": MACHINE_RPM[j] for j in range(args.machines)}
    for name, rpm in machines.items():
        for i in range(args.clips):
            samples.write(work / f"reference/{name}/r{i:03d}.wav", machine(rpm, i), RATE)
            samples.write(work / f"normal/{name}/n{i:03d}.wav", machine(rpm, 1000 + i), RATE)
    known = {way: [embed(work / s, way) for s in ("reference", "normal")] for way in ways}
    results = {
        "checkpoint": str(checkpoint),
        "clips_per_set_and_machine": args.clips,
        "machines": machines,
        "cells": [],
    }
    for kind in args.kinds.split(","):
        levels = args.shifts if kind == "speed_shift" else args.sars
        for level in (float(v) for v in levels.split(",")):
            folder = work / f"anomalous-{kind}-{level:+.0f}"
            for j, (name, rpm) in enumerate(machines.items()):
                for i in range(args.clips):
                    seed = 2000 + 100 * j + i
                    samples.write(
                        folder / f"{name}/a{i:03d}.wav", anomaly(kind, rpm, seed, level), RATE
                    )
            for way in ways:
                anomalous = embed(folder, way)
                reference, normal = known[way]
                for evaluation in evaluate_clips(
                    reference, normal, anomalous, group_pattern=r"^([^/]+)/"
                ):
                    cell = {
                        "anomaly": kind,
                        "level": level,
                        "windows": way,
                        "scoring": evaluation.scoring,
                        "roc_auc": evaluation.overall.roc_auc,
                        "partial_auc": evaluation.overall.partial_auc,
                        "machine_mean_auc": evaluation.mean_auc,
                        "machine_mean_partial_auc": evaluation.mean_partial_auc,
                        "precision": evaluation.overall.precision,
                        "recall": evaluation.overall.recall,
                        "per_machine_partial_auc": {
                            g: e.partial_auc for g, e in evaluation.per_group.items()
                        },
                    }
                    results["cells"].append(cell)
                    print(json.dumps(cell), flush=True)
    results["embed_seconds_per_clip"] = {
        way: model_seconds[way] / max(clips_embedded[way], 1) for way in ways
    }
    print(json.dumps(results["embed_seconds_per_clip"]))
    if not args.smoke:
        out = Path(args.out or ROOT / "benchmarks/results" / f"{socket.gethostname()}-anomaly.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
