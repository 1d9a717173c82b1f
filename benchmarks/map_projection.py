"""The catalogue map: which projection, and what keeping it up to date costs.

    python benchmarks/map_projection.py --files 100000 --out benchmarks/results/vm-map.json

Part 1, the choice. Synthetic file vectors with a known structure (families of sounds, each
with sub-families and its own few directions of variation, in 2,048 dimensions) are projected
by each candidate fitted on a sample of ``--sample`` files, every other file placed as the map
places new files (PCA to 50 dimensions, then among the nearest fitted points), and t-SNE also
with openTSNE's own transform. Scored on the whole catalogue against the vectors' own cosine
neighbours: kNN preservation (of each file's 10 nearest files, the share that are its 10
nearest on the map; 1,000 files) and trustworthiness (scikit-learn, 10 neighbours, 2,000
files), with the fit's and the placement's time. UMAP and PaCMAP are scored where installed.

Part 2, the map as the flow keeps it: a snapshot of ``--files`` rows is written, the map is
fitted and every file placed (``update_map``, timed: the target is 100,000 files in under 5
minutes), then ``--repeats`` times one new file is added and placed (target: under a second).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workdir import machine, scratch_folder  # noqa: E402

SIZE = 2048
NEIGHBOURS = 10


def structured_vectors(
    files: int, seed: int = 0, apart: float = 0.6, noise: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors [files, 2048]: 20 families x 5 sub-families, each sub-family spread along
    8 directions of its own, plus noise; and each vector's sub-family (family x 5 + sub).
    ``apart`` sets how far sub-families lie from their family's centre, ``noise`` how much
    noise every vector gets (0.6 and 0.3: clearly apart; 0.2 and 1.5: overlapping)."""
    rng = np.random.default_rng(seed)
    families, subs, directions = 20, 5, 8
    centres = rng.normal(size=(families, 1, SIZE)) + apart * rng.normal(size=(families, subs, SIZE))
    centres = centres.reshape(-1, SIZE)
    bases = rng.normal(size=(len(centres), directions, SIZE)) * (6 / np.sqrt(SIZE))
    which = rng.integers(0, len(centres), files)
    vectors = np.empty((files, SIZE), np.float32)
    for start in range(0, files, 10_000):  # bounded temporaries
        part = which[start : start + 10_000]
        spread = np.einsum("nd,nds->ns", rng.normal(size=(len(part), directions)), bases[part])
        block = centres[part] + spread + noise * rng.normal(size=(len(part), SIZE))
        vectors[start : start + len(part)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return vectors, which


def scores(vectors: np.ndarray, points: np.ndarray, truth: np.ndarray, asked: np.ndarray,
           trust_sample: np.ndarray) -> dict:  # fmt: skip
    from sklearn.manifold import trustworthiness
    from sklearn.neighbors import NearestNeighbors

    on_map = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(points)
    found = on_map.kneighbors(points[asked], return_distance=False)
    kept = [
        len(set(t) & set(row[row != i][:NEIGHBOURS]))
        for t, row, i in zip(truth, found, asked, strict=True)
    ]
    return {
        "knn_preservation": round(float(np.mean(kept)) / NEIGHBOURS, 4),
        "trustworthiness": round(
            float(trustworthiness(vectors[trust_sample], points[trust_sample], n_neighbors=10)), 4
        ),
    }


def candidates(jobs: int) -> dict:
    """Each candidate layout: the sample's reduced vectors -> 2-D points."""
    from sklearn.decomposition import PCA

    from tasks.catalogue_map.projection import tsne_layout

    found = {"pca": lambda s: PCA(2, random_state=0).fit_transform(s), "tsne": tsne_layout(0, jobs)}
    try:
        import umap

        found["umap"] = lambda s: umap.UMAP(n_jobs=jobs).fit_transform(s)
    except ImportError:
        pass
    try:
        import pacmap

        found["pacmap"] = lambda s: pacmap.PaCMAP(n_components=2).fit_transform(s, init="pca")
    except ImportError:
        pass
    return found


def compare(files: int, sample: int, jobs: int) -> list[dict]:
    """Part 1 (see the module's text)."""
    from openTSNE import TSNE
    from sklearn.neighbors import NearestNeighbors

    from tasks.catalogue_map.projection import fit

    vectors, _ = structured_vectors(files)
    rng = np.random.default_rng(1)
    asked = rng.choice(files, min(1_000, files), replace=False)
    trust_sample = rng.choice(files, min(2_000, files), replace=False)
    # unit vectors: Euclidean order is cosine order
    found = (
        NearestNeighbors(n_neighbors=NEIGHBOURS + 1)
        .fit(vectors)
        .kneighbors(vectors[asked], return_distance=False)
    )
    truth = [row[row != i][:NEIGHBOURS] for row, i in zip(found, asked, strict=True)]
    chosen = np.sort(rng.choice(files, min(sample, files), replace=False))
    rest = np.setdiff1d(np.arange(files), chosen)
    rows = []

    def record(name: str, placement: str, fit_seconds: float, place_seconds: float, whole):
        rows.append({"method": name, "placement": placement, "fit_seconds": round(fit_seconds, 2),
                     "place_seconds": round(place_seconds, 2),
                     **scores(vectors, whole, truth, asked, trust_sample)})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)

    for name, layout in candidates(jobs).items():
        started = time.perf_counter()
        projection = fit(vectors[chosen], layout=(name, layout)).projection()
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        reduced_rest = projection.reduce(vectors[rest])
        whole = np.empty((files, 2), np.float32)
        whole[chosen], whole[rest] = projection.anchor_points, projection.place(reduced_rest)
        record(name, "nearest fitted points", fit_seconds, time.perf_counter() - started, whole)
    # t-SNE placing the rest itself: the fitted embedding's own transform
    started = time.perf_counter()
    projection = fit(vectors[chosen], layout=("tsne", lambda s: s[:, :2])).projection()
    embedding = TSNE(n_jobs=jobs, random_state=0, verbose=False).fit(projection.anchors)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    whole[chosen] = np.asarray(embedding)
    whole[rest] = np.asarray(embedding.transform(projection.reduce(vectors[rest])))
    record("tsne", "openTSNE transform", fit_seconds, time.perf_counter() - started, whole)
    return rows


