"""Hostile query audio: a corpus of malformed files, each built to hit one way a decoder can be
made to fail, hang or blow up, and a seeded mutator of valid files. Used by the service's fuzz
test and by benchmarks/serve_load.py."""

from __future__ import annotations

import io
import random
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile

from tasks.audio import samples


@dataclass(frozen=True)
class Hostile:
    """A file a client may send: its name, bytes, and whether it must be refused (4xx) or may
    also be answered (it is decodable audio after all, e.g. noise under a valid header)."""

    name: str
    data: bytes
    must_refuse: bool = True


def wav(mono: np.ndarray, rate: int = 16_000, channels: int = 1, subtype: str = "PCM_16") -> bytes:
    data = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
    buffer = io.BytesIO()
    soundfile.write(buffer, data, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def riff(*chunks: tuple[bytes, bytes], form: bytes = b"WAVE", size: int | None = None) -> bytes:
    """A RIFF file of ``(id, body)`` chunks; ``size`` overrides the declared RIFF size."""
    body = form + b"".join(
        cid + struct.pack("<I", len(chunk)) + chunk + b"\0" * (len(chunk) & 1)
        for cid, chunk in chunks
    )
    return b"RIFF" + struct.pack("<I", len(body) if size is None else size) + body


def fmt_chunk(channels: int, rate: int, bits: int = 16, tag: int = 1) -> tuple[bytes, bytes]:
    block = channels * bits // 8
    per_second = (rate * block) & 0xFFFF_FFFF
    return b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, per_second, block & 0xFFFF, bits)


def _lying_data_size(valid: bytes, size: int) -> bytes:
    out = bytearray(valid)
    at = out.index(b"data")
    out[at + 4 : at + 8] = struct.pack("<I", size)
    return bytes(out)


def _with_float(valid_float_wav: bytes, values: list[float]) -> bytes:
    out = bytearray(valid_float_wav)
    at = out.index(b"data") + 8 + 4000
    for offset, value in enumerate(values):
        out[at + 4 * offset : at + 4 * offset + 4] = struct.pack("<f", value)
    return bytes(out)


