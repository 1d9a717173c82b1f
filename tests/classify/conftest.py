"""A catalogue snapshot with controlled embeddings: labels decide where a file's vector lies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tasks.model.constants import EMBEDDING_SIZE
from tasks.settings import Settings
from tasks.storage.snapshots import SnapshotTable
from tests.snapshot_rows import rows_for, synthetic_items

#: Files per label in the synthetic catalogue, and the labels (one cluster each).
PER_LABEL = 12
LABELS = ("fan", "pump", "valve")


def clustered_embeddings(labels: list[str], spread: float, seed: int = 0) -> np.ndarray:
    """Non-negative vectors around one random centre per label (``spread``: noise scale)."""
    rng = np.random.default_rng(seed)
    centres = {label: rng.random(EMBEDDING_SIZE) for label in sorted(set(labels))}
    vectors = np.stack([centres[label] for label in labels])
    return np.abs(vectors + spread * rng.standard_normal(vectors.shape)).astype(np.float32)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Stores under a temporary folder."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def catalogue_snapshot(settings: Settings) -> tuple[SnapshotTable, list[str]]:
    """The settings' snapshot, holding PER_LABEL files per label at ``<label>/<n>.wav``, and
    each file's true label, in the order of ``synthetic_items``."""
    items = synthetic_items(PER_LABEL * len(LABELS))
    labels = [LABELS[i // PER_LABEL] for i in range(len(items))]
    rows = rows_for(items, "setup")
    rows = rows.set_column(
        rows.schema.get_field_index("path"),
        "path",
        pa.array([f"{label}/{i:03d}.wav" for i, label in enumerate(labels)]),
    )
    vectors = clustered_embeddings(labels, spread=0.05)
    rows = rows.set_column(
        rows.schema.get_field_index("embedding"),
        "embedding",
        pa.array(list(vectors), rows.schema.field("embedding").type),
    )
    metadata = pa.array(
        [[("condition", "normal" if i % 2 else "worn")] for i in range(len(items))],
        rows.schema.field("metadata").type,
    )
    rows = rows.set_column(rows.schema.get_field_index("metadata"), "metadata", metadata)
    table = SnapshotTable(settings.resolved_snapshot_uri())
    table.commit(rows, [], "setup")
    return table, labels
