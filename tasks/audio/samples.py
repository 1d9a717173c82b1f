"""Synthetic audio: the demo's sample catalogue and the test suite's inputs.

Nothing here downloads anything. Signals are deterministic for a given seed, so a re-made
catalogue decodes to the same audio (WAV, FLAC and MP3 files are byte-identical; an Ogg stream
carries a random serial number), and files already present are left alone, so a re-run of the
demo finds nothing changed.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

#: file extension -> (libsndfile format, subtype)
FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}


def tone(seconds: float, rate: int, frequency: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    """A sine tone (Hz) with a few harmonics, like a hum."""
    t = np.arange(round(seconds * rate)) / rate
    signal = sum(amplitude / k * np.sin(2 * np.pi * frequency * k * t) for k in range(1, 4))
    return np.asarray(signal, dtype=np.float32)


def noise(seconds: float, rate: int, seed: int = 0, amplitude: float = 0.3) -> np.ndarray:
    """White noise."""
    rng = np.random.default_rng(seed)
    return (amplitude * rng.standard_normal(round(seconds * rate))).astype(np.float32)


def chirp(seconds: float, rate: int, low: float = 200.0, high: float = 8000.0) -> np.ndarray:
    """An exponential sweep from ``low`` to ``high`` Hz."""
    t = np.arange(round(seconds * rate)) / rate
    k = np.log(high / low) / seconds
    phase = 2 * np.pi * low * (np.exp(k * t) - 1) / k
    return (0.5 * np.sin(phase)).astype(np.float32)


def clicks(seconds: float, rate: int, per_second: float = 4.0, seed: int = 0) -> np.ndarray:
    """Decaying impulses at a steady rate, like a ticking machine."""
    rng = np.random.default_rng(seed)
    out = 0.01 * rng.standard_normal(round(seconds * rate))
    decay = np.exp(-np.arange(round(0.02 * rate)) / (0.003 * rate))
    for start in np.arange(0, seconds, 1 / per_second):
        i = round(start * rate)
        burst = decay[: len(out) - i] * rng.choice([-1, 1], size=min(len(decay), len(out) - i))
        out[i : i + len(burst)] += 0.8 * burst
    return out.astype(np.float32)


def engine(seconds: float, rate: int, rpm: float = 1800.0, seed: int = 0) -> np.ndarray:
    """A rotating-machine sound: a hum at the rotation rate, harmonics, and broadband noise."""
    base = rpm / 60.0
    return (0.6 * tone(seconds, rate, base * 4, 0.5) + noise(seconds, rate, seed, 0.05)).astype(
        np.float32
    )


def encode(mono: np.ndarray, rate: int, extension: str, channels: int = 1) -> bytes:
    """``mono`` (float32) as the bytes of a file in the format ``extension`` names."""
    fmt, subtype = FORMATS[extension.lstrip(".").lower()]
    data = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
    if channels > 1:  # make the channels differ a little, as real stereo does
        data = data * np.linspace(0.8, 1.0, channels, dtype=np.float32)
    buffer = io.BytesIO()
    # written in blocks: libsndfile's Vorbis encoder crashes when handed a minute of 44.1 kHz
    # stereo in one write
    with soundfile.SoundFile(buffer, "w", rate, channels, format=fmt, subtype=subtype) as out:
        for start in range(0, data.shape[0], _WRITE_FRAMES):
            out.write(data[start : start + _WRITE_FRAMES])
    return buffer.getvalue()


#: Frames handed to libsndfile per write (about 6 s at 44.1 kHz).
_WRITE_FRAMES = 1 << 18


def long_tone_file(seconds: float, rate: int, extension: str) -> bytes:
    """A tone of ``seconds`` (hours, if asked) encoded in the format ``extension`` names,
    synthesised and written a minute at a time, so memory holds a minute (libsndfile's Vorbis
    encoder also crashed here when handed ten minutes in one write)."""
    fmt, subtype = FORMATS[extension.lstrip(".").lower()]
    buffer = io.BytesIO()
    minute = tone(60.0, rate)  # a whole number of cycles: the minutes join seamlessly
    total = round(seconds * rate)
    with soundfile.SoundFile(buffer, "w", rate, 1, format=fmt, subtype=subtype) as out:
        for start in range(0, total, minute.shape[0]):
            out.write(minute[: total - start])
    return buffer.getvalue()


def write(path: Path, mono: np.ndarray, rate: int, channels: int = 1) -> Path:
    """Write ``mono`` (float32) to ``path`` in the format its extension names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(mono, rate, path.suffix, channels))
    return path


@dataclass(frozen=True)
class SampleSpec:
    """One file of the sample catalogue."""

    relative_path: str
    make: Callable[[int], np.ndarray]
    rate: int
    channels: int