def corpus(long_seconds: float = 3 * 3600.0) -> list[Hostile]:
    """The malformed files, and long ones: a tone of ``long_seconds`` as Ogg Vorbis and FLAC."""
    rng = np.random.default_rng(0)
    tone = samples.tone(2.0, 16_000)
    valid = wav(tone)
    valid_float = wav(tone, subtype="FLOAT")
    flac = samples.encode(tone, 16_000, "flac")
    ogg = samples.encode(tone, 16_000, "ogg")
    mp3 = samples.encode(samples.tone(2.0, 44_100), 44_100, "mp3")
    garbage = rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("inner.wav", valid)
    return [
        Hostile("empty.wav", b""),
        Hostile("garbage.wav", garbage),
        Hostile("text.mp3", b"this is not audio\n" * 100),
        Hostile("truncated-header.wav", valid[:20]),
        Hostile("header-only.wav", valid[:44]),
        Hostile("zero-length-data.wav", riff(fmt_chunk(1, 16_000), (b"data", b""))),
        Hostile("lying-data-size.wav", _lying_data_size(valid, 0x7FFF_FFF0)),
        Hostile(
            "lying-riff-size.wav",
            riff(fmt_chunk(1, 16_000), (b"data", b"\0\1" * 10), size=1),
            must_refuse=False,  # libsndfile reads the chunks that are there: 10 samples
        ),
        Hostile("65535-channels.wav", riff(fmt_chunk(65_535, 16_000), (b"data", garbage))),
        Hostile("4-GHz-rate.wav", riff(fmt_chunk(1, 4_000_000_000), (b"data", garbage))),
        Hostile("zero-rate.wav", riff(fmt_chunk(1, 0), (b"data", garbage))),
        Hostile("zero-block-align.wav", riff(fmt_chunk(0, 16_000), (b"data", garbage))),
        Hostile(
            "odd-bits.wav",
            riff(fmt_chunk(1, 16_000, bits=13), (b"data", garbage)),
            must_refuse=False,  # read as 8-bit samples of noise
        ),
        Hostile("unknown-codec.wav", riff(fmt_chunk(1, 16_000, tag=0x1234), (b"data", garbage))),
        Hostile("nan.wav", _with_float(valid_float, [float("nan")] * 8)),
        Hostile("inf.wav", _with_float(valid_float, [float("inf"), float("-inf")])),
        Hostile("flac-header-on-garbage.flac", flac[:200] + garbage),
        Hostile("ogg-page-on-garbage.ogg", ogg[:300] + garbage),
        Hostile("id3-on-garbage.mp3", b"ID3\x04\0\0\0\0\0\x10" + garbage),
        Hostile("truncated.flac", flac[: len(flac) // 3]),
        Hostile("truncated.ogg", ogg[: len(ogg) // 3]),
        Hostile("truncated.mp3", mp3[: len(mp3) // 5], must_refuse=False),
        Hostile("wav-in-zip.wav", zipped.getvalue()),
        Hostile("wav-in-list-chunk.wav", riff((b"LIST", valid))),
        Hostile("wav-in-wav.wav", riff(fmt_chunk(1, 16_000), (b"data", valid)), must_refuse=False),
        Hostile("ogg-in-wav.wav", riff(fmt_chunk(1, 16_000, tag=0x674F), (b"data", ogg))),
        Hostile("noise-under-valid-header.wav", _noise_wav(rng), must_refuse=False),
        Hostile("200-channels.ogg", _many_channels_ogg(200)),
        Hostile("silent.wav", wav(np.zeros(32_000, np.float32))),
        Hostile(f"{long_seconds:.0f}-s.ogg", samples.long_tone_file(long_seconds, 8_000, "ogg")),
        Hostile(f"{long_seconds:.0f}-s.flac", samples.long_tone_file(long_seconds, 8_000, "flac")),
    ]


def _noise_wav(rng: np.random.Generator) -> bytes:
    header = wav(np.zeros(16_000, np.float32))
    return header[:44] + rng.integers(0, 256, len(header) - 44, dtype=np.uint8).tobytes()


def _many_channels_ogg(channels: int) -> bytes:
    buffer = io.BytesIO()
    frames = np.tile(samples.tone(0.5, 8_000)[:, None], (1, channels))
    soundfile.write(buffer, frames, 8_000, format="OGG", subtype="VORBIS")
    return buffer.getvalue()


def valid_files() -> list[tuple[str, bytes]]:
    """Short valid files of every format, the seeds of ``mutations``."""
    tone = samples.tone(1.0, 16_000) + 0.1 * samples.noise(1.0, 16_000)
    return [
        (f"seed.{extension}", samples.encode(tone, 16_000, extension, channels=2))
        for extension in sorted(samples.FORMATS)
    ]


def mutations(count: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """``count`` mutants of ``valid_files``: bit flips, overwritten or inserted runs of bytes,
    cuts, and header fields set to extremes; the same ones for the same seed."""
    chooser = random.Random(seed)
    seeds = valid_files()
    for number in range(count):
        name, data = seeds[number % len(seeds)]
        mutant = bytearray(data)
        for _ in range(chooser.randint(1, 4)):
            _mutate(mutant, chooser)
        yield f"mutant-{number}-{name}", bytes(mutant)


_EXTREMES = (0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x8000_0000, 0xFFFF)


def _mutate(data: bytearray, chooser: random.Random) -> None:
    if not data:
        return
    kind = chooser.randrange(5)
    at = chooser.randrange(len(data))
    if kind == 0:  # flip a few bits
        for _ in range(chooser.randint(1, 8)):
            spot = chooser.randrange(len(data))
            data[spot] ^= 1 << chooser.randrange(8)
    elif kind == 1:  # overwrite a run with random bytes
        run = chooser.randint(1, 64)
        data[at : at + run] = chooser.randbytes(run)
    elif kind == 2:  # cut
        del data[at:]
    elif kind == 3:  # insert a run
        data[at:at] = chooser.randbytes(chooser.randint(1, 256))
    else:  # a header field (the first 128 bytes) set to an extreme
        spot = chooser.randrange(min(len(data), 128))
        data[spot : spot + 4] = struct.pack("<I", chooser.choice(_EXTREMES))
