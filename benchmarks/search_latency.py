"""LanceDB search: latency p50/p99 and recall@10 against exact search, build time and memory.

    python benchmarks/search_latency.py --sizes 10000,100000,1000000

Vectors are synthetic but shaped like Cnn14 embeddings: 2048-d, non-negative (ReLU), drawn
around 1,000 centres of a 32-d latent space, so neighbourhoods are dense but not cleanly
clustered (uniform noise would have no neighbours; clean clusters flatter every index). Queries
are perturbed copies of stored vectors. The table is written and the exact top 10 computed chunk by
chunk, so a million vectors (8 GB) never sit in memory at once.

"flat" is exact cosine k-NN (what the product does below its ANN threshold; measured on a few
queries past 100,000 rows, where it takes seconds). Each ANN configuration is built on the same
table, then queried with each of its search settings; "product" is the ANN index exactly as
LanceDBIndex builds and queries it (tasks/index/lancedb_index.py), so the README's figures are
the product's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workdir import scratch_folder  # noqa: E402
from tasks.index.lancedb_index import INDEX_SCHEMA, LanceDBIndex  # noqa: E402
from tasks.model.constants import EMBEDDING_METHOD, EMBEDDING_SIZE  # noqa: E402

CHUNK = 50_000
#: (name, create_index arguments, [query settings]) compared besides the product's own.
ALTERNATIVES: list[tuple[str, dict, list[dict]]] = [
    (
        "ivf_hnsw_sq",
        {"index_type": "IVF_HNSW_SQ", "m": 20, "ef_construction": 300},
        [{"nprobes": 20, "refine_factor": 10}, {"nprobes": 40, "refine_factor": 20}],
    ),
    (
        "ivf_sq",
        {"index_type": "IVF_SQ"},
        [{"nprobes": 20, "refine_factor": 10}, {"nprobes": 40, "refine_factor": 20}],
    ),
    (
        "ivf_rq_fewer_probes",
        {"index_type": "IVF_RQ"},
        [{"nprobes": 10, "refine_factor": 10}, {"nprobes": 20, "refine_factor": 10}],
    ),
]


LATENT = 32


def _generator() -> tuple[np.ndarray, np.ndarray]:
    """1,000 centres in a 64-d latent space, and the map from it to 2048-d (fixed seed)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0.0, 1.0, (1_000, LATENT)).astype(np.float32)
    mapping = rng.normal(0.0, LATENT**-0.5, (LATENT, EMBEDDING_SIZE)).astype(np.float32)
    return centres, mapping


def synthetic_chunk(start: int, count: int, generator: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Rows ``start`` .. ``start + count`` of the synthetic catalogue (the same on every run):
    ReLU of a linear map of points scattered around latent centres, so that, like embeddings,
    the vectors fill a low-dimensional, clumpy but continuous region (no clean clusters that
    would make any IVF partitioning look perfect)."""
    centres, mapping = generator
    rng = np.random.default_rng(1_000 + start)
    latent = centres[rng.integers(0, len(centres), count)]
    latent += rng.normal(0.0, 0.7, (count, LATENT)).astype(np.float32)
    noise = rng.normal(0.0, 0.1, (count, EMBEDDING_SIZE)).astype(np.float32)
    return np.maximum(latent @ mapping + noise, 0)


def _rows(start: int, vectors: np.ndarray) -> pa.Table:
    """Index rows for ``vectors``; columns the benchmark does not care about are left null, so
    that a field added to the index schema does not break it."""
    n = len(vectors)
    now = datetime.now(UTC)
    given = {
        "key": [f"k{i:07d}" for i in range(start, start + n)],
        "source_uri": [f"file:///c/{i}" for i in range(start, start + n)],
        "path": [f"c/{i}.wav" for i in range(start, start + n)],
        "duration_seconds": [10.0] * n,
        "sample_rate": [44_100] * n,
        "last_modified": [now] * n,
        "tags": [["x"]] * n,
        "tag_scores": [[0.5]] * n,
        "model": ["Cnn14"] * n,
        "checkpoint_sha256": ["x"] * n,
        "embedding_method": [EMBEDDING_METHOD] * n,
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), EMBEDDING_SIZE),
    }
    columns = {field.name: given.get(field.name, pa.nulls(n, field.type)) for field in INDEX_SCHEMA}
    return pa.table(columns, schema=INDEX_SCHEMA)


class _ExactTop10:
    """The true top 10 of each query, kept as the chunks go by."""

    def __init__(self, queries: np.ndarray) -> None:
        self.unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        self.scores = np.full((len(queries), 10), -np.inf, dtype=np.float32)
        self.ids = np.zeros((len(queries), 10), dtype=np.int64)

    def add(self, start: int, vectors: np.ndarray) -> None:
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        scores = np.concatenate([self.scores, self.unit_queries @ unit.T], axis=1)
        chunk_ids = np.arange(start, start + len(vectors))
        ids = np.concatenate([self.ids, np.broadcast_to(chunk_ids, scores[:, 10:].shape)], axis=1)
        best = np.argsort(-scores, axis=1)[:, :10]
        self.scores = np.take_along_axis(scores, best, axis=1)
        self.ids = np.take_along_axis(ids, best, axis=1)

    def keys(self) -> list[set[str]]:
        return [{f"k{i:07d}" for i in row} for row in self.ids]


def fill(index: LanceDBIndex, size: int, query_count: int) -> tuple[np.ndarray, list[set[str]]]:
    """Write ``size`` synthetic rows into the index's table; the queries and their true top 10."""
    generator = _generator()
    rng = np.random.default_rng(1)
    picks = np.sort(rng.choice(size, query_count, replace=False))
    noise = rng.normal(0, 0.05, (query_count, EMBEDDING_SIZE)).astype(np.float32)
    queries = np.zeros((query_count, EMBEDDING_SIZE), dtype=np.float32)
    for start in range(0, size, CHUNK):  # the queries first: the truth needs them
        inside = (picks >= start) & (picks < start + CHUNK)
        if inside.any():
            vectors = synthetic_chunk(start, min(CHUNK, size - start), generator)
            queries[inside] = np.maximum(vectors[picks[inside] - start] + noise[inside], 0)
    truth = _ExactTop10(queries)

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, size, CHUNK):
            vectors = synthetic_chunk(start, min(CHUNK, size - start), generator)
            truth.add(start, vectors)
            yield from _rows(start, vectors).to_batches(max_chunksize=8_192)

    index._db.create_table(index.name, data=batches(), schema=INDEX_SCHEMA, mode="overwrite")
    return queries, truth.keys()


