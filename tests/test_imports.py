"""torch is loaded only where a model runs: the sensor, the index refresh, the index backends
and the storage layer import without it (a sensor worker or the bridge's neighbours stay light)."""

from __future__ import annotations

import ast
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
    "tasks.ingest.report",
    "tasks.search.report",
    "tasks.anomaly.report",
    "tasks.classify.report",
    "tasks.events.sensor",
    "tasks.model.checkpoint",
    # anomaly scans read the segments ingest stored: no model
    "flows.anomaly_scan",
    "tasks.anomaly.scan",
    "tasks.anomaly.windows",
    "flows.maintain",
    # the map reads stored vectors: no model
    "flows.update_map",
    "tasks.catalogue_map.update",
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


# The house's floors, lowest first. A module may import from its own room, from another room
# of its floor, or from any floor below; never from above. The longest matching prefix names a
# module's room: the model's numbers are a leaf every room that handles audio or vectors reads.
FLOORS: list[tuple[str, ...]] = [
    ("tasks.settings", "tasks.errors", "tasks.model.constants"),
    ("tasks.audio", "tasks.model", "tasks.storage"),
    (
        "tasks.index",
        "tasks.ingest",
        "tasks.anomaly",
        "tasks.catalogue_map",
        "tasks.classify",
        "tasks.events",
        "tasks.search",
    ),
    ("tasks.steps", "tasks.serve", "tasks.resources"),
    ("flows",),
]
ROOT = Path(__file__).parents[1]


def room_of(module: str) -> str | None:
    """The room (a FLOORS entry) a dotted module name belongs to, or None outside the house."""
    rooms = [room for floor in FLOORS for room in floor]
    matches = [r for r in rooms if module == r or module.startswith(r + ".")]
    return max(matches, key=len) if matches else None


def floor_of(room: str) -> int:
    return next(i for i, floor in enumerate(FLOORS) if room in floor)


def imports_between_rooms() -> list[tuple[str, str, str]]:
    """(importing file, importing room, imported room) for every project import that crosses a
    room, at any depth of the file (an import inside a function counts)."""
    found = []
    files = [*ROOT.glob("tasks/**/*.py"), *ROOT.glob("flows/**/*.py")]
    for path in sorted(p for p in files if p != ROOT / "tasks/__init__.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        source = room_of(module)
        assert source is not None, f"{module} is in no room of FLOORS: add its room"
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                target = room_of(name)
                if target is not None and target != source:
                    found.append((str(path.relative_to(ROOT)), source, target))
    return sorted(set(found))


def test_imports_only_point_down_or_across_a_floor() -> None:
    upward = [
        f"{path}: {source} imports {target}"
        for path, source, target in imports_between_rooms()
        if floor_of(target) > floor_of(source)
    ]
    assert not upward


def test_no_two_rooms_import_each_other_even_through_others() -> None:
    edges: dict[str, set[str]] = {}
    for _, source, target in imports_between_rooms():
        edges.setdefault(source, set()).add(target)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            room = todo.pop()
            if room == goal:
                return True
            if room not in seen:
                seen.add(room)
                todo.extend(edges.get(room, ()))
        return False

    circles = sorted(f"{a} -> {b} -> ... -> {a}" for a in edges for b in edges[a] if reaches(b, a))
    assert not circles


def test_the_import_check_sees_an_upward_import() -> None:
    # A storage module that reached for tasks.resources would be caught: the rule can fail.
    assert floor_of(room_of("tasks.resources")) > floor_of(room_of("tasks.storage.snapshots"))
    assert room_of("tasks.model.constants") == "tasks.model.constants"
    assert room_of("tasks.model.embedder") == "tasks.model"
    assert room_of("tasks.resources") == "tasks.resources"
