"""The log-mel picture: what Cnn14 hears of a sound, as people see it."""

from __future__ import annotations

import numpy as np

from tasks.model.constants import FMAX, FMIN, MEL_BINS, MODEL_SAMPLE_RATE
from tasks.model.front_end import PICTURE_COLUMNS, _hz_to_mel, log_mel_picture

RATE = MODEL_SAMPLE_RATE


def _band_of(hz: float) -> int:
    """The mel band whose centre is nearest ``hz``."""
    edges = np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), MEL_BINS + 2)
    return int(np.argmin(np.abs(edges[1:-1] - _hz_to_mel(hz))))


def test_a_tone_lights_its_band_and_a_click_lights_its_moment_at_every_offset() -> None:
    seconds = 10.0
    time = np.arange(int(seconds * RATE)) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 2_000.0 * time)).astype(np.float32)
    picture = log_mel_picture(tone)
    assert picture.values.shape == (MEL_BINS, PICTURE_COLUMNS) and picture.seconds == seconds
    assert abs(int(picture.values.mean(axis=1).argmax()) - _band_of(2_000.0)) <= 1
    for at in (0.0, 1.234, 5.0, 7.77, 9.9):  # wherever it falls, not only on a column edge
        clicked = tone.copy()
        start = int(at * RATE)
        clicked[start : start + 64] += np.random.default_rng(1).uniform(-1, 1, 64)
        highs = log_mel_picture(clicked).values[-16:].astype(int)  # the top bands: the click
        loudest = int(highs.sum(axis=0).argmax())
        assert abs(loudest - at / seconds * PICTURE_COLUMNS) <= 2, at


def test_short_sounds_keep_their_frames_and_silence_stays_black() -> None:
    short = log_mel_picture(np.random.default_rng(0).uniform(-0.1, 0.1, RATE // 2))
    assert short.values.shape == (MEL_BINS, 1 + (RATE // 2 - 1024) // 320)
    assert short.values.max() == 255
    assert log_mel_picture(np.zeros(RATE, np.float32)).values.max() == 0
    assert log_mel_picture(np.zeros(10, np.float32)).values.shape == (MEL_BINS, 1)


def test_a_long_file_is_pooled_to_the_width_whatever_its_blocks() -> None:
    noise = np.random.default_rng(2).uniform(-0.2, 0.2, 70 * RATE).astype(np.float32)
    noise[33 * RATE : 34 * RATE] *= 4  # a loud second in the middle
    picture = log_mel_picture(noise)  # 7,000 frames: four blocks, pooled into 512 columns
    assert picture.values.shape == (MEL_BINS, PICTURE_COLUMNS)
    for block in (1, 97, 7_000):  # blocks that end on, off and past column edges
        np.testing.assert_array_equal(
            log_mel_picture(noise, block_frames=block).values, picture.values
        )
    loud = picture.values.astype(int).sum(axis=0)
    assert 33 / 70 * PICTURE_COLUMNS - 2 <= loud.argmax() <= 34 / 70 * PICTURE_COLUMNS + 2
