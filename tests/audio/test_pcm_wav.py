"""16/24-bit PCM WAV decoded straight from the bytes equals libsndfile's decode, sample for
sample, with the same checks; anything else is left to libsndfile."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from tasks.audio import samples
from tasks.audio.decode import decode, decode_opened, decode_pcm_wav, open_audio
from tasks.audio.errors import AudioError, AudioErrorKind
from tasks.settings import AudioLimits

LIMITS = AudioLimits()


def wav(mono: np.ndarray, rate: int, channels: int, subtype: str, form: str = "WAV") -> bytes:
    frames = np.stack([mono * (0.9 + 0.1 * c) for c in range(channels)], axis=1)
    out = io.BytesIO()
    soundfile.write(out, frames, rate, subtype=subtype, format=form)
    return out.getvalue()


def through_libsndfile(data: bytes, resample: bool):
    sound, header = open_audio("x.wav", io.BytesIO(data), LIMITS)
    with sound:
        return decode_opened("x.wav", sound, header, LIMITS, resample)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
@pytest.mark.parametrize(("rate", "channels"), [(44_100, 2), (16_000, 1), (48_000, 6)])
@pytest.mark.parametrize("resample", [False, True])
def test_equals_libsndfile(subtype: str, rate: int, channels: int, resample: bool) -> None:
    data = wav(samples.chirp(2.0, rate), rate, channels, subtype)
    fast = decode_pcm_wav("x.wav", data, LIMITS, resample)
    assert fast is not None
    slow = through_libsndfile(data, resample)
    np.testing.assert_array_equal(fast.samples, slow.samples)
    assert (fast.sample_rate, fast.original_sample_rate, fast.channels) == (
        slow.sample_rate,
        slow.original_sample_rate,
        slow.channels,
    )
    assert fast.duration_seconds == slow.duration_seconds


def test_extensible_wav_is_read() -> None:
    data = wav(samples.tone(1.0, 22_050), 22_050, 4, "PCM_24", form="WAVEX")
    assert data[20:22] == b"\xfe\xff"  # WAVE_FORMAT_EXTENSIBLE
    fast = decode_pcm_wav("x.wav", data, LIMITS, False)
    np.testing.assert_array_equal(fast.samples, through_libsndfile(data, False).samples)


@pytest.mark.parametrize(
    ("subtype", "extension"),
    [("PCM_U8", "wav"), ("FLOAT", "wav"), ("PCM_32", "wav"), ("PCM_16", "flac")],
)
def test_other_encodings_and_formats_are_left_to_libsndfile(subtype: str, extension: str) -> None:
    out = io.BytesIO()
    soundfile.write(
        out, samples.tone(1.0, 16_000), 16_000, subtype=subtype, format=extension.upper()
    )
    assert decode_pcm_wav("x", out.getvalue(), LIMITS) is None
    assert decode("x", out.getvalue(), LIMITS).samples.size  # and decode still reads them


def test_a_cut_off_wav_is_truncated_like_libsndfile_says() -> None:
    data = wav(samples.tone(2.0, 16_000), 16_000, 1, "PCM_16")[:-8_000]
    with pytest.raises(AudioError) as fast:
        decode_pcm_wav("cut.wav", data, LIMITS)
    with pytest.raises(AudioError) as slow:
        through_libsndfile(data, True)
    assert fast.value.kind == slow.value.kind == AudioErrorKind.TRUNCATED
    assert "cut.wav" in str(fast.value)


def test_silence_rate_and_length_limits_hold() -> None:
    silent = wav(np.zeros(16_000, np.float32), 16_000, 1, "PCM_16")
    with pytest.raises(AudioError, match="silent") as error:
        decode_pcm_wav("quiet.wav", silent, LIMITS)
    assert error.value.kind == AudioErrorKind.SILENT
    slow_rate = wav(samples.tone(1.0, 800), 800, 1, "PCM_16")
    with pytest.raises(AudioError) as error:
        decode_pcm_wav("slow.wav", slow_rate, LIMITS)
    assert error.value.kind == AudioErrorKind.BAD_SAMPLE_RATE
    short_limit = AudioLimits(max_duration_seconds=0.5)
    with pytest.raises(AudioError) as error:
        decode_pcm_wav("long.wav", wav(samples.tone(1.0, 16_000), 16_000, 1, "PCM_16"), short_limit)
    assert error.value.kind == AudioErrorKind.TOO_LONG


def test_files_longer_than_the_streaming_threshold_are_left_to_the_streaming_path() -> None:
    data = wav(samples.tone(3.0, 16_000), 16_000, 1, "PCM_16")
    assert decode_pcm_wav("x.wav", data, LIMITS, longest_seconds=2.0) is None
    assert decode_pcm_wav("x.wav", data, LIMITS, longest_seconds=5.0) is not None