def measure(search: Callable[[np.ndarray], list[str]], queries, truth) -> dict:
    latencies, recalls = [], []
    search(queries[0])  # warm-up
    for query, expected in zip(queries, truth, strict=True):
        start = time.perf_counter()
        keys = search(query)
        latencies.append((time.perf_counter() - start) * 1000)
        recalls.append(len(set(keys) & expected) / 10)
    return {
        "queries": len(queries),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "recall_at_10": round(float(np.mean(recalls)), 4),
    }


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed_build(build: Callable[[], None]) -> dict:
    """Run ``build``; its wall time (s) and the process's peak RSS above the start (bytes)."""
    before = peak = _rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.2):
            peak = max(peak, _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    build()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return {"build_seconds": round(seconds, 1), "build_peak_rss_added_mb": (peak - before) >> 20}


def _searcher(table, settings: dict) -> Callable[[np.ndarray], list[str]]:
    def search(q: np.ndarray) -> list[str]:
        query = table.search(q, vector_column_name="vector").metric("cosine").limit(10)
        for option, value in settings.items():
            query = getattr(query, option)(value)
        return query.select(["key", "_distance"]).to_arrow()["key"].to_pylist()

    return search


def bench_size(size: int, query_count: int, flat_queries: int, alternatives: bool) -> dict:
    folder = str(scratch_folder("lance-bench-"))
    index = LanceDBIndex(folder, ann_min_rows=size)
    start = time.perf_counter()
    queries, truth = fill(index, size, query_count)
    result: dict = {"fill_seconds": round(time.perf_counter() - start, 1)}
    few = min(flat_queries, query_count)
    result["flat"] = measure(
        lambda q: [h.key for h in index.search(q, k=10)], queries[:few], truth[:few]
    )
    table = index._open(index.name, INDEX_SCHEMA)
    result["product"] = {
        "build": {**timed_build(lambda: index._maintain_ann(table)), **index.ann_parameters()},
        **measure(lambda q: [h.key for h in index.search(q, k=10)], queries, truth),
    }
    if alternatives:
        for name, build_arguments, query_settings in ALTERNATIVES:
            arguments = {"metric": "cosine", "vector_column_name": "vector", **build_arguments}
            arguments.setdefault("num_partitions", max(16, round(size**0.5)))
            result[name] = {"build": {**timed_build(lambda a=arguments: table.create_index(**a))}}
            for settings in query_settings:
                label = ",".join(f"{k}={v}" for k, v in settings.items())
                result[name][label] = measure(_searcher(table, settings), queries, truth)
            print(size, name, json.dumps(result[name]), flush=True)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--flat-queries", type=int, default=20)
    parser.add_argument("--alternatives", action="store_true", help="Also the other ANN kinds")
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="1,000 vectors, 5 queries; no file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.queries, args.flat_queries = "1000", 5, 2
    results = {
        "machine": {
            "host": socket.gethostname(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "sizes": {},
    }
    out = Path(args.out or ROOT / "benchmarks/results" / f"{socket.gethostname()}-search.json")
    for size in (int(s) for s in args.sizes.split(",")):
        results["sizes"][size] = bench_size(
            size, args.queries, args.flat_queries, args.alternatives
        )
        print(size, json.dumps(results["sizes"][size]), flush=True)
        if not args.smoke or args.out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
