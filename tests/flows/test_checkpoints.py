"""Checkpointed ingest: a run killed outright (SIGKILL, as an evicted pod) keeps what it had
committed; the next run embeds only the rest, says how much it resumed, and ends with the same
snapshot as a run that was never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from prefect.settings import PREFECT_API_URL

from flows.ingest import ingest
from tasks.audio import samples
from tasks.storage.snapshots import SnapshotTable

pytestmark = pytest.mark.usefixtures("prefect_server")
ROOT = Path(__file__).parents[2]
FILES = 40


@pytest.fixture
def many_clips(tmp_path: Path) -> Path:
    root = tmp_path / "clips"
    for i in range(FILES):
        clip = samples.engine(1.5, 16_000, 600.0 + 37 * i, seed=i)
        samples.write(root / f"{i % 4}/clip-{i:02d}.wav", clip, 16_000)
    return root


def _settings(data: Path, checkpoint: Path) -> dict[str, str]:
    return {
        "AUDIO_EMBEDDINGS_DATA_DIR": str(data),
        "AUDIO_EMBEDDINGS_CHECKPOINT_PATH": str(checkpoint),
        "AUDIO_EMBEDDINGS_SHARD_SIZE": "2",
        "AUDIO_EMBEDDINGS_COMMIT_EVERY_FILES": "2",  # a commit after every shard
    }


def test_a_killed_ingest_resumes_from_its_commits_and_ends_like_a_clean_run(
    many_clips: Path, tmp_path: Path, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resumed_dir = tmp_path / "resumed"
    settings = _settings(resumed_dir, checkpoint)
    scratch = tmp_path / "scratch"  # the temp folder of both runs, where their plans live
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    snapshot = SnapshotTable(str((resumed_dir / "snapshots").resolve()))
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "ingest", str(many_clips), "--no-index"],
        env={
            **os.environ,
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            "TMPDIR": str(scratch),
            **settings,
        },
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while (snapshot.version() or 0) < 2 and time.monotonic() < deadline:
            assert process.poll() is None, "the ingest ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    committed = snapshot.read(columns=["key"]).num_rows
    assert 0 < committed < FILES, committed
    assert any(scratch.glob("audio-embeddings-plan-*"))  # the killed run's plan, left behind

    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    again = ingest(source=str(many_clips), refresh_index=False)
    assert snapshot.read(columns=["key"]).num_rows == FILES
    assert again.embedded == FILES - committed  # only what the killed run had not committed
    assert again.unchanged == committed and again.resumed == committed
    assert again.commits == -(-again.embedded // 2)  # one version per two-file shard
    assert not any(scratch.glob("audio-embeddings-plan-*"))  # removed by the next run

    for name, value in _settings(tmp_path / "clean", checkpoint).items():
        monkeypatch.setenv(name, value)
    ingest(source=str(many_clips), refresh_index=False)
    clean = SnapshotTable(str((tmp_path / "clean/snapshots").resolve())).read().sort_by("key")
    resumed = snapshot.read().sort_by("key")
    assert resumed["key"].to_pylist() == clean["key"].to_pylist()
    assert resumed["etag"].to_pylist() == clean["etag"].to_pylist()
    np.testing.assert_allclose(
        np.stack(resumed["embedding"].to_numpy(zero_copy_only=False)),
        np.stack(clean["embedding"].to_numpy(zero_copy_only=False)),
        rtol=1e-4,
        atol=1e-5,
    )
