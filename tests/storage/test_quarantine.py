"""The quarantine table: appended with reasons, read as (key, etag) pairs."""

from __future__ import annotations

from pathlib import Path

from tasks.storage.quarantine import Failure, QuarantineTable
from tasks.storage.sources import LocalSource


def test_quarantine_appends_with_reasons(tmp_path: Path, catalogue: Path) -> None:
    item = next(iter(LocalSource(catalogue).list_items()))
    quarantine = QuarantineTable(str(tmp_path / "q"))
    assert quarantine.markers().num_rows == 0
    quarantine.append([Failure(item, "silent", f"{item.uri}: the file is silent")], "run-1")
    quarantine.append([], "run-2")
    rows = quarantine.read().to_pylist()
    assert len(rows) == 1 and rows[0]["error_kind"] == "silent" and rows[0]["run_id"] == "run-1"
    assert quarantine.markers().to_pylist() == [{"key": item.key, "etag": item.etag}]
