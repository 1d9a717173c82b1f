"""What a hit's spectrogram costs, drawn by the service from the stored file: decode and picture
time per file, and the bytes sent, against the bytes a page would download to draw it itself
(the whole file, before decoding it in the browser).

    python benchmarks/spectrogram_cost.py --seconds 10,60,600 \
        --out benchmarks/results/vm-spectrogram.json

Files are 44.1 kHz stereo machine sounds, as PCM WAV and as Ogg Vorbis; each figure is the
median of ``--repeats`` runs in this process (the service computes a picture once per file
version and keeps it).
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workdir import machine, scratch_folder  # noqa: E402


def measure(path: Path, repeats: int) -> dict:
    """Median decode and picture times (ms) of one file, and the sizes involved (bytes)."""
    from tasks.audio.decode import decode_bounded
    from tasks.model.front_end import log_mel_picture
    from tasks.settings import AudioLimits

    data = path.read_bytes()
    limits = AudioLimits(max_duration_seconds=3_600)
    decode_ms, picture_ms = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        audio = decode_bounded(path.name, data, limits, lambda: None)
        decoded = time.perf_counter()
        picture = log_mel_picture(audio.samples)
        decode_ms.append((decoded - start) * 1000)
        picture_ms.append((time.perf_counter() - decoded) * 1000)
    payload = json.dumps(
        {
            "seconds": picture.seconds,
            "bands": picture.values.shape[0],
            "columns": picture.values.shape[1],
            "values": base64.b64encode(picture.values.tobytes()).decode("ascii"),
        }
    )
    return {
        "file": path.name,
        "audio_seconds": round(picture.seconds, 2),
        "file_bytes": len(data),
        "payload_bytes": len(payload),
        "decode_ms": round(statistics.median(decode_ms), 1),
        "picture_ms": round(statistics.median(picture_ms), 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", default="10,60,600", help="file lengths (s)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="one 2 s file per format, once")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds, args.repeats, args.out = "2", 1, None
    from tasks.audio import samples

    folder = scratch_folder("spectrogram-bench-")
    runs = []
    for seconds in (float(s) for s in args.seconds.split(",")):
        sound = samples.engine(seconds, 44_100, 1_500.0, 7)
        for suffix in ("wav", "ogg"):
            path = samples.write(folder / f"engine-{seconds:g}s.{suffix}", sound, 44_100, 2)
            runs.append(measure(path, args.repeats))
            print(json.dumps(runs[-1]), flush=True)
    results = {
        "machine": machine(),
        "repeats": args.repeats,
        "runs": runs,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
