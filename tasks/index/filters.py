"""Search filters (path prefix, any-of AudioSet tags, predicted labels) and their translation
into each backend's query language, built from escaped literals only: a quote in user input
neither fails nor widens a query. LanceDB speaks DataFusion SQL, Azure AI Search OData; both
quote strings the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.storage.delta import quote_literal

# The highest code point: "path < prefix + this" bounds every path that starts with prefix.
_LAST_CHARACTER = chr(0x10FFFF)


@dataclass(frozen=True)
class SearchFilter:
    """Restrict a search: paths under a prefix, files tagged with any of some AudioSet tags,
    and/or files with predicted labels (``<label set>=<label>`` values; any of a set's values,
    every set named)."""

    path_prefix: str | None = None
    any_tags: tuple[str, ...] = ()
    predicted_labels: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.path_prefix and not self.any_tags and not self.predicted_labels

    def predicted_labels_by_set(self) -> list[list[str]]:
        """The predicted labels grouped by label set: any within a group, all groups."""
        groups: dict[str, list[str]] = {}
        for value in self.predicted_labels:
            groups.setdefault(value.partition("=")[0], []).append(value)
        return list(groups.values())


def sql_predicate(where: SearchFilter | None) -> str | None:
    """The LanceDB (DataFusion SQL) predicate for a filter, or None for no filter."""
    if where is None or where.is_empty:
        return None
    parts = []
    if where.path_prefix:
        parts.append(f"starts_with(path, {quote_literal(where.path_prefix)})")
    if where.any_tags:
        tags = ", ".join(quote_literal(tag) for tag in where.any_tags)
        parts.append(f"array_has_any(tags, [{tags}])")
    for group in where.predicted_labels_by_set():
        values = ", ".join(quote_literal(value) for value in group)
        parts.append(f"array_has_any(predicted_labels, [{values}])")
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
    if where.any_tags:
        alternatives = " or ".join(f"t eq {quote_literal(tag)}" for tag in where.any_tags)
        parts.append(f"tags/any(t: {alternatives})")
    for group in where.predicted_labels_by_set():
        alternatives = " or ".join(f"p eq {quote_literal(value)}" for value in group)
        parts.append(f"predicted_labels/any(p: {alternatives})")
    return " and ".join(f"({p})" for p in parts)
