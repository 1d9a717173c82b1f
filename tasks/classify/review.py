"""The review queue of a trained label set: the files a person should hear next.

In order:

1. the files the classifier is least sure of: abstained first, then the smallest margin
   between its two most probable labels (the near misses);
2. the files least like every labelled example (the lowest cosine to the nearest one): sounds
   the labels do not cover yet;
3. a few confident predictions, drawn at random, to spot-check that confidence.

Files already labelled in the set are never in the queue. Everything comes from the predictions
table (``margin`` and ``labelled_similarity`` are stored with each prediction), so a queue costs
one read of it, whatever the catalogue's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Why a file is in the queue.
ABSTAINED, NEAR_MISS, UNLIKE_EXAMPLES, SPOT_CHECK = (
    "abstained",
    "near miss",
    "unlike every example",
    "spot check",
)
#: Shares of a queue: files unlike every example, and confident spot checks (at least one
#: each in a queue of 5 or more).
UNLIKE_SHARE = 0.15
SPOT_CHECK_SHARE = 0.15


@dataclass(frozen=True)
class ReviewItem:
    """One file to hear: why, and what the classifier made of it (``margin`` and
    ``labelled_similarity`` are None for predictions stored before they were)."""

    key: str
    path: str
    reason: str
    best_label: str
    probability: float
    margin: float | None
    labelled_similarity: float | None


def review_queue(
    predictions: pa.Table, labelled: set[str], size: int = 20, seed: int = 0
) -> list[ReviewItem]:
    """The queue (see the module's text) of at most ``size`` files from ``predictions`` (rows
    of the predictions table), leaving out the ``labelled`` keys; spot checks are drawn with
    ``seed`` (a label set's version keeps a queue stable while nothing changes)."""
    rows = [r for r in predictions.to_pylist() if r["key"] not in labelled]
    if not rows or size <= 0:
        return []
    spot = max(1, round(size * SPOT_CHECK_SHARE)) if size >= 5 else 0
    unlike = max(1, round(size * UNLIKE_SHARE)) if size >= 5 else 0
    chosen: dict[str, str] = {}

    def uncertainty(row: dict) -> tuple[int, float]:
        margin = row.get("margin")
        # a two-label margin is 2p - 1: the probability orders stored rows without one alike
        sure = margin if margin is not None else 2 * row["probability"] - 1
        return (0 if row["abstained"] else 1, sure)

    for row in sorted(rows, key=uncertainty)[: size - spot - unlike]:
        chosen[row["key"]] = ABSTAINED if row["abstained"] else NEAR_MISS
    measured = [
        r for r in rows if r["key"] not in chosen and r.get("labelled_similarity") is not None
    ]
    for row in sorted(measured, key=lambda r: r["labelled_similarity"])[:unlike]:
        chosen[row["key"]] = UNLIKE_EXAMPLES
    confident = [r for r in rows if r["key"] not in chosen and not r["abstained"]]
    if confident:
        picks = np.random.default_rng(seed).choice(
            len(confident), min(spot, len(confident)), replace=False
        )
        for i in sorted(picks):
            chosen[confident[i]["key"]] = SPOT_CHECK
    by_key = {r["key"]: r for r in rows}
    return [
        ReviewItem(
            key=key,
            path=by_key[key]["path"],
            reason=reason,
            best_label=by_key[key]["best_label"],
            probability=by_key[key]["probability"],
            margin=by_key[key].get("margin"),
            labelled_similarity=by_key[key].get("labelled_similarity"),
        )
        for key, reason in chosen.items()
    ]


def prediction_rows(table: pa.Table) -> pa.Table:
    """The columns a queue reads, with the newer ones null where an older table lacks them."""
    for name in ("margin", "labelled_similarity"):
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.float64()))
    return table.select(
        ["key", "path", "best_label", "probability", "margin", "labelled_similarity", "abstained"]
    ).filter(pc.is_valid(table["key"]))
