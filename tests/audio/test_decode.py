"""Decoding and resampling, and every kind of bad input."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tasks.audio import samples
from tasks.audio.decode import (
    DOWNMIX_FRAMES,
    decode,
    decode_blocks,
    decode_bounded,
    downmix,
    open_audio,
)
from tasks.audio.errors import AudioError, AudioErrorKind, TooLongError
from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.settings import AudioLimits

LIMITS = AudioLimits()


@pytest.mark.parametrize("extension", sorted(samples.FORMATS))
@pytest.mark.parametrize(("rate", "channels"), [(8_000, 1), (22_050, 2), (44_100, 2), (48_000, 1)])
def test_every_format_rate_and_channel_count_decodes_to_32k_mono(
    tmp_path: Path, extension: str, rate: int, channels: int
) -> None:
    if extension == "mp3" and rate == 22_050 and channels == 2:
        rate = 24_000  # keep to MPEG's rate table for layer III
    path = samples.write(
        tmp_path / f"x.{extension}", samples.tone(2.0, rate, 440.0), rate, channels
    )
    audio = decode(str(path), path.read_bytes(), LIMITS)
    assert audio.original_sample_rate == rate
    assert audio.channels == channels
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    # MP3 and Vorbis encoders add priming samples; the length is right to within 0.1 s.
    assert audio.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert len(audio.samples) == pytest.approx(2.0 * MODEL_SAMPLE_RATE, abs=0.1 * MODEL_SAMPLE_RATE)


def test_resampling_keeps_the_pitch(tmp_path: Path) -> None:
    path = samples.write(tmp_path / "a.wav", samples.tone(2.0, 44_100, 1000.0, 0.5), 44_100)
    audio = decode("a.wav", path.read_bytes(), LIMITS)
    spectrum = np.abs(np.fft.rfft(audio.samples))
    peak_hz = np.argmax(spectrum) * MODEL_SAMPLE_RATE / len(audio.samples)
    assert peak_hz == pytest.approx(1000.0, abs=2.0)


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left = samples.tone(1.0, 32_000, 440.0)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    path = tmp_path / "s.wav"
    soundfile.write(path, stereo, 32_000, subtype="FLOAT")
    audio = decode("s.wav", path.read_bytes(), LIMITS)
    np.testing.assert_allclose(audio.samples, left / 2, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
def test_downmix_is_the_channel_mean(channels: int) -> None:
    frames = np.random.default_rng(channels).uniform(-1, 1, (1000, channels)).astype(np.float32)
    np.testing.assert_allclose(downmix(frames), frames.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_16_bit_files_decode_to_the_same_samples_as_libsndfile_float(
    tmp_path: Path, channels: int
) -> None:
    path = samples.write(tmp_path / "a.wav", samples.noise(1.0, 32_000, 5, 0.5), 32_000, channels)
    assert soundfile.info(path).subtype == "PCM_16"
    audio = decode("a.wav", path.read_bytes(), LIMITS)
    as_float = soundfile.read(path, dtype="float32", always_2d=True)[0]
    np.testing.assert_allclose(audio.samples, as_float.mean(axis=1), rtol=0, atol=1e-7)


def _wav_bytes(data: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, data, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _with_sample_rate(wav: bytes, rate: int) -> bytes:
    # The fmt chunk of a canonical WAV header holds the rate at byte 24, byte rate at 28.
    return wav[:24] + struct.pack("<II", rate, rate * 2) + wav[32:]


BAD_INPUTS = {
    "empty": (b"", AudioErrorKind.EMPTY),
    "not audio": (b"this is a text file, not audio\n" * 40, AudioErrorKind.NOT_AUDIO),
    "truncated wav": (
        _wav_bytes(samples.tone(2.0, 16_000), 16_000)[:20_000],
        AudioErrorKind.TRUNCATED,
    ),
    "header only": (_wav_bytes(np.zeros(0, dtype=np.float32), 16_000), AudioErrorKind.ZERO_LENGTH),
    "nan samples": (
        _wav_bytes(np.full(16_000, np.nan, dtype=np.float32), 16_000, "FLOAT"),
        AudioErrorKind.NON_FINITE,
    ),
    "silence": (_wav_bytes(np.zeros(16_000, dtype=np.float32), 16_000), AudioErrorKind.SILENT),
    "absurd sample rate": (
        _with_sample_rate(_wav_bytes(samples.tone(0.5, 16_000), 16_000), 5),
        AudioErrorKind.BAD_SAMPLE_RATE,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_a_typed_error_naming_the_file(case: str) -> None:
    data, kind = BAD_INPUTS[case]
    with pytest.raises(AudioError) as caught:
        decode("incoming/bad-file.wav", data, LIMITS)
    assert caught.value.kind == kind
    assert "incoming/bad-file.wav" in str(caught.value)
    assert "BytesIO" not in str(caught.value)


def test_truncated_formats_are_detected(tmp_path: Path) -> None:
    for extension in ("ogg", "mp3", "flac"):
        path = samples.write(tmp_path / f"t.{extension}", samples.noise(4.0, 44_100, 3), 44_100, 2)
        data = path.read_bytes()
        with pytest.raises(AudioError) as caught:
            decode(path.name, data[: len(data) // 2], LIMITS)
        assert caught.value.kind in (AudioErrorKind.TRUNCATED, AudioErrorKind.CORRUPT), extension


def test_limits_on_size_and_duration_are_enforced_and_adjustable() -> None:
    wav = _wav_bytes(samples.tone(3.0, 16_000), 16_000)
    with pytest.raises(AudioError) as too_big:
        decode("big.wav", wav, AudioLimits(max_file_bytes=1000))
    assert too_big.value.kind == AudioErrorKind.TOO_LARGE
    with pytest.raises(AudioError) as too_long:
        decode("long.wav", wav, AudioLimits(max_duration_seconds=2.0))
    assert too_long.value.kind == AudioErrorKind.TOO_LONG
    assert decode("ok.wav", wav, AudioLimits(max_duration_seconds=4.0)).duration_seconds == 3.0


def test_quiet_but_real_audio_is_not_called_silent() -> None:
    quiet = samples.noise(1.0, 16_000, amplitude=0.001)  # about -60 dBFS peak
    assert decode("quiet.wav", _wav_bytes(quiet, 16_000), LIMITS).duration_seconds == 1.0


@pytest.mark.parametrize("audible_at_seconds", [0.0, 0.3, 2.99])
def test_a_file_silent_but_for_a_few_late_samples_is_audio(audible_at_seconds: float) -> None:
    """Silence is judged block by block, stopping at the first audible block: every block up to
    the last one is looked at when the audio comes late."""
    rate = 16_000
    stereo = np.zeros((3 * rate, 2), np.float32)
    start = int(audible_at_seconds * rate)
    stereo[start : start + 50] = -0.01  # -40 dBFS for 3 ms
    for data in (_wav_bytes(stereo, rate), _encoded(stereo, rate, "FLAC", "PCM_24")):
        assert decode("late.wav", data, LIMITS).duration_seconds == 3.0


def test_stereo_that_cancels_in_the_downmix_is_silent() -> None:
    rate = 16_000
    left = 0.5 * np.sin(2 * np.pi * 440 * np.arange(3 * rate) / rate).astype(np.float32)
    stereo = np.stack([left, -left], axis=1)
    for data in (_wav_bytes(stereo, rate), _encoded(stereo, rate, "FLAC", "PCM_24")):
        with pytest.raises(AudioError, match=r"cancels\.wav: the file is silent") as raised:
            decode("cancels.wav", data, LIMITS)
        assert raised.value.kind == AudioErrorKind.SILENT


def _encoded(audio: np.ndarray, rate: int, file_format: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate, format=file_format, subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("rate", "channels", "file_format", "subtype"),
    [
        (44_100, 2, "WAV", "PCM_16"),
        (48_000, 1, "WAV", "FLOAT"),
        (22_050, 1, "FLAC", "PCM_16"),
        (32_000, 2, "WAV", "PCM_16"),
    ],
)
def test_block_by_block_decoding_equals_decoding_the_file_whole(
    rate: int, channels: int, file_format: str, subtype: str
) -> None:
    rng = np.random.default_rng(rate)
    audio = (0.3 * rng.standard_normal((int(rate * 23.3), channels))).clip(-1, 1)
    data = _encoded(audio.astype(np.float32), rate, file_format, subtype)
    limits = AudioLimits()
    whole = decode("x.wav", data, limits).samples
    for block_seconds in (10.0, 0.77):  # blocks that do and do not divide the file
        sound, header = open_audio("x.wav", io.BytesIO(data), limits)
        assert (header.sample_rate, header.channels) == (rate, channels)
        streamed = np.concatenate(list(decode_blocks("x.wav", sound, limits, block_seconds)))
        # soxr's one-shot resample is its stream run to the end: the very same samples
        np.testing.assert_array_equal(streamed, whole)


def test_block_by_block_decoding_raises_what_whole_decoding_raises() -> None:
    limits = AudioLimits()
    silent = _encoded(np.zeros(16_000 * 5, np.float32), 16_000, "WAV", "PCM_16")
    sound, _ = open_audio("quiet.wav", io.BytesIO(silent), limits)
    with pytest.raises(AudioError, match=r"quiet\.wav: the file is silent") as raised:
        list(decode_blocks("quiet.wav", sound, limits, block_seconds=1.0))
    assert raised.value.kind == AudioErrorKind.SILENT
    wav = _encoded(samples.tone(5.0, 16_000), 16_000, "WAV", "PCM_16")
    sound, _ = open_audio("cut.wav", io.BytesIO(wav[: len(wav) // 2]), limits)
    with pytest.raises(AudioError) as raised:
        list(decode_blocks("cut.wav", sound, limits, block_seconds=1.0))
    assert raised.value.kind == AudioErrorKind.TRUNCATED
    with pytest.raises(AudioError) as raised:
        open_audio("long.wav", io.BytesIO(wav), AudioLimits(max_duration_seconds=2.0))
    assert raised.value.kind == AudioErrorKind.TOO_LONG
    with pytest.raises(AudioError) as raised:
        open_audio("text.wav", io.BytesIO(b"not audio at all" * 10), limits)
    assert raised.value.kind == AudioErrorKind.NOT_AUDIO


def test_an_audio_error_survives_pickling_with_its_parts() -> None:
    import pickle

    error = AudioError("pumps/p1.wav", AudioErrorKind.UNREADABLE, "cannot read (timed out)")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.name, copy.kind, copy.reason, str(copy)) == (
        error.name,
        error.kind,
        error.reason,
        str(error),
    )
    assert copy.retryable


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_downmix_block_by_block_is_the_channel_sum_in_order(channels: int, dtype: str) -> None:
    rng = np.random.default_rng(channels)
    frames = 2 * DOWNMIX_FRAMES + 123  # three blocks, the last one short
    if dtype == "int16":
        samples = rng.integers(-32768, 32767, (frames, channels), dtype=np.int16)
        scale = np.float32(1 / channels / 32768)
    else:
        samples = rng.uniform(-1, 1, (frames, channels)).astype(np.float32)
        scale = np.float32(1 / channels)
    expected = samples[:, 0].astype(np.float32)
    for channel in range(1, channels):
        expected += samples[:, channel]
    if not (channels == 1 and dtype == "float32"):
        expected *= scale
    mono = downmix(samples)
    assert mono.dtype == np.float32 and mono.shape == (frames,)
    np.testing.assert_array_equal(mono, expected)


@pytest.mark.parametrize(
    ("rate", "channels", "file_format", "subtype"),
    [
        (22_050, 1, "OGG", "VORBIS"),
        (48_000, 8, "FLAC", "PCM_16"),
        (44_100, 2, "WAV", "PCM_16"),
        (16_000, 6, "WAV", "FLOAT"),
    ],
)
def test_bounded_decoding_gives_the_samples_of_whole_decoding(
    rate: int, channels: int, file_format: str, subtype: str
) -> None:
    tone = samples.tone(41.0, rate)
    audio = np.repeat(tone[:, None], channels, axis=1) * np.linspace(0.5, 1, channels)
    data = _encoded(audio.astype(np.float32), rate, file_format, subtype)
    blocks = []
    bounded = decode_bounded("x", data, LIMITS, lambda: blocks.append(1))
    whole = decode("x", data, LIMITS)
    np.testing.assert_array_equal(bounded.samples, whole.samples)
    assert (bounded.original_sample_rate, bounded.channels) == (rate, channels)
    assert bounded.duration_seconds == pytest.approx(whole.duration_seconds)
    if subtype != "PCM_16":  # a PCM WAV is read in place, not in blocks
        # about 1 M samples across the channels per block
        assert len(blocks) >= audio.size // (1 << 20)


def test_bounded_decoding_stops_where_between_blocks_raises() -> None:
    data = _encoded(samples.tone(120.0, 48_000), 48_000, "FLAC", "PCM_16")
    calls = []

    def deadline() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise TimeoutError("past the deadline")

    with pytest.raises(TimeoutError):
        decode_bounded("slow.flac", data, LIMITS, deadline)
    assert len(calls) == 2  # of about six blocks


def test_files_with_more_channels_than_the_limit_are_refused_from_the_header() -> None:
    wide = np.tile(samples.tone(0.5, 8_000)[:, None], (1, 65))
    for subtype in ("PCM_16", "FLOAT"):  # read in place, and by libsndfile
        data = _encoded(wide.astype(np.float32), 8_000, "WAV", subtype)
        with pytest.raises(AudioError, match="65 channels, over the limit of 64") as raised:
            decode("wide.wav", data, LIMITS)
        assert raised.value.kind == AudioErrorKind.TOO_MANY_CHANNELS
        assert "AUDIO_EMBEDDINGS_MAX_CHANNELS" in str(raised.value)
    assert decode("wide.wav", data, AudioLimits(max_channels=65)).channels == 65


def test_reading_stops_at_the_duration_limit_whatever_the_header_said() -> None:
    data = _encoded(samples.tone(5.0, 16_000), 16_000, "FLAC", "PCM_16")
    sound, _ = open_audio("long.flac", io.BytesIO(data), LIMITS)  # the header passed
    short = AudioLimits(max_duration_seconds=2.0)
    with pytest.raises(TooLongError) as raised:
        list(decode_blocks("long.flac", sound, short, block_seconds=0.5))
    assert raised.value.limit_seconds == 2.0 and raised.value.duration_seconds <= 2.5


def test_a_too_long_error_survives_pickling_with_its_figures() -> None:
    import pickle

    error = TooLongError("day.ogg", 86_400.0, 60.0, "AUDIO_EMBEDDINGS_SERVE_MAX_QUERY_SECONDS")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.duration_seconds, copy.limit_seconds, copy.setting, str(copy)) == (
        86_400.0,
        60.0,
        "AUDIO_EMBEDDINGS_SERVE_MAX_QUERY_SECONDS",
        str(error),
    )
    assert copy.kind == AudioErrorKind.TOO_LONG


def test_every_hostile_file_decodes_or_raises_an_audio_error() -> None:
    """Nothing a file holds makes the decoders raise anything but ``AudioError`` (a pipeline
    run quarantines it; the service answers 4xx)."""
    from tests.hostile_audio import corpus, mutations

    limits = AudioLimits(max_duration_seconds=60)
    files = [(item.name, item.data) for item in corpus(long_seconds=90.0)]
    for name, data in files + list(mutations(1_000, seed=7)):
        for decoder in (decode, lambda n, d, lim: decode_bounded(n, d, lim, lambda: None)):
            try:
                decoder(name, data, limits)
            except AudioError as error:
                assert error.name == name
