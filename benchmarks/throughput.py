"""Throughput benchmark: the naive per-file PANNs loop against our pipeline, same weights, same
machine, one run. Not part of the test suite.

    python benchmarks/throughput.py --clips 200                     # CPU or GPU, whatever is here
    python benchmarks/throughput.py --clips 2000 --batch-sizes 32,64,128,256 --precision fp16

Each phase runs in a fresh process so that its peak RSS is its own. Results go to
benchmarks/results/<host>-<device>.json and are printed as a table.

Phases (model-only and pipeline once per engine, ``--engines``, side by side)
- model-only: Cnn14 on pre-decoded 10 s windows at each batch size (the ceiling), per engine,
  and torch at its best batch size with glibc's allocator defaults (what the allocator setting
  that loading applies is worth);
- naive: what the seed notebook and public examples do per file: ``librosa.load(path, sr=32000)``
  then one forward pass per file, decoding and inference never overlapping;
- decode: what the reader threads cost the host per clip (read + decode + downmix, with and
  without host resampling), on 1 thread and on ``--workers`` threads: the clips/s the host can
  feed a GPU;
- host ceiling: the pipeline with the forward pass replaced by zeros: what the host path alone
  can feed a model (the pipeline's ceiling on an infinitely fast GPU);
- pipeline: our shard path (threads read + decode (+ resample) + window ahead of the model,
  windows of consecutive files packed into full batches), from WAV files on disk to snapshot
  rows; ``--resample-on device`` resamples on the GPU (``auto``, the default, on the host);
- incremental: runs over a catalogue whose snapshot already holds every file: no change
  (list + etag diff), and one new 10 s file (list + diff + embed it + commit one Delta version
  to the 10,000-row table), against the full-run time implied by the pipeline's throughput.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import multiprocessing
import platform
import pstats
import resource
import socket
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workdir import scratch_folder  # noqa: E402
from tasks.model.constants import EMBEDDING_METHOD, GFLOP_PER_10S_CLIP  # noqa: E402  (no torch: cheap to import)

CLIP_SECONDS = 10.0
DECODE_ROUNDS = 5  # rounds of the decode phase's variants; each keeps its best
SOURCE_RATE = 44_100


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _gpu_peak_mb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def make_catalogue(
    folder: Path, count: int, distinct: int | None = None, seconds: float = CLIP_SECONDS
) -> list[Path]:
    """``count`` WAV files of ``seconds`` at 44.1 kHz stereo, as real catalogues are; past the first
    ``distinct`` (default: all) they are hard links to earlier ones, since synthesising a clip
    (~20 ms) costs more than a GPU takes to embed it, and the pipeline reads every file's
    bytes either way."""
    import os

    from tasks.audio import samples

    distinct = distinct or count
    paths = []
    for i in range(count):
        path = folder / f"clips/{i // 1000:03d}/clip-{i:05d}.wav"
        if not path.exists() and i >= distinct:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(paths[i % distinct], path)
        elif not path.exists():
            kind = i % 3
            mono = (
                samples.engine(seconds, SOURCE_RATE, 900 + 7 * i, i)
                if kind == 0
                else samples.chirp(seconds, SOURCE_RATE, 50 + i % 400, 4000 + i)
                if kind == 1
                else samples.noise(seconds, SOURCE_RATE, i, 0.2)
            )
            samples.write(path, mono, SOURCE_RATE, channels=2)
        paths.append(path)
    return paths


def _embedder(
    args: argparse.Namespace, batch_size: int, engine: str = "auto", keep_memory: bool = True
):
    """The pipeline's embedder; ``keep_memory`` False builds it without the glibc allocator
    setting that loading applies (tasks.model.allocator), as a notebook's process runs."""
    from tasks.model.checkpoint import file_sha256
    from tasks.model.cnn14 import load_cnn14
    from tasks.model.embedder import PannsEmbedder, choose_device
    from tasks.settings import AudioLimits

    limits = AudioLimits(window_seconds=CLIP_SECONDS)
    if not keep_memory:
        path = Path(args.checkpoint)
        sha256 = file_sha256(path)
        return PannsEmbedder(
            load_cnn14(path, sha256),
            choose_device(args.device),
            sha256,
            limits,
            batch_size,
            args.precision,
            args.resample_on,
        )
    return PannsEmbedder.load(
        Path(args.checkpoint),
        device=args.device,
        limits=limits,
        batch_size=batch_size,
        precision=args.precision,
        resample_on=args.resample_on,
        engine=engine,
    )


