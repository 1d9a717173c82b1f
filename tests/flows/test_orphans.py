"""A command killed outright leaves nothing running: its temporary Prefect server dies with it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _children(pid: int) -> dict[int, str]:
    """Live child processes of ``pid`` and their command lines (zombies count as gone)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            state, parent = stat.rsplit(")", 1)[1].split()[:2]
            if int(parent) == pid and state != "Z":
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            continue
    return {child: command.decode() for child, command in found.items()}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_command_leaves_no_temporary_prefect_server(
    catalogue: Path, checkpoint: Path, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"} | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "AUDIO_EMBEDDINGS_DATA_DIR": str(tmp_path / "data"),
        "AUDIO_EMBEDDINGS_CHECKPOINT_PATH": str(checkpoint),
    }
    command = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "ingest", str(catalogue)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = None
    deadline = time.monotonic() + 120
    while server is None and time.monotonic() < deadline and command.poll() is None:
        server = next((p for p, c in _children(command.pid).items() if "uvicorn" in c), None)
        time.sleep(0.05)
    assert server is not None, "the command never started its temporary server"
    command.kill()  # SIGKILL: no atexit, no finally, no signal handler runs
    command.wait()
    deadline = time.monotonic() + 15
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(server), "the temporary Prefect server outlived the killed command"
