"""Inputs that could not be embedded, with the reason: a Delta table that is appended to, never
rewritten. A quarantined (key, etag) is not tried again until the file changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from deltalake import write_deltalake

from tasks.storage.delta import UTC_MICROS, read_or_empty
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
            },
            schema=QUARANTINE_SCHEMA,
        )
        write_deltalake(self.uri, rows, mode="append", storage_options=self.storage_options)

    def read(self) -> pa.Table:
        """Every quarantine record."""
        return read_or_empty(self.uri, QUARANTINE_SCHEMA, self.storage_options)

    def markers(self) -> pa.Table:
        """(key, etag) of every quarantined input: an input is skipped while its etag is here."""
        return read_or_empty(self.uri, QUARANTINE_SCHEMA, self.storage_options, ["key", "etag"])
