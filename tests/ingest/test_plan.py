"""Planning an ingest: new, changed and deleted files by etag, quarantined files skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.ingest.plan import container_of, plan_changes
from tasks.storage.sources import InvalidSourceError, LocalSource


def test_plan_finds_new_changed_deleted_and_skips_quarantined(
    tmp_path: Path, catalogue: Path
) -> None:
    source = LocalSource(catalogue)
    items = {i.path: i for i in source.list_items()}
    current = {items[p].key: items[p].etag for p in ["tones/a440.wav", "noise/white.ogg"]}
    current[items["tones/a440.wav"].key] = "old-etag"
    current["gone-key"] = "e"
    quarantined = {(items["sweeps/chirp.mp3"].key, items["sweeps/chirp.mp3"].etag)}
    plan = plan_changes(items.values(), current, quarantined)
    assert sorted(i.path for i in plan.to_embed) == [
        "machines/ticker.wav",
        "tones/a220.flac",
        "tones/a440.wav",
    ]
    assert plan.unchanged == 1 and plan.skipped_quarantined == 1
    assert plan.deleted_keys == ["gone-key"]


def test_a_partial_listing_deletes_nothing(catalogue: Path) -> None:
    items = list(LocalSource(catalogue).list_items())
    current = {"gone-key": "e", **{i.key: i.etag for i in items}}
    plan = plan_changes(items[:1], current, set(), complete_listing=False)
    assert plan.deleted_keys == [] and plan.unchanged == 1 and plan.to_embed == []


def test_a_batch_of_blobs_must_share_one_container_and_be_blob_urls() -> None:
    url = "https://acct.blob.core.windows.net/audio/a/b.wav"
    assert container_of([url, url]) == ("acct", "az://audio/")
    with pytest.raises(InvalidSourceError, match="one container per batch"):
        container_of([url, "https://acct.blob.core.windows.net/other/c.wav"])
    with pytest.raises(InvalidSourceError, match="not a blob URL"):
        container_of(["https://acct.blob.core.windows.net/container-only"])
