"""The search service under hostile load, on loopback: normal queries' latency with and without
clients sending the worst inputs, the service's memory, and every answer's status.

    python benchmarks/serve_load.py                 # about 6 minutes on a 2-core VM
    python benchmarks/serve_load.py --smoke         # a few seconds a phase (the test suite)

It makes its own catalogue (the sample catalogue), a random-weight checkpoint unless given one,
ingests with the CLI and starts ``audio-embeddings serve`` as a user does (a subprocess). Then,
``--repeats`` times:

- baseline: ``--normal-clients`` clients send a 6 s WAV query back to back;
- hostile: the same, while ``--hostile-clients`` clients loop over the malformed and over-long
  files of ``tests/hostile_audio.py`` (a 3-hour Ogg Vorbis among them) and seeded mutations,
  and ``--slow-clients`` clients each hold an upload that never finishes (until the service
  answers 408).

Reported: normal-query p50/p99 in each phase and their ratio, the service's RSS when idle
(after warm-up) and its peak in each phase, the statuses of every answer by phase and client
kind, and whether the service was alive at the end. Targets: hostile p50 <= 3x baseline, peak
RSS <= 1.5x idle, no 5xx.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serve_latency import start_service  # noqa: E402
from benchmarks.workdir import scratch_folder  # noqa: E402
from tasks.audio import samples  # noqa: E402
from tests.hostile_audio import corpus, mutations  # noqa: E402


def normal_query() -> bytes:
    """A 6 s 44.1 kHz stereo WAV: the kind of sound someone searches with."""
    return samples.encode(samples.engine(6.0, 44_100, rpm=2100, seed=7), 44_100, "wav", 2)


def prepare(workdir: Path, checkpoint: str | None, environment: dict) -> dict:
    """The catalogue ingested with the CLI; the environment the service runs with."""
    from tasks.model.cnn14 import write_random_checkpoint

    if checkpoint is None:
        checkpoint_path = workdir / "random-cnn14.pth"
        if not checkpoint_path.exists():
            write_random_checkpoint(checkpoint_path, seed=0)
        checkpoint = str(checkpoint_path)
    samples.make_sample_catalogue(workdir / "catalogue")
    environment = {
        **environment,
        "AUDIO_EMBEDDINGS_DATA_DIR": str(workdir / "data"),
        "AUDIO_EMBEDDINGS_CHECKPOINT_PATH": str(Path(checkpoint).resolve()),
        "PREFECT_HOME": str(workdir / "prefect-home"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", str(workdir / "catalogue")],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    return environment


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """The process's RSS every 20 ms while running; its peak."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.02)


def _post(client: httpx.Client, name: str, data: bytes) -> int:
    try:
        return client.post("/api/search", files={"file": (name, data)}).status_code
    except httpx.HTTPError as error:
        return -1 if not isinstance(error, httpx.TimeoutException) else -2


def _slow_upload(url: str, stop: float) -> int:
    """An upload that sends its headers and a few bytes, then a byte a second: the status the
    service answers with (or -1 if the connection failed)."""
    host, port = url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=120) as connection:
            connection.sendall(
                b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n"
            )
            connection.settimeout(1.0)
            while time.monotonic() < stop + 60:
                try:
                    answer = connection.recv(4096)
                except TimeoutError:
                    connection.sendall(b"x")
                    continue
                return int(answer.split(b" ", 2)[1]) if answer else -1
    except OSError:
        return -1
    return -2


