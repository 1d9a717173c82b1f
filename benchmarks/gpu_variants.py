"""Cnn14 forward-pass variants on one CUDA device, side by side in one process: what torch
can do beyond the pipeline's autocast. Not part of the test suite.

    python benchmarks/gpu_variants.py --batch-size 256 --out gpu-variants.json
    python benchmarks/gpu_variants.py --device cpu --batch-size 2 --window-seconds 1 --seconds 0.5

Every variant runs the whole forward pass (STFT and log-mel front end in fp32, conv trunk, head)
on 10 s windows already on the device, timed with CUDA events after a warm-up, so the figures
are the model's ceiling without host work (benchmarks/throughput.py measures the pipeline).
Each variant's embeddings are compared with fp32's on the same batch (minimum cosine over the
windows). Results are written after every variant, so a variant that runs out of time leaves
the others on disk.

Variants
- fp32 / fp32 without TF32: torch's default lets cuDNN use TF32 for convolutions;
- fp16 / bf16 autocast: what ``AUDIO_EMBEDDINGS_PRECISION`` selects today;
- bf16 autocast, channels_last: conv weights and activations in NHWC, the layout the tensor
  cores read without transposes;
- bf16 weights, channels_last: the trunk's weights cast once instead of per pass;
- the fastest eager variant replayed as a CUDA graph (no launch gaps);
- bf16 autocast, channels_last under ``torch.compile`` (fused elementwise work; compile time
  reported), unless ``--no-compile``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.workdir import scratch_folder  # noqa: E402
from tasks.model.cnn14 import (  # noqa: E402
    cnn14_forward,
    load_cnn14,
    write_random_checkpoint,
)
from tasks.model.constants import GFLOP_PER_10S_CLIP, MODEL_SAMPLE_RATE  # noqa: E402

Forward = Callable[[torch.Tensor], torch.Tensor]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward(forward: Forward, batch: torch.Tensor, seconds: float) -> dict:
    """Clips/s of ``forward`` over ``batch``: three warm-up passes, then passes until
    ``seconds`` have gone by (at least three), timed with CUDA events on a GPU."""
    device = batch.device
    for _ in range(3):
        forward(batch)
    _synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        start_event = torch.cuda.Event(enable_timing=True)
        end_event = torch.cuda.Event(enable_timing=True)
        start_event.record()
    passes, started = 0, time.perf_counter()
    while passes < 3 or time.perf_counter() - started < seconds:
        forward(batch)
        passes += 1
        if passes % 8 == 0:
            _synchronize(device)  # keep the host from queueing minutes of work
    if device.type == "cuda":
        end_event.record()
        end_event.synchronize()
        elapsed = start_event.elapsed_time(end_event) / 1000
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        elapsed, peak_mb = time.perf_counter() - started, None
    clips_per_s = passes * batch.shape[0] / elapsed
    return {
        "passes": passes,
        "ms_per_pass": elapsed / passes * 1000,
        "clips_per_s": clips_per_s,
        "x_realtime": clips_per_s * batch.shape[1] / MODEL_SAMPLE_RATE,
        "tflops": clips_per_s
        * GFLOP_PER_10S_CLIP
        * (batch.shape[1] / (10 * MODEL_SAMPLE_RATE))
        / 1000,
        "gpu_peak_mb": peak_mb,
    }


def min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1).min())


def embedding_of(
    model: torch.nn.Module, dtype: torch.dtype | None, compiled: bool = False
) -> Forward:
    """The window embeddings of ``model`` under autocast to ``dtype`` (None: fp32), with the
    pass compiled by ``torch.compile`` when ``compiled``."""

    def embedding(batch: torch.Tensor) -> torch.Tensor:
        embeddings, _ = cnn14_forward(model, batch, dtype)
        return embeddings

    run = torch.compile(embedding) if compiled else embedding

    def forward(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return run(batch)

    return forward


def with_weights(model: torch.nn.Module, dtype: torch.dtype | None, channels_last: bool):
    """A copy of ``model`` whose conv trunk holds ``dtype`` weights (None: as loaded) in the
    NHWC layout when ``channels_last``; the front end and the head stay fp32."""
    copied = copy.deepcopy(model)
    for index in range(1, 7):
        block = getattr(copied, f"conv_block{index}")
        if dtype is not None:
            block.to(dtype)
        if channels_last:
            block.to(memory_format=torch.channels_last)
    return copied


def as_cuda_graph(forward: Forward, batch: torch.Tensor) -> Forward:
    """``forward`` captured once on a static copy of ``batch`` and replayed."""
    static_input = batch.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # cuDNN picks its algorithms before capture
            forward(static_input)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_output = forward(static_input)

    def replay(new_batch: torch.Tensor) -> torch.Tensor:
        static_input.copy_(new_batch)
        graph.replay()
        return static_output

    return replay


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--window-seconds", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per variant")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--out", default="gpu-variants.json")
    parser.add_argument(
        "--smoke", action="store_true", help="CPU, 2 windows of 1 s, half a second a variant"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.device, args.batch_size, args.window_seconds = "cpu", 2, 1.0
        args.seconds, args.no_compile = 0.5, True

    device = torch.device(args.device)
    checkpoint = Path(args.checkpoint or scratch_folder("gpu-variants-") / "random-cnn14.pth")
    if not checkpoint.exists():
        write_random_checkpoint(checkpoint)
    model = load_cnn14(checkpoint, "benchmark").to(device).eval()
    samples = int(args.window_seconds * MODEL_SAMPLE_RATE)
    generator = np.random.default_rng(0)
    batch = torch.from_numpy(
        (0.1 * generator.standard_normal((args.batch_size, samples))).astype(np.float32)
    ).to(device)

    on_gpu = device.type == "cuda"
    results: dict = {
        "machine": {
            "device": torch.cuda.get_device_name(device) if on_gpu else "cpu",
            "torch": torch.__version__,
            "cudnn": torch.backends.cudnn.version() if on_gpu else None,
        },
        "batch_size": args.batch_size,
        "window_seconds": args.window_seconds,
        "variants": {},
    }
    out = Path(args.out)

    reference = embedding_of(model, None)(batch)

    def record(name: str, forward: Forward, **extra) -> dict:
        figures = time_forward(forward, batch, args.seconds)
        figures["min_cosine_vs_fp32"] = min_cosine(forward(batch).float(), reference)
        figures.update(extra)
        results["variants"][name] = figures
        out.write_text(json.dumps(results, indent=2))
        print(
            f"{name:45s} {figures['clips_per_s']:9.1f} clips/s  {figures['tflops']:6.1f} TFLOP/s"
            f"  cos {figures['min_cosine_vs_fp32']:.6f}",
            flush=True,
        )
        return figures

    record("fp32", embedding_of(model, None))
    if on_gpu:
        torch.backends.cudnn.allow_tf32 = False
        record("fp32 without TF32", embedding_of(model, None))
        torch.backends.cudnn.allow_tf32 = True
        record("fp16 autocast", embedding_of(model, torch.float16))
    record("bf16 autocast", embedding_of(model, torch.bfloat16))
    nhwc = with_weights(model, None, channels_last=True)
    record("bf16 autocast, channels_last", embedding_of(nhwc, torch.bfloat16))
    bf16_nhwc = with_weights(model, torch.bfloat16, channels_last=True)
    record("bf16 weights, channels_last", embedding_of(bf16_nhwc, torch.bfloat16))

    eager = {
        "bf16 autocast": model,
        "bf16 autocast, channels_last": nhwc,
        "bf16 weights, channels_last": bf16_nhwc,
    }
    fastest = max(eager, key=lambda name: results["variants"][name]["clips_per_s"])
    if on_gpu:
        forward = embedding_of(eager[fastest], torch.bfloat16)
        record(f"{fastest}, CUDA graph", as_cuda_graph(forward, batch))
    if not args.no_compile:
        started = time.perf_counter()
        compiled = embedding_of(eager[fastest], torch.bfloat16, compiled=True)
        compiled(batch)
        _synchronize(device)
        record(
            f"{fastest}, torch.compile",
            compiled,
            compile_seconds=time.perf_counter() - started,
        )
    best = max(results["variants"], key=lambda name: results["variants"][name]["clips_per_s"])
    results["fastest"] = best
    out.write_text(json.dumps(results, indent=2))
    print(f"fastest: {best}, {results['variants'][best]['clips_per_s']:.1f} clips/s")
    return results


if __name__ == "__main__":
    main()
