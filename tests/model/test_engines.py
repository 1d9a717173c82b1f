"""Engines: ONNX Runtime runs the same Cnn14 as torch, its export is cached per checkpoint and
versions, ``auto`` picks by device and precision; the allocator setting holds freed memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.errors import UserError
from tasks.model import engines
from tasks.model.embedder import PannsEmbedder
from tasks.settings import AudioLimits
from tests.model.clips import embed_clips, file_vectors, model_clips

LIMITS = AudioLimits(window_seconds=2.0, segment_seconds=0.5)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def both(checkpoint: Path) -> tuple[PannsEmbedder, PannsEmbedder]:
    torch_engine = PannsEmbedder.load(checkpoint, "cpu", LIMITS, batch_size=4, engine="torch")
    onnx_engine = PannsEmbedder.load(checkpoint, "cpu", LIMITS, batch_size=4, engine="onnxruntime")
    assert (torch_engine.engine, onnx_engine.engine) == ("torch", "onnxruntime")
    return torch_engine, onnx_engine


def test_onnx_runtime_equals_torch_on_every_window_and_segment(both) -> None:
    torch_engine, onnx_engine = both
    clips = list(model_clips(5, 5.0))
    expected, got = embed_clips(torch_engine, clips), embed_clips(onnx_engine, clips)
    for mine, theirs in zip(got, expected, strict=True):
        assert cosines(mine.window_embeddings, theirs.window_embeddings).min() >= 0.9999
        assert cosines(mine.segments.embeddings, theirs.segments.embeddings).min() >= 0.9999
        assert mine.segments.embeddings.shape == (10, 2048)
        np.testing.assert_allclose(mine.probabilities, theirs.probabilities, atol=1e-4)


def test_onnx_runtime_batched_equals_one_by_one(both) -> None:
    _, onnx_engine = both
    clips = list(model_clips(5, 2.0))
    batched = file_vectors(onnx_engine, clips)
    single = np.concatenate([file_vectors(onnx_engine, [clip]) for clip in clips])
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-6)


def test_other_lengths_run_on_the_same_export(both) -> None:
    torch_engine, onnx_engine = both
    clips = [model_clips(1, 10.0)[0], model_clips(1, 0.7)[0]]
    expected = file_vectors(torch_engine, clips)
    assert cosines(file_vectors(onnx_engine, clips), expected).min() >= 0.9999


def test_the_export_is_made_once_per_checkpoint_and_versions(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "weights.pth"
    copy.write_bytes(checkpoint.read_bytes())
    first = PannsEmbedder.load(copy, "cpu", LIMITS, engine="onnxruntime")
    exports = list(tmp_path.glob("weights.*.onnx"))
    assert exports == [first.trunk.path]
    name = exports[0].name
    assert first.checkpoint_sha256[:16] in name and f"trunk-v{engines.EXPORT_VERSION}" in name
    assert torch.__version__.split("+")[0] in name
    made = exports[0].stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    again = PannsEmbedder.load(copy, "cpu", LIMITS, engine="onnxruntime")
    assert again.trunk.path == exports[0] and exports[0].stat().st_mtime_ns == made
    monkeypatch.undo()
    # a new export code version makes a new file; so does other content under the same name
    monkeypatch.setattr(engines, "EXPORT_VERSION", engines.EXPORT_VERSION + 1)
    newer = PannsEmbedder.load(copy, "cpu", LIMITS, engine="onnxruntime")
    assert newer.trunk.path != exports[0] and newer.trunk.path.exists()
    assert not list(tmp_path.glob("*.partial"))


def test_export_path_falls_back_to_the_user_cache_when_the_folder_is_not_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(engines.os, "access", lambda path, mode: False)
    path = engines.export_path(tmp_path / "w.pth", "ab" * 32)
    assert path.parent == tmp_path / "home/.cache/audio-embeddings"


def test_auto_picks_onnx_runtime_on_a_cpu_in_fp32_and_torch_elsewhere() -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert engines.choose_engine("auto", cpu, "fp32") == "onnxruntime"
    assert engines.choose_engine("auto", cpu, "bf16") == "torch"
    assert engines.choose_engine("auto", gpu, "fp16") == "torch"
    assert engines.choose_engine("torch", cpu, "fp32") == "torch"
    with pytest.raises(UserError, match="CPU in fp32 only"):
        engines.choose_engine("onnxruntime", gpu, "fp32")


def test_loading_a_model_makes_glibc_keep_freed_memory() -> None:
    """Freeing a 256 MB array gives the pages back to the kernel by default; after a model is
    loaded (keep_freed_memory), the process keeps them for the next forward pass."""
    script = """
import numpy as np, os, sys
from tasks.model.allocator import keep_freed_memory
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
if sys.argv[1] == "keep":
    assert keep_freed_memory()
before = rss()
block = np.ones(256 << 18, dtype=np.float32)  # 256 MB, touched
del block
print(rss() - before)
"""
    root = Path(__file__).parents[2]

    def retained(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", script, mode], cwd=root, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    assert retained("default") < 64
    assert retained("keep") > 200


def test_two_threads_loading_one_checkpoint_export_it_once(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    real_export, running, calls = engines._export, [], []
    guard = threading.Lock()

    def slow_export(model, path):  # torch's exporter keeps global state: no overlap allowed
        with guard:
            running.append(path)
            calls.append(path)
            assert len(running) == 1, "two exports at once"
        time.sleep(0.5)  # a window for the other thread to start its own
        try:
            real_export(model, path)
        finally:
            running.remove(path)

    monkeypatch.setattr(engines, "_export", slow_export)
    fresh = tmp_path / "copy.pth"  # not exported yet
    fresh.write_bytes(checkpoint.read_bytes())
    with ThreadPoolExecutor(2) as pool:
        loaded = list(
            pool.map(
                lambda _: PannsEmbedder.load(fresh, "cpu", LIMITS, engine="onnxruntime"), range(2)
            )
        )
    assert len(calls) == 1 and loaded[0].trunk.path == loaded[1].trunk.path