def snapshot_rows(vectors: np.ndarray, kinds: np.ndarray, first: int, run_id: str):
    """Snapshot rows of synthetic files ``first``.. with these vectors (no audio behind them),
    in a folder per family and sub-family (``kinds``)."""
    import hashlib

    import pyarrow as pa

    from tasks.storage.snapshots import SNAPSHOT_SCHEMA

    paths = [
        f"family-{kind // 5:02d}/sub-{kind % 5}/clip-{first + i:06d}.wav"
        for i, kind in enumerate(kinds)
    ]
    now = datetime.now(UTC)
    columns = {
        "key": [hashlib.sha1(p.encode()).hexdigest() for p in paths],
        "source_uri": [f"file:///catalogue/{p}" for p in paths],
        "path": paths,
        "etag": ["1"] * len(paths),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), SIZE).cast(
            SNAPSHOT_SCHEMA.field("embedding").type
        ),
        "run_id": [run_id] * len(paths),
        "ingested_at": [now] * len(paths),
    }
    return pa.table(
        {
            f.name: columns[f.name] if f.name in columns else pa.nulls(len(paths), f.type)
            for f in SNAPSHOT_SCHEMA
        },
        schema=SNAPSHOT_SCHEMA,
    )


def write_snapshot(workdir: Path, files: int, spare: int = 0):
    """A snapshot of ``files`` synthetic rows under ``workdir`` and its (empty) map store, the
    seconds writing took, and the vectors and kinds of ``spare`` more files not yet written."""
    from tasks.catalogue_map.store import MapStore
    from tasks.storage.snapshots import SnapshotTable

    snapshot = SnapshotTable(str(workdir / "snapshot"))
    store = MapStore(str(workdir / "map"))
    vectors, kinds = structured_vectors(files + spare, seed=2)
    started = time.perf_counter()
    for number, first in enumerate(range(0, files, 20_000), start=1):
        at = slice(first, min(first + 20_000, files))
        snapshot.commit(snapshot_rows(vectors[at], kinds[at], first, "write"), [], "write", number)
    return snapshot, store, time.perf_counter() - started, vectors, kinds


def keep_up(files: int, repeats: int, jobs: int, workdir: Path) -> dict:
    """Part 2 (see the module's text)."""
    from tasks.catalogue_map.update import update_map

    snapshot, store, written, vectors, kinds = write_snapshot(workdir, files, repeats)
    fitted = update_map(snapshot, store, "map-fit", n_jobs=jobs)
    print(json.dumps({"fit": fitted.__dict__}), flush=True)
    singles = []
    for i in range(repeats):
        at = slice(files + i, files + i + 1)
        row = snapshot_rows(vectors[at], kinds[at], files + i, f"one-{i}")
        snapshot.commit(row, [], f"one-{i}")
        one = update_map(snapshot, store, f"map-one-{i}", n_jobs=jobs)
        assert one.placed == 1 and not one.refitted, one
        singles.append(one.seconds)
    return {
        "files": files,
        "snapshot_write_seconds": round(written, 1),
        "fit_and_place_seconds": fitted.seconds,
        "fit_sample": store.latest_projection().fitted_files,
        "preservation_at_fit": round(fitted.preservation or 0, 4),
        "explained_at_fit": round(fitted.explained or 0, 4),
        "one_new_file_seconds": sorted(singles),
        "one_new_file_median_seconds": float(np.median(singles)),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=10_000, help="files the methods fit on")
    parser.add_argument("--repeats", type=int, default=5, help="single new files placed")
    parser.add_argument("--jobs", type=int, default=1, help="threads of t-SNE and UMAP")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="1,500 files, sample 500; no file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.files, args.sample, args.repeats, args.out = 1_500, 500, 2, None
    workdir = scratch_folder("map-bench-", args.workdir)
    results = {
        "machine": machine(),
        "vectors": "synthetic: 20 families x 5 sub-families, 8 directions each, 2,048 floats",
        "sample": args.sample,
        "compared": compare(args.files, args.sample, args.jobs),
        "kept_up": keep_up(args.files, args.repeats, args.jobs, workdir),
    }
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
