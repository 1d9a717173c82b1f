"""What one anomaly scan costs in model work and wall time, for a machine with a reference.

    python benchmarks/scan_cost.py [--reference 20] [--new 10] [--out FILE]

Ingests a reference of normal 10 s clips and a batch of new clips of one machine, then times
two scans: the first (calibrates the reference) and, after more clips arrive and are ingested,
the next one (calibration reused). Model work is counted where every forward pass goes
(``PannsEmbedder.trunk_frames``): its calls, the audio seconds it saw and its wall time.

Run it on two checkouts to compare (the scan parameters both understand are used: 2 s windows
every 1 s, k-NN, gamma q = 0.99); a random-weight checkpoint is written unless given.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path.cwd()  # the checkout under test: run from its root
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=int, default=20, help="normal reference clips")
    parser.add_argument("--new", type=int, default=10, help="new clips per scan")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="4 reference clips, 2 new; no file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.reference, args.new = 4, 2

    # (not benchmarks.workdir: this runs against older checkouts, which may lack it)
    work = Path(tempfile.mkdtemp(prefix="scan-cost-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    os.environ["AUDIO_EMBEDDINGS_DATA_DIR"] = str(work / "data")
    from tasks.audio import samples
    from tasks.model.cnn14 import write_random_checkpoint

    checkpoint = Path(args.checkpoint or write_random_checkpoint(work / "random-cnn14.pth"))
    os.environ["AUDIO_EMBEDDINGS_CHECKPOINT_PATH"] = str(checkpoint)

    from flows.anomaly_scan import anomaly_scan
    from flows.ingest import ingest
    from flows.temporary_server import prefect_api
    from tasks.model.constants import MODEL_SAMPLE_RATE
    from tasks.model.embedder import PannsEmbedder

    model = {"calls": 0, "audio_seconds": 0.0, "seconds": 0.0}
    forward = PannsEmbedder.trunk_frames

    def counted(self, rows):
        started = time.perf_counter()
        try:
            return forward(self, rows)
        finally:
            model["calls"] += 1
            model["audio_seconds"] += sum(len(row) for row in rows) / MODEL_SAMPLE_RATE
            model["seconds"] += time.perf_counter() - started

    PannsEmbedder.trunk_frames = counted
    audio = work / "audio"
    for i in range(args.reference):
        samples.write(
            audio / f"pump/normal/n{i:03d}.wav", samples.engine(10.0, 16_000, 1500.0, i), 16_000
        )

    def arrive(first: int) -> None:
        for i in range(first, first + args.new):
            clip = samples.engine(10.0, 16_000, 1500.0, 1000 + i)
            samples.write(audio / f"pump/new/c{i:03d}.wav", clip, 16_000)
        ingest(source=str(audio), refresh_index=False)

    params = {
        "reference_prefix": "pump/normal/",
        "group_pattern": r"^([^/]+)/",
        "window_seconds": 2.0,
        "hop_seconds": 1.0,
    }
    if "scoring" in anomaly_scan.parameters.properties:
        params["scoring"] = "knn"
    scans = []
    with prefect_api():  # the configured Prefect API, else a temporary server
        for number, first in enumerate((0, args.new)):
            arrive(first)
            before = dict(model)
            started = time.perf_counter()
            summary = anomaly_scan(**params)
            wall = time.perf_counter() - started
            scans.append(
                {
                    "scan": "first (calibrates)" if number == 0 else "next (calibration reused)",
                    "clips_scored": summary.scanned,
                    "wall_seconds": wall,
                    "model_calls": model["calls"] - before["calls"],
                    "model_audio_seconds": model["audio_seconds"] - before["audio_seconds"],
                    "model_seconds": model["seconds"] - before["seconds"],
                }
            )
            print(json.dumps(scans[-1]), flush=True)
    results = {"checkout": args.label, "reference_clips": args.reference, "scans": scans}
    if args.smoke and not args.out:
        return results
    out = Path(args.out or Path(__file__).parent / "results" / f"{socket.gethostname()}-scan.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps([*existing, results], indent=2))
    return results


if __name__ == "__main__":
    main()
