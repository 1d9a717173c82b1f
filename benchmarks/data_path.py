"""Data-path benchmark: the ingest flow at catalogue sizes a CPU cannot embed in minutes.

    python benchmarks/data_path.py                      # 10,000 and 1,000,000 files
    python benchmarks/data_path.py --sizes 10000,100000 --skip-upkeep

What it measures, each phase in a fresh process:
- memory: peak RSS of the process that runs the whole ingest flow (Prefect test server,
  streaming plan, shards, checkpointed commits, index refresh) at each size, and the ratio of the
  largest to the smallest;
- bytes written to the snapshot by a run that changes one file, on the largest table, before and
  after upkeep (compaction);
- no-change plan time on the largest table;
- upkeep: on a 10,000-row table, plan time fresh, after 500 one-file commits, and after the
  maintain flow.

STAND-INS (benchmark only, never in the pipeline): the catalogue is a synthetic listing (items
that exist nowhere, generated as they are listed, as a paged Blob listing streams), and the
embedder is replaced by random 2048-float vectors, so no audio is read or decoded and no model
runs. Everything else is the real pipeline: Prefect flow and tasks, the plan's spill files and
Arrow joins, the commit buffer, Delta MERGE commits of full-size rows (about 8 KB of float32 per
file), and the LanceDB index refresh. What it leaves out: decoding, the model and their memory
(constant in the catalogue size), and listing a real file system or container.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import socket
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workdir import scratch_folder  # noqa: E402

SHARD_SIZE = 4096  # a GPU-sized shard: what a million-file run would use


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class SyntheticSource:
    """STAND-IN: ``count`` listed items generated on the fly; ``changed`` get a new etag."""

    def __init__(self, count: int, changed: frozenset[int] = frozenset()) -> None:
        self.count, self.changed = count, changed
        self.uri = f"synthetic://{count}"
        self.item_uri_prefix = "file:///synthetic/"
        self._stamp = datetime(2026, 11, 1, tzinfo=UTC)

    def list_items(self) -> Iterator:
        from tasks.storage.sources import AudioItem

        for i in range(self.count):
            etag = "e2" if i in self.changed else "e1"
            path = f"{i // 1000:04d}/{i:07d}.wav"
            yield AudioItem(f"file:///synthetic/{path}", path, etag, 320_044, self._stamp)

    def read_bytes(self, item) -> bytes:
        raise AssertionError("the stand-in embedder reads no audio")


def _stand_in_embed_shard(items, source, embedder, run_id, top_tag_count=5, workers=2):
    """STAND-IN for tasks.ingest.shard.embed_shard: random vectors, real row layout."""
    import numpy as np
    import pyarrow as pa

    from tasks.ingest.shard import ShardResult
    from tasks.model.constants import EMBEDDING_METHOD
    from tasks.storage.snapshots import SNAPSHOT_SCHEMA, TAG_SCORES_COLUMN, TAGS_COLUMN

    rng = np.random.default_rng(abs(hash(items[0].key)) % 2**32)
    vectors = rng.random((len(items), 2048), dtype=np.float32)
    now = datetime.now(UTC)
    n = len(items)
    rows = pa.table(
        {
            "key": [i.key for i in items],
            "key_prefix": pa.nulls(n, pa.string()),
            "source_uri": [i.uri for i in items],
            "path": [i.path for i in items],
            "etag": [i.etag for i in items],
            "size_bytes": [i.size_bytes for i in items],
            "last_modified": [i.last_modified for i in items],
            "metadata": [[]] * n,
            "duration_seconds": [10.0] * n,
            "sample_rate": [44_100] * n,
            "channels": [2] * n,
            "num_windows": [1] * n,
            "num_segments": [10] * n,
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 2048).cast(
                pa.list_(pa.float32())
            ),
            TAGS_COLUMN: [["Speech"]] * n,
            TAG_SCORES_COLUMN: [[0.5]] * n,
            "model": ["Cnn14"] * n,
            "checkpoint_sha256": ["stand-in"] * n,
            "embedding_method": [EMBEDDING_METHOD] * n,
            "run_id": [run_id] * n,
            "ingested_at": [now] * n,
        },
        schema=SNAPSHOT_SCHEMA,
    )
    return ShardResult(rows)


def _install_stand_ins(sources: dict[str, SyntheticSource], workdir: str) -> None:
    """Point the pipeline's source and embedder lookups at the stand-ins (this process only)."""
    import tasks.steps.ingest as steps

    dummy = Path(workdir) / "stand-in-checkpoint.pth"
    dummy.write_bytes(b"stand-in: no model runs in this benchmark")
    os.environ["AUDIO_EMBEDDINGS_CHECKPOINT_PATH"] = str(dummy)
    real_open_source = steps.open_source
    steps.open_source = lambda uri, settings: sources.get(uri) or real_open_source(uri, settings)
    steps.load_embedder = lambda *args: None
    steps.embed_shard = _stand_in_embed_shard