def phase_model_only(
    args: argparse.Namespace, batch_size: int, engine: str = "auto", keep_memory: bool = True
) -> dict:

    embedder = _embedder(args, batch_size, engine, keep_memory)
    rng = np.random.default_rng(0)
    windows = (0.1 * rng.standard_normal((batch_size, int(CLIP_SECONDS * 32_000)))).astype(
        np.float32
    )
    embedder.trunk_frames(list(windows))  # warm-up (cuDNN autotuning, allocator)
    device = str(embedder.device)
    _sync(device)
    batches, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds_per_point or batches < 3:
        embedder.trunk_frames(list(windows))
        batches += 1
    _sync(device)
    elapsed = time.perf_counter() - start
    return {
        "engine": embedder.engine if keep_memory else "torch, glibc allocator defaults",
        "batch_size": batch_size,
        "clips_per_s": batches * batch_size / elapsed,
        "peak_rss_mb": _peak_rss_mb(),
        "gpu_peak_mb": _gpu_peak_mb(),
    }


def phase_naive(args: argparse.Namespace, paths: list[str]) -> dict:
    import librosa
    import torch

    embedder = _embedder(args, 1, "torch", keep_memory=False)  # as a notebook runs it
    librosa.load(paths[0], sr=32_000, mono=True)  # librosa JIT-compiles on first use: not timed
    start = time.perf_counter()
    for path in paths:
        audio, _ = librosa.load(path, sr=32_000, mono=True)
        with torch.inference_mode():
            embedder.model(torch.from_numpy(audio[None, :]).to(embedder.device))
    _sync(str(embedder.device))
    elapsed = time.perf_counter() - start
    return {
        "clips": len(paths),
        "seconds": elapsed,
        "clips_per_s": len(paths) / elapsed,
        "peak_rss_mb": _peak_rss_mb(),
        "gpu_peak_mb": _gpu_peak_mb(),
    }


def _plain_downmix(samples: np.ndarray) -> np.ndarray:
    """The downmix of the plain decode path (column by column, whole file), kept here
    so that the benchmark compares today's host path with that one in the same run."""
    scale = 1 / samples.shape[1] / (32768 if samples.dtype == np.int16 else 1)
    mono = samples[:, 0].astype(np.float32)
    for channel in range(1, samples.shape[1]):
        mono += samples[:, channel]
    mono *= np.float32(scale)
    return mono


