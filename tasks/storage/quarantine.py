"""Inputs that could not be embedded, with the reason: a Delta table that is appended to, never
rewritten. A quarantined (key, etag) is not tried again until the file changes. Rows carry the
blob's metadata, so that anomaly scans can group a silent clip with its machine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import write_deltalake

from tasks.storage.delta import UTC_MICROS, open_table, read_or_empty, read_table
from tasks.storage.sources import AudioItem

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("source_uri", pa.string()),
        pa.field("path", pa.string()),
        pa.field("etag", pa.string()),
        pa.field("error_kind", pa.string()),
        pa.field("message", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("quarantined_at", UTC_MICROS),
        pa.field("metadata", pa.map_(pa.string(), pa.string())),
    ]
)


@dataclass(frozen=True)
class Failure:
    """An input that could not be embedded, and why. ``retryable`` failures (the source could
    not deliver the bytes) are reported but not quarantined: the next run tries again."""

    item: AudioItem
    error_kind: str
    message: str
    retryable: bool = False


class QuarantineTable:
    """The quarantine Delta table at ``uri`` (a local folder or ``az://`` URL)."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri
        self.storage_options = storage_options

    def append(self, failures: Sequence[Failure], run_id: str) -> None:
        """Record ``failures`` (nothing is written when there are none)."""
        if not failures:
            return
        now = datetime.now(UTC)
        rows = pa.table(
            {
                "key": [f.item.key for f in failures],
                "source_uri": [f.item.uri for f in failures],
                "path": [f.item.path for f in failures],
                "etag": [f.item.etag for f in failures],
                "error_kind": [f.error_kind for f in failures],
                "message": [f.message for f in failures],
                "run_id": [run_id] * len(failures),
                "quarantined_at": [now] * len(failures),
                "metadata": [sorted(f.item.metadata.items()) for f in failures],
            },
            schema=QUARANTINE_SCHEMA,
        )
        write_deltalake(  # "merge": tables written before the metadata column gain it
            self.uri,
            rows,
            mode="append",
            schema_mode="merge",
            storage_options=self.storage_options,
        )

    def version(self) -> int | None:
        """The latest version, or None if nothing was ever quarantined."""
        table = open_table(self.uri, self.storage_options)
        return None if table is None else table.version()

    def added_since(self, version: int | None) -> pa.Table:
        """Records appended after ``version`` (None: every record)."""
        latest = self.read()
        if version is None or latest.num_rows == 0:
            return latest
        earlier = open_table(self.uri, self.storage_options, version)
        identity = ["key", "etag", "run_id"]
        seen = read_table(earlier, identity)
        # joined by row number: Arrow joins cannot carry the map column along
        numbered = latest.select(identity).append_column("row", pa.array(range(len(latest))))
        marked = numbered.join(seen.append_column("seen", pa.repeat(True, len(seen))), identity)
        fresh = marked.filter(pc.is_null(marked["seen"]))["row"].to_numpy()
        return latest.take(np.unique(fresh))

    def read(self) -> pa.Table:
        """Every quarantine record."""
        return read_or_empty(self.uri, QUARANTINE_SCHEMA, self.storage_options)

    def markers(self) -> pa.Table:
        """(key, etag) of every quarantined input: an input is skipped while its etag is here."""
        return read_or_empty(self.uri, QUARANTINE_SCHEMA, self.storage_options, ["key", "etag"])
