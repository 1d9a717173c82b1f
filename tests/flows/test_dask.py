"""Scale-out: the ingest flow's shards on a two-worker distributed.LocalCluster give the same
snapshot as the single-process run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster

from flows.ingest import ingest, on_dask
from tasks.storage.snapshots import TAGS_COLUMN, SnapshotTable

pytestmark = pytest.mark.usefixtures("prefect_server")


def _model_loads() -> int:
    from tasks.model.embedder import _cached_embedder

    return _cached_embedder.cache_info().misses


def test_dask_run_equals_single_process_run(
    catalogue: Path, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIO_EMBEDDINGS_CHECKPOINT_PATH", str(checkpoint))
    monkeypatch.setenv("AUDIO_EMBEDDINGS_DATA_DIR", str(tmp_path / "local"))
    local = ingest(source=str(catalogue), shard_size=2, refresh_index=False)

    monkeypatch.setenv("AUDIO_EMBEDDINGS_DATA_DIR", str(tmp_path / "dask"))
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        distributed = on_dask(ingest, cluster.scheduler_address)(
            source=str(catalogue), shard_size=2, refresh_index=False
        )
        assert (local.embedded, distributed.embedded) == (5, 5)
        with Client(cluster) as client:
            loads = client.run(_model_loads)
    # The shards ran in the worker processes, each of which loaded the model at most once.
    assert sum(loads.values()) >= 1 and set(loads.values()) <= {0, 1}

    a = SnapshotTable(str(tmp_path / "local/snapshots")).read().sort_by("key")
    b = SnapshotTable(str(tmp_path / "dask/snapshots")).read().sort_by("key")
    for column in ("key", "path", "etag", "num_windows", TAGS_COLUMN):
        assert a[column].to_pylist() == b[column].to_pylist()
    np.testing.assert_allclose(
        np.stack(a["embedding"].to_numpy(zero_copy_only=False)),
        np.stack(b["embedding"].to_numpy(zero_copy_only=False)),
        rtol=1e-5,
        atol=1e-6,
    )
