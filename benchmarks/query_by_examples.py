"""Searching with several examples: which way of combining "like these" and "unlike those".

    python benchmarks/query_by_examples.py --files 20000 --out benchmarks/results/vm-examples.json

The catalogue is synthetic vectors with a known structure (benchmarks/map_projection.py's: 20
families of sounds, 5 sub-families each). A query wants one sub-family: ``--like`` examples of
it, and ``--unlike`` examples of a sibling sub-family of the same family (the near miss a person
marks "less like this"). Precision@10 of the wanted sub-family, examples left out, over
``--queries`` queries, for:

- ``one example``: the first liked example alone (today's search);
- ``mean``: the mean of the liked examples' unit vectors, then minus ``w`` times the mean of
  the unliked ones (``w`` = 0 is the liked examples alone), searched as one vector;
- ``rank fusion``: each example searched alone; reciprocal-rank fusion of the liked lists, less
  that of the unliked lists.

Exact search (every vector scored): the combination is measured, not the index.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.map_projection import structured_vectors  # noqa: E402
from benchmarks.workdir import machine  # noqa: E402

TOP = 10
FUSION_DEPTH = 200  # hits each example contributes to rank fusion
FUSION_K = 60  # the usual reciprocal-rank constant


def _ranked(vectors: np.ndarray, query: np.ndarray, depth: int) -> np.ndarray:
    scores = vectors @ query
    best = np.argpartition(-scores, depth)[:depth]
    return best[np.argsort(-scores[best])]


def _fused(vectors: np.ndarray, liked: list[int], unliked: list[int]) -> np.ndarray:
    fused: dict[int, float] = {}
    for sign, examples in ((1.0, liked), (-1.0, unliked)):
        for example in examples:
            for rank, index in enumerate(_ranked(vectors, vectors[example], FUSION_DEPTH)):
                fused[int(index)] = fused.get(int(index), 0.0) + sign / (FUSION_K + rank + 1)
    return np.array(sorted(fused, key=lambda i: -fused[i]))


def precision(found: np.ndarray, wanted: np.ndarray, examples: set[int]) -> float:
    kept = [i for i in found if i not in examples][:TOP]
    return float(np.mean(wanted[kept]))


def _measure(args: argparse.Namespace, noise: float) -> dict[str, float]:
    """Mean precision@10 of each combination at one level of noise."""
    from tasks.search.examples import combined_vector

    vectors, kinds = structured_vectors(args.files, 3, args.apart, noise)
    rng = np.random.default_rng(4)
    weights = (0.0, 0.25, 0.5, 0.75, 1.0)
    totals: dict[str, list[float]] = {"one example": [], "rank fusion": []}
    totals.update({f"mean, w={w}": [] for w in weights})
    for _ in range(args.queries):
        kind = int(rng.integers(0, kinds.max() + 1))
        sibling = kind // 5 * 5 + (kind % 5 + 1 + int(rng.integers(0, 4))) % 5
        members, others = np.flatnonzero(kinds == kind), np.flatnonzero(kinds == sibling)
        if len(members) <= args.like + TOP or len(others) < args.unlike:
            continue
        liked = [int(i) for i in rng.choice(members, args.like, replace=False)]
        unliked = [int(i) for i in rng.choice(others, args.unlike, replace=False)]
        wanted, examples = kinds == kind, set(liked) | set(unliked)
        depth = TOP + len(examples)
        totals["one example"].append(
            precision(_ranked(vectors, vectors[liked[0]], depth), wanted, examples)
        )
        for w in weights:
            query = combined_vector(vectors[liked], vectors[unliked], w)
            found = _ranked(vectors, query, depth)
            totals[f"mean, w={w}"].append(precision(found, wanted, examples))
        totals["rank fusion"].append(precision(_fused(vectors, liked, unliked), wanted, examples))
    print(json.dumps({"noise": noise, "queries": len(totals["one example"])}), flush=True)
    return {name: round(float(np.mean(v)), 4) for name, v in totals.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--like", type=int, default=3)
    parser.add_argument("--unlike", type=int, default=2)
    parser.add_argument(
        "--apart", type=float, default=0.2, help="sub-families' distance (0.2: overlapping)"
    )
    parser.add_argument("--noise", default="1.5,3", help="noise levels (1.5: hard, 3: harder)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="2,000 files, 20 queries; no file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.files, args.queries, args.out = 2_000, 20, None
    levels = {}
    for noise in (float(n) for n in args.noise.split(",")):
        levels[str(noise)] = _measure(args, noise)
    results = {
        "machine": machine(),
        "files": args.files,
        "queries": args.queries,
        "liked": args.like,
        "unliked": args.unlike,
        "apart": args.apart,
        "precision_at_10_by_noise": levels,
    }
    print(json.dumps(levels, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
