"""A shard's embedding: rows built per group of files, each the file's own, and a file's audio let
go before its group's rows are built."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest

from tasks.ingest.shard import embed_shard
from tasks.model.embedder import PannsEmbedder
from tasks.model.labels import top_labels_of_rows
from tasks.storage.sources import LocalSource


def _embed_all(source: LocalSource, embedder: PannsEmbedder, run_id: str, **options):
    return embed_shard(list(source.list_items()), source, embedder, run_id, **options)


def test_rows_built_in_groups_are_each_files_own(catalogue: Path, embedder: PannsEmbedder) -> None:
    """Rows are built for groups of files at once (labels ranked for the whole group): each row
    still holds its own file's embedding and labels, whatever the grouping."""
    source = LocalSource(catalogue)
    whole = _embed_all(source, embedder, "run-1")
    grouped = _embed_all(source, embedder, "run-1", files_per_row_table=2)  # groups 2, 2, 1
    assert grouped.rows.drop(["ingested_at"]).equals(whole.rows.drop(["ingested_at"]))
    assert grouped.segments.drop(["ingested_at"]).equals(whole.segments.drop(["ingested_at"]))
    for row in grouped.rows.to_pylist():
        alone = embedder.embed_file(row["path"], (catalogue / row["path"]).read_bytes())
        np.testing.assert_allclose(row["embedding"], alone.embedding, rtol=1e-4, atol=1e-5)
        assert row["labels"] == top_labels_of_rows(alone.probabilities[None], 5)[0][0]
        assert row["key"] == next(i.key for i in source.list_items() if i.path == row["path"])


def test_a_files_audio_is_let_go_before_its_groups_rows_are_built(
    catalogue: Path, embedder: PannsEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows wait for a group of files, their audio must not: on a GPU a group of 256 ten-second
    files would hold over 600 MB of samples and pieces."""
    import tasks.ingest.shard
    import tasks.ingest.stream

    decoded: dict[str, list[weakref.ref]] = {}
    prepare, build = tasks.ingest.stream.prepare, tasks.ingest.shard.snapshot_rows

    def recording_prepare(item, *args):
        prepared = prepare(item, *args)
        decoded[item.path] = [
            weakref.ref(prepared.audio.samples),
            weakref.ref(prepared.pieces.audio),
        ]
        return prepared

    def checking_build(files, *args):
        gc.collect()
        for file in files[:-1]:  # the newest one is still the shard loop's current file
            assert all(ref() is None for ref in decoded[file.item.path]), file.item.path
        return build(files, *args)

    monkeypatch.setattr(tasks.ingest.stream, "prepare", recording_prepare)
    monkeypatch.setattr(tasks.ingest.shard, "snapshot_rows", checking_build)
    assert _embed_all(LocalSource(catalogue), embedder, "run-1").rows.num_rows == 5
