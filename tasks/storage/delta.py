"""The few things every Delta table of the project does the same way: open a table that may not
exist yet, and read it through a path that exits cleanly.

Reads go through ``to_pyarrow_dataset()``: with deltalake 1.6.6 and pyarrow 26 a process that
called ``DeltaTable.to_pyarrow_table(columns=[...])`` aborts at interpreter exit ("terminate
called without an active exception", exit code 134) although its work is done, which a worker or
a shell script sees as a crash. The dataset path exits 0 (tested in a subprocess).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

UTC_MICROS = pa.timestamp("us", tz="UTC")


def open_table(
    uri: str, storage_options: dict[str, str] | None = None, version: int | None = None
) -> DeltaTable | None:
    """The Delta table at ``uri`` (at ``version``, default the latest), or None if there is none."""
    try:
        return DeltaTable(uri, version=version, storage_options=storage_options)
    except TableNotFoundError:
        return None


def read_table(table: DeltaTable, columns: Sequence[str] | None = None) -> pa.Table:
    """Rows of ``table`` (only ``columns`` when given), read through the dataset path."""
    return table.to_pyarrow_dataset().to_table(columns=list(columns) if columns else None)


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
