"""Where the host path's time goes on a GPU machine: the pipeline with the forward pass replaced
by zeros (the host-ceiling phase of throughput.py), in variants that take one cost away at a
time, and a profile of the main thread. Not part of the test suite.

    python benchmarks/host_path.py --clips 2048 --workers 16

Variants (same files, same batch size, each in a fresh process)
- device: resampling and windowing on the GPU (the default on CUDA);
- host: resampling with soxr in the reader threads, windows copied to the GPU per batch;
- device-32k: files already at 32 kHz: no resampling anywhere, windows cut on the GPU;
- host-32k: files at 32 kHz, windows cut on the host: decode, read and batching only.
The main thread of the device variant is profiled (cProfile; reader threads are not).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import throughput  # noqa: E402
from benchmarks.workdir import scratch_folder  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=2048)
    parser.add_argument("--distinct-clips", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default="host-path.json")
    parser.add_argument("--smoke", action="store_true", help="8 clips on the CPU, 2 workers")
    args = parser.parse_args(argv)
    if args.smoke:
        args.clips, args.distinct_clips, args.batch_size, args.workers = 8, 4, 4, 2
        args.device = "cpu"

    from tasks.model.cnn14 import write_random_checkpoint
    from tasks.model.embedder import choose_device

    workdir = scratch_folder("audio-embeddings-host-", args.workdir)
    args.checkpoint = str(workdir / "random-cnn14.pth")
    if not Path(args.checkpoint).exists():
        write_random_checkpoint(Path(args.checkpoint))
    args.device = str(choose_device(args.device))
    args.precision, args.shard_size = "bf16", 4096
    at_44k = workdir / "44k"
    throughput.make_catalogue(at_44k, args.clips, args.distinct_clips)
    at_32k = workdir / "32k"
    throughput.SOURCE_RATE = 32_000  # the same signals written at the model's rate
    throughput.make_catalogue(at_32k, args.clips, args.distinct_clips)

    results = {"clips": args.clips, "workers": args.workers, "device": args.device}
    for name, folder, resample_on, profile in (
        ("device", at_44k, "device", True),
        ("host", at_44k, "host", False),
        ("device-32k", at_32k, "device", False),
        ("host-32k", at_32k, "host", False),
    ):
        variant = argparse.Namespace(**{**vars(args), "resample_on": resample_on})
        results[name] = throughput._in_child(
            throughput.phase_host_ceiling, variant, str(folder / "clips"), args.batch_size, profile
        )
        print(f"{name}: {results[name]['clips_per_s']:.0f} clips/s", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(results["device"]["main_thread_profile"])
    return results


if __name__ == "__main__":
    main()
