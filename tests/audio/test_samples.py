"""The synthetic sample catalogue: re-made, it decodes to the same audio, and files already
present are left alone, so a re-run of the demo changes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from tasks.audio import samples


def test_the_catalogue_is_deterministic_and_left_alone_when_present(tmp_path: Path) -> None:
    first = samples.make_sample_catalogue(tmp_path / "a")
    second = samples.make_sample_catalogue(tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in first] == [
        p.relative_to(tmp_path / "b") for p in second
    ]
    for a, b in zip(first, second, strict=True):
        if a.suffix == ".ogg":  # Ogg streams carry a random serial number: compare the audio
            np.testing.assert_array_equal(soundfile.read(a)[0], soundfile.read(b)[0])
        else:
            assert a.read_bytes() == b.read_bytes(), a.name
    stamp = first[0].stat().st_mtime_ns
    samples.make_sample_catalogue(tmp_path / "a")
    assert first[0].stat().st_mtime_ns == stamp
