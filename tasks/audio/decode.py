"""Decode any supported audio file to float32 mono, at 32 kHz unless resampling is left to the
model's device (``tasks.audio.device``).

Formats: whatever the libsndfile bundled with soundfile reads (WAV, FLAC, OGG Vorbis/Opus, MP3,
AIFF, AU, W64, CAF, ...). Host resampling is soxr's "HQ" quality. Every way a file can be unusable
raises ``AudioError`` with the file and a ``kind`` a user can act on; nothing here crashes a run.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import soundfile
import soxr

from tasks.audio.errors import AudioError, AudioErrorKind, TooLongError
from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.settings import AudioLimits

#: Audio read per block when a long file is decoded as a stream (s).
STREAM_BLOCK_SECONDS = 10.0


@dataclass(frozen=True)
class DecodedAudio:
    """Mono float32 samples at ``sample_rate`` (Hz) plus what the file was originally."""

    samples: np.ndarray
    sample_rate: int
    original_sample_rate: int
    channels: int
    duration_seconds: float


def check_size(name: str, size_bytes: int, limits: AudioLimits) -> None:
    """Reject empty or oversized files before a byte is downloaded."""
    if size_bytes == 0:
        raise AudioError(name, AudioErrorKind.EMPTY, "the file is empty (0 bytes)")
    if size_bytes > limits.max_file_bytes:
        raise AudioError(
            name,
            AudioErrorKind.TOO_LARGE,
            f"the file is {size_bytes:,} bytes, over the limit of {limits.max_file_bytes:,} "
            "(raise AUDIO_EMBEDDINGS_MAX_FILE_BYTES to accept it)",
        )


def decode(
    name: str, data: bytes | BinaryIO, limits: AudioLimits, resample: bool = True
) -> DecodedAudio:
    """Decode ``data`` (the bytes of the file called ``name``) to mono float32, resampled to
    32 kHz unless ``resample`` is False (the file's own rate is kept)."""
    if isinstance(data, bytes | bytearray):
        check_size(name, len(data), limits)
        pcm = decode_pcm_wav(name, data, limits, resample)
        if pcm is not None:
            return pcm
        data = io.BytesIO(data)
    sound, header = open_audio(name, data, limits)
    with sound:
        return decode_opened(name, sound, header, limits, resample)


def decode_opened(
    name: str,
    sound: soundfile.SoundFile,
    header: AudioHeader,
    limits: AudioLimits,
    resample: bool = True,
) -> DecodedAudio:
    """``decode`` for a file ``open_audio`` opened (and checked the header of): read it whole."""
    samples = _read(name, sound, -1)
    _check_truncation(name, sound.extra_info, header.frames, samples.shape[0])
    if samples.shape[0] == 0:
        raise AudioError(name, AudioErrorKind.ZERO_LENGTH, "the file holds no audio samples")
    _check_finite(name, samples)
    return _mono_checked(name, samples, header.sample_rate, limits, resample)


def _mono_checked(
    name: str, samples: np.ndarray, rate: int, limits: AudioLimits, resample: bool
) -> DecodedAudio:
    """Frames [n, channels] read from a file -> mono, checked for silence, at the model rate
    unless ``resample`` is False: the end of both whole-file decodes."""
    mono = downmix(samples)
    _check_audible(name, mono, limits)
    return DecodedAudio(
        samples=to_model_rate(mono, rate) if resample else np.ascontiguousarray(mono),
        sample_rate=MODEL_SAMPLE_RATE if resample else rate,
        original_sample_rate=rate,
        channels=samples.shape[1],
        duration_seconds=samples.shape[0] / rate,
    )


def decode_pcm_wav(
    name: str,
    data: bytes,
    limits: AudioLimits,
    resample: bool = True,
    longest_seconds: float | None = None,
) -> DecodedAudio | None:
    """``decode`` for a 16- or 24-bit PCM WAV, straight from its bytes; None for anything else
    (other formats and encodings, odd layouts, files over ``longest_seconds``), which the caller
    decodes with libsndfile.

    Most machine and field recordings are such WAVs; reading the samples in place (a view on
    the bytes) skips libsndfile's copy through Python file callbacks and its conversion. The
    samples, checks and errors are libsndfile's (tested against it).
    """
    layout = _pcm_wav_layout(data)
    if layout is None:
        return None
    rate, channels, width, offset, size = layout
    declared = size // (channels * width)
    if longest_seconds is not None and declared / rate > longest_seconds:
        return None
    _check_header(name, AudioHeader(rate, channels, declared), limits)
    frames = min(size, len(data) - offset) // (channels * width)
    if frames < declared:  # libsndfile logs any shortfall of a WAV's data chunk as truncation
        raise _truncated(name, frames, declared)
    payload = memoryview(data)[offset : offset + frames * channels * width]
    if width == 2:
        samples = np.frombuffer(payload, dtype="<i2").reshape(frames, channels)
    else:  # 24-bit: three bytes, little-endian, into the top of an int32, scaled like libsndfile
        triplets = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        wide = (triplets[:, 0] << 8) | (triplets[:, 1] << 16) | (triplets[:, 2] << 24)
        samples = (wide.astype(np.float32) * np.float32(2.0**-31)).reshape(frames, channels)
    return _mono_checked(name, samples, rate, limits, resample)


_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def _pcm_wav_layout(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(rate Hz, channels, bytes per sample, data offset, data bytes) of a 16/24-bit PCM RIFF
    WAVE, or None."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    position, fmt = 12, None
    while position + 8 <= len(data):
        chunk, size = (
            data[position : position + 4],
            int.from_bytes(data[position + 4 : position + 8], "little"),
        )
        body = position + 8
        if chunk == b"fmt " and size >= 16 and body + 16 <= len(data):
            tag, channels, rate = struct.unpack_from("<HHI", data, body)
            block_align, bits = struct.unpack_from("<HH", data, body + 12)
            if tag == _WAVE_FORMAT_EXTENSIBLE and size >= 40 and body + 26 <= len(data):
                tag = struct.unpack_from("<H", data, body + 24)[0]  # the sub-format GUID's start
            fmt = (tag, channels, rate, block_align, bits)
        elif chunk == b"data":
            if fmt is None:
                return None
            tag, channels, rate, block_align, bits = fmt
            width = bits // 8
            if tag != _WAVE_FORMAT_PCM or bits not in (16, 24) or channels < 1:
                return None
            if block_align != channels * width:
                return None
            return rate, channels, width, body, size
        position = body + size + (size & 1)  # chunks are padded to an even length
    return None


@dataclass(frozen=True)
class AudioHeader:
    """What a file's header says: its rate (Hz), channels and length (frames)."""

    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate


def open_audio(
    name: str, file: BinaryIO, limits: AudioLimits
) -> tuple[soundfile.SoundFile, AudioHeader]:
    """Open a file for reading and check its header (rate, length), reading no audio yet."""
    try:
        sound = soundfile.SoundFile(file)
    except soundfile.LibsndfileError as error:
        raise AudioError(
            name,
            AudioErrorKind.NOT_AUDIO,
            f"not a readable audio file ({_libsndfile_reason(error)})",
        ) from None
    header = AudioHeader(sound.samplerate, sound.channels, sound.frames)
    try:
        _check_header(name, header, limits)
    except AudioError:
        sound.close()
        raise
    return sound, header


def decode_blocks(
    name: str,
    sound: soundfile.SoundFile,
    limits: AudioLimits,
    block_seconds: float = STREAM_BLOCK_SECONDS,
) -> Iterator[np.ndarray]:
    """Decode an open file block by block: float32 mono at 32 kHz, resampled by soxr's
    streaming resampler (the same HQ filter as ``decode``), about ``block_seconds`` of audio per
    block, so memory holds a block, never the file.

    The checks ``decode`` makes on the whole file are made as the blocks pass (NaN or infinite
    samples) or at the end (truncation, zero length, silence): a file found unusable at its end
    raises ``AudioError`` after its blocks were handed out, and its results must be dropped.
    """
    rate, declared = sound.samplerate, sound.frames
    resampler = (
        None
        if rate == MODEL_SAMPLE_RATE
        else soxr.ResampleStream(rate, MODEL_SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    )
    frames_per_block = max(round(block_seconds * rate), 1)
    # A header can understate the length (a lying chunk size, an estimated MP3 length): the
    # limit is also enforced on what is actually read.
    most_frames = limits.max_duration_seconds * rate
    read, peak = 0, 0.0
    while True:
        block = _read(name, sound, frames_per_block)
        if block.shape[0] == 0:
            break
        _check_finite(name, block)
        read += block.shape[0]
        if read > most_frames:
            raise _too_long(name, read / rate, limits)
        mono = downmix(block)
        peak = max(peak, _peak(mono))
        out = mono if resampler is None else resampler.resample_chunk(mono)
        if out.size:
            yield np.asarray(out, np.float32)
    _check_truncation(name, sound.extra_info, declared, read)
    if read == 0:
        raise AudioError(name, AudioErrorKind.ZERO_LENGTH, "the file holds no audio samples")
    _check_silence(name, peak, limits)
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        if tail.size:
            yield np.asarray(tail, np.float32)


#: Samples (frames x channels) ``decode_bounded`` reads at a time: 4 MB of float32, whatever
#: the channel count.
BOUNDED_BLOCK_SAMPLES = 1 << 20


def decode_bounded(
    name: str, data: bytes, limits: AudioLimits, between_blocks: Callable[[], None]
) -> DecodedAudio:
    """``decode`` (at 32 kHz, on the host) for audio whose cost must be bounded: a query from
    anyone. The header is checked before any audio is read. A PCM WAV is read in place (its
    cost is its bytes); anything else is decoded in blocks of ``BOUNDED_BLOCK_SAMPLES`` across
    its channels, so memory holds the mono result and one block, and ``between_blocks`` runs
    after each block (a deadline check raises there, so a slow decode stops part-way)."""
    check_size(name, len(data), limits)
    pcm = decode_pcm_wav(name, data, limits)
    if pcm is not None:
        return pcm
    sound, header = open_audio(name, io.BytesIO(data), limits)
    block_seconds = BOUNDED_BLOCK_SAMPLES / header.channels / header.sample_rate
    blocks = []
    with sound:
        for block in decode_blocks(name, sound, limits, block_seconds):
            blocks.append(block)
            between_blocks()
    return DecodedAudio(
        samples=np.concatenate(blocks),
        sample_rate=MODEL_SAMPLE_RATE,
        original_sample_rate=header.sample_rate,
        channels=header.channels,
        duration_seconds=header.duration_seconds,
    )


#: Frames converted to float32 at a time by ``downmix``: a cache-sized block (512 KB of stereo),
#: where converting the whole file at once needs a 3.5 MB temporary that a process without the
#: allocator setting (tasks.model.allocator) maps and faults in on every file (several times
#: the conversion itself; benchmarks/results/vm-decode.json).
DOWNMIX_FRAMES = 65_536


def downmix(samples: np.ndarray) -> np.ndarray:
    """[frames, channels] float32 in [-1, 1], or int16 PCM -> float32 mono, the channel mean.

    int16 is scaled by 1/32768, as libsndfile does, so both reads of a 16-bit file give the same
    samples. Block by block, each block converted contiguously and its channels summed in order,
    which is much faster than ``samples.mean(axis=1)`` over interleaved frames or converting
    each strided column, with the same sums in the same order: the same samples (tested).
    """
    channels = samples.shape[1]
    scale = 1 / channels / (32768 if samples.dtype == np.int16 else 1)
    if channels == 1 and scale == 1:
        return samples[:, 0]
    mono = np.empty(samples.shape[0], dtype=np.float32)
    for start in range(0, samples.shape[0], DOWNMIX_FRAMES):
        block = np.asarray(samples[start : start + DOWNMIX_FRAMES], dtype=np.float32)
        out = mono[start : start + DOWNMIX_FRAMES]
        if channels == 1:
            np.copyto(out, block[:, 0])
            continue
        np.add(block[:, 0], block[:, 1], out=out)
        for channel in range(2, channels):
            out += block[:, channel]
    mono *= np.float32(scale)
    return mono


def to_model_rate(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """Resample mono float32 audio from ``sample_rate`` (Hz) to the model rate."""
    if sample_rate == MODEL_SAMPLE_RATE:
        return np.ascontiguousarray(mono, dtype=np.float32)
    return soxr.resample(mono, sample_rate, MODEL_SAMPLE_RATE, quality="HQ").astype(
        np.float32, copy=False
    )


def _read(name: str, sound: soundfile.SoundFile, frames: int) -> np.ndarray:
    """The next ``frames`` frames (-1: all the rest) as [frames, channels]."""
    # 16-bit PCM (most WAV and FLAC) read as int16 and scaled in downmix: 0.9 ms against 2.7 ms
    # for libsndfile's float conversion of a 10 s stereo clip here.
    dtype = "int16" if sound.subtype == "PCM_16" else "float32"
    try:
        return sound.read(frames, dtype=dtype, always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioError(
            name, AudioErrorKind.CORRUPT, f"decoding failed part-way: {error}"
        ) from None


def _check_finite(name: str, samples: np.ndarray) -> None:
    if samples.dtype == np.float32 and not np.isfinite(samples).all():
        raise AudioError(name, AudioErrorKind.NON_FINITE, "the audio holds NaN or infinite samples")


def _peak(mono: np.ndarray) -> float:
    return float(max(mono.max(), -mono.min()))  # no |x| temporary


#: Samples ``_check_audible`` looks at first; each further block is twice the one before.
AUDIBLE_FIRST_BLOCK = 4_096


def _check_audible(name: str, mono: np.ndarray, limits: AudioLimits) -> None:
    """``_check_silence`` of a whole file, stopping at the first block with a sample above the
    threshold (the first block of nearly every file): the peak of a whole file costs two passes
    over it, a quarter of decoding a WAV, and only a silent file's error message needs it."""
    threshold = 10 ** (limits.silence_peak_dbfs / 20)
    start, size = 0, AUDIBLE_FIRST_BLOCK
    while start < mono.shape[0]:
        block = mono[start : start + size]
        if block.max() > threshold or block.min() < -threshold:
            return
        start, size = start + size, 2 * size
    _check_silence(name, _peak(mono), limits)


def _check_silence(name: str, peak: float, limits: AudioLimits) -> None:
    if peak <= 10 ** (limits.silence_peak_dbfs / 20):
        peak_dbfs = -math.inf if peak == 0 else 20 * math.log10(peak)
        raise AudioError(
            name,
            AudioErrorKind.SILENT,
            f"the file is silent (peak {peak_dbfs:.1f} dBFS, threshold "
            f"{limits.silence_peak_dbfs:.1f} dBFS)",
        )


def _check_header(name: str, header: AudioHeader, limits: AudioLimits) -> None:
    sample_rate = header.sample_rate
    if not limits.min_sample_rate <= sample_rate <= limits.max_sample_rate:
        raise AudioError(
            name,
            AudioErrorKind.BAD_SAMPLE_RATE,
            f"sample rate {sample_rate} Hz is outside {limits.min_sample_rate}-"
            f"{limits.max_sample_rate} Hz",
        )
    if header.channels > limits.max_channels:
        raise AudioError(
            name,
            AudioErrorKind.TOO_MANY_CHANNELS,
            f"the file has {header.channels} channels, over the limit of {limits.max_channels} "
            "(AUDIO_EMBEDDINGS_MAX_CHANNELS)",
        )
    if header.frames == 0:
        raise AudioError(name, AudioErrorKind.ZERO_LENGTH, "the file holds no audio samples")
    if header.duration_seconds > limits.max_duration_seconds:
        raise _too_long(name, header.duration_seconds, limits)


def _too_long(name: str, duration_seconds: float, limits: AudioLimits) -> TooLongError:
    return TooLongError(name, duration_seconds, limits.max_duration_seconds)


# libsndfile reads what a cut-off file still holds without an error; these are the signs it
# leaves in its log (WAV/AIFF chunk sizes, an Ogg stream without its last page).
_TRUNCATION_SIGNS = ("(should be", "lacks an end-of-stream bit")


def _check_truncation(name: str, log: str, declared_frames: int, read_frames: int) -> None:
    if any(sign in log for sign in _TRUNCATION_SIGNS) or read_frames < 0.99 * declared_frames:
        raise _truncated(name, read_frames, declared_frames)


def _truncated(name: str, read_frames: int, declared_frames: int) -> AudioError:
    return AudioError(
        name,
        AudioErrorKind.TRUNCATED,
        f"the file is cut short (header or stream promises more audio than it holds; "
        f"{read_frames:,} of {declared_frames:,} frames read)",
    )


def _libsndfile_reason(error: soundfile.LibsndfileError) -> str:
    # Its message names the Python object it was given ("<_io.BytesIO ...>"); keep only the reason.
    return error.error_string or str(error)