def phase_decode(args: argparse.Namespace, paths: list[str]) -> dict:
    """Host cost of the reader threads' work per clip (file read included), with and without
    host resampling: WAV read straight from its bytes (the pipeline), through libsndfile with
    today's downmix, and the plain decode path (libsndfile, column
    downmix, a whole-file peak), on 1 and ``--workers`` threads, interleaved, best of
    ``DECODE_ROUNDS``; a copy of each file's bytes already in memory, as the machine's own limit
    on thread scaling for memory-bound work; and the libsndfile cost of the same clips as FLAC,
    OGG Vorbis and MP3."""
    import io
    from concurrent.futures import ThreadPoolExecutor

    import soundfile

    from tasks.audio.decode import (
        _check_finite,
        _check_silence,
        _peak,
        _read,
        decode,
        decode_opened,
        open_audio,
    )
    from tasks.audio.pieces import cut_pieces
    from tasks.model.allocator import keep_freed_memory
    from tasks.settings import AudioLimits

    # the reader threads run in the process that loaded the model, which has this setting;
    # without it a run's figures swing by up to 6x with glibc's state (fresh pages per file)
    keep_freed_memory()
    limits = AudioLimits(window_seconds=CLIP_SECONDS)

    def with_resampling(path: str) -> None:
        cut_pieces(decode(path, Path(path).read_bytes(), limits).samples, limits)

    def decode_only(path: str) -> None:  # what is left on the host when the GPU resamples
        decode(path, Path(path).read_bytes(), limits, resample=False)

    def libsndfile_decode_only(path: str) -> None:
        sound, header = open_audio(path, io.BytesIO(Path(path).read_bytes()), limits)
        with sound:
            decode_opened(path, sound, header, limits, resample=False)

    def before_issue_14(path: str) -> None:
        sound, _ = open_audio(path, io.BytesIO(Path(path).read_bytes()), limits)
        with sound:
            frames = _read(path, sound, -1)
        _check_finite(path, frames)
        _check_silence(path, _peak(_plain_downmix(frames)), limits)

    held = {path: np.frombuffer(Path(path).read_bytes(), np.uint8) for path in paths}

    def copy_of_held_bytes(path: str) -> None:  # memory traffic alone: what threads can scale to
        held[path].copy()

    variants = {
        "memory_copy_reference": copy_of_held_bytes,
        "host_resampling": with_resampling,
        "decode_only": decode_only,
        "libsndfile_decode_only": libsndfile_decode_only,
        "before_issue_14_decode_only": before_issue_14,
    }
    thread_counts = sorted({1, args.workers})
    seconds: dict[tuple[str, int], float] = {}
    for _ in range(DECODE_ROUNDS):  # interleaved: the VM's speed drifts within a run
        for name, work in variants.items():
            work(paths[0])
            for threads in thread_counts:
                with ThreadPoolExecutor(threads) as pool:
                    start = time.perf_counter()
                    list(pool.map(work, paths))
                    elapsed = time.perf_counter() - start
                seconds[name, threads] = min(seconds.get((name, threads), math.inf), elapsed)
    results: dict = {"rounds": DECODE_ROUNDS}
    for name in variants:
        for threads in thread_counts:
            results[f"{name}_{threads}_threads_clips_per_s"] = len(paths) / seconds[name, threads]
        results[f"{name}_ms_per_clip_one_core"] = 1000 / results[f"{name}_1_threads_clips_per_s"]
        results[f"{name}_thread_scaling"] = (
            results[f"{name}_{args.workers}_threads_clips_per_s"]
            / results[f"{name}_1_threads_clips_per_s"]
        )
    ours = results["decode_only_ms_per_clip_one_core"]
    for baseline in ("libsndfile", "before_issue_14"):
        results[f"decode_only_vs_{baseline}"] = (
            ours / results[f"{baseline}_decode_only_ms_per_clip_one_core"]
        )
    for extension in ("flac", "ogg", "mp3"):
        converted = []
        for path in paths[:20]:
            audio, rate = soundfile.read(path, dtype="float32")
            target = Path(path).with_suffix(f".{extension}")
            soundfile.write(target, audio, rate)
            converted.append(str(target))
        start = time.perf_counter()
        for path in converted:
            decode_only(path)
        results[f"{extension}_decode_only_ms_per_clip_one_core"] = (
            (time.perf_counter() - start) / len(converted) * 1000
        )
        for path in converted:
            Path(path).unlink()
    return results


