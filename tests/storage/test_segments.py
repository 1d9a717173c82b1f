"""The segments table: float16 storage, upserts, and the segments of changed or deleted files
replaced or removed in the same commit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tasks.storage.segments import (
    SEGMENTS_SCHEMA,
    SegmentsTable,
    encode_vectors,
    segment_key,
    segment_vectors,
)
from tasks.storage.snapshots import TAG_SCORES_COLUMN, TAGS_COLUMN


def _segments(file_key: str, count: int, run_id: str, seed: int = 0) -> tuple[pa.Table, np.ndarray]:
    vectors = np.random.default_rng(seed).random((count, 2048), dtype=np.float32)
    rows = {
        "key": [segment_key(file_key, i) for i in range(count)],
        "file_key": [file_key] * count,
        "source_uri": [f"file:///{file_key}.wav"] * count,
        "path": [f"{file_key}.wav"] * count,
        "etag": [run_id] * count,
        "segment_index": list(range(count)),
        "start_seconds": [float(i) for i in range(count)],
        "end_seconds": [float(i + 1) for i in range(count)],
        "segment_seconds": [1.0] * count,
        "embedding": encode_vectors(vectors),
        TAGS_COLUMN: [["Speech"]] * count,
        TAG_SCORES_COLUMN: [[0.5]] * count,
        "run_id": [run_id] * count,
        "ingested_at": [datetime.now(UTC)] * count,
    }
    table = pa.table({n: pa.array(v, SEGMENTS_SCHEMA.field(n).type) for n, v in rows.items()})
    return table.append_column("key_prefix", pa.nulls(count, pa.string())), vectors


def test_float16_storage_keeps_the_vectors() -> None:
    vectors = np.random.default_rng(1).random((4, 2048), dtype=np.float32)
    back = segment_vectors(encode_vectors(vectors))
    cosine = (
        (back * vectors).sum(1) / np.linalg.norm(back, axis=1) / np.linalg.norm(vectors, axis=1)
    )
    assert back.dtype == np.float32 and cosine.min() > 0.99999


@pytest.mark.parametrize("rows", [0, 1, 5])
def test_each_stored_vector_is_its_own_float16_bytes(rows: int) -> None:
    vectors = np.random.default_rng(2).standard_normal((rows, 4096), dtype=np.float32)[:, ::2]
    stored = encode_vectors(vectors)  # from a strided view, as the shard's arrays can be
    stored.validate(full=True)
    assert stored.type == pa.binary() and len(stored) == rows
    assert stored.to_pylist() == [row.astype("<f2").tobytes() for row in vectors]


def test_changed_and_deleted_files_lose_their_old_segments(tmp_path: Path) -> None:
    table = SegmentsTable(str(tmp_path / "segments"))
    long_a, _ = _segments("aa" + "0" * 62, 5, "r1")
    other, _ = _segments("ab" + "1" * 62, 3, "r1")
    gone, _ = _segments("ff" + "2" * 62, 2, "r1")
    table.commit(pa.concat_tables([long_a, other, gone]), [], "r1")
    shorter_a, vectors = _segments("aa" + "0" * 62, 2, "r2", seed=7)  # the file changed
    table.commit(shorter_a, ["aa" + "0" * 62, "ff" + "2" * 62], "r2")
    rows = table.read()
    counts = {k: rows["file_key"].to_pylist().count(k) for k in set(rows["file_key"].to_pylist())}
    assert counts == {"aa" + "0" * 62: 2, "ab" + "1" * 62: 3}
    mine = table.of_files(["aa" + "0" * 62])
    assert mine["run_id"].to_pylist() == ["r2", "r2"]
    np.testing.assert_allclose(segment_vectors(mine["embedding"]), vectors, rtol=1e-3)
    assert table.commit(shorter_a, ["aa" + "0" * 62], "r2") is None  # same commit again: no-op
