"""The catalogue map as the page draws it: every file's point, with what it can be coloured by
(top folder, AudioSet tag, each label set's predicted label, anomaly verdict), in columns (a
100,000-file map is a few MB of JSON, about a third of that gzipped). Built once per state of
the tables it reads and kept, compressed, until one of them moves."""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from tasks.anomaly.store import AnomalyStore
from tasks.catalogue_map.store import MapStore
from tasks.storage.snapshots import TAGS_COLUMN, SnapshotTable

#: Decimals of a map coordinate sent (the map spans -1..1: 1e-4 is far below a pixel).
DECIMALS = 4


@dataclass(frozen=True)
class MapBody:
    """The JSON body, and the same gzipped; ``files`` points; ``etag`` names the content."""

    files: int
    json: bytes
    gzipped: bytes
    etag: str


def categories(values: Sequence[str | None]) -> dict:
    """Values as codes into their distinct values, the most common first (-1: none)."""
    counted = Counter(v for v in values if v is not None)
    ordered = [value for value, _ in counted.most_common()]
    code = {value: i for i, value in enumerate(ordered)}
    return {
        "values": ordered,
        "counts": [counted[v] for v in ordered],
        "codes": [code.get(v, -1) for v in values],
    }


def build_map_body(
    store: MapStore,
    snapshot: SnapshotTable,
    anomalies: AnomalyStore,
    predicted: dict[str, dict[str, str]],
) -> MapBody | None:
    """The map's body, or None before the first map. ``predicted`` is label set -> key ->
    predicted label (or "abstained")."""
    history = store.history()
    if history.num_rows == 0:
        return None
    points = store.points.read(columns=["key", "path", "x", "y", "projection_version"])
    keys = points["key"].to_pylist()
    projection = history.slice(history.num_rows - 1).to_pylist()[0]
    tags = _top_tags(snapshot)
    verdicts = _verdicts(anomalies)
    body = {
        "projection": {
            "version": projection["version"],
            "method": projection["method"],
            "fitted_at": projection["fitted_at"].isoformat(),
            "fitted_files": projection["fitted_files"],
            "preservation": projection["preservation"],
        },
        "files": len(keys),
        "keys": keys,
        "paths": points["path"].to_pylist(),
        "x": _rounded(points["x"]),
        "y": _rounded(points["y"]),
        "colour_by": {
            "folder": categories([_top_folder(p) for p in points["path"].to_pylist()]),
            "tag": categories([tags.get(k) for k in keys]),
            "verdict": categories([verdicts.get(k) for k in keys]),
            **{
                f"predicted:{name}": categories([labels.get(k) for k in keys])
                for name, labels in sorted(predicted.items())
            },
        },
    }
    data = json.dumps(body, separators=(",", ":")).encode()
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    return MapBody(len(keys), data, gzip.compress(data, compresslevel=5), etag)


def _top_folder(path: str) -> str:
    """A path's first folder ("/" for a file at the top): in a library, what kind of sound;
    in a plant's recordings, which machine."""
    folder, separator, _ = path.partition("/")
    return folder if separator else "/"


def _rounded(column: pa.ChunkedArray) -> list[float]:
    return [round(v, DECIMALS) for v in column.to_pylist()]


def _top_tags(snapshot: SnapshotTable) -> dict[str, str]:
    """key -> the file's most likely AudioSet tag."""
    rows = snapshot.latest().rows_under(None, ["key", TAGS_COLUMN])
    return {
        key: tags[0]
        for key, tags in zip(rows["key"].to_pylist(), rows[TAGS_COLUMN].to_pylist(), strict=True)
        if tags
    }


def _verdicts(anomalies: AnomalyStore) -> dict[str, str]:
    """key -> the newest anomaly verdict of the clip (normal, anomaly or silent)."""
    rows = anomalies.latest_verdicts()
    return dict(zip(rows["key"].to_pylist(), rows["verdict"].to_pylist(), strict=True))


class MapViews:
    """The last body built, and the state of the tables it was built from: a request builds
    it again only when one of them moved (``state``: a cheap read of their versions)."""

    def __init__(self, state: Callable[[], tuple], build: Callable[[], MapBody | None]) -> None:
        self._state, self._build = state, build
        self._lock = threading.Lock()
        self._built: tuple[tuple, MapBody | None] | None = None

    def body(self) -> MapBody | None:
        state = self._state()
        with self._lock:  # one build at a time; the others wait for it
            if self._built is None or self._built[0] != state:
                self._built = (state, self._build())
            return self._built[1]
