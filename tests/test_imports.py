"""torch is loaded only where a model runs: the sensor, the index refresh, the index backends
and the storage layer import without it (a sensor worker or the bridge's neighbours stay light)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TORCH_FREE = [
    "flows.blob_sensor",
    "flows.refresh_index",
    "tasks.index.interface",
    "tasks.index.filters",
    "tasks.index.refresh",
    "tasks.index.lancedb_index",
    "tasks.index.azure_search",
    "tasks.storage.sources",
    "tasks.storage.azure",
    "tasks.storage.snapshots",
    "tasks.storage.quarantine",
    "tasks.resources",
    "tasks.reports",
    "tasks.events.sensor",
    "tasks.model.checkpoint",
    # anomaly scans read the segments ingest stored: no model
    "flows.anomaly_scan",
    "tasks.anomaly.scan",
    "tasks.anomaly.windows",
    "flows.maintain",
]


def test_modules_that_run_no_model_do_not_load_torch() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {TORCH_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_model_modules_do_load_it() -> None:
    # The check above can fail: importing the embedder really brings torch in.
    code = "import sys, tasks.model.embedder; print('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    assert done.stdout.strip() == "True", done.stderr


def test_the_storage_layer_imports_nothing_above_it() -> None:
    """tasks.storage is a foundation: it may not reach up to the modules that assemble the
    pipeline (tasks.resources, the steps, the flows), not even inside a function."""
    import ast

    above = ("tasks.resources", "tasks.steps", "flows")
    found = []
    for path in sorted((Path(__file__).parents[1] / "tasks/storage").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            found += [f"{path.name}: {n}" for n in names if n.startswith(above)]
    assert not found
