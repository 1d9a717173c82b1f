"""Delta tables of the anomaly scans: per-clip results and the calibration history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime

import pyarrow as pa
from deltalake import write_deltalake

from tasks.anomaly.scoring import Calibration, ClipScore
from tasks.storage.delta import UTC_MICROS, open_table, read_or_empty

RESULTS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string()),
        pa.field("scanned_at", UTC_MICROS),
        pa.field("snapshot_version", pa.int64()),
        pa.field("key", pa.string()),
        pa.field("path", pa.string()),
        pa.field("group", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("threshold", pa.float64()),
        pa.field("is_anomaly", pa.bool_()),
        pa.field("verdict", pa.string()),  # normal, anomaly or silent
        pa.field("worst_window_start_seconds", pa.float64()),
        # the scan window's length (s): where the worst window ends (null before it was stored)
        pa.field("window_seconds", pa.float64()),
        pa.field("nearest_reference_paths", pa.list_(pa.string())),
    ]
)

CALIBRATIONS_SCHEMA = pa.schema(
    [
        pa.field("group", pa.string()),
        pa.field("threshold", pa.float64()),
        pa.field("method", pa.string()),
        pa.field("quantile", pa.float64()),
        pa.field("k", pa.int32()),
        pa.field("reference_clips", pa.int32()),
        pa.field("reference_windows", pa.int32()),
        pa.field("fingerprint", pa.string()),
        pa.field("scoring", pa.string()),  # knn or mahalanobis
        pa.field("snapshot_version", pa.int64()),
        pa.field("calibrated_at", UTC_MICROS),
    ]
)


class AnomalyStore:
    """``<uri>/results`` and ``<uri>/calibrations`` (local folder or az://)."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.storage_options = storage_options
        self.results_uri = f"{self.uri}/results"
        self.calibrations_uri = f"{self.uri}/calibrations"

    def results(self) -> pa.Table:
        """Every stored scan result."""
        return read_or_empty(self.results_uri, RESULTS_SCHEMA, self.storage_options)

    def results_version(self) -> int | None:
        """The results table's version (None before the first scan)."""
        table = open_table(self.results_uri, self.storage_options)
        return None if table is None else table.version()

    def latest_verdicts(self) -> pa.Table:
        """Each clip's most recent scan result (a clip scanned again shows its newest verdict)."""
        results = self.results()
        if results.num_rows == 0:
            return results
        order = results.sort_by([("key", "ascending"), ("scanned_at", "descending")])
        keys = order["key"].to_pylist()
        first = [i for i, key in enumerate(keys) if i == 0 or key != keys[i - 1]]
        return order.take(first)

    def calibrations(self) -> pa.Table:
        """Every stored calibration."""
        return read_or_empty(self.calibrations_uri, CALIBRATIONS_SCHEMA, self.storage_options)

    def latest_calibration(self, group: str, fingerprint: str) -> Calibration | None:
        """The stored calibration of this exact reference, if any (no recalibration needed)."""
        rows = [
            r
            for r in self.calibrations().to_pylist()
            if r["group"] == group and r["fingerprint"] == fingerprint
        ]
        if not rows:
            return None
        row = max(rows, key=lambda r: r["calibrated_at"])
        row["scoring"] = row.get("scoring") or "knn"  # stored before there was a choice
        return Calibration(**{k: row[k] for k in Calibration.__dataclass_fields__})

    def record_calibration(self, calibration: Calibration, snapshot_version: int) -> None:
        row = {
            **asdict(calibration),
            "snapshot_version": snapshot_version,
            "calibrated_at": datetime.now(UTC),
        }
        self._append(self.calibrations_uri, pa.Table.from_pylist([row], CALIBRATIONS_SCHEMA))

    def record_results(
        self,
        scores: Sequence[ClipScore],
        run_id: str,
        snapshot_version: int,
        window_seconds: float | None = None,
    ) -> None:
        """Append one scan's results; ``window_seconds`` is its window length (s)."""
        if not scores:
            return
        now = datetime.now(UTC)
        rows = [
            {
                **asdict(s),
                "verdict": s.verdict,
                "run_id": run_id,
                "scanned_at": now,
                "snapshot_version": snapshot_version,
                "window_seconds": window_seconds,
            }
            for s in scores
        ]
        self._append(self.results_uri, pa.Table.from_pylist(rows, RESULTS_SCHEMA))

    def _append(self, uri: str, rows: pa.Table) -> None:
        # "merge": tables written before a column was added (verdict, scoring) gain it
        write_deltalake(
            uri, rows, mode="append", schema_mode="merge", storage_options=self.storage_options
        )