def refusal_of_longest(client: httpx.Client, hostile: list[tuple[str, bytes]]) -> dict:
    """The over-long Ogg Vorbis file sent alone, five times: its status and the time to the
    answer (upload on loopback included)."""
    name, data = next((n, d) for n, d in hostile if n.endswith("-s.ogg"))
    seconds, statuses = [], set()
    for _ in range(5):
        start = time.perf_counter()
        statuses.add(_post(client, name, data))
        seconds.append(time.perf_counter() - start)
    return {
        "file": name,
        "mb": round(len(data) / 2**20, 1),
        "statuses": sorted(statuses),
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def phase(url: str, pid: int, args, query: bytes, hostile: list[tuple[str, bytes]] | None) -> dict:
    latencies: list[float] = []
    statuses: dict[str, Counter] = {"normal": Counter(), "hostile": Counter(), "slow": Counter()}
    lock = threading.Lock()
    stop = time.monotonic() + args.seconds

    def normal() -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while time.monotonic() < stop:
                start = time.perf_counter()
                status = _post(client, "query.wav", query)
                with lock:
                    statuses["normal"][status] += 1
                    if status == 200:
                        latencies.append((time.perf_counter() - start) * 1000)

    def attacker(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            for name, data in itertools.islice(itertools.cycle(hostile), offset, None):
                if time.monotonic() >= stop:
                    return
                status = _post(client, name, data)
                with lock:
                    statuses["hostile"][status] += 1

    def slow() -> None:
        while time.monotonic() < stop:
            status = _slow_upload(url, stop)
            with lock:
                statuses["slow"][status] += 1

    workers = [threading.Thread(target=normal) for _ in range(args.normal_clients)]
    if hostile is not None:
        workers += [
            threading.Thread(target=attacker, args=(i * 7,)) for i in range(args.hostile_clients)
        ]
        workers += [threading.Thread(target=slow) for _ in range(args.slow_clients)]
    with RssSampler(pid) as memory:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return {
        "normal_queries": len(latencies),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 1) if latencies else None,
        "peak_rss_mb": round(memory.peak / 2**20, 1),
        "statuses": {kind: dict(sorted(c.items())) for kind, c in statuses.items() if c},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="Default: a random-weight one")
    parser.add_argument("--workdir", default=None, help="Kept between runs when given")
    parser.add_argument("--seconds", type=float, default=60.0, help="Length of each phase")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--normal-clients", type=int, default=2)
    parser.add_argument("--hostile-clients", type=int, default=4)
    parser.add_argument("--slow-clients", type=int, default=4)
    parser.add_argument("--mutants", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="Seconds a phase, one repeat")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    long_seconds = 3 * 3600.0
    service_environment = {}
    if args.smoke:
        args.seconds, args.repeats, args.mutants, long_seconds = 4.0, 1, 20, 600.0
        args.hostile_clients, args.slow_clients = 2, 1
        # short enough that a stalled upload is answered within the smoke run, long enough that
        # no query waits past it on a slow CI machine
        service_environment["AUDIO_EMBEDDINGS_SERVE_REQUEST_TIMEOUT_SECONDS"] = "8"
    workdir = scratch_folder("serve-load-", args.workdir)
    environment = prepare(workdir, args.checkpoint, dict(os.environ))
    hostile = [(h.name, h.data) for h in corpus(long_seconds) if h.must_refuse]
    hostile += list(mutations(args.mutants, seed=1))
    query = normal_query()
    process, url, _ = start_service({**environment, **service_environment})
    results: dict = {
        "machine": {"cpus": os.cpu_count(), **platform.uname()._asdict()},
        "settings": vars(args),
        "normal_query": "6 s, 44.1 kHz, stereo, 16-bit WAV",
        "hostile_inputs": len(hostile),
        "largest_hostile_upload_mb": round(max(len(d) for _, d in hostile) / 2**20, 1),
    }
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            for _ in range(3):
                _post(client, "warm-up.wav", query)
            results["over_long_upload"] = refusal_of_longest(client, hostile)
            print("over-long upload", results["over_long_upload"], flush=True)
        time.sleep(1.0)
        results["idle_rss_mb"] = round(rss_bytes(process.pid) / 2**20, 1)
        runs = []
        for repeat in range(args.repeats):
            baseline = phase(url, process.pid, args, query, None)
            under_attack = phase(url, process.pid, args, query, hostile)
            run = {"baseline": baseline, "hostile": under_attack}
            if baseline["p50_ms"] and under_attack["p50_ms"]:
                run["p50_ratio"] = round(under_attack["p50_ms"] / baseline["p50_ms"], 2)
            run["peak_rss_ratio"] = round(
                max(baseline["peak_rss_mb"], under_attack["peak_rss_mb"]) / results["idle_rss_mb"],
                2,
            )
            runs.append(run)
            print(f"repeat {repeat + 1}", json.dumps(run), flush=True)
        results["runs"] = runs
        statuses = [
            int(status)
            for run in runs
            for phase_result in run.values()
            if isinstance(phase_result, dict)
            for counts in phase_result["statuses"].values()
            for status, count in counts.items()
            for _ in range(count)
        ]
        results["server_errors"] = sum(1 for status in statuses if status >= 500)
        results["failed_connections"] = sum(1 for status in statuses if status < 0)
        results["alive_at_end"] = httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        ratios = [run["p50_ratio"] for run in runs if "p50_ratio" in run]
        results["summary"] = {
            "p50_ratio_median": round(statistics.median(ratios), 2) if ratios else None,
            "p50_ratio_range": [min(ratios), max(ratios)] if ratios else None,
            "peak_rss_ratio_max": max(run["peak_rss_ratio"] for run in runs),
            "server_errors": results["server_errors"],
            "failed_connections": results["failed_connections"],
            "alive_at_end": results["alive_at_end"],
        }
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(json.dumps(results["summary"], indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
