"""Azure AI Search: recall@10 against exact search and query latency, for HNSW m x efSearch.

    AUDIO_EMBEDDINGS_LIVE_SEARCH_ENDPOINT=https://<service>.search.windows.net \\
    AUDIO_EMBEDDINGS_LIVE_SEARCH_API_KEY=<admin key> \\
    python benchmarks/azure_search_recall.py --rows 20000 --m 4,10 --ef-search 100,500,1000

Needs a real service (no emulator exists; the tests' double searches exactly, so it would report
1.0). Each m builds a scratch index (efSearch is a query-time setting of the same profile, so
the index is rebuilt per (m, efSearch) pair here for simplicity) from the same synthetic vectors
as benchmarks/search_latency.py, queries it, and deletes it. Latency includes the network
round trip from this machine. The live test (tests/index/test_azure_search.py) runs
``measure_recall`` once at the default settings whenever credentials are set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.search_latency import _ExactTop10, _generator, synthetic_chunk  # noqa: E402
from tasks.index.azure_search import AzureSearchIndex  # noqa: E402
from tasks.settings import SearchServiceSettings  # noqa: E402
from tasks.storage.snapshots import (  # noqa: E402
    SNAPSHOT_SCHEMA,
    TAG_SCORES_COLUMN,
    TAGS_COLUMN,
    SnapshotTable,
)


def synthetic_snapshot(folder: str, rows: int) -> tuple[SnapshotTable, np.ndarray]:
    """A snapshot of ``rows`` synthetic embeddings (keys k0000000...), and the vectors."""
    vectors = synthetic_chunk(0, rows, _generator())
    now = datetime.now(UTC)
    keys = [f"{i:064x}" for i in range(rows)]
    columns = {
        "key": keys,
        "source_uri": [f"file:///c/{i}.wav" for i in range(rows)],
        "path": [f"c/{i}.wav" for i in range(rows)],
        "etag": ["e"] * rows,
        "size_bytes": [1] * rows,
        "last_modified": [now] * rows,
        "duration_seconds": [10.0] * rows,
        "embedding": list(vectors),
        TAGS_COLUMN: [["x"]] * rows,
        TAG_SCORES_COLUMN: [[0.5]] * rows,
        "run_id": ["bench"] * rows,
        "ingested_at": [now] * rows,
    }
    table = pa.table({n: pa.array(v, SNAPSHOT_SCHEMA.field(n).type) for n, v in columns.items()})
    for field in SNAPSHOT_SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    snapshot = SnapshotTable(folder)
    snapshot.commit(table.select(SNAPSHOT_SCHEMA.names), [], "bench")
    return snapshot, vectors


def measure_recall(settings: SearchServiceSettings, rows: int, queries: int = 100) -> dict:
    """Fill a scratch index with ``rows`` vectors, query ``queries`` perturbed copies of stored
    ones, compare with exact cosine top 10; the scratch index and snapshot are deleted
    afterwards."""
    with tempfile.TemporaryDirectory(prefix="search-recall-") as folder:
        return _recall_of(settings, *synthetic_snapshot(folder, rows), queries)


def _recall_of(
    settings: SearchServiceSettings, snapshot: SnapshotTable, vectors: np.ndarray, queries: int
) -> dict:
    rows = len(vectors)
    rng = np.random.default_rng(1)
    picks = rng.choice(rows, queries, replace=False)
    probes = np.maximum(vectors[picks] + rng.normal(0, 0.05, (queries, vectors.shape[1])), 0)
    truth = _ExactTop10(probes.astype(np.float32))
    truth.add(0, vectors)
    expected = [{f"{i:064x}" for i in row} for row in truth.ids]
    name = f"recall-bench-{os.getpid()}-{settings.search_hnsw_m}-{settings.search_hnsw_ef_search}"
    index = AzureSearchIndex(settings, name)
    try:
        index.apply(snapshot.diff(None), snapshot.uri)
        latencies, recalls = [], []
        for probe, wanted in zip(probes.astype(np.float32), expected, strict=True):
            start = time.perf_counter()
            hits = index.search(probe, k=10)
            latencies.append((time.perf_counter() - start) * 1000)
            recalls.append(len({h.key for h in hits} & wanted) / 10)
        return {
            "rows": rows,
            "m": settings.search_hnsw_m,
            "ef_search": settings.search_hnsw_ef_search,
            "recall_at_10": round(float(np.mean(recalls)), 4),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1),
            "p99_ms": round(float(np.percentile(latencies, 99)), 1),
        }
    finally:
        index.delete()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--m", default="4,10")
    parser.add_argument("--ef-search", default="100,500,1000")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="300 rows, one setting, no results file (against any endpoint, the tests' double too)",
    )
    args = parser.parse_args(argv)
    queries = 100
    if args.smoke:
        args.rows, args.m, args.ef_search, queries = 300, "4", "100", 10
    results = []
    for m in (int(v) for v in args.m.split(",")):
        for ef in (int(v) for v in args.ef_search.split(",")):
            settings = SearchServiceSettings(
                search_endpoint=os.environ["AUDIO_EMBEDDINGS_LIVE_SEARCH_ENDPOINT"],
                search_api_key=os.environ["AUDIO_EMBEDDINGS_LIVE_SEARCH_API_KEY"],
                search_hnsw_m=m,
                search_hnsw_ef_search=ef,
            )
            results.append(measure_recall(settings, args.rows, queries))
            print(json.dumps(results[-1]), flush=True)
    if not args.smoke:
        out = ROOT / "benchmarks/results/azure-search-recall.json"
        out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