def phase_pipeline(
    args: argparse.Namespace,
    folder: str,
    batch_size: int,
    engine: str = "auto",
    clip_seconds: float = CLIP_SECONDS,
) -> dict:
    from tasks.ingest.shard import embed_shard
    from tasks.storage.sources import LocalSource

    embedder = _embedder(args, batch_size, engine)
    source = LocalSource(Path(folder))
    items = list(source.list_items())
    embed_shard(items[:batch_size], source, embedder, "warm-up", workers=args.workers)
    _sync(str(embedder.device))
    start = time.perf_counter()
    rows = 0
    for offset in range(0, len(items), args.shard_size):
        result = embed_shard(
            items[offset : offset + args.shard_size],
            source,
            embedder,
            "bench",
            workers=args.workers,
        )
        rows += result.rows.num_rows
    _sync(str(embedder.device))
    elapsed = time.perf_counter() - start
    return {
        "engine": embedder.engine,
        "clips": rows,
        "seconds": elapsed,
        "clips_per_s": rows / elapsed,
        "x_realtime": rows / elapsed * clip_seconds,
        "gflops": rows / elapsed * GFLOP_PER_10S_CLIP * clip_seconds / 10,
        "clip_seconds": clip_seconds,
        "batch_size": batch_size,
        "workers": args.workers,
        "peak_rss_mb": _peak_rss_mb(),
        "gpu_peak_mb": _gpu_peak_mb(),
    }


def phase_host_ceiling(
    args: argparse.Namespace, folder: str, batch_size: int, profile: bool = False
) -> dict:
    """The pipeline with the forward pass replaced by zeros of the right shapes: how many clips
    per second the host path (reader threads, resampling where the pipeline does it, batching,
    row building) can feed a model, i.e. the pipeline's ceiling on an infinitely fast GPU."""

    import torch

    from tasks.audio.pieces import FRAME_SAMPLES
    from tasks.ingest.shard import embed_shard
    from tasks.model.constants import EMBEDDING_SIZE
    from tasks.storage.sources import LocalSource

    embedder = _embedder(args, batch_size, "torch")

    def no_model(rows) -> torch.Tensor:
        frames = max(len(row) for row in rows) // FRAME_SAMPLES
        return torch.zeros((len(rows), frames, EMBEDDING_SIZE))

    embedder.trunk_frames = no_model
    source = LocalSource(Path(folder))
    items = list(source.list_items())
    embed_shard(items[:batch_size], source, embedder, "warm-up", workers=args.workers)
    profiler = cProfile.Profile() if profile else None  # of this (the main) thread only
    if profiler:
        profiler.enable()
    start = time.perf_counter()
    rows = 0
    for offset in range(0, len(items), args.shard_size):
        shard = items[offset : offset + args.shard_size]
        rows += embed_shard(shard, source, embedder, "bench", workers=args.workers).rows.num_rows
    _sync(str(embedder.device))
    elapsed = time.perf_counter() - start
    result = {"clips": rows, "clips_per_s": rows / elapsed, "workers": args.workers}
    if profiler:
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(20)
        result["main_thread_profile"] = text.getvalue()
    return result


