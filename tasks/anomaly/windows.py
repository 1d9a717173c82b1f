"""Scan windows from the segments ingest stored: a scan embeds nothing, it pools consecutive
stored segments into windows (by default 2 s every 1 s: two neighbouring 1 s segments).

A scan may ask for longer windows or a longer hop, in whole multiples of the stored segment
length (2 s windows every 1 s from 1 s segments: the mean of each pair of neighbours). A length
the table cannot give (0.5 s from 1 s segments) is a clear error, never a silent re-embedding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from tasks.anomaly.scoring import ClipWindows
from tasks.errors import UserError
from tasks.storage.segments import SegmentsTable, segment_vectors

if TYPE_CHECKING:
    from tasks.model.file_vectors import FileSegments

#: Columns of the segments table a scan reads.
SEGMENT_COLUMNS = ("file_key", "etag", "start_seconds", "segment_seconds", "embedding")


class ResolutionError(UserError, ValueError):
    """A scan asked for windows the stored segments cannot be pooled into."""


#: Scan windows by default: 2 s every 1 s, long enough to hold a machine's cycle, short enough
#: that a one-second knock is not averaged away (what the evaluation in the README measured).
DEFAULT_SCAN_WINDOW_SECONDS = 2.0
DEFAULT_SCAN_HOP_SECONDS = 1.0


@dataclass(frozen=True)
class ScanWindows:
    """Scan window length and hop (s); None: the stored segment length."""

    window_seconds: float | None = DEFAULT_SCAN_WINDOW_SECONDS
    hop_seconds: float | None = DEFAULT_SCAN_HOP_SECONDS

    def in_segments(self, segment_seconds: float) -> tuple[int, int]:
        """(segments per window, segments per hop) for stored segments of ``segment_seconds``."""
        return (
            self._multiple(self.window_seconds, segment_seconds, "window"),
            self._multiple(self.hop_seconds, segment_seconds, "hop"),
        )

    @staticmethod
    def _multiple(seconds: float | None, segment_seconds: float, what: str) -> int:
        if seconds is None:
            return 1
        ratio = seconds / segment_seconds
        if ratio < 1 - 1e-6 or abs(ratio - round(ratio)) > 1e-6:
            raise ResolutionError(
                f"the scan asks for a {what} of {seconds:g} s, but the segments table holds "
                f"{segment_seconds:g} s segments: ask for a whole multiple of {segment_seconds:g} "
                f"s, or ingest into a new segments table (AUDIO_EMBEDDINGS_SEGMENTS_URI) with "
                f"AUDIO_EMBEDDINGS_SEGMENT_SECONDS={seconds:g}; scans never embed audio again"
            )
        return round(ratio)


def pool_segments(
    key: str,
    path: str,
    start_seconds: np.ndarray,
    embeddings: np.ndarray,
    per_window: int,
    per_hop: int,
) -> ClipWindows:
    """A clip's scan windows: means of ``per_window`` consecutive segments, every ``per_hop``.

    A clip with fewer segments than a window is one window; the last window is moved back to
    end at the last segment, so every segment is in some window.
    """
    count = len(embeddings)
    if per_window == 1 and per_hop == 1:
        return ClipWindows(key, path, embeddings, np.asarray(start_seconds, dtype=np.float64))
    if count <= per_window:
        firsts = [0]
    else:
        firsts = list(range(0, count - per_window + 1, per_hop))
        if firsts[-1] + per_window < count:
            firsts.append(count - per_window)
    running = np.concatenate([np.zeros((1, embeddings.shape[1])), np.cumsum(embeddings, axis=0)])
    lasts = np.minimum(np.asarray(firsts) + per_window, count)
    means = (running[lasts] - running[firsts]) / (lasts - np.asarray(firsts))[:, None]
    return ClipWindows(
        key, path, means.astype(np.float32), np.asarray(start_seconds, np.float64)[firsts]
    )


def clip_of_segments(
    key: str, path: str, segments: FileSegments, windows: ScanWindows
) -> ClipWindows:
    """The scan windows of a file's segments, as ingest computes them (``anomaly evaluate``)."""
    per_window, per_hop = windows.in_segments(segments.segment_seconds)
    return pool_segments(
        key, path, segments.start_seconds, segments.embeddings, per_window, per_hop
    )


def stored_clips(
    table: SegmentsTable, rows: Sequence[dict], windows: ScanWindows
) -> tuple[list[ClipWindows], list[str]]:
    """The scan windows of snapshot ``rows`` (key, path, etag), read from the segments table.

    A clip without segments of the same version as its snapshot row (ingested before segments
    were stored, or changed since the scan was planned) is reported, not scored.
    """
    if not rows:
        return [], []
    stored = table.of_files([row["key"] for row in rows], SEGMENT_COLUMNS)
    by_file = _split_by_file(stored)
    clips, problems = [], []
    for row in rows:
        segments = by_file.get(row["key"])
        if segments is None:
            problems.append(
                f"{row['path']}: no stored segments (ingested before segments were stored: the "
                "next ingest embeds it once more to store them)"
            )
            continue
        if segments["etag"][0].as_py() != row["etag"]:
            problems.append(
                f"{row['path']}: its stored segments are of another version of the file "
                "(changed since this scan was planned; the next scan takes it)"
            )
            continue
        per_window, per_hop = windows.in_segments(_segment_seconds(segments))
        clips.append(
            pool_segments(
                row["key"],
                row["path"],
                segments["start_seconds"].to_numpy(),
                segment_vectors(segments["embedding"]),
                per_window,
                per_hop,
            )
        )
    return clips, problems


def _split_by_file(stored: pa.Table) -> dict[str, pa.Table]:
    """Rows (sorted by file and time) split into one table per file key."""
    keys = stored["file_key"].to_pylist()
    by_file, start = {}, 0
    for end in range(1, len(keys) + 1):
        if end == len(keys) or keys[end] != keys[start]:
            by_file[keys[start]] = stored.slice(start, end - start)
            start = end
    return by_file


def _segment_seconds(segments: pa.Table) -> float:
    values = {v for v in segments["segment_seconds"].to_pylist() if v is not None}
    if len(values) != 1 or not all(math.isfinite(v) for v in values):
        raise ResolutionError("a file's segments disagree on their length: re-ingest it")
    return values.pop()
