"""Bring an index up to the latest snapshot version: apply the difference since the version it
reflects, or rebuild it from the whole snapshot."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from tasks.index.interface import RefreshResult, VectorIndex
from tasks.storage.keyed_table import KeyedTable, TableDiff


def refresh_index(
    index: VectorIndex,
    snapshot: KeyedTable,
    rebuild: bool = False,
    drop_old: bool = False,
    predicted_labels: Callable[[pa.Table], pa.Array] | None = None,
) -> RefreshResult | None:
    """Apply the table's changes since the version ``index`` reflects (None: no table yet);
    ``snapshot`` is the snapshot for a file index, the segments table for a segment index.

    ``rebuild`` builds a new index from the whole snapshot and switches readers to it once it is
    complete (for a model or index-setting change); ``drop_old`` then deletes the previous one.
    ``predicted_labels`` gives the predicted-labels column of snapshot rows (a file index
    only), so that documents written here keep the labels the classify flow gave their file's
    version. An index written before a field it copies existed is rebuilt whatever is asked.
    """
    latest = snapshot.version()
    if latest is None:
        return None

    def diff(from_version: int | None) -> TableDiff:
        changes = snapshot.diff(from_version, latest)
        if predicted_labels is None:
            return changes
        return changes.joining(
            lambda rows: rows.append_column("predicted_labels", predicted_labels(rows))
        )

    if rebuild or index.needs_rebuild():
        name = index.rebuild(diff(None), snapshot.uri, drop_old)
        return RefreshResult(None, latest, index.count(), 0, rebuilt_index=name)
    reflected = index.reflected_version(snapshot.uri)
    if reflected == latest:
        return RefreshResult(reflected, latest, 0, 0)
    return index.apply(diff(reflected), snapshot.uri)
