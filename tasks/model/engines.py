"""Which runtime executes Cnn14's trunk (front end + conv blocks, 99.9 % of the work).

- ``torch``: the module itself (any device, any precision).
- ``onnxruntime``: the trunk exported once per checkpoint to ONNX and run by ONNX Runtime's CPU
  provider. Measured on this project's 2-core AVX2 VM (README, Performance): faster than torch
  on the same CPU, with embeddings equal to torch's (cosine 1.0 to float precision).
- ``auto``: ONNX Runtime on a CPU in fp32 when it is installed, torch otherwise (CUDA, fp16/bf16),
  until a GPU measurement says otherwise.

The head (pooling, fc1, the segment embeddings, the AudioSet layer) stays in torch for every
engine: it is cheap and its segment split depends on settings, so one implementation serves all.

Exports are cached beside the checkpoint (or in ``~/.cache/audio-embeddings`` when that folder is
read-only), named by the checkpoint's sha256, ``EXPORT_VERSION`` and the torch and ONNX Runtime
versions: a change to any of them exports again, nothing else does.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from tasks.model.cnn14 import cnn14_trunk
from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.settings import Engine

_EXPORTING = threading.Lock()
#: Bump when the exported graph changes (inputs, outputs, what the trunk computes).
EXPORT_VERSION = 1
_OPSET = 17


def choose_engine(engine: Engine, device: torch.device, precision: str) -> str:
    """The engine that will run: ``auto`` resolved for this device and precision; an explicit
    ONNX Runtime request on a GPU or in reduced precision is an error, not a silent fallback."""
    onnx_possible = device.type == "cpu" and precision == "fp32"
    if engine == "auto":
        installed = importlib.util.find_spec("onnxruntime") is not None
        return "onnxruntime" if onnx_possible and installed else "torch"
    if engine == "onnxruntime" and not onnx_possible:
        from tasks.errors import UserError

        raise UserError(
            f"AUDIO_EMBEDDINGS_ENGINE=onnxruntime runs on the CPU in fp32 only (device {device}, "
            f"precision {precision}); use engine torch or auto there"
        )
    return engine


class _Trunk(torch.nn.Module):
    """What is exported: windows [n, samples] at 32 kHz -> frames [n, 2048, T]."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return cnn14_trunk(self.model, windows)


def export_path(checkpoint: Path, sha256: str) -> Path:
    """Where the export of this checkpoint for these versions lives (it may not exist yet)."""
    import onnxruntime

    name = (
        f"{checkpoint.stem}.{sha256[:16]}.trunk-v{EXPORT_VERSION}"
        f"-torch{torch.__version__.split('+')[0]}-ort{onnxruntime.__version__}.onnx"
    )
    beside = checkpoint.parent / name
    if beside.exists() or os.access(checkpoint.parent, os.W_OK):
        return beside
    return Path.home() / ".cache" / "audio-embeddings" / name


def exported_trunk(model: torch.nn.Module, checkpoint: Path, sha256: str) -> Path:
    """The ONNX export of ``model``'s trunk (loaded from ``checkpoint``), made if missing: written
    to a temporary file and renamed, so a reader never sees half a file."""
    path = export_path(checkpoint, sha256)
    with _EXPORTING:  # torch's exporter keeps global state: one export at a time per process
        if not path.exists():
            _export(model, path)
    return path


def _export(model: torch.nn.Module, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 2 * MODEL_SAMPLE_RATE)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".partial")
    os.close(handle)
    try:
        # the TorchScript exporter's notes on constant folding are not the user's concern
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Trunk(model).eval(),
                (example,),
                partial,
                input_names=["windows"],
                output_names=["frames"],
                dynamic_axes={"windows": {0: "n", 1: "samples"}, "frames": {0: "n", 2: "t"}},
                opset_version=_OPSET,
                dynamo=False,
            )
        Path(partial).replace(path)  # other processes may export too: the rename is atomic
    finally:
        Path(partial).unlink(missing_ok=True)


class OnnxTrunk:
    """The exported trunk in an ONNX Runtime CPU session (as many intra-op threads as torch
    uses). ``run`` is thread-safe (ONNX Runtime sessions are)."""

    name = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def run(self, windows: np.ndarray) -> np.ndarray:
        """Windows [n, samples] float32 at 32 kHz -> frames [n, 2048, T] float32."""
        batch = np.ascontiguousarray(windows, dtype=np.float32)
        return self.session.run(["frames"], {"windows": batch})[0]
