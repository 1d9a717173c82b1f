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


def test_records_added_since_a_version_are_the_later_appends(
    tmp_path: Path, catalogue: Path
) -> None:
    first, second = list(LocalSource(catalogue).list_items())[:2]
    quarantine = QuarantineTable(str(tmp_path / "q"))
    assert quarantine.version() is None
    quarantine.append([Failure(first, "silent", "silent")], "run-1")
    seen = quarantine.version()
    quarantine.append([Failure(second, "not_audio", "bad")], "run-2")
    assert [r["path"] for r in quarantine.added_since(seen).to_pylist()] == [second.path]
    assert quarantine.added_since(quarantine.version()).num_rows == 0
    assert quarantine.added_since(None).num_rows == 2
