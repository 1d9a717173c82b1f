"""Label sets: named tables of (file, label) kept as one Delta table with its history.

A label set comes from a CSV (``path`` or ``key`` column, and ``label``), from a folder whose
sub-folders name the labels (``<label>/**/<file>``), or from a metadata field the ingest stored
with each file (``metadata:<field>``: the blob metadata of an Azure source). Each row is matched
to a catalogue file (by key, catalogue path or source URI); rows that match nothing, have an
empty label or contradict an earlier row are reported and skipped, never fatal. An import
replaces the set's rows in one new table version, so older versions stay readable.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, write_deltalake
from deltalake.schema import Field as DeltaField

from tasks.errors import UserError
from tasks.storage.delta import UTC_MICROS, open_table, quote_literal, read_or_empty, read_table
from tasks.storage.sources import AUDIO_EXTENSIONS, has_audio_extension

LABEL_SETS_SCHEMA = pa.schema(
    [
        pa.field("label_set", pa.string()),
        pa.field("key", pa.string()),
        pa.field("path", pa.string()),
        pa.field("label", pa.string()),
        pa.field("source", pa.string()),  # where the row came from (file, folder, metadata)
        pa.field("imported_at", UTC_MICROS),  # when the row was given (imported or labelled)
        # who gave it: the user who imported, or who labelled (an API key's id, an Entra ID
        # subject, a login name); null for rows imported before it was recorded
        pa.field("labelled_by", pa.string()),
    ]
)
#: Label set names: they become index field values (``name=label``) and table predicates.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
#: Columns a CSV may name its files by, in the order they are tried.
_FILE_COLUMNS = ("key", "path", "file", "source_uri")


class LabelSetError(UserError):
    """A label set that cannot be imported or used at all (no usable row, a bad name)."""


def check_name(name: str) -> str:
    """``name`` if it can name a label set (lower-case letters, digits, '-' and '_')."""
    if not re.match(NAME_PATTERN, name):
        raise LabelSetError(
            f"label set name {name!r}: use lower-case letters, digits, '-' and '_' (at most 64, "
            "starting with a letter or digit); it becomes a search field value"
        )
    return name


@dataclass(frozen=True)
class RawLabel:
    """One row as the source gives it: the names it may give the file (tried in order), the
    label, and where it came from."""

    names: tuple[str, ...]
    label: str
    origin: str  # "labels.csv:7", "folder male/a.wav", ...


@dataclass(frozen=True)
class CatalogueIndex:
    """The catalogue files a label row may name: by key, catalogue path or source URI."""

    key_of: dict[str, str]
    path_of_key: dict[str, str]

    @classmethod
    def of(cls, rows: pa.Table) -> CatalogueIndex:
        """From snapshot rows with ``key``, ``path`` and ``source_uri``."""
        key_of: dict[str, str] = {}
        path_of_key: dict[str, str] = {}
        for key, path, uri in zip(
            rows["key"].to_pylist(),
            rows["path"].to_pylist(),
            rows["source_uri"].to_pylist(),
            strict=True,
        ):
            key_of[key] = key_of[path] = key_of[uri] = key
            path_of_key[key] = path
        return cls(key_of, path_of_key)

    def resolve(self, file: str) -> str | None:
        return self.key_of.get(file) or self.key_of.get(file.lstrip("/"))


@dataclass
class ImportReport:
    """What an import kept and what it skipped (each skipped row with its origin and why)."""

    label_set: str
    kept: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (origin, reason)
    version: int | None = None


def read_csv_labels(text: str, name: str) -> Iterator[RawLabel]:
    """Rows of a CSV with a ``label`` column and one of ``key``, ``path``, ``file`` or
    ``source_uri`` (the first present names the file)."""
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    file_column = next((c for c in _FILE_COLUMNS if c in columns), None)
    if "label" not in columns or file_column is None:
        raise LabelSetError(
            f"{name}: a label CSV needs a 'label' column and one of "
            f"{', '.join(_FILE_COLUMNS)}; it has {', '.join(columns) or 'no header'}"
        )
    for line, row in enumerate(reader, start=2):
        named = (row.get(file_column) or "").strip()
        yield RawLabel(
            (named,) if named else (), (row.get("label") or "").strip(), f"{name}:{line}"
        )


def read_folder_labels(root: Path) -> Iterator[RawLabel]:
    """``<root>/<label>/**/<file>``: each file labelled by its first folder under ``root``,
    named by its source URI (the catalogue ingested from that folder) and its path under
    ``root`` (a catalogue ingested from ``root`` elsewhere)."""
    files = (
        p for p in root.rglob("*") if p.is_file() and has_audio_extension(p.name, AUDIO_EXTENSIONS)
    )
    for path in sorted(files):
        relative = path.relative_to(root)
        if len(relative.parts) < 2:
            continue  # a file directly under root has no label folder
        yield RawLabel(
            (path.resolve().as_uri(), relative.as_posix()),
            relative.parts[0],
            f"folder {relative.as_posix()}",
        )


def read_metadata_labels(rows: pa.Table, field_name: str) -> Iterator[RawLabel]:
    """The ``field_name`` entry of each catalogue file's stored metadata (blob metadata on
    Azure sources); files without it are not rows of the set."""
    for key, metadata in zip(rows["key"].to_pylist(), rows["metadata"].to_pylist(), strict=True):
        entries = dict(metadata or [])
        if field_name in entries:
            yield RawLabel((key,), (entries[field_name] or "").strip(), f"metadata of {key}")


def label_rows(
    name: str,
    raw: Iterable[RawLabel],
    catalogue: CatalogueIndex,
    source: str,
    who: str | None = None,
) -> tuple[pa.Table, ImportReport]:
    """Matched, checked rows of label set ``name`` (given by ``who``) and the report of what
    was skipped."""
    report = ImportReport(name)
    chosen: dict[str, tuple[str, str]] = {}  # key -> (label, origin)
    for row in raw:
        if not row.label:
            report.skipped.append((row.origin, "empty label"))
            continue
        key = next((k for name in row.names if (k := catalogue.resolve(name))), None)
        if key is None:
            reason = f"{row.names[0]!r} is not in the catalogue" if row.names else "no file named"
            report.skipped.append((row.origin, reason))
            continue
        earlier = chosen.get(key)
        if earlier is not None and earlier[0] != row.label:
            report.skipped.append(
                (row.origin, f"labelled {row.label!r} here but {earlier[0]!r} at {earlier[1]}")
            )
            continue
        chosen.setdefault(key, (row.label, row.origin))
    keys = sorted(chosen)
    labels = {key: chosen[key][0] for key in keys}
    table = _label_table(name, labels, catalogue, source, datetime.now(UTC), who)
    report.kept = len(keys)
    for key in keys:
        label = chosen[key][0]
        report.counts[label] = report.counts.get(label, 0) + 1
    return table, report


def _label_table(
    name: str,
    labels: dict[str, str],
    catalogue: CatalogueIndex,
    source: str,
    when: datetime,
    who: str | None,
) -> pa.Table:
    """Rows of label set ``name``: key -> label, in key order."""
    keys = sorted(labels)
    return pa.table(
        {
            "label_set": [name] * len(keys),
            "key": keys,
            "path": [catalogue.path_of_key[k] for k in keys],
            "label": [labels[k] for k in keys],
            "source": [source] * len(keys),
            "imported_at": [when] * len(keys),
            "labelled_by": [who] * len(keys),
        },
        schema=LABEL_SETS_SCHEMA,
    )


class LabelSets:
    """Every label set, as one Delta table at ``uri`` (local folder or ``az://``)."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri
        self.storage_options = storage_options

    def replace(self, name: str, rows: pa.Table, change: LabelChange | None = None) -> int:
        """Make ``rows`` the whole of label set ``name`` in one new version; returns it.
        ``change`` says what the version did, and who did it, in the commit's information
        (``history``)."""
        table = open_table(self.uri, self.storage_options)
        rows = _with_columns(rows)
        if table is not None and "labelled_by" not in table.schema().to_arrow().names:
            _add_labelled_by(table)  # a table from before the column: evolve it first
        summary = {_CHANGE: json.dumps(asdict(change))} if change else {}
        write_deltalake(
            self.uri,
            rows,
            mode="overwrite" if table is not None else "append",
            predicate=f"label_set = {quote_literal(name)}" if table is not None else None,
            storage_options=self.storage_options,
            partition_by=["label_set"],
            commit_properties=CommitProperties(custom_metadata=summary),
        )
        table = open_table(self.uri, self.storage_options)
        assert table is not None
        return table.version()

    def change(
        self,
        name: str,
        catalogue: CatalogueIndex,
        who: str,
        add: dict[str, str] | None = None,
        remove: Iterable[str] = (),
        relabel: bool = False,
    ) -> LabelChange:
        """Label files (``add``: file -> label, files named by key, catalogue path or source
        URI) and take files out (``remove``) of label set ``name`` (created by its first
        label), as ``who``, in one new table version. Refused whole, with the reason, when a
        file is not in the catalogue, is both added and removed, or already has another label
        in the set (unless ``relabel``)."""
        check_name(name)
        add, remove = dict(add or {}), list(remove)
        if not add and not remove:
            raise LabelSetError("nothing to change: name files to label or to take out")
        current = self._rows(name)
        labelled = dict(zip(current["key"].to_pylist(), current["label"].to_pylist(), strict=True))
        added = {_resolved(catalogue, file): label.strip() for file, label in add.items()}
        removed = {_resolved(catalogue, file) for file in remove}
        for key, label in added.items():
            if not label:
                raise LabelSetError(f"{catalogue.path_of_key[key]}: an empty label")
            if key in removed:
                raise LabelSetError(f"{catalogue.path_of_key[key]}: both labelled and taken out")
            earlier = labelled.get(key)
            if earlier is not None and earlier != label and not relabel:
                raise LabelSetError(
                    f"{catalogue.path_of_key[key]} is labelled {earlier!r} in {name}: take it "
                    f"out first, or relabel it"
                )
        missing = sorted(catalogue.path_of_key[key] for key in removed if key not in labelled)
        if missing:
            raise LabelSetError(f"not labelled in {name}: {', '.join(missing)}")
        fresh = {key: label for key, label in added.items() if labelled.get(key) != label}
        kept = current.filter(pc.invert(pc.is_in(current["key"], pa.array(
            sorted(removed | set(fresh)), pa.string()))))  # fmt: skip
        now = datetime.now(UTC)
        keys = sorted(fresh)
        new_rows = _label_table(name, fresh, catalogue, "labelled", now, who)
        change = LabelChange(
            label_set=name,
            who=who,
            at=now.isoformat(),
            added={catalogue.path_of_key[k]: fresh[k] for k in keys},
            removed=sorted(catalogue.path_of_key[k] for k in removed),
        )
        if not fresh and not removed:
            return change  # every label was already there: no new version
        rows = pa.concat_tables([_with_columns(kept), new_rows]).sort_by("key")
        return dataclasses.replace(change, version=self.replace(name, rows, change))

    def history(self, name: str, limit: int = 100) -> list[LabelChange]:
        """The recorded changes of label set ``name``, newest first (of the table's last
        ``limit`` versions)."""
        table = open_table(self.uri, self.storage_options)
        if table is None:
            return []
        found = []
        for entry in table.history(limit=limit):
            if _CHANGE in entry:
                change = LabelChange(**json.loads(entry[_CHANGE]))
                if change.label_set == name:
                    found.append(dataclasses.replace(change, version=entry.get("version")))
        return found

    def _rows(self, name: str) -> pa.Table:
        table = open_table(self.uri, self.storage_options)
        if table is None:
            return LABEL_SETS_SCHEMA.empty_table()
        return _with_columns(read_table(table).filter(pc.field("label_set") == name))

    def read(self, name: str, version: int | None = None) -> LabelSet:
        """Label set ``name`` (at table ``version``, default the latest)."""
        table = open_table(self.uri, self.storage_options, version)
        rows = (
            LABEL_SETS_SCHEMA.empty_table()
            if table is None
            else read_table(table).filter(pc.field("label_set") == name)
        )
        if rows.num_rows == 0:
            known = ", ".join(self.names()) or "none yet"
            raise LabelSetError(
                f"no label set {name!r} (known: {known}); import one with "
                "'audio-embeddings labels import NAME SOURCE'"
            )
        rows = rows.sort_by("key")
        return LabelSet(
            name,
            rows["key"].to_pylist(),
            rows["path"].to_pylist(),
            rows["label"].to_pylist(),
            table.version() if table is not None else 0,
        )

    def names(self) -> list[str]:
        rows = read_or_empty(self.uri, LABEL_SETS_SCHEMA, self.storage_options, ["label_set"])
        return sorted(set(rows["label_set"].to_pylist()))


@dataclass(frozen=True)
class LabelChange:
    """One change of a label set: who, when (ISO 8601, UTC), the files labelled (path ->
    label) and taken out (paths), and the table version it made (None: nothing changed)."""

    label_set: str
    who: str
    at: str
    added: dict[str, str]
    removed: list[str]
    version: int | None = None


#: The commit information that records a change (``LabelChange``, as JSON).
_CHANGE = "audio_embeddings.label_change"


def _resolved(catalogue: CatalogueIndex, file: str) -> str:
    key = catalogue.resolve(file)
    if key is None:
        raise LabelSetError(f"{file!r} is not in the catalogue (a key, path or source URI)")
    return key


def _with_columns(rows: pa.Table) -> pa.Table:
    """Rows with every column of the schema (rows read from an older table lack some)."""
    for field_ in LABEL_SETS_SCHEMA:
        if field_.name not in rows.column_names:
            rows = rows.append_column(field_, pa.nulls(rows.num_rows, field_.type))
    return rows.select(LABEL_SETS_SCHEMA.names).cast(LABEL_SETS_SCHEMA)


def _add_labelled_by(table) -> None:
    table.alter.add_columns(
        [DeltaField("labelled_by", "string", nullable=True)]  # null: not recorded then
    )


@dataclass(frozen=True)
class LabelSet:
    """The rows of one label set, sorted by key, as of table ``version``."""

    name: str
    keys: list[str]
    paths: list[str]
    labels: list[str]
    version: int

    @property
    def fingerprint(self) -> str:
        """sha256 of the (key, label) rows: the same labels give the same fingerprint."""
        digest = hashlib.sha256()
        for key, label in zip(self.keys, self.labels, strict=True):
            digest.update(f"{key}\t{label}\n".encode())
        return digest.hexdigest()[:16]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for label in self.labels:
            counts[label] = counts.get(label, 0) + 1
        return dict(sorted(counts.items()))
