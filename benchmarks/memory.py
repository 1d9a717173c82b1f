"""Peak memory of a whole ingest (Prefect flow, shards, Delta commit, index refresh) against the
catalogue size.

    python benchmarks/memory.py --files 100,10000

To keep a 10,000-file run affordable on a CPU, clips last 1 s and the analysis window is 1 s:
the model does a tenth of the work per file, while everything that grows with the catalogue
(listing, plan, per-file rows, the commit, the index) is exercised exactly as in a real run.
Each size runs in a fresh process; peak RSS is that process's maximum resident set.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workdir import scratch_folder  # noqa: E402


def run_ingest(files: int, workdir: str, checkpoint: str) -> dict:
    os.environ.update(
        {
            "AUDIO_EMBEDDINGS_WINDOW_SECONDS": "1.0",
            "AUDIO_EMBEDDINGS_CHECKPOINT_PATH": checkpoint,
            "AUDIO_EMBEDDINGS_DATA_DIR": f"{workdir}/data-{files}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    # the test server's database folder (mkdtemp, removed by an exit handler that a pool's
    # worker never runs) goes inside the scratch folder, which the parent removes
    tempfile.tempdir = workdir
    from flows.ingest import ingest
    from flows.temporary_server import prefect_api
    from tasks.audio import samples

    root = Path(workdir) / f"audio-{files}"
    for i in range(files):
        path = root / f"{i // 1000:03d}/c{i:05d}.wav"
        if not path.exists():
            samples.write(path, samples.engine(1.0, 44_100, 900 + i % 1000, i), 44_100, 2)
    with prefect_api():  # the configured Prefect API, else a temporary server
        start = time.perf_counter()
        summary = ingest(source=str(root))
        elapsed = time.perf_counter() - start
    return {
        "files": files,
        "embedded": summary.embedded,
        "seconds": elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", default="100,10000")
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="20 and 40 files; no results file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.files = "20,40"
    from tasks.model.cnn14 import write_random_checkpoint

    workdir = str(scratch_folder("memory-bench-"))
    checkpoint = str(write_random_checkpoint(Path(workdir) / "random-cnn14.pth"))
    runs = []
    for files in (int(f) for f in args.files.split(",")):
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            runs.append(pool.apply(run_ingest, (files, workdir, checkpoint)))
        print(json.dumps(runs[-1]), flush=True)
    result = {
        "runs": runs,
        "ratio_largest_to_smallest": runs[-1]["peak_rss_mb"] / runs[0]["peak_rss_mb"],
    }
    if not args.smoke or args.out:
        out = Path(args.out or ROOT / "benchmarks/results" / f"{socket.gethostname()}-memory.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
