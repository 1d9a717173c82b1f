"""Cnn14 itself: built offline from panns-inference's module, loaded from a checkpoint, and its
eval-mode forward pass with the log-mel front end kept in fp32.

panns-inference is used for its ``Cnn14`` module only. Its ``config`` module downloads the
AudioSet class CSV with ``wget`` on any import and its ``AudioTagging`` wrapper overwrites small
checkpoints, so we register an offline ``panns_inference.config`` (the classes from our package
data) before importing ``panns_inference.models``, and own loading, resampling and batching
ourselves.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from tasks.model.checkpoint import CheckpointError
from tasks.model.constants import (
    FMAX,
    FMIN,
    HOP_SIZE,
    MEL_BINS,
    MODEL_SAMPLE_RATE,
    NUM_CLASSES,
    OFFICIAL_SHA256,
    WINDOW_SIZE,
)
from tasks.model.front_end import dft_matrix, hann_window, pad_center, slaney_mel_filterbank
from tasks.model.tags import audioset_tags

# Cnn14's six conv blocks and their pooling, as in panns_inference.models.Cnn14.forward.
_CONV_BLOCKS = (
    ("conv_block1", (2, 2)),
    ("conv_block2", (2, 2)),
    ("conv_block3", (2, 2)),
    ("conv_block4", (2, 2)),
    ("conv_block5", (2, 2)),
    ("conv_block6", (1, 1)),
)


def _install_offline_panns_config() -> None:
    """Stand in for ``panns_inference.config``: importing panns_inference must not go online."""
    if "panns_inference.config" in sys.modules:
        return
    classes = audioset_tags()
    config = types.ModuleType("panns_inference.config")
    config.sample_rate = MODEL_SAMPLE_RATE
    config.labels = list(classes.names)
    config.ids = list(classes.ids)
    config.classes_num = len(classes.names)
    config.lb_to_ix = {name: i for i, name in enumerate(classes.names)}
    config.ix_to_lb = dict(enumerate(classes.names))
    config.id_to_ix = {mid: i for i, mid in enumerate(classes.ids)}
    config.ix_to_id = dict(enumerate(classes.ids))
    sys.modules["panns_inference.config"] = config


def build_cnn14(random_init: bool = True) -> torch.nn.Module:
    """A Cnn14 in eval mode, with panns-inference's default (random) initialisation, or with
    ``random_init`` False, uninitialised weights for a checkpoint to fill (drawing 80 M random
    numbers is a noticeable part of a cold search); the log-mel front end is computed either
    way."""
    _install_offline_panns_config()
    with _without_pyplot():
        from panns_inference.models import Cnn14

    skip_random_init = nullcontext() if random_init else _without_random_init()
    with _front_end_without_librosa(), skip_random_init:
        model = Cnn14(
            sample_rate=MODEL_SAMPLE_RATE,
            window_size=WINDOW_SIZE,
            hop_size=HOP_SIZE,
            mel_bins=MEL_BINS,
            fmin=FMIN,
            fmax=FMAX,
            classes_num=NUM_CLASSES,
        )
    return model.eval()


@contextmanager
def _without_pyplot() -> Iterator[None]:
    """panns_inference imports matplotlib.pyplot (a third of a second of a cold search) and
    Cnn14 never uses it: while panns_inference is first imported, an empty stand-in answers;
    afterwards it is removed, so any other import of matplotlib gets the real one."""
    if "matplotlib" in sys.modules or "panns_inference.models" in sys.modules:
        yield
        return
    package, pyplot = types.ModuleType("matplotlib"), types.ModuleType("matplotlib.pyplot")
    package.pyplot = pyplot
    sys.modules.update({"matplotlib": package, "matplotlib.pyplot": pyplot})
    try:
        yield
    finally:
        for name in ("matplotlib", "matplotlib.pyplot"):
            if sys.modules.get(name) in (package, pyplot):
                del sys.modules[name]


_INITIALISERS = ("kaiming_uniform_", "xavier_uniform_", "uniform_", "normal_")
_patching_init = threading.Lock()


@contextmanager
def _without_random_init() -> Iterator[None]:
    """torch.nn.init's random initialisers do nothing inside (modules' constructors and panns'
    init_layer call them by module attribute)."""
    with _patching_init:
        originals = {name: getattr(torch.nn.init, name) for name in _INITIALISERS}
        for name in _INITIALISERS:
            setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)
        try:
            yield
        finally:
            for name, function in originals.items():
                setattr(torch.nn.init, name, function)


@contextmanager
def _front_end_without_librosa() -> Iterator[None]:
    """While Cnn14 is built, torchlibrosa gets its Hann window, mel filterbank and DFT matrix from
    ``hann_window``, ``slaney_mel_filterbank`` and ``dft_matrix``: importing librosa.filters (and
    scipy.signal under it) would be about a third of a cold search. Equal to what torchlibrosa
    computes (tested)."""
    import torchlibrosa.stft

    filters = types.SimpleNamespace(
        get_window=lambda window, length, fftbins=True: hann_window(length),
        mel=lambda sr, n_fft, n_mels, fmin, fmax: slaney_mel_filterbank(
            sr, n_fft, n_mels, fmin, fmax
        ),
    )
    util = types.SimpleNamespace(pad_center=pad_center)
    original, original_dft = torchlibrosa.stft.librosa, torchlibrosa.stft.DFTBase.dft_matrix
    torchlibrosa.stft.librosa = types.SimpleNamespace(filters=filters, util=util)
    torchlibrosa.stft.DFTBase.dft_matrix = lambda self, n: dft_matrix(n)
    try:
        yield
    finally:
        torchlibrosa.stft.librosa = original
        torchlibrosa.stft.DFTBase.dft_matrix = original_dft


def write_random_checkpoint(path: Path, seed: int = 0) -> Path:
    """Save a random-weight Cnn14 as ``{'model': state_dict}``, the official file's layout.

    For offline trials and tests only: its embeddings are deterministic but carry no meaning.
    """
    torch.manual_seed(seed)
    model = build_cnn14()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save({"model": model.state_dict()}, partial)
    partial.replace(path)
    return path


def load_cnn14(path: Path, sha256: str) -> torch.nn.Module:
    """Cnn14 with the weights of the checkpoint at ``path`` (whose sha256 is given), on the CPU.

    Raises ``CheckpointError`` for a file that is not a Cnn14 checkpoint.
    """
    model = build_cnn14(random_init=False)
    missing, unexpected = model.load_state_dict(_load_state_dict(path, sha256), strict=False)
    # The STFT and mel matrices are deterministic buffers; anything else missing is an error
    # (so no uninitialised weight can stay in the model).
    missing = [k for k in missing if not k.startswith(("spectrogram_", "logmel_"))]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: not a Cnn14 checkpoint (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    return model


def _load_state_dict(path: Path, sha256: str) -> dict[str, torch.Tensor]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError or EOFError here
        if sha256 != OFFICIAL_SHA256:
            raise CheckpointError(
                f"{path}: not loadable as plain weights ({error}). Only the official checkpoint "
                "(verified by its sha256) is loaded with full unpickling."
            ) from None
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected {{'model': state_dict}}, found {type(checkpoint)}")
    return state


def cnn14_forward(
    model: torch.nn.Module, batch: torch.Tensor, autocast_dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cnn14's eval-mode forward pass over clips [n, samples] at 32 kHz, as panns-inference
    runs a clip: ``cnn14_trunk``, pooling over all its frames, ``cnn14_head``. Returns the
    embeddings [n, 2048] and AudioSet probabilities [n, 527]."""
    frames = cnn14_trunk(model, batch, autocast_dtype).float()
    return cnn14_head(model, pool_frames(frames.transpose(1, 2)))


