"""Resampling and windowing on the model's device: quality against analytic signals and soxr,
the same windows as the host path, and embeddings within tolerance of the host path.

Runs on the CPU here (the same torch code a GPU runs); the CUDA variant skips without a GPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.audio import samples
from tasks.audio.decode import decode, to_model_rate
from tasks.audio.device import resample_on_device
from tasks.audio.pieces import cut_pieces
from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.model.embedder import PannsEmbedder, _resamples_on_device
from tasks.settings import AudioLimits

CPU = torch.device("cpu")


def _sine(frequency: float, rate: int, seconds: float = 2.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)).astype(
        np.float32
    )


def _snr_db(signal: np.ndarray, reference: np.ndarray) -> float:
    inner = slice(2000, -2000)  # edges: both resamplers assume different things past the ends
    error = signal[inner] - reference[inner]
    return float(10 * np.log10(np.mean(reference[inner] ** 2) / np.mean(error**2)))


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000, 96_000])
@pytest.mark.parametrize("frequency", [440.0, 3_000.0])
def test_resampled_sine_matches_the_analytic_sine(rate: int, frequency: float) -> None:
    resampled = resample_on_device(_sine(frequency, rate), rate, CPU).numpy()
    expected = _sine(frequency, MODEL_SAMPLE_RATE)
    assert resampled.shape == expected.shape == to_model_rate(_sine(frequency, rate), rate).shape
    # ~99 dB well inside the pass band; 3 kHz from 8 kHz sits near the filter's roll-off.
    assert _snr_db(resampled, expected) > (60 if frequency > 0.3 * rate else 90)


def test_content_above_16_khz_is_filtered_out_not_aliased() -> None:
    resampled = resample_on_device(_sine(20_000.0, 44_100), 44_100, CPU).numpy()
    residual_db = 10 * np.log10(np.mean(resampled[2000:-2000] ** 2) / 0.125)
    assert residual_db < -70  # an unfiltered 20 kHz tone would alias to 12 kHz at 0 dB


def test_model_rate_audio_passes_through_unchanged() -> None:
    audio = samples.noise(1.0, MODEL_SAMPLE_RATE, 3)
    np.testing.assert_array_equal(resample_on_device(audio, MODEL_SAMPLE_RATE, CPU).numpy(), audio)


@pytest.mark.parametrize(("seconds", "window"), [(0.2, 2.0), (1.3, 2.0), (5.0, 2.0), (7.5, 3.0)])
def test_device_pieces_equal_host_pieces(seconds: float, window: float) -> None:
    limits = AudioLimits(window_seconds=window)
    audio = samples.chirp(seconds, MODEL_SAMPLE_RATE)
    host = cut_pieces(audio, limits)
    device = cut_pieces(torch.from_numpy(audio), limits)
    np.testing.assert_array_equal(device.audio.numpy(), host.audio)
    np.testing.assert_array_equal(device.kept_from, host.kept_from)
    np.testing.assert_array_equal(device.kept_to, host.kept_to)


def test_auto_resamples_on_the_host_and_device_is_asked_for() -> None:
    assert not _resamples_on_device("auto", torch.device("cpu"))
    assert not _resamples_on_device("auto", torch.device("cuda", 0))
    assert _resamples_on_device("device", torch.device("cpu"))
    assert not _resamples_on_device("host", torch.device("cuda", 0))


def _embeddings_both_ways(
    checkpoint: Path, limits: AudioLimits, device: str, files: list[bytes]
) -> tuple[np.ndarray, np.ndarray]:
    by_path = {}
    for resample_on in ("host", "device"):
        embedder = PannsEmbedder.load(checkpoint, device, limits, resample_on=resample_on)
        assert embedder.resamples_on_device == (resample_on == "device")
        pieces = [embedder.pieces_of(embedder.decode(f"f{i}.wav", d)) for i, d in enumerate(files)]
        by_path[resample_on] = np.stack([r.embedding for r in embedder.embed_files(pieces)])
    return by_path["host"], by_path["device"]


def _catalogue_bytes(tmp_path: Path) -> list[bytes]:
    clips = [
        (samples.engine(3.0, 44_100, 1200, 1), 44_100),
        (samples.chirp(3.0, 48_000), 48_000),
        (samples.noise(1.0, 22_050, 2, 0.2), 22_050),
        (samples.clicks(5.0, 16_000, 6.0, 3), 16_000),
    ]
    files = []
    for i, (audio, rate) in enumerate(clips):
        path = tmp_path / f"c{i}.wav"
        samples.write(path, audio, rate, channels=2)
        files.append(path.read_bytes())
    return files


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_device_resampling_keeps_embeddings_within_tolerance(
    checkpoint: Path, test_limits: AudioLimits, tmp_path: Path
) -> None:
    host, device = _embeddings_both_ways(checkpoint, test_limits, "cpu", _catalogue_bytes(tmp_path))
    cosine = _cosine(host, device)
    # the worst is a 1 s white-noise clip at 22.05 kHz (0.996): the two resamplers' edge
    # transients differ, and a file's edges are mirrored into its context
    assert (cosine >= 0.995).all(), cosine
    assert not np.array_equal(host, device)  # the two resamplers really differ


def test_device_path_decodes_at_the_files_own_rate(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    samples.write(path, samples.tone(1.0, 44_100, 440.0), 44_100, channels=2)
    audio = decode("a.wav", path.read_bytes(), AudioLimits(), resample=False)
    assert (audio.sample_rate, audio.samples.shape) == (44_100, (44_100,))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_resampling_keeps_embeddings_within_tolerance(
    checkpoint: Path, test_limits: AudioLimits, tmp_path: Path
) -> None:
    host, device = _embeddings_both_ways(
        checkpoint, test_limits, "cuda", _catalogue_bytes(tmp_path)
    )
    assert (_cosine(host, device) >= 0.999).all()