def _settings(workdir: str, name: str) -> None:
    os.environ.update(
        {
            "AUDIO_EMBEDDINGS_DATA_DIR": f"{workdir}/{name}",
            "AUDIO_EMBEDDINGS_SHARD_SIZE": str(SHARD_SIZE),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
    )


def phase_memory(files: int, workdir: str, refresh: bool) -> dict:
    """The whole ingest flow over ``files`` synthetic files: peak RSS and time."""
    _settings(workdir, f"size-{files}")
    source = SyntheticSource(files)
    _install_stand_ins({source.uri: source}, workdir)
    from flows.ingest import ingest
    from flows.temporary_server import prefect_api

    with prefect_api():  # the configured Prefect API, else a temporary server
        start = time.perf_counter()
        summary = ingest(source=source.uri, refresh_index=refresh)
        elapsed = time.perf_counter() - start
    assert summary.embedded == files, summary
    return {
        "files": files,
        "seconds": elapsed,
        "commits": summary.commits,
        "index_refreshed": refresh,
        "peak_rss_mb": _peak_rss_mb(),
        "snapshot_bytes": _folder_bytes(Path(workdir) / f"size-{files}/snapshots"),
    }


def phase_large_table(files: int, workdir: str) -> dict:
    """On the ``files``-row table: no-change plan time, and the bytes one changed file writes,
    before and after upkeep."""
    _settings(workdir, f"size-{files}")
    from flows.ingest import ingest
    from flows.maintain import maintain
    from flows.temporary_server import prefect_api
    from tasks.ingest.plan import plan_source
    from tasks.resources import quarantine_table, snapshot_table
    from tasks.settings import Settings

    settings = Settings()
    snapshot, quarantine = snapshot_table(settings), quarantine_table(settings)
    start = time.perf_counter()
    plan = plan_source(SyntheticSource(files), snapshot, quarantine)
    no_change_plan = time.perf_counter() - start
    assert plan.to_embed == 0 and plan.unchanged == files

    results: dict = {"files": files, "no_change_plan_seconds": no_change_plan}
    table = Path(snapshot.uri)
    with prefect_api():  # the configured Prefect API, else a temporary server
        # each stage changes one more file (the first keeps its new etag in the second)
        first, second = 12_345 % files, 54_321 % files
        for stage, changed in (("before_upkeep", {first}), ("after_upkeep", {first, second})):
            if stage == "after_upkeep":
                started = time.perf_counter()
                maintain(retention_hours=168)
                results["upkeep_seconds"] = time.perf_counter() - started
                results["files_after_upkeep"] = len(snapshot._table().file_uris())
            else:
                results["files_before_upkeep"] = len(snapshot._table().file_uris())
            source = SyntheticSource(files, frozenset(changed))
            _install_stand_ins({source.uri: source}, workdir)
            before = _folder_bytes(table)
            started = time.perf_counter()
            summary = ingest(source=source.uri, refresh_index=False)
            assert summary.embedded == 1, summary
            results[stage] = {
                "embedded": summary.embedded,
                "run_seconds": time.perf_counter() - started,
                "bytes_written_for_one_changed_file": _folder_bytes(table) - before,
            }
    results["peak_rss_mb"] = _peak_rss_mb()
    return results


def phase_upkeep(workdir: str, rows: int = 10_000, commits: int = 500) -> dict:
    """Plan time on a fresh ``rows``-row table, after ``commits`` one-file commits of new files
    (what a day of event-triggered bursts of uploads leaves), and after the maintain flow."""
    _settings(workdir, "upkeep")
    fresh_source = SyntheticSource(rows)
    _install_stand_ins({fresh_source.uri: fresh_source}, workdir)
    from flows.ingest import ingest
    from flows.maintain import maintain
    from flows.temporary_server import prefect_api
    from tasks.ingest.plan import plan_source
    from tasks.resources import quarantine_table, snapshot_table
    from tasks.settings import Settings

    settings = Settings()
    snapshot, quarantine = snapshot_table(settings), quarantine_table(settings)
    grown_source = SyntheticSource(rows + commits)

    def plan_seconds(source: SyntheticSource, repeat: int = 5) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            plan = plan_source(source, snapshot, quarantine)
            times.append(time.perf_counter() - start)
            assert plan.to_embed == 0
        return sorted(times)[len(times) // 2]

    with prefect_api():  # the configured Prefect API, else a temporary server
        ingest(source=fresh_source.uri, refresh_index=False)
        fresh = plan_seconds(fresh_source)
        items = list(grown_source.list_items())[rows:]
        start = time.perf_counter()
        for i, item in enumerate(items):  # one new file per commit, as events bring them
            snapshot.commit(
                _stand_in_embed_shard([item], None, None, f"event-{i}").rows, [], f"event-{i}"
            )
        commit_seconds = (time.perf_counter() - start) / commits
        files_before = len(snapshot._table().file_uris())
        fragmented = plan_seconds(grown_source)
        maintain(retention_hours=168)
        maintained = plan_seconds(grown_source)
        files_after = len(snapshot._table().file_uris())
    return {
        "rows": rows,
        "one_file_commits": commits,
        "seconds_per_one_file_commit": commit_seconds,
        "plan_seconds_fresh": fresh,
        "plan_seconds_after_commits": fragmented,
        "plan_seconds_after_upkeep": maintained,
        "files_after_commits": files_before,
        "files_after_upkeep": files_after,
        "after_commits_vs_fresh": fragmented / fresh,
        "after_upkeep_vs_fresh": maintained / fresh,
    }


def _in_child(function, *args):
    """Run a phase in a fresh process; it exits normally (not terminated), so the Prefect test
    server it started is stopped by its exit handlers."""
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        return pool.apply(function, args)
    finally:
        pool.close()
        pool.join()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--no-refresh", action="store_true", help="Skip the index refresh")
    parser.add_argument("--skip-upkeep", action="store_true")
    parser.add_argument(
        "--only-upkeep", action="store_true", help="Run the upkeep phase alone, update --out"
    )
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="200 and 400 files; no file")
    args = parser.parse_args(argv)
    upkeep_size = (10_000, 500)  # rows of the fresh table, one-file commits after it
    if args.smoke:
        args.sizes, upkeep_size = "200,400", (500, 20)
    workdir = str(scratch_folder("data-path-bench-", args.workdir))
    sizes = [int(s) for s in args.sizes.split(",")]
    out = Path(args.out or ROOT / "benchmarks/results" / f"{socket.gethostname()}-data-path.json")
    if args.only_upkeep:
        results = json.loads(out.read_text()) if out.exists() else {}
        results["upkeep"] = _in_child(phase_upkeep, workdir, *upkeep_size)
        out.write_text(json.dumps(results, indent=2))
        print(json.dumps(results["upkeep"], indent=2))
        return results
    results: dict = {"machine": {"host": socket.gethostname(), "cpus": os.cpu_count()}}
    runs = []
    for files in sizes:
        runs.append(_in_child(phase_memory, files, workdir, not args.no_refresh))
        print(json.dumps(runs[-1]), flush=True)
    results["memory"] = {
        "runs": runs,
        "peak_rss_ratio_largest_to_smallest": runs[-1]["peak_rss_mb"] / runs[0]["peak_rss_mb"],
    }
    results["large_table"] = _in_child(phase_large_table, sizes[-1], workdir)
    print(json.dumps(results["large_table"]), flush=True)
    if not args.skip_upkeep:
        results["upkeep"] = _in_child(phase_upkeep, workdir, *upkeep_size)
        print(json.dumps(results["upkeep"]), flush=True)
    if not args.smoke or args.out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
