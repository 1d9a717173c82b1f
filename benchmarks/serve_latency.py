"""The search service under load: latency of a 10 s WAV query, one client and 8 at once, against
the model-only rate, and the cold CLI search for comparison. Not part of the test suite.

    scripts/demo                                   # once: a catalogue, an index, a checkpoint
    python benchmarks/serve_latency.py --data-dir .audio-embeddings/demo \\
        --checkpoint .audio-embeddings/demo/random-cnn14.pth

Phases, one run, same machine:
- model-only: Cnn14 on one 10 s window at batch 1 and at batch 8 (the ceiling a service can
  reach), in this process before the service starts;
- cold CLI: ``audio-embeddings search q.wav`` in a fresh process with no Prefect API (what a
  shell user waits for), ``--cold-runs`` times;
- serve: ``audio-embeddings serve`` started as a user starts it (a subprocess on loopback), then
  ``--sequential`` queries one after another (client-side latency: upload, decode, forward pass,
  index, JSON), then ``--clients`` clients querying back to back for ``--seconds``: completed
  queries, errors, latency under load, and how many queries shared each forward pass.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workdir import scratch_folder  # noqa: E402
from tasks.audio import samples  # noqa: E402

CLIP_SECONDS = 10.0


def query_wav() -> bytes:
    """A 10 s 44.1 kHz stereo 16-bit WAV (1.7 MB), as a recorder would upload it."""
    mono = samples.engine(CLIP_SECONDS, 44_100, rpm=2100, seed=7)
    return samples.encode(mono, 44_100, "wav", channels=2)


def model_only(checkpoint: str, min_seconds: float = 20.0) -> dict:
    from tasks.model.embedder import PannsEmbedder
    from tasks.settings import AudioLimits

    embedder = PannsEmbedder.load(
        Path(checkpoint), device="cpu", limits=AudioLimits(window_seconds=CLIP_SECONDS)
    )
    rates = {}
    for batch in (1, 8):
        windows = 0.1 * np.random.default_rng(0).standard_normal((batch, 320_000), np.float32)
        embedder.trunk_frames(list(windows))  # warm-up
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < min_seconds or runs < 3:
            embedder.trunk_frames(list(windows))
            runs += 1
        rates[f"batch_{batch}_clips_per_s"] = round(runs * batch / (time.perf_counter() - start), 2)
    return rates


def cold_cli(query: Path, environment: dict, runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", "search", str(query), "--top", "10"],
            env={**environment, "PREFECT_API_URL": ""},
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds.append(round(time.perf_counter() - start, 2))
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)
    return seconds


def start_service(environment: dict) -> tuple[subprocess.Popen, str, float]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--port", str(port)],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url, round(time.perf_counter() - start, 2)
        except httpx.HTTPError:
            if process.poll() is not None:
                raise RuntimeError("the service exited") from None
        time.sleep(0.1)


def ask(client: httpx.Client, data: bytes) -> float:
    start = time.perf_counter()
    response = client.post(
        "/api/search", files={"file": ("query.wav", io.BytesIO(data))}, data={"top": "10"}
    )
    response.raise_for_status()
    return (time.perf_counter() - start) * 1000


def percentiles(latencies: list[float]) -> dict:
    return {
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p90_ms": round(float(np.percentile(latencies, 90)), 1),
        "p99_ms": round(float(np.percentile(latencies, 99)), 1),
    }


def under_load(url: str, data: bytes, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def client_loop() -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while time.monotonic() < stop:
                try:
                    latency = ask(client, data)
                except Exception as error:  # counted, reported: the target is zero
                    with lock:
                        errors.append(repr(error))
                    continue
                with lock:
                    latencies.append(latency)

    before = httpx.get(f"{url}/healthz").json()
    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    after = httpx.get(f"{url}/healthz").json()
    passes = after["forward_passes"] - before["forward_passes"]
    queries = after["queries_embedded"] - before["queries_embedded"]
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "completed": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:3],
        "queries_per_s": round(len(latencies) / elapsed, 2),
        **percentiles(latencies),
        "forward_passes": passes,
        "queries_per_forward_pass": round(queries / passes, 2) if passes else None,
        "largest_batch": after["largest_batch"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=".audio-embeddings/demo")
    parser.add_argument("--checkpoint", default=".audio-embeddings/demo/random-cnn14.pth")
    parser.add_argument("--sequential", type=int, default=30)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="Its own small catalogue (--checkpoint still used), seconds a phase; no file",
    )
    args = parser.parse_args(argv)
    model_seconds = 20.0
    environment = {
        **os.environ,
        "AUDIO_EMBEDDINGS_DATA_DIR": str(Path(args.data_dir).resolve()),
        "AUDIO_EMBEDDINGS_CHECKPOINT_PATH": str(Path(args.checkpoint).resolve()),
        "PREFECT_API_URL": "",
    }
    if args.smoke:
        from benchmarks.serve_load import prepare

        args.sequential, args.clients, args.seconds, args.cold_runs = 3, 2, 3.0, 1
        model_seconds = 1.0
        environment = {
            **prepare(scratch_folder("serve-latency-smoke-"), args.checkpoint, dict(os.environ)),
            "PREFECT_API_URL": "",
        }
    data = query_wav()
    query = scratch_folder("serve-latency-") / "query.wav"
    query.write_bytes(data)
    results: dict = {
        "machine": {
            "host": socket.gethostname(),
            "cpus": os.cpu_count(),
            **platform.uname()._asdict(),
        },
        "query": "10 s, 44.1 kHz, stereo, 16-bit WAV",
        "model_only": model_only(args.checkpoint, model_seconds),
    }
    print("model-only", results["model_only"], flush=True)
    results["cold_cli_seconds"] = cold_cli(query, environment, args.cold_runs)
    print("cold CLI", results["cold_cli_seconds"], flush=True)
    process, url, startup = start_service(environment)
    try:
        results["serve_startup_seconds"] = startup
        with httpx.Client(base_url=url, timeout=120) as client:
            ask(client, data)  # warm-up
            latencies = [ask(client, data) for _ in range(args.sequential)]
        results["sequential"] = {"queries": len(latencies), **percentiles(latencies)}
        results["sequential"]["mean_ms"] = round(statistics.fmean(latencies), 1)
        print("one client", results["sequential"], flush=True)
        results["concurrent"] = under_load(url, data, args.clients, args.seconds)
        print(f"{args.clients} clients", results["concurrent"], flush=True)
        results["concurrent_vs_model_only_batch_8"] = round(
            results["concurrent"]["queries_per_s"] / results["model_only"]["batch_8_clips_per_s"], 2
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(json.dumps(results, indent=2))
    if not args.smoke or args.out:
        out = Path(args.out or ROOT / "benchmarks/results" / f"{socket.gethostname()}-serve.json")
        out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