SAMPLE_CATALOGUE: tuple[SampleSpec, ...] = (
    SampleSpec("tones/a440.wav", lambda r: tone(6.0, r, 440.0), 44_100, 2),
    SampleSpec("tones/a220.flac", lambda r: tone(8.0, r, 220.0), 48_000, 1),
    SampleSpec("tones/c523.ogg", lambda r: tone(5.0, r, 523.25), 22_050, 1),
    SampleSpec("noise/white.wav", lambda r: noise(7.0, r, 1), 16_000, 1),
    SampleSpec("noise/white-quiet.mp3", lambda r: noise(7.0, r, 2, 0.05), 44_100, 2),
    SampleSpec("sweeps/chirp-up.wav", lambda r: chirp(12.0, r), 32_000, 1),
    SampleSpec("sweeps/chirp-low.flac", lambda r: chirp(9.0, r, 50.0, 2000.0), 44_100, 2),
    SampleSpec("machines/pump-01.wav", lambda r: engine(15.0, r, 1800.0, 3), 44_100, 1),
    SampleSpec("machines/pump-02.wav", lambda r: engine(15.0, r, 1500.0, 4), 44_100, 1),
    SampleSpec("machines/ticker.ogg", lambda r: clicks(10.0, r, 6.0, 5), 48_000, 2),
)


def make_sample_catalogue(folder: Path) -> list[Path]:
    """Write the demo catalogue into ``folder``; files that already exist are left alone."""
    written = []
    for spec in SAMPLE_CATALOGUE:
        path = folder / spec.relative_path
        if not path.exists():
            write(path, spec.make(spec.rate), spec.rate, spec.channels)
        written.append(path)
    return written


def speech_like(seconds: float, rate: int, f0: float, seed: int = 0) -> np.ndarray:
    """A speech-like signal: a voiced harmonic series on a wandering fundamental ``f0`` (Hz),
    shaped by two formants that move from syllable to syllable, in 3-6 syllables a second with
    pauses. Stands in for a speaker group's voice (low or high pitch), not for words."""
    rng = np.random.default_rng(seed)
    count = round(seconds * rate)
    t = np.arange(count) / rate
    out = np.zeros(count, np.float32)
    syllable_rate = rng.uniform(3.0, 6.0)
    start = 0.0
    while start < seconds:
        length = rng.uniform(0.6, 1.4) / syllable_rate
        inside = (t >= start) & (t < start + length)
        local = t[inside] - start
        pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(1, 3) * local))
        phase = 2 * np.pi * np.cumsum(pitch) / rate
        first, second = rng.uniform(300, 900), rng.uniform(900, 2500)  # a vowel's formants
        voiced = np.zeros(len(local))
        for harmonic in range(1, int(4000 / f0)):
            frequency = harmonic * f0
            gain = np.exp(-(((frequency - first) / 150) ** 2)) + 0.6 * np.exp(
                -(((frequency - second) / 250) ** 2)
            )
            voiced += (gain + 0.02) * np.sin(harmonic * phase)
        envelope = np.sin(np.pi * local / length) ** 2
        out[inside] = (0.3 * envelope * voiced / max(np.abs(voiced).max(), 1e-6)).astype(np.float32)
        start += length + rng.uniform(0.05, 0.3)
    return out + noise(seconds, rate, seed + 1, 0.005)


#: The labelled sample catalogue: a label set per top folder, a label per sub-folder.
#: machines/<type>: rotating machines told apart by their sound; speech/<group>: speech-like
#: signals in two pitch ranges standing in for two speaker groups (85-155 Hz and 165-255 Hz).
LABELLED_MAKERS: dict[
    str, dict[str, Callable[[float, int, np.random.Generator, int], np.ndarray]]
] = {
    "machines": {
        "pump": lambda s, r, g, i: engine(s, r, g.uniform(1_400, 2_000), i),
        "fan": lambda s, r, g, i: (
            tone(s, r, g.uniform(40, 70), 0.2) + noise(s, r, i, g.uniform(0.15, 0.3))
        ).astype(np.float32),
        "compressor": lambda s, r, g, i: (
            engine(s, r, g.uniform(2_400, 3_000), i) + clicks(s, r, g.uniform(8, 14), i)
        ).astype(np.float32),
        "valve": lambda s, r, g, i: clicks(s, r, g.uniform(1.5, 4), i),
    },
    "speech": {
        "low": lambda s, r, g, i: speech_like(s, r, g.uniform(85, 155), i),
        "high": lambda s, r, g, i: speech_like(s, r, g.uniform(165, 255), i),
    },
}


def make_labelled_catalogue(
    folder: Path, per_label: int = 40, seconds: float = 4.0, rate: int = 22_050
) -> list[Path]:
    """Write the labelled catalogue into ``folder``: ``<set>/<label>/clip-NNN.wav`` (the folder
    layout ``labels import`` reads) and ``<set>-labels.csv`` (path, label) beside them; files
    already present are left alone. Each clip draws its own parameters (seeded), so the
    classes overlap as real recordings do."""
    written = []
    for label_set, makers in LABELLED_MAKERS.items():
        rows = ["path,label"]
        for label_number, (label, make) in enumerate(makers.items()):
            for i in range(per_label):
                relative = f"{label_set}/{label}/clip-{i:03d}.wav"
                path = folder / relative
                if not path.exists():
                    seed = 1_000 * label_number + i
                    write(path, make(seconds, rate, np.random.default_rng(seed), seed), rate)
                written.append(path)
                rows.append(f"{relative},{label}")
        (folder / f"{label_set}-labels.csv").write_text("\n".join(rows) + "\n")
    return written