def cnn14_trunk(
    model: torch.nn.Module, batch: torch.Tensor, autocast_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The log-mel front end (always fp32) and the six conv blocks: audio [n, samples] ->
    the last feature map averaged over mel bins, [n, 2048, T] (one frame per 0.32 s). This is
    the part another engine can run (tasks.model.engines): 99.9 % of the multiply-adds.

    The STFT power of a loud window reaches ~2.6e5, past fp16's 65504, so only the conv blocks
    run under autocast (when ``autocast_dtype`` is set).
    """
    with torch.autocast(batch.device.type, enabled=False):
        features = model.logmel_extractor(model.spectrogram_extractor(batch))
        features = model.bn0(features.transpose(1, 3)).transpose(1, 3)
    with torch.autocast(
        batch.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
    ):
        x = features
        for block, pool in _CONV_BLOCKS:
            x = getattr(model, block)(x, pool_size=pool, pool_type="avg")
        return torch.mean(x, dim=3)


def pool_frames(frames: torch.Tensor) -> torch.Tensor:
    """Cnn14's pooling over time: frames [..., T, 2048] -> max + mean over T, [..., 2048]."""
    return frames.max(dim=-2).values + frames.mean(dim=-2)


def cnn14_head(model: torch.nn.Module, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two fully connected layers over pooled frames [m, 2048]: the embedding
    ReLU(fc1) [m, 2048] and the AudioSet probabilities [m, 527]. A segment, a window and a
    whole clip go through the same layers, so their vectors share one space."""
    embedding = torch.relu(model.fc1(pooled))
    return embedding, torch.sigmoid(model.fc_audioset(embedding))
