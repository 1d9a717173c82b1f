"""Engines that were tried and not adopted, measured against the ONNX Runtime fp32 engine on the
same export, in one run: ONNX Runtime dynamic int8 and static int8 (QDQ, per-channel weights,
activation ranges calibrated on 8 other synthetic clips), and OpenVINO (if installed: it is not
a dependency) in its default CPU precision and in f32.

    pip install openvino==2026.4.1      # optional
    python benchmarks/engine_candidates.py --checkpoint .audio-embeddings/demo/random-cnn14.pth

Reports clips/s on 8 windows of 10 s of machine sound (batch 8), and the lowest cosine between
each candidate's pooled trunk features and fp32 ONNX Runtime's over those and 8 windows of
tones, noise, sweeps and clicks (the bar for an opt-in precision was 0.99; engines must stay at
0.9999).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workdir import scratch_folder  # noqa: E402
from tasks.audio import samples  # noqa: E402
from tasks.model.checkpoint import file_sha256  # noqa: E402
from tasks.model.cnn14 import load_cnn14  # noqa: E402
from tasks.model.engines import OnnxTrunk, exported_trunk  # noqa: E402

THREADS = 2


def clips_per_second(run: Callable[[], object], windows: int, seconds: float) -> float:
    run()
    start, runs = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        run()
        runs += 1
    return runs * windows / (time.perf_counter() - start)


def min_cosine(frames: np.ndarray, reference: np.ndarray) -> float:
    a, b = (f.max(axis=2) + f.mean(axis=2) for f in (frames, reference))
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=".audio-embeddings/demo/random-cnn14.pth")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--smoke", action="store_true", help="Half a second a rate; no file")
    args = parser.parse_args(argv)
    clip = 10.0  # seconds of audio a window holds
    if args.smoke:
        args.seconds, clip = 0.5, 2.0
    checkpoint = Path(args.checkpoint)
    sha256 = file_sha256(checkpoint)
    export = exported_trunk(load_cnn14(checkpoint, sha256), checkpoint, sha256)
    rate = 32_000
    machines = [samples.engine(clip, rate, rpm=1200 + 300 * i, seed=i) for i in range(8)]
    others = [samples.tone(clip, rate, 440.0), samples.noise(clip, rate, 1)]
    others += [samples.chirp(clip, rate), samples.clicks(clip, rate, 6.0, 2)]
    others += [samples.tone(clip, rate, 97.0), samples.noise(clip, rate, 2, 0.05)]
    others += [samples.chirp(clip, rate, 50.0, 2000.0), samples.clicks(clip, rate, 2.0, 3)]
    windows = np.stack(machines).astype(np.float32)  # timed
    checked = np.stack(machines + others).astype(np.float32)  # cosine: the worst of 16
    fp32 = OnnxTrunk(export, THREADS)
    reference = fp32.run(checked)
    results = {
        "onnxruntime_fp32": {
            "clips_per_s": clips_per_second(lambda: fp32.run(windows), 8, args.seconds),
            "min_cosine": 1.0,
        }
    }

    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_path = scratch_folder("engine-candidates-") / "trunk-int8.onnx"
    quantize_dynamic(str(export), str(int8_path), weight_type=QuantType.QInt8)
    int8 = OnnxTrunk(int8_path, THREADS)
    results["onnxruntime_dynamic_int8"] = {
        "clips_per_s": clips_per_second(lambda: int8.run(windows), 8, args.seconds),
        "min_cosine": min_cosine(int8.run(checked), reference),
    }
    # static int8: activations too, their ranges calibrated on other clips than those checked
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Calibration(CalibrationDataReader):
        def __init__(self) -> None:
            clips = [samples.engine(clip, rate, rpm=900 + 250 * i, seed=20 + i) for i in range(6)]
            clips += [samples.noise(clip, rate, 30, 0.1), samples.chirp(clip, rate, 80.0, 6000.0)]
            batch = np.stack(clips).astype(np.float32)
            self.batches = iter([{"windows": batch[i : i + 2]} for i in range(0, 8, 2)])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    static_path = scratch_folder("engine-candidates-") / "trunk-static-int8.onnx"
    quantize_static(
        str(export),
        str(static_path),
        Calibration(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    static = OnnxTrunk(static_path, THREADS)
    results["onnxruntime_static_int8"] = {
        "clips_per_s": clips_per_second(lambda: static.run(windows), 8, args.seconds),
        "min_cosine": min_cosine(static.run(checked), reference),
    }
    if importlib.util.find_spec("openvino") is not None:
        import openvino

        for label, hints in (
            ("openvino_default", {}),
            ("openvino_f32", {"INFERENCE_PRECISION_HINT": "f32"}),
        ):
            core = openvino.Core()
            compiled = core.compile_model(
                core.read_model(str(export)),
                "CPU",
                {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": THREADS, **hints},
            )
            request = compiled.create_infer_request()
            results[label] = {
                "precision": str(compiled.get_property("INFERENCE_PRECISION_HINT")),
                "clips_per_s": clips_per_second(
                    lambda r=request: r.infer([windows]), 8, args.seconds
                ),
                "min_cosine": min_cosine(request.infer([checked])[0], reference),
            }
    for label, result in results.items():
        print(label, json.dumps(result), flush=True)
    if not args.smoke:
        out = ROOT / "benchmarks/results" / f"{socket.gethostname()}-engine-candidates.json"
        out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
