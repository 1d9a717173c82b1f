"""Predicted labels as a search field: each indexed file carries ``<label set>=<label>`` for
every label set whose (non-abstained) prediction was made from the file's current version, in
a ``predicted_labels`` field that both index backends filter on (``search --predicted
gender=female``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.dataset as ds

from tasks.classify.labelsets import check_name
from tasks.errors import UserError
from tasks.storage.delta import keys_in, scan
from tasks.storage.keyed_table import KEY_PREFIX_CHARS, PARTITION_COLUMN

if TYPE_CHECKING:  # scikit-learn stays out of the CLI's start-up
    from tasks.classify.store import PredictionsTable
    from tasks.index.interface import VectorIndex
    from tasks.storage.snapshots import SnapshotTable

PREDICTED_LABELS_TYPE = pa.list_(pa.string())


def predicted_label_value(label_set: str, label: str) -> str:
    """The field value of a predicted label."""
    return f"{label_set}={label}"


def parse_predicted_label(text: str) -> str:
    """A ``--predicted`` argument (``label_set=label``) as a field value; a clear error if it is
    not one."""
    label_set, separator, label = text.partition("=")
    if not separator or not label.strip():
        raise UserError(
            f"--predicted {text!r}: write LABEL_SET=LABEL, e.g. --predicted gender=female"
        )
    return predicted_label_value(check_name(label_set.strip()), label.strip())


def predicted_label_filter(values: Iterable[str], segments: bool) -> tuple[str, ...]:
    """``--predicted`` arguments (``predicted=`` on the service) as field values; refused for a
    segment search, whose index has no predicted labels."""
    wanted = tuple(parse_predicted_label(value) for value in values)
    if wanted and segments:
        raise UserError(
            "predicted labels filter file search only: drop --segments (segments=true), or "
            "search segments without --predicted"
        )
    return wanted


class PredictedLabels:
    """The predicted labels of files as index values, read from every label set's predictions
    table (each opened once) for the files asked about only: a refresh over a million files
    holds one chunk's predictions at a time."""

    def __init__(self, tables: Iterable[PredictionsTable]) -> None:
        self.versions = [v for table in tables if (v := table.latest()).data is not None]

    def __bool__(self) -> bool:
        """Whether any label set has predictions yet (else a lookup has nothing to read)."""
        return bool(self.versions)

    def of(self, keys: list[str]) -> dict[str, list[tuple[str, str]]]:
        """key -> [(etag predicted from, field value)] of the non-abstained predictions."""
        found: dict[str, list[tuple[str, str]]] = {}
        if not keys:
            return found
        wanted = keys_in(sorted(set(keys)))
        prefixes = sorted({key[:KEY_PREFIX_CHARS] for key in keys})
        for version in self.versions:
            where = ~ds.field("abstained") & wanted
            if version.partitioned:  # only the partitions of these keys are read
                where = where & ds.field(PARTITION_COLUMN).isin(prefixes)
            rows = scan(version.data, ["key", "etag", "label_set", "label"], where)
            for key, etag, label_set, label in zip(
                *(rows[name].to_pylist() for name in ("key", "etag", "label_set", "label")),
                strict=True,
            ):
                found.setdefault(key, []).append((etag, predicted_label_value(label_set, label)))
        return found

    def values(self, keys: list[str], etags: list[str]) -> dict[str, list[str]]:
        """The field values of files whose current versions have ``etags``, sorted."""
        found = self.of(keys)
        return {
            key: sorted(value for made_from, value in found.get(key, []) if made_from == etag)
            for key, etag in zip(keys, etags, strict=True)
        }

    def column(self, rows: pa.Table) -> pa.Array:
        """The ``predicted_labels`` column for snapshot ``rows`` (with ``key`` and ``etag``)."""
        keys = rows["key"].to_pylist()
        values = self.values(keys, rows["etag"].to_pylist())
        return pa.array([values[key] for key in keys], PREDICTED_LABELS_TYPE)


def push_predicted_labels(
    snapshot: SnapshotTable,
    predicted: PredictedLabels,
    index: VectorIndex,
    keys: list[str],
    chunk: int = 4_096,
) -> None:
    """Give the file index the predicted labels (over every label set) of ``keys``: sorted
    keys a chunk at a time, each chunk reading only its partitions of the snapshot and of the
    predictions (memory stays flat however many files a run labelled)."""
    latest = snapshot.latest()
    ordered = sorted(keys)
    for start in range(0, len(ordered), chunk):
        part = ordered[start : start + chunk]
        prefixes = sorted({key[:KEY_PREFIX_CHARS] for key in part})
        markers = latest.rows_under(prefixes, ("key", "etag"))
        etags = dict(zip(markers["key"].to_pylist(), markers["etag"].to_pylist(), strict=True))
        present = [key for key in part if key in etags]  # the rest left the catalogue
        index.set_predicted_labels(predicted.values(present, [etags[key] for key in present]))
