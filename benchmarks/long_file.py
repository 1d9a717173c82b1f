"""Peak memory of ingesting one long recording, streamed block by block, against the model's
baseline; and its segment vectors against decoding the file whole.

    python benchmarks/long_file.py [--hours 3] [--checkpoint Cnn14_mAP=0.431.pth]

Writes a WAV of ``--hours`` at 44.1 kHz, stereo, 16-bit (a machine hum with impacts now and
then; 1.9 GB for 3 h), then runs, each in a fresh process whose peak RSS (``ru_maxrss``) is
read when it ends:

1. ``baseline``: the ingest flow on a 90 s clip (the model loaded and running full batches of
   ``BATCH_SIZE`` windows; a short file, decoded whole);
2. ``streamed``: the ingest flow on the long file (default settings: files over
   ``STREAM_ABOVE_SECONDS`` = 600 s are decoded and windowed block by block);
3. ``whole``: the same file embedded with streaming turned off (decoded whole, as before).

and compares the segment vectors the streamed ingest stored with those of the whole decode
(cosine, per segment). Results: ``benchmarks/results/<host>-long-file.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workdir import scratch_folder  # noqa: E402

RATE = 44_100


def write_long_wav(path: Path, hours: float) -> None:
    """A stereo 16-bit WAV written minute by minute (never whole in memory)."""
    import soundfile

    from tasks.audio import samples

    path.parent.mkdir(parents=True, exist_ok=True)
    with soundfile.SoundFile(path, "w", RATE, 2, "PCM_16") as out:
        for minute in range(round(hours * 60)):
            hum = samples.engine(60.0, RATE, 1500.0, minute)
            if minute % 7 == 3:  # a few seconds of impacts now and then
                start = RATE * (minute % 50)
                hum[start : start + 2 * RATE] += samples.clicks(2.0, RATE, 15.0, minute)
            out.write(np.stack([hum, 0.8 * hum], axis=1).clip(-1, 1))


def child(mode: str, audio: str, data_dir: str, out: str) -> None:
    """One measured run (in its own process)."""
    os.environ["AUDIO_EMBEDDINGS_DATA_DIR"] = data_dir
    started = time.perf_counter()
    if mode == "whole":
        from tasks.ingest.stream import embed_items
        from tasks.model.embedder import load_embedder
        from tasks.settings import Settings
        from tasks.storage.sources import LocalSource

        settings = Settings.with_overrides(stream_above_seconds=1e9)
        embedder = load_embedder(settings.model_settings(), settings.audio_limits())
        source = LocalSource(Path(audio))
        ((_, embedded),) = list(embed_items([(i, source) for i in source.list_items()], embedder))
        np.save(out + ".npy", embedded.result.segments.embeddings)
    else:
        from flows.ingest import ingest
        from flows.temporary_server import prefect_api
        from tasks.resources import segments_table
        from tasks.settings import Settings
        from tasks.storage.segments import segment_vectors

        with prefect_api():  # the configured Prefect API, else a temporary server
            ingest(source=audio, refresh_index=False)
        if mode == "streamed":
            rows = segments_table(Settings()).read()
            rows = rows.sort_by("start_seconds")
            np.save(out + ".npy", segment_vectors(rows["embedding"]))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out + ".json").write_text(
        json.dumps({"peak_rss_mb": peak_mb, "seconds": time.perf_counter() - started})
    )


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--skip-whole", action="store_true", help="no whole-decode comparison")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="A 1-minute file; no results file")
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return None
    if args.smoke:
        args.hours = 1 / 60

    from tasks.audio import samples
    from tasks.model.cnn14 import write_random_checkpoint

    work = scratch_folder("long-file-")
    checkpoint = args.checkpoint or str(write_random_checkpoint(work / "random-cnn14.pth"))
    env = {**os.environ, "AUDIO_EMBEDDINGS_CHECKPOINT_PATH": checkpoint}
    if args.smoke:  # a minute is enough to stream when the threshold is half a minute
        env["AUDIO_EMBEDDINGS_STREAM_ABOVE_SECONDS"] = "30"
    samples.write(work / "short/clip.wav", samples.engine(90.0, RATE, 1500.0, 1), RATE, 2)
    write_long_wav(work / "long/recording.wav", args.hours)
    size = (work / "long/recording.wav").stat().st_size
    runs = {}
    modes = [("baseline", "short"), ("streamed", "long")]
    if not args.skip_whole:
        modes.append(("whole", "long"))
    for mode, folder in modes:
        out = str(work / mode)
        command = [sys.executable, __file__, "--child", mode, str(work / folder)]
        subprocess.run([*command, str(work / f"data-{mode}"), out], env=env, check=True)
        runs[mode] = json.loads(Path(out + ".json").read_text())
        print(mode, runs[mode], flush=True)
    results = {
        "hours": args.hours,
        "file_bytes": size,
        "checkpoint": checkpoint,
        "runs": runs,
        "streamed_above_baseline_mb": runs["streamed"]["peak_rss_mb"]
        - runs["baseline"]["peak_rss_mb"],
    }
    if not args.skip_whole:
        streamed, whole = np.load(work / "streamed.npy"), np.load(work / "whole.npy")
        cosine = (streamed * whole).sum(1) / (
            np.linalg.norm(streamed, axis=1) * np.linalg.norm(whole, axis=1)
        )
        results["segments"] = {"streamed": len(streamed), "whole": len(whole)}
        results["segment_cosine_min"] = float(cosine.min())
        results["segment_cosine_mean"] = float(cosine.mean())
    print(json.dumps(results, indent=2))
    if not args.smoke:
        out = ROOT / "benchmarks/results" / f"{socket.gethostname()}-long-file.json"
        out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