def phase_incremental(args: argparse.Namespace, files: int, workdir: str) -> dict:
    """Time incremental runs over ``files`` already-ingested files: no change, one new file."""
    import shutil
    from datetime import UTC, datetime

    import pyarrow as pa

    from tasks.audio import samples
    from tasks.ingest.plan import plan_source
    from tasks.ingest.shard import embed_shard
    from tasks.storage.quarantine import QuarantineTable
    from tasks.storage.snapshots import (
        SNAPSHOT_SCHEMA,
        TAG_SCORES_COLUMN,
        TAGS_COLUMN,
        SnapshotTable,
    )
    from tasks.storage.sources import LocalSource

    root = Path(workdir) / "many"
    for table_folder in ("many-snapshot", "many-quarantine"):  # a fresh table on every run
        shutil.rmtree(Path(workdir) / table_folder, ignore_errors=True)
    new_file = root / "new/one-new-clip.wav"
    new_file.unlink(missing_ok=True)
    for i in range(files):  # content is never read by a no-change run: tiny files will do
        path = root / f"{i // 1000:03d}/f{i:05d}.wav"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"RIFF")
    source = LocalSource(root)
    items = list(source.list_items())
    now = datetime.now(UTC)
    vectors = np.random.default_rng(0).random((len(items), 2048), dtype=np.float32)
    table = SnapshotTable(str(Path(workdir) / "many-snapshot"))
    table.commit(
        pa.table(
            {
                "key": [i.key for i in items],
                "source_uri": [i.uri for i in items],
                "path": [i.path for i in items],
                "etag": [i.etag for i in items],
                "size_bytes": [i.size_bytes for i in items],
                "last_modified": [now] * len(items),
                "metadata": [[]] * len(items),
                "duration_seconds": [10.0] * len(items),
                "sample_rate": [44_100] * len(items),
                "channels": [2] * len(items),
                "num_windows": [1] * len(items),
                "num_segments": [1] * len(items),
                "embedding": list(vectors),
                TAGS_COLUMN: [["x"]] * len(items),
                TAG_SCORES_COLUMN: [[0.5]] * len(items),
                "model": ["Cnn14"] * len(items),
                "checkpoint_sha256": ["x"] * len(items),
                "embedding_method": [EMBEDDING_METHOD] * len(items),
                "run_id": ["r"] * len(items),
                "ingested_at": [now] * len(items),
            },
            schema=SNAPSHOT_SCHEMA.remove(SNAPSHOT_SCHEMA.get_field_index("key_prefix")),
        ),
        [],
        "setup",
    )
    quarantine = QuarantineTable(str(Path(workdir) / "many-quarantine"))
    start = time.perf_counter()
    plan = plan_source(source, table, quarantine)
    elapsed = time.perf_counter() - start
    assert not plan.to_embed and not plan.deleted

    embedder = _embedder(args, 1)  # loaded before timing: a worker keeps its model between runs
    samples.write(new_file, samples.engine(CLIP_SECONDS, SOURCE_RATE), SOURCE_RATE, channels=2)
    start = time.perf_counter()
    one_new = plan_source(source, table, quarantine)
    planned = time.perf_counter()
    shard = embed_shard(one_new.items(), source, embedder, "one-new")
    embedded = time.perf_counter()
    table.commit(shard.rows, one_new.deleted_keys(), "one-new")
    committed = time.perf_counter()
    assert [item.path for item in one_new.items()] == ["new/one-new-clip.wav"]
    new_file.unlink()
    return {
        "files": files,
        "no_change_seconds": elapsed,
        "one_new_file": {
            "plan_seconds": planned - start,
            "embed_seconds": embedded - planned,
            "commit_seconds": committed - embedded,
            "seconds": committed - start,
        },
        "peak_rss_mb": _peak_rss_mb(),
    }


