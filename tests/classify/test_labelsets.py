"""Label sets: imported from a CSV, a folder layout or stored metadata; bad rows reported and
skipped; every import a new version of one Delta table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.classify.labelsets import LabelSetError
from tasks.resources import label_sets
from tasks.settings import Settings
from tasks.steps.classify import import_labels
from tasks.storage.snapshots import SnapshotTable

pytestmark = pytest.mark.usefixtures("catalogue_snapshot")


def test_a_csv_imports_its_good_rows_and_reports_the_bad_ones(
    settings: Settings, tmp_path: Path, catalogue_snapshot: tuple[SnapshotTable, list[str]]
) -> None:
    snapshot, _ = catalogue_snapshot
    first_key = snapshot.read(columns=["key", "path"]).to_pylist()[0]
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "Path,Label\n"
        "fan/000.wav,fan\n"
        "/fan/001.wav,fan\n"  # a leading slash still names the catalogue path
        "pump/012.wav,pump\n"
        "nowhere/x.wav,pump\n"  # not in the catalogue
        "valve/024.wav,\n"  # empty label
        "pump/012.wav,valve\n"  # contradicts line 4
        "pump/012.wav,pump\n"  # repeats line 4: kept once, not reported
    )
    report = import_labels(settings, "machine", str(csv))
    assert report.kept == 3 and report.counts == {"fan": 2, "pump": 1}
    assert report.skipped == [
        ("labels.csv:5", "'nowhere/x.wav' is not in the catalogue"),
        ("labels.csv:6", "empty label"),
        ("labels.csv:7", "labelled 'valve' here but 'pump' at labels.csv:4"),
    ]
    stored = label_sets(settings).read("machine")
    assert sorted(zip(stored.paths, stored.labels, strict=True)) == [
        ("fan/000.wav", "fan"),
        ("fan/001.wav", "fan"),
        ("pump/012.wav", "pump"),
    ]
    by_key = tmp_path / "by-key.csv"
    by_key.write_text(f"key,label\n{first_key['key']},special\n")
    assert import_labels(settings, "other", str(by_key)).counts == {"special": 1}


def test_an_import_replaces_its_set_in_a_new_version_and_keeps_the_history(
    settings: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\nfan/000.wav,fan\npump/012.wav,pump\n")
    first = import_labels(settings, "machine", str(csv)).version
    import_labels(settings, "other", str(csv))
    csv.write_text("path,label\nfan/000.wav,pump\n")
    second = import_labels(settings, "machine", str(csv)).version
    sets = label_sets(settings)
    assert sets.read("machine").labels == ["pump"]
    assert sorted(sets.read("machine", version=first).labels) == ["fan", "pump"]
    assert second > first and sets.names() == ["machine", "other"]
    assert len(sets.read("other").keys) == 2  # the other set untouched by the replace
    assert sets.read("machine").fingerprint != sets.read("machine", version=first).fingerprint


def test_a_folder_of_label_folders_imports_by_source_uri_or_path(
    settings: Settings, tmp_path: Path, catalogue_snapshot: tuple[SnapshotTable, list[str]]
) -> None:
    root = tmp_path / "labelled"
    for relative in ("fan/000.wav", "pump/013.wav", "pump/unknown.wav", "pump/notes.txt"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"RIFF")
    report = import_labels(settings, "machine", str(root))
    assert report.counts == {"fan": 1, "pump": 1}
    assert report.skipped == [
        (
            "folder pump/unknown.wav",
            f"{(root / 'pump/unknown.wav').as_uri()!r} is not in the catalogue",
        )
    ]


def test_stored_metadata_imports_as_labels(settings: Settings) -> None:
    report = import_labels(settings, "condition", "metadata:condition")
    assert report.counts == {"normal": 18, "worn": 18}
    with pytest.raises(LabelSetError, match="no row of metadata:missing"):
        import_labels(settings, "condition", "metadata:missing")


@pytest.mark.parametrize(
    ("name", "source", "message"),
    [
        ("Gender!", "x.csv", "label set name 'Gender!'"),
        ("gender", "does-not-exist.csv", "neither a CSV file, a folder nor metadata"),
    ],
)
def test_bad_names_and_sources_are_refused_clearly(
    settings: Settings, name: str, source: str, message: str
) -> None:
    with pytest.raises(LabelSetError, match=message):
        import_labels(settings, name, source)


def test_a_csv_without_the_columns_is_refused_naming_them(
    settings: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("file_name,class\nfan/000.wav,fan\n")
    with pytest.raises(LabelSetError, match=r"labels.csv: a label CSV needs a 'label' column"):
        import_labels(settings, "machine", str(csv))
    with pytest.raises(LabelSetError, match="no label set 'machine'"):
        label_sets(settings).read("machine")
