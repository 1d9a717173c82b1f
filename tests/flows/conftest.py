"""Fixtures of the flow tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checkpoint: Path) -> dict[str, str]:
    monkeypatch.setenv("AUDIO_EMBEDDINGS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUDIO_EMBEDDINGS_CHECKPOINT_PATH", str(checkpoint))
    return {
        "snapshot": str((tmp_path / "data/snapshots").resolve()),
        "index": str((tmp_path / "data/index").resolve()),
        "quarantine": str((tmp_path / "data/quarantine").resolve()),
    }
