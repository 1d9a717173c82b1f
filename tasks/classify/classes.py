"""Predicted labels as a search field: each indexed file carries ``<label set>=<label>`` for
every label set whose (non-abstained) prediction was made from the file's current version, in
a ``classes`` field that both index backends filter on (``search --where gender=female``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from tasks.classify.labelsets import check_name
from tasks.errors import UserError
from tasks.storage.delta import scan

if TYPE_CHECKING:  # scikit-learn stays out of the CLI's start-up
    from tasks.classify.store import PredictionsTable

CLASSES_TYPE = pa.list_(pa.string())


def class_value(label_set: str, label: str) -> str:
    """The field value of a predicted label."""
    return f"{label_set}={label}"


def parse_class_filter(text: str) -> str:
    """A ``--where`` argument (``label_set=label``) as a field value; a clear error if it is not
    one."""
    label_set, separator, label = text.partition("=")
    if not separator or not label.strip():
        raise UserError(f"--where {text!r}: write LABEL_SET=LABEL, e.g. --where gender=female")
    return class_value(check_name(label_set.strip()), label.strip())


class PredictedClasses:
    """Each file's predicted labels over every label set: key -> [(etag predicted from,
    field value)]."""

    def __init__(self, by_key: dict[str, list[tuple[str, str]]]) -> None:
        self.by_key = by_key

    @classmethod
    def load(
        cls, tables: Iterable[PredictionsTable], keys: Iterable[str] | None = None
    ) -> PredictedClasses:
        """The non-abstained predictions of ``tables`` (of ``keys`` only, when given)."""
        wanted = None if keys is None else pa.array(sorted(set(keys)), pa.string())
        by_key: dict[str, list[tuple[str, str]]] = {}
        for table in tables:
            latest = table.latest()
            if latest.data is None:
                continue
            where = ~ds.field("abstained")
            if wanted is not None:
                # delta-rs writes strings as string_view; a cast keeps the filter comparable
                where = where & pc.is_in(ds.field("key").cast(pa.string()), value_set=wanted)
            rows = scan(latest.data, ["key", "etag", "label_set", "label"], where)
            for key, etag, label_set, label in zip(
                *(rows[name].to_pylist() for name in ("key", "etag", "label_set", "label")),
                strict=True,
            ):
                by_key.setdefault(key, []).append((etag, class_value(label_set, label)))
        return cls(by_key)

    def of(self, key: str, etag: str) -> list[str]:
        """The field values of a file whose current version has ``etag``, sorted."""
        return sorted(value for made_from, value in self.by_key.get(key, []) if made_from == etag)

    def column(self, rows: pa.Table) -> pa.Array:
        """The ``classes`` column for snapshot ``rows`` (with ``key`` and ``etag``)."""
        return pa.array(
            [
                self.of(key, etag)
                for key, etag in zip(rows["key"].to_pylist(), rows["etag"].to_pylist(), strict=True)
            ],
            CLASSES_TYPE,
        )
