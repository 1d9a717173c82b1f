"""Labels given and taken back one change at a time: each change a new version of the label
sets table, with who made it and when; refused whole, with the reason, when it cannot be."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from tasks.classify.labelsets import LabelSetError
from tasks.resources import label_sets
from tasks.settings import Settings
from tasks.steps.classify import change_labels, import_labels

pytestmark = pytest.mark.usefixtures("catalogue_snapshot")


def test_labels_added_and_taken_out_are_versions_with_who_and_when(settings: Settings) -> None:
    sets = label_sets(settings)
    first = change_labels(settings, "machine", "alice", add={"fan/000.wav": "fan"})
    assert first.version is not None and first.added == {"fan/000.wav": "fan"}
    second = change_labels(
        settings, "machine", "bob", add={"pump/012.wav": "pump", "fan/001.wav": "fan"}
    )
    assert second.version > first.version
    stored = sets.read("machine")
    assert sorted(zip(stored.paths, stored.labels, strict=True)) == [
        ("fan/000.wav", "fan"),
        ("fan/001.wav", "fan"),
        ("pump/012.wav", "pump"),
    ]
    third = change_labels(settings, "machine", "carol", remove=["fan/000.wav"])
    assert third.removed == ["fan/000.wav"] and sets.read("machine").version == third.version
    history = sets.history("machine")
    assert [(c.who, c.version) for c in history] == [
        ("carol", third.version),
        ("bob", second.version),
        ("alice", first.version),
    ]
    assert all(c.at.endswith("+00:00") for c in history)
    # reversible: every earlier version is still readable
    assert sets.read("machine", version=first.version).paths == ["fan/000.wav"]
    rows = pa.table(sets._rows("machine"))
    assert set(rows["labelled_by"].to_pylist()) == {"bob"}


def test_a_change_is_refused_whole_with_the_reason(settings: Settings) -> None:
    change_labels(settings, "machine", "alice", add={"fan/000.wav": "fan"})
    version = label_sets(settings).read("machine").version
    with pytest.raises(LabelSetError, match=re.escape("'nowhere/x.wav' is not in the catalogue")):
        change_labels(settings, "machine", "bob", add={"fan/001.wav": "fan", "nowhere/x.wav": "x"})
    with pytest.raises(LabelSetError, match=re.escape("fan/000.wav is labelled 'fan' in machine")):
        change_labels(settings, "machine", "bob", add={"fan/000.wav": "pump"})
    with pytest.raises(LabelSetError, match=re.escape("not labelled in machine: pump/012.wav")):
        change_labels(settings, "machine", "bob", remove=["pump/012.wav"])
    with pytest.raises(LabelSetError, match="an empty label"):
        change_labels(settings, "machine", "bob", add={"fan/001.wav": " "})
    with pytest.raises(LabelSetError, match="label set name"):
        change_labels(settings, "bad name!", "bob", add={"fan/001.wav": "fan"})
    assert label_sets(settings).read("machine").version == version  # nothing written
    relabelled = change_labels(
        settings, "machine", "bob", add={"fan/000.wav": "pump"}, relabel=True
    )
    assert relabelled.version == version + 1
    assert label_sets(settings).read("machine").labels == ["pump"]
    unchanged = change_labels(settings, "machine", "bob", add={"fan/000.wav": "pump"})
    assert unchanged.version is None  # already so: no new version


def test_an_import_records_who_and_a_table_from_before_evolves(
    settings: Settings, tmp_path: Path
) -> None:
    uri = settings.resolved_classify_uri().rstrip("/") + "/label_sets"
    older = pa.table(
        {
            "label_set": ["machine"],
            "key": ["0" * 64],
            "path": ["gone.wav"],
            "label": ["fan"],
            "source": ["old.csv"],
            "imported_at": pa.array([None], pa.timestamp("us", tz="UTC")),
        }
    )
    write_deltalake(uri, older, partition_by=["label_set"])  # no labelled_by column
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\nfan/000.wav,fan\n")
    import_labels(settings, "other", str(csv), who="dana")
    change_labels(settings, "machine", "erin", add={"pump/012.wav": "pump"})
    sets = label_sets(settings)
    assert sorted(sets.read("machine").paths) == ["gone.wav", "pump/012.wav"]
    by = dict(zip(sets._rows("machine")["path"].to_pylist(),
                  sets._rows("machine")["labelled_by"].to_pylist(), strict=True))  # fmt: skip
    assert by == {"gone.wav": None, "pump/012.wav": "erin"}
    assert set(sets._rows("other")["labelled_by"].to_pylist()) == {"dana"}
