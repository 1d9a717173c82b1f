"""Search filters (path prefix, any-of labels) and their translation into each backend's query
language, built from escaped literals only: a quote in user input neither fails nor widens a
query. LanceDB speaks DataFusion SQL, Azure AI Search OData; both quote strings the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.storage.delta import quote_literal

# The highest code point: "path < prefix + this" bounds every path that starts with prefix.
_LAST_CHARACTER = chr(0x10FFFF)


@dataclass(frozen=True)
class SearchFilter:
    """Restrict a search: paths under a prefix, files tagged with any of some AudioSet labels,
    and/or files with predicted labels (``classes``: ``<label set>=<label>`` values; any of a
    set's values, every set named)."""

    path_prefix: str | None = None
    any_labels: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.path_prefix and not self.any_labels and not self.classes

    def classes_by_set(self) -> list[list[str]]:
        """The class values grouped by label set: any within a group, all groups."""
        groups: dict[str, list[str]] = {}
        for value in self.classes:
            groups.setdefault(value.partition("=")[0], []).append(value)
        return list(groups.values())


def sql_predicate(where: SearchFilter | None) -> str | None:
    """The LanceDB (DataFusion SQL) predicate for a filter, or None for no filter."""
    if where is None or where.is_empty:
        return None
    parts = []
    if where.path_prefix:
        parts.append(f"starts_with(path, {quote_literal(where.path_prefix)})")
    if where.any_labels:
        labels = ", ".join(quote_literal(label) for label in where.any_labels)
        parts.append(f"array_has_any(labels, [{labels}])")
    for group in where.classes_by_set():
        values = ", ".join(quote_literal(value) for value in group)
        parts.append(f"array_has_any(classes, [{values}])")
    return " AND ".join(parts)


def odata_filter(where: SearchFilter | None) -> str | None:
    """The Azure AI Search ``$filter`` for a filter, or None for no filter.

    OData has no starts-with for filters, so a path prefix is a range on the sortable ``path``.
    """
    if where is None or where.is_empty:
        return None
    parts = []
    if where.path_prefix:
        parts.append(
            f"path ge {quote_literal(where.path_prefix)} and "
            f"path lt {quote_literal(where.path_prefix + _LAST_CHARACTER)}"
        )
    if where.any_labels:
        alternatives = " or ".join(f"l eq {quote_literal(label)}" for label in where.any_labels)
        parts.append(f"labels/any(l: {alternatives})")
    for group in where.classes_by_set():
        alternatives = " or ".join(f"c eq {quote_literal(value)}" for value in group)
        parts.append(f"classes/any(c: {alternatives})")
    return " and ".join(f"({p})" for p in parts)
