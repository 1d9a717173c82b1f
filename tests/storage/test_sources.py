"""Local folder listing, identity and change markers."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tasks.audio import samples
from tasks.storage.sources import LocalSource, document_key


def test_lists_audio_recursively_in_a_stable_order(catalogue: Path) -> None:
    (catalogue / "notes.txt").write_text("not audio")
    (catalogue / ".hidden.wav").write_bytes(b"x")
    items = list(LocalSource(catalogue).list_items())
    assert [i.path for i in items] == [
        "machines/ticker.wav",
        "noise/white.ogg",
        "sweeps/chirp.mp3",
        "tones/a220.flac",
        "tones/a440.wav",
    ]
    first = items[0]
    assert first.uri == (catalogue / "machines/ticker.wav").resolve().as_uri()
    assert first.size_bytes == (catalogue / "machines/ticker.wav").stat().st_size


def test_etag_changes_when_the_file_changes(catalogue: Path) -> None:
    source = LocalSource(catalogue)
    before = {i.path: i.etag for i in source.list_items()}
    path = catalogue / "tones/a440.wav"
    samples.write(path, samples.tone(3.0, 44_100, 660.0), 44_100, 2)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    after = {i.path: i.etag for i in source.list_items()}
    assert before["tones/a440.wav"] != after["tones/a440.wav"]
    assert before["noise/white.ogg"] == after["noise/white.ogg"]


def test_document_key_is_fixed_length_and_search_safe() -> None:
    keys = {
        document_key(u) for u in ["file:///a b/c'd.wav", "az://acct/ctr/x=y/ü.wav", "file:///x"]
    }
    assert len(keys) == 3
    for key in keys:
        assert re.fullmatch(r"[0-9a-f]{64}", key)
