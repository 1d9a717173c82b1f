"""A shard's embedding: rows built per group of files, each the file's own, and a file's audio let
go before its group's rows are built."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf

from tasks.ingest.shard import embed_shard
from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.model.embedder import PannsEmbedder
from tasks.model.tags import top_tags_of_rows
from tasks.storage.snapshots import TAGS_COLUMN
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
        assert row[TAGS_COLUMN] == top_tags_of_rows(alone.probabilities[None], 5)[0][0]
        assert row["key"] == next(i.key for i in source.list_items() if i.path == row["path"])


def _peak_traced_bytes(source: LocalSource, embedder: PannsEmbedder, row_group: int) -> int:
    """Peak bytes traced (numpy's buffers included) while one shard embeds every file of
    ``source``, its rows built ``row_group`` files at a time. One reader and batches of one
    piece keep the read-ahead to two files, so what waits for the rows is what shows."""
    items = list(source.list_items())
    one_by_one = embedder.with_options(embedder.limits, batch_size=1)
    gc.collect()
    tracemalloc.start()
    try:
        embed_shard(items, source, one_by_one, "run-1", workers=1, files_per_row_table=row_group)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_files_audio_is_let_go_before_its_groups_rows_are_built(
    tmp_path: Path, embedder: PannsEmbedder
) -> None:
    """Rows wait for a group of files, their audio must not: on a GPU a group of 256 ten-second
    files would hold over 600 MB of samples and pieces. Measured: rows built after all ten
    files peak no higher than rows built after each file."""
    files, seconds = 10, 12.0
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, int(seconds * MODEL_SAMPLE_RATE))
    samples = noise.astype(np.float32)
    for i in range(files):
        sf.write(tmp_path / f"clip-{i:02d}.wav", samples, MODEL_SAMPLE_RATE, subtype="FLOAT")
    source = LocalSource(tmp_path)
    each = _peak_traced_bytes(source, embedder, row_group=1)
    grouped = _peak_traced_bytes(source, embedder, row_group=files)
    # Kept audio would add nine files' samples and pieces (2 x 1.5 MB each); the rows' vectors
    # that do wait are a few hundred KB a file.
    assert grouped - each < 3 * samples.nbytes, (each, grouped, samples.nbytes)
