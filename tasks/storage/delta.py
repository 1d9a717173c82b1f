"""The few things every Delta table of the project does the same way: open a table that may not
exist yet, and read it through a path that exits cleanly.

Reads go through ``to_pyarrow_dataset()`` and scan in the calling thread (``scan``): with
deltalake 1.6.6 and pyarrow 26, a process whose Arrow worker threads had read through
deltalake's Python file system aborts at interpreter exit ("terminate called without an active
exception", exit code 134) although its work is done, which a worker or a shell script sees as
a crash. ``to_pyarrow_table(columns=...)`` did it every time, two threaded dataset reads in 4 of
6 tries here; single-threaded scans exited 0 in every try (tested in a subprocess).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from tasks.errors import ServiceUnreachableError, scrub_secrets
from tasks.settings import BlobSettings

UTC_MICROS = pa.timestamp("us", tz="UTC")
_SECRET_OPTIONS = frozenset({"account_key", "sas_token", "bearer_token", "client_secret"})
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def open_table(
    uri: str, storage_options: dict[str, str] | None = None, version: int | None = None
) -> DeltaTable | None:
    """The Delta table at ``uri`` (at ``version``, default the latest), or None if there is none.

    A remote table that cannot be reached (object_store has already retried) is a
    ``ServiceUnreachableError`` with the reason, not a nested transport report.
    """
    try:
        return DeltaTable(uri, version=version, storage_options=storage_options)
    except TableNotFoundError:
        return None
    except OSError as error:
        if "://" not in uri:
            raise
        message = (
            f"cannot open the Delta table at {uri}: {_innermost_reason(error)}; check the table "
            "URI and AUDIO_EMBEDDINGS_BLOB_CONNECTION_STRING or AUDIO_EMBEDDINGS_BLOB_ACCOUNT_URL"
        )
        secrets = [v for k, v in (storage_options or {}).items() if k in _SECRET_OPTIONS]
        raise ServiceUnreachableError(scrub_secrets(message, secrets)) from None


def scan(
    data: ds.Dataset, columns: Sequence[str] | None = None, where: ds.Expression | None = None
) -> pa.Table:
    """Rows of a Delta dataset (``columns`` and ``where`` when given), scanned in this thread."""
    return data.to_table(
        columns=list(columns) if columns else None, filter=where, use_threads=False
    )


def scan_batches(
    data: ds.Dataset,
    columns: Sequence[str] | None,
    where: ds.Expression | None,
    batch_size: int,
) -> Iterator[pa.RecordBatch]:
    """``scan``, a batch of at most ``batch_size`` rows at a time, without read-ahead."""
    scanner = data.scanner(
        columns=list(columns) if columns else None,
        filter=where,
        batch_size=batch_size,
        batch_readahead=0,
        fragment_readahead=0,
        use_threads=False,
    )
    for batch in scanner.to_batches():
        if batch.num_rows:
            yield batch


def text_field(name: str) -> ds.Expression:
    """A string column for a scan filter. delta-rs writes some files' strings as string_view
    and others as string; a filter bound to one type fails on the other's files ("no kernel
    matching input types"), so filters compare the column cast to string."""
    return ds.field(name).cast(pa.string())


def keys_in(keys: Sequence[str] | pa.Array | pa.ChunkedArray, column: str = "key") -> ds.Expression:
    """A scan filter: rows whose ``column`` is one of ``keys``."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    values = keys.cast(pa.string()) if isinstance(keys, pa.Array) else pa.array(keys, pa.string())
    return pc.is_in(text_field(column), value_set=values)


def read_table(table: DeltaTable, columns: Sequence[str] | None = None) -> pa.Table:
    """Rows of ``table`` (only ``columns`` when given)."""
    return scan(table.to_pyarrow_dataset(), columns)


def read_or_empty(
    uri: str,
    schema: pa.Schema,
    storage_options: dict[str, str] | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Rows of the latest version of the table at ``uri``; an empty ``schema`` table if absent."""
    table = open_table(uri, storage_options)
    if table is None:
        return schema.empty_table().select(list(columns or schema.names))
    return read_table(table, columns)


def _innermost_reason(error: OSError) -> str:
    # delta-rs reports a chain of causes, one per line, innermost last ("Connection refused").
    lines = [_ANSI.sub("", line).strip(" ↳") for line in str(error).splitlines()]
    return next((line for line in reversed(lines) if line), type(error).__name__)


def quote_literal(value: str) -> str:
    """A SQL (and OData) string literal: single quotes doubled, so a value cannot end it."""
    return "'" + value.replace("'", "''") + "'"


#: Table URIs deltalake reaches on Azure Storage.
AZURE_TABLE_SCHEMES = ("az://", "abfs://", "abfss://")


def table_storage_options(
    table_uri: str, settings: BlobSettings | None = None
) -> dict[str, str] | None:
    """deltalake storage options for a table on Azure (``az://``, ``abfs[s]://``), else None."""
    if not table_uri.startswith(AZURE_TABLE_SCHEMES):
        return None
    from tasks.storage.azure import delta_storage_options

    return delta_storage_options(settings or BlobSettings())
