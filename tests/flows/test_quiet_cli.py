"""Commands run as a new user runs them, with no Prefect server configured: each starts its
own temporary server, and in the normal case prints no traceback, no ERROR and no library
warning, even when two start at once on the same Prefect home."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _user_environment(tmp_path: Path, checkpoint: Path, data: str) -> dict[str, str]:
    """A shell with no Prefect API and Prefect's own defaults (analytics on, as installed)."""
    unset = ("PREFECT_API_URL", "PREFECT_SERVER_ANALYTICS_ENABLED")
    return {key: value for key, value in os.environ.items() if key not in unset} | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "AUDIO_EMBEDDINGS_DATA_DIR": str(tmp_path / data),
        "AUDIO_EMBEDDINGS_CHECKPOINT_PATH": str(checkpoint),
    }


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _assert_quiet(done: subprocess.CompletedProcess) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output, output
    noisy = [line for line in output.splitlines() if "ERROR" in line or " WARN " in line]
    assert not noisy, output


def test_commands_with_a_temporary_server_are_quiet_even_two_at_once(
    catalogue: Path, checkpoint: Path, tmp_path: Path
) -> None:
    first = _user_environment(tmp_path, checkpoint, "data-1")
    second = _user_environment(tmp_path, checkpoint, "data-2")
    with ThreadPoolExecutor(2) as pool:  # two servers start on one Prefect database
        both = list(pool.map(lambda env: _run(env, "ingest", str(catalogue)), (first, second)))
    for done in both:
        _assert_quiet(done)
        assert "5 to embed" in done.stderr + done.stdout
    _assert_quiet(_run(first, "refresh-index"))
    _assert_quiet(_run(first, "search", str(catalogue / "tones/a440.wav")))
