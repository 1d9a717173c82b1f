"""Cnn14 built offline, loaded from checkpoints, and our forward pass against panns' own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.model.checkpoint import CheckpointError
from tasks.model.cnn14 import cnn14_forward
from tasks.model.embedder import PannsEmbedder
from tests.model.clips import model_clips as _clips


def test_importing_the_model_never_touches_the_network_or_home(tmp_path: Path) -> None:
    # A fresh interpreter with HOME in an empty folder: panns_inference's own config would create
    # ~/panns_data and call wget (here a wget that leaves a mark if it is ever called).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "wget").write_text(f"#!/bin/sh\ntouch {tmp_path}/wget-was-called\n")
    (bin_dir / "wget").chmod(0o755)
    code = (
        "from tasks.model.cnn14 import build_cnn14; m = build_cnn14(); "
        "import panns_inference.config as c; print(c.classes_num)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"HOME": str(tmp_path), "PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert result.stdout.strip() == "527"
    assert not (tmp_path / "panns_data").exists()
    assert not (tmp_path / "wget-was-called").exists()


def test_checkpoint_round_trips_through_load(checkpoint: Path, embedder: PannsEmbedder) -> None:
    state = torch.load(checkpoint, weights_only=True)["model"]
    assert len(state) == 84  # as the official file
    loaded = embedder.model.state_dict()
    assert torch.equal(loaded["fc1.weight"], state["fc1.weight"])
    assert not embedder.is_official_checkpoint


def test_a_file_that_is_not_a_cnn14_checkpoint_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "other.pth"
    torch.save({"model": {"layer.weight": torch.zeros(2)}}, bogus)
    with pytest.raises(CheckpointError, match="not a Cnn14 checkpoint"):
        PannsEmbedder.load(bogus, device="cpu")


def test_a_truncated_checkpoint_is_a_clear_error(tmp_path: Path, checkpoint: Path) -> None:
    cut_short = tmp_path / "cut.pth"
    cut_short.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"cut\.pth: not loadable as plain weights"):
        PannsEmbedder.load(cut_short, device="cpu")


def test_our_forward_pass_equals_panns_cnn14_forward(embedder: PannsEmbedder) -> None:
    clips = torch.from_numpy(_clips(3, 2.0))
    with torch.inference_mode():
        ours, probabilities = cnn14_forward(embedder.model, clips)
        reference = embedder.model(clips)
    np.testing.assert_allclose(ours, reference["embedding"].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probabilities, reference["clipwise_output"].numpy(), atol=1e-6)


@pytest.mark.parametrize(
    ("rate", "n_fft", "n_mels", "fmin", "fmax"),
    [
        (32_000, 1024, 64, 50.0, 14_000.0),
        (16_000, 512, 40, 0.0, 8_000.0),
        (44_100, 2048, 128, 20.0, 20_000.0),
    ],
)
def test_the_front_end_matrices_equal_librosas(rate, n_fft, n_mels, fmin, fmax) -> None:
    import librosa

    from tasks.model.front_end import hann_window, slaney_mel_filterbank

    ours = slaney_mel_filterbank(rate, n_fft, n_mels, fmin, fmax)
    theirs = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(
        hann_window(n_fft), librosa.filters.get_window("hann", n_fft, fftbins=True), atol=1e-12
    )


def test_cnn14_built_without_librosa_has_librosas_front_end() -> None:
    """The STFT kernels and mel matrix of our build equal panns' own build (which calls librosa),
    so a checkpoint without them (DESIGN: the official file may lack them) runs the same."""
    from panns_inference.models import Cnn14

    from tasks.model.cnn14 import build_cnn14

    ours = build_cnn14().state_dict()
    theirs = Cnn14(32_000, 1024, 320, 64, 50, 14_000, 527).state_dict()
    for name in (
        "spectrogram_extractor.stft.conv_real.weight",
        "spectrogram_extractor.stft.conv_imag.weight",
        "logmel_extractor.melW",
    ):
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-7)


def test_loading_skips_random_init_but_leaves_no_weight_unloaded(
    checkpoint: Path, tmp_path: Path
) -> None:
    from tasks.model.checkpoint import file_sha256
    from tasks.model.cnn14 import build_cnn14, load_cnn14

    initialisers = torch.nn.init.kaiming_uniform_, torch.nn.init.xavier_uniform_
    loaded = load_cnn14(checkpoint, file_sha256(checkpoint)).state_dict()
    stored = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    for name, tensor in stored.items():
        torch.testing.assert_close(loaded[name], tensor, rtol=0, atol=0)
    assert (torch.nn.init.kaiming_uniform_, torch.nn.init.xavier_uniform_) == initialisers
    assert build_cnn14().conv_block1.conv1.weight.abs().sum() > 0  # random init still works
    # a checkpoint missing one trained weight is refused, not run half-uninitialised
    del stored["fc1.weight"]
    partial = tmp_path / "partial.pth"
    torch.save({"model": stored}, partial)
    with pytest.raises(CheckpointError, match=r"fc1\.weight"):
        load_cnn14(partial, file_sha256(partial))


def test_building_cnn14_leaves_matplotlib_real_for_everyone_else() -> None:
    """panns_inference is imported with a stand-in for matplotlib.pyplot (it never draws);
    in a fresh interpreter, matplotlib imported afterwards is the real package."""
    script = (
        "from tasks.model.cnn14 import build_cnn14; build_cnn14(random_init=False)\n"
        "import sys; assert 'matplotlib' not in sys.modules, 'stand-in left behind'\n"
        "import matplotlib.pyplot as plt; assert hasattr(plt, 'figure')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
