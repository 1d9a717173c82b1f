"""Snapshot rows without running the model, for tests of planning, commits and diffs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from tasks.model.constants import EMBEDDING_METHOD, EMBEDDING_SIZE
from tasks.storage.snapshots import SNAPSHOT_SCHEMA
from tasks.storage.sources import AudioItem


def rows_for(
    items: Sequence[AudioItem], run_id: str, etags: Sequence[str] | None = None, seed: int = 0
) -> pa.Table:
    """One snapshot row per item (random embedding), with the item's etag unless given."""
    rng = np.random.default_rng(seed)
    embeddings = rng.random((len(items), EMBEDDING_SIZE), dtype=np.float32)
    now = datetime.now(UTC)
    columns = {
        "key": [i.key for i in items],
        "source_uri": [i.uri for i in items],
        "path": [i.path for i in items],
        "etag": list(etags) if etags is not None else [i.etag for i in items],
        "size_bytes": [i.size_bytes for i in items],
        "last_modified": [i.last_modified for i in items],
        "embedding": list(embeddings),
        "num_segments": [1] * len(items),
        "embedding_method": [EMBEDDING_METHOD] * len(items),
        "run_id": [run_id] * len(items),
        "ingested_at": [now] * len(items),
    }
    table = pa.table(
        {
            name: pa.array(values, SNAPSHOT_SCHEMA.field(name).type)
            for name, values in columns.items()
        }
    )
    for field in SNAPSHOT_SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(SNAPSHOT_SCHEMA.names)


def synthetic_items(
    count: int, prefix: str = "file:///catalogue", etag: str = "e1"
) -> list[AudioItem]:
    """``count`` items that exist nowhere (for plans and commits that read no audio)."""
    now = datetime.now(UTC)
    return [
        AudioItem(f"{prefix}/{i:06d}.wav", f"{i:06d}.wav", etag, 1000, now) for i in range(count)
    ]
