"""Where a benchmark keeps its catalogue, checkpoint and tables."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def scratch_folder(prefix: str, given: str | None = None) -> Path:
    """``given`` (created if missing, and kept, so that a rerun can reuse it), or else a new
    temporary folder removed when the benchmark's process exits: catalogues and tables run to
    gigabytes, and a machine that runs benchmarks all day would otherwise fill its disk."""
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def machine() -> dict:
    """Where a benchmark ran, for its results file."""
    import os
    import platform
    import socket

    return {"host": socket.gethostname(), "platform": platform.platform(), "cpus": os.cpu_count()}