def _in_child(function, *args):
    """Run a phase in a fresh process (spawned: no inherited model or CUDA state)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def phase_clip_lengths(args: argparse.Namespace, workdir: Path) -> dict:
    """The ingest path (``embed_shard``) on catalogues of clips of each ``--clip-lengths``
    (s), in the same run, interleaved, ``--rounds`` times: clips/s per length, best and all
    rounds, and each length's best against the longest's. A clip costs its own length plus
    1.28 s of context a side (tasks.audio.pieces); a zero-padded 10 s window would make every
    short clip cost what a 10 s clip does."""
    lengths = [float(s) for s in args.clip_lengths.split(",")]
    folders = {}
    for seconds in lengths:
        folder = workdir / f"clips-{seconds:g}s"
        make_catalogue(folder, args.clips, args.distinct_clips, seconds)
        folders[seconds] = str(folder / "clips")
    runs: dict[float, list[float]] = {seconds: [] for seconds in lengths}
    for _ in range(args.rounds):
        for seconds in lengths:
            point = _in_child(phase_pipeline, args, folders[seconds], 8, "auto", seconds)
            runs[seconds].append(point["clips_per_s"])
    longest = max(lengths)
    return {
        "batch_size": 8,
        "clips": args.clips,
        "clips_per_s": {f"{s:g}": max(r) for s, r in runs.items()},
        "clips_per_s_all_rounds": {f"{s:g}": r for s, r in runs.items()},
        f"clips_per_s_vs_{longest:g}s": {
            f"{s:g}": max(runs[s]) / max(runs[longest]) for s in lengths
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument(
        "--naive-clips", type=int, default=None, help="clips for the naive loop (default: all)"
    )
    parser.add_argument(
        "--distinct-clips",
        type=int,
        default=None,
        help="clips synthesised; the rest are hard links to them (default: all distinct)",
    )
    parser.add_argument("--batch-sizes", default="1,4,8,16")
    parser.add_argument(
        "--engines",
        default="torch,onnxruntime",
        help="engines to compare (ONNX Runtime only on a CPU); the fastest pipeline is 'winner'",
    )
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=2, help="read/decode threads per shard")
    parser.add_argument(
        "--shard-size",
        type=int,
        default=None,
        help="files per shard (default: 64 on CPU, 4096 on CUDA, where a 64-file shard is a "
        "fraction of one batch's worth of work)",
    )
    parser.add_argument(
        "--resample-on",
        default="auto",
        choices=["auto", "host", "device"],
        help="where audio is resampled to 32 kHz (auto: the host, as the pipeline does)",
    )
    parser.add_argument("--seconds-per-point", type=float, default=20.0)
    parser.add_argument("--no-change-files", type=int, default=10_000)
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="Cnn14 checkpoint (default: a random-weight one; speed is the same)",
    )
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--only-decode", action="store_true", help="the decode phase alone, printed as JSON"
    )
    parser.add_argument(
        "--only-clip-lengths",
        action="store_true",
        help="the pipeline on catalogues of --clip-lengths alone, printed as JSON",
    )
    parser.add_argument("--clip-lengths", default="1,10", help="clip lengths (s) to compare")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of lengths")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny clip-length run, to check it works"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.only_clip_lengths, args.clips, args.rounds, args.clip_lengths = True, 4, 1, "1,3"

    import torch

    from tasks.model.cnn14 import write_random_checkpoint
    from tasks.model.embedder import choose_device

    workdir = scratch_folder("audio-embeddings-bench-", args.workdir)
    if args.checkpoint is None:
        args.checkpoint = str(workdir / "random-cnn14.pth")
        if not Path(args.checkpoint).exists():
            write_random_checkpoint(Path(args.checkpoint))
    device = choose_device(args.device)
    args.device = str(device)
    if args.shard_size is None:
        args.shard_size = 4096 if device.type == "cuda" else 64
    if args.only_clip_lengths:
        found = phase_clip_lengths(args, workdir)
        print(json.dumps(found, indent=2))
        if not args.smoke:
            out = ROOT / "benchmarks/results" / f"{socket.gethostname()}-clip-lengths.json"
            out.write_text(json.dumps(found, indent=2))
        return found
    paths = [str(p) for p in make_catalogue(workdir, args.clips, args.distinct_clips)]
    if args.only_decode:
        found = _in_child(phase_decode, args, paths[:200])
        print(json.dumps(found, indent=2))
        return found

    engines = [e for e in args.engines.split(",") if e == "torch" or device.type == "cpu"]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    per_engine = {}
    for engine in engines:
        points = [_in_child(phase_model_only, args, b, engine) for b in batch_sizes]
        per_engine[engine] = {"model_only": points}
        per_engine[engine]["best"] = max(points, key=lambda r: r["clips_per_s"])
    naive = _in_child(phase_naive, args, paths[: args.naive_clips or len(paths)])
    decoding = _in_child(phase_decode, args, paths[: min(len(paths), 200)])
    for engine, found in per_engine.items():
        best_batch = found["best"]["batch_size"]
        found["pipeline"] = _in_child(
            phase_pipeline, args, str(workdir / "clips"), best_batch, engine
        )
        found["pipeline_vs_model_only"] = (
            found["pipeline"]["clips_per_s"] / found["best"]["clips_per_s"]
        )
        found["pipeline_vs_naive"] = found["pipeline"]["clips_per_s"] / naive["clips_per_s"]
    host_ceiling = _in_child(
        phase_host_ceiling,
        args,
        str(workdir / "clips"),
        per_engine[max(per_engine, key=lambda e: per_engine[e]["pipeline"]["clips_per_s"])]["best"][
            "batch_size"
        ],
    )
    # the allocator setting's effect: torch at its best batch size with glibc's defaults
    torch_best = per_engine.get("torch", {}).get("best", {}).get("batch_size", batch_sizes[0])
    glibc_defaults = _in_child(phase_model_only, args, torch_best, "torch", False)
    winner = max(per_engine, key=lambda e: per_engine[e]["pipeline"]["clips_per_s"])
    best, pipeline = per_engine[winner]["best"], per_engine[winner]["pipeline"]
    model_only = per_engine[winner]["model_only"]
    incremental = _in_child(phase_incremental, args, args.no_change_files, str(workdir))
    full_run_s = args.no_change_files / pipeline["clips_per_s"]

    machine = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": multiprocessing.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": args.device,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "precision": args.precision,
        "resample_on": args.resample_on,
        "shard_size": args.shard_size,
    }
    results = {
        "machine": machine,
        "clips": args.clips,
        "engines": per_engine,
        "winner": winner,
        "torch_glibc_allocator_defaults": glibc_defaults,
        "model_only": model_only,
        "best_batch_size": best["batch_size"],
        "naive": naive,
        "decode": decoding,
        "host_ceiling": host_ceiling,
        "pipeline": pipeline,
        "pipeline_vs_model_only": pipeline["clips_per_s"] / best["clips_per_s"],
        "pipeline_vs_naive": pipeline["clips_per_s"] / naive["clips_per_s"],
        "pipeline_x_realtime": pipeline["clips_per_s"] * CLIP_SECONDS,
        "pipeline_gflops": pipeline["clips_per_s"] * GFLOP_PER_10S_CLIP,
        "model_only_gflops": best["clips_per_s"] * GFLOP_PER_10S_CLIP,
        "incremental": {
            **incremental,
            "full_run_seconds_extrapolated": full_run_s,
            "no_change_fraction_of_full_run": incremental["no_change_seconds"] / full_run_s,
            "one_new_file_fraction_of_full_run": (
                incremental["one_new_file"]["seconds"] / full_run_s
            ),
        },
    }
    out = Path(
        args.out or ROOT / "benchmarks/results" / f"{socket.gethostname()}-{device.type}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    for engine, found in per_engine.items():
        print(
            f"{engine}: model-only {found['best']['clips_per_s']:.2f} clips/s (batch "
            f"{found['best']['batch_size']}), pipeline {found['pipeline']['clips_per_s']:.2f} "
            f"({found['pipeline_vs_model_only']:.0%} of its model-only, "
            f"{found['pipeline_vs_naive']:.2f}x naive), peak RSS "
            f"{found['pipeline']['peak_rss_mb']:.0f} MB"
        )
    print(
        f"torch with glibc's allocator defaults: {glibc_defaults['clips_per_s']:.2f} clips/s "
        f"(batch {glibc_defaults['batch_size']})"
    )
    print(
        f"\nwinner {winner}: model-only best: {best['clips_per_s']:.2f} clips/s at batch "
        f"{best['batch_size']}; "
        f"naive {naive['clips_per_s']:.2f}; pipeline {pipeline['clips_per_s']:.2f} "
        f"({results['pipeline_vs_model_only']:.0%} of model-only, "
        f"{results['pipeline_vs_naive']:.2f}x naive); no-change run of "
        f"{args.no_change_files} files: {incremental['no_change_seconds']:.2f} s "
        f"({results['incremental']['no_change_fraction_of_full_run']:.2%} of a full run), one "
        f"new file {incremental['one_new_file']['seconds']:.2f} s; host decode "
        f"{decoding['host_resampling_ms_per_clip_one_core']:.1f} ms/clip/core with resampling, "
        f"{decoding['decode_only_ms_per_clip_one_core']:.1f} without; host path ceiling "
        f"(no model) {host_ceiling['clips_per_s']:.0f} clips/s on {args.workers} reader threads"
    )
    return results


if __name__ == "__main__":
    main()
