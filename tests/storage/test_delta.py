"""The shared Delta read path: a table that does not exist yet reads as empty."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from tasks.errors import ServiceUnreachableError
from tasks.settings import BlobSettings
from tasks.storage.delta import open_table, read_or_empty, table_storage_options
from tests.blobs import AZURITE_KEY, unreachable_connection_string

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


def test_an_unreachable_remote_table_is_one_clear_error_without_the_key() -> None:
    settings = BlobSettings(blob_connection_string=unreachable_connection_string())
    uri = "az://stores/snapshots"
    with pytest.raises(ServiceUnreachableError, match="Connection refused") as caught:
        open_table(uri, table_storage_options(uri, settings))
    assert "cannot open the Delta table at az://stores/snapshots" in str(caught.value)
    assert AZURITE_KEY not in str(caught.value) and "\x1b" not in str(caught.value)
