"""LanceDB search: latency p50/p99 and recall@10 against exact search, at 10k and 100k vectors.

    python benchmarks/search_latency.py --sizes 10000,100000

Vectors are synthetic but shaped like Cnn14 embeddings: 2048-d, non-negative (ReLU), drawn
around 200 cluster centres, so neighbours exist (uniform noise would flatter nobody). Queries are
perturbed copies of stored vectors. "flat" is what the product does (exact cosine k-NN through
LanceDBIndex.search); "ivf_pq" is LanceDB's ANN index on the same table, for comparison.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.index.lancedb_index import INDEX_SCHEMA, LanceDBIndex  # noqa: E402

DIMENSIONS = 2048


def synthetic_embeddings(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.maximum(rng.normal(0.0, 1.0, (200, DIMENSIONS)), 0).astype(np.float32)
    members = centres[rng.integers(0, len(centres), count)]
    noise = rng.normal(0.0, 0.35, (count, DIMENSIONS)).astype(np.float32)
    return np.maximum(members + noise, 0)


def fill(index: LanceDBIndex, vectors: np.ndarray) -> None:
    now = datetime.now(UTC)
    n = len(vectors)
    table = pa.table(
        {
            "key": [f"k{i:07d}" for i in range(n)],
            "source_uri": [f"file:///c/{i}" for i in range(n)],
            "path": [f"c/{i}.wav" for i in range(n)],
            "duration_seconds": [10.0] * n,
            "sample_rate": [44_100] * n,
            "last_modified": [now] * n,
            "labels": [["x"]] * n,
            "label_scores": [[0.5]] * n,
            "model": ["Cnn14"] * n,
            "checkpoint_sha256": ["x"] * n,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIMENSIONS),
        },
        schema=INDEX_SCHEMA,
    )
    index._db.create_table(index.name, data=table, mode="overwrite")


def exact_top10(vectors: np.ndarray, queries: np.ndarray) -> list[set[str]]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best = np.argsort(-(q @ unit.T), axis=1)[:, :10]
    return [{f"k{i:07d}" for i in row} for row in best]


def measure(search, queries: np.ndarray, truth: list[set[str]]) -> dict:
    latencies, recalls = [], []
    search(queries[0])  # warm-up
    for query, expected in zip(queries, truth, strict=True):
        start = time.perf_counter()
        keys = search(query)
        latencies.append((time.perf_counter() - start) * 1000)
        recalls.append(len(set(keys) & expected) / 10)
    return {
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "recall_at_10": float(np.mean(recalls)),
    }


def bench_size(size: int, query_count: int) -> dict:
    vectors = synthetic_embeddings(size)
    rng = np.random.default_rng(1)
    picks = rng.integers(0, size, query_count)
    noise = rng.normal(0, 0.2, (query_count, DIMENSIONS))
    queries = np.maximum(vectors[picks] + noise, 0).astype(np.float32)
    truth = exact_top10(vectors, queries)
    index = LanceDBIndex(tempfile.mkdtemp(prefix="lance-bench-"))
    fill(index, vectors)
    flat = measure(lambda q: [h.key for h in index.search(q, k=10)], queries, truth)
    table = index._open(index.name, INDEX_SCHEMA)
    start = time.perf_counter()
    table.create_index(
        metric="cosine",
        vector_column_name="vector",
        num_partitions=max(16, int(np.sqrt(size))),
        num_sub_vectors=128,
    )
    build_s = time.perf_counter() - start

    def ann(q: np.ndarray) -> list[str]:
        hits = (
            table.search(q, vector_column_name="vector")
            .metric("cosine")
            .nprobes(20)
            .refine_factor(10)
            .limit(10)
            .select(["key", "_distance"])
            .to_arrow()
        )
        return hits["key"].to_pylist()

    return {"flat": flat, "ivf_pq": {**measure(ann, queries, truth), "build_seconds": build_s}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    results = {"machine": {"host": socket.gethostname()}, "sizes": {}}
    for size in (int(s) for s in args.sizes.split(",")):
        results["sizes"][size] = bench_size(size, args.queries)
        print(size, json.dumps(results["sizes"][size]), flush=True)
    out = Path(args.out or ROOT / "benchmarks/results" / f"{socket.gethostname()}-search.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
