"""The shared Delta read path: a table that does not exist yet reads as empty."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from tasks.storage.delta import open_table, read_or_empty

SCHEMA = pa.schema([pa.field("key", pa.string()), pa.field("score", pa.float64())])


def test_a_missing_table_is_none_or_empty_with_its_schema(tmp_path: Path) -> None:
    assert open_table(str(tmp_path / "none")) is None
    empty = read_or_empty(str(tmp_path / "none"), SCHEMA, columns=["key"])
    assert empty.num_rows == 0 and empty.schema.names == ["key"]


def test_columns_and_versions_read_back(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    write_deltalake(uri, pa.table({"key": ["a"], "score": [1.0]}, schema=SCHEMA))
    write_deltalake(uri, pa.table({"key": ["b"], "score": [2.0]}, schema=SCHEMA), mode="append")
    assert sorted(read_or_empty(uri, SCHEMA, columns=["key"])["key"].to_pylist()) == ["a", "b"]
    first = open_table(uri, version=0)
    assert first is not None and first.version() == 0
