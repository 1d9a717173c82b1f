"""Checkpoint resolution order, the one-time download, and its checksum."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tasks.model.checkpoint import (
    CHECKPOINT_FILENAME,
    CheckpointNotFoundError,
    ChecksumMismatchError,
    download,
    resolve_checkpoint,
)
from tasks.settings import ModelSettings


def test_explicit_path_wins(tmp_path: Path, checkpoint: Path) -> None:
    panns_dir = tmp_path / "panns"
    panns_dir.mkdir()
    (panns_dir / CHECKPOINT_FILENAME).write_bytes(b"other")
    resolved = resolve_checkpoint(
        ModelSettings(checkpoint_path=checkpoint, panns_data_dir=panns_dir)
    )
    assert resolved.path == checkpoint and resolved.origin == "explicit path"
    assert not resolved.is_official


def test_missing_explicit_path_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    panns_dir = tmp_path / "panns"
    panns_dir.mkdir()
    (panns_dir / CHECKPOINT_FILENAME).write_bytes(b"other")
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        resolve_checkpoint(
            ModelSettings(checkpoint_path=tmp_path / "nope.pth", panns_data_dir=panns_dir)
        )


def test_panns_data_folder_is_second(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_FILENAME).write_bytes(b"weights")
    resolved = resolve_checkpoint(ModelSettings(panns_data_dir=tmp_path, allow_download=False))
    assert resolved.path == tmp_path / CHECKPOINT_FILENAME
    assert resolved.sha256 == hashlib.sha256(b"weights").hexdigest()


def test_offline_with_nothing_found_names_every_way_to_supply_it(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFoundError) as caught:
        resolve_checkpoint(ModelSettings(panns_data_dir=tmp_path, allow_download=False))
    message = str(caught.value)
    for way in (
        "AUDIO_EMBEDDINGS_CHECKPOINT_PATH",
        "--checkpoint",
        str(tmp_path),
        "AUDIO_EMBEDDINGS_ALLOW_DOWNLOAD",
        "make-random-checkpoint",
    ):
        assert way in message


def test_download_failure_is_reported_with_the_same_advice(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFoundError, match="download failed") as caught:
        resolve_checkpoint(
            ModelSettings(
                panns_data_dir=tmp_path,
                allow_download=True,
                checkpoint_url="http://127.0.0.1:9/nothing-listens-here",
            )
        )
    assert "make-random-checkpoint" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_download_is_atomic_and_checked(tmp_path: Path, file_server: tuple[str, bytes]) -> None:
    url, payload = file_server
    target = tmp_path / "cache" / "model.pth"
    download(url, target, hashlib.sha256(payload).hexdigest())
    assert target.read_bytes() == payload
    assert [p.name for p in target.parent.iterdir()] == ["model.pth"]


def test_checksum_mismatch_keeps_nothing(tmp_path: Path, file_server: tuple[str, bytes]) -> None:
    url, _ = file_server
    target = tmp_path / "cache" / "model.pth"
    with pytest.raises(ChecksumMismatchError, match="expected 0000"):
        download(url, target, "0000" + "0" * 60)
    assert list(target.parent.iterdir()) == []


def test_resolution_downloads_once_then_uses_the_cached_file(
    tmp_path: Path, file_server: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, payload = file_server
    monkeypatch.setattr(
        "tasks.model.checkpoint.OFFICIAL_SHA256", hashlib.sha256(payload).hexdigest()
    )
    settings = ModelSettings(panns_data_dir=tmp_path, allow_download=True, checkpoint_url=url)
    first = resolve_checkpoint(settings)
    assert first.origin == f"downloaded from {url}" and first.is_official
    second = resolve_checkpoint(
        settings.model_copy(update={"checkpoint_url": "http://127.0.0.1:9/x"})
    )
    assert second.path == first.path and second.origin.startswith("panns data folder")


def test_a_mirror_serving_another_file_is_refused_and_its_sas_never_shown(
    tmp_path: Path, file_server: tuple[str, bytes]
) -> None:
    url, _ = file_server
    cache = tmp_path / "panns_data"
    settings = ModelSettings(
        panns_data_dir=cache, allow_download=True, checkpoint_url=url + "?sig=SECRET-SAS"
    )
    with pytest.raises(ChecksumMismatchError, match="the file was discarded") as caught:
        resolve_checkpoint(settings)
    assert "SECRET-SAS" not in str(caught.value)
    assert list(cache.iterdir()) == []
