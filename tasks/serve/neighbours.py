"""The catalogue's near-duplicates and isolated files for the page, worked out in the background:
a pass queries the index once per file (a minute or two at 10,000 files on a CPU), far longer
than a request may take. The first request starts the pass and is told to come back; later ones
get its progress, then its answer, kept until the snapshot moves or other settings are asked for.
One pass runs at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from tasks.search.duplicates import CatalogueNeighbours, catalogue_neighbours

Files = Callable[[], Iterable[tuple[str, str, np.ndarray]]]


@dataclass(frozen=True)
class NeighboursState:
    """Where the pass asked for is: ``done`` (with ``found``), or ``running`` (``files_seen``
    so far), or ``failed`` (``error``)."""

    status: str
    files_seen: int = 0
    found: CatalogueNeighbours | None = None
    error: str | None = None


class NeighboursJobs:
    """At most one pass at a time, and the answer of the last one, keyed by what it was for
    (snapshot version, threshold, how many isolated files)."""

    def __init__(self, files: Files, index_of: Callable[[], object]) -> None:
        self._files, self._index_of = files, index_of
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._state = NeighboursState("failed", error="nothing asked yet")
        self._seen = 0
        self._failure_told = False
        self._thread: threading.Thread | None = None

    def state(
        self, snapshot_version: int | None, threshold: float, isolated: int
    ) -> NeighboursState:
        """The pass for these settings: its answer if done, else its progress (started now if no
        pass is running; a pass for other settings that is running is awaited first)."""
        key = (snapshot_version, threshold, isolated)
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            if self._key == key:
                if running:
                    return NeighboursState("running", self._seen)
                if self._state.status == "done":
                    return self._state
                if not self._failure_told:  # say why once; the next ask tries again
                    self._failure_told = True
                    return self._state
            elif running:  # another pass holds the index: this one waits its turn
                return NeighboursState("running", 0)
            self._key, self._seen, self._failure_told = key, 0, False
            self._state = NeighboursState("running")
            self._thread = threading.Thread(
                target=self._run, args=(threshold, isolated), name="neighbours", daemon=True
            )
            self._thread.start()
            return NeighboursState("running", 0)

    def _counted(self, files: Iterable[tuple[str, str, np.ndarray]]) -> Iterator:
        for file in files:
            yield file
            self._seen += 1

    def _run(self, threshold: float, isolated: int) -> None:
        try:
            found = catalogue_neighbours(
                self._counted(self._files()), self._index_of(), threshold, isolated
            )
            state = NeighboursState("done", found.files, found)
        except Exception as error:  # reported to the page, which may ask again
            state = NeighboursState("failed", self._seen, error=f"{type(error).__name__}: {error}")
        with self._lock:
            self._state = state
