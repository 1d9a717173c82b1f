"""The streaming embed path of a shard: windows of consecutive files packed into full batches,
every file's result the same as embedding it alone, failures passed through, order kept."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tasks.audio import samples
from tasks.audio.errors import AudioError
from tasks.ingest import stream
from tasks.ingest.stream import Embedded, embed_items
from tasks.model.embedder import PannsEmbedder
from tasks.storage.sources import LocalSource

# Clip lengths (s) giving 3, 1, 2, 4 and 1 pieces (cores of 2.24 s, for 2 s windows); a broken
# file sits in the middle.
CLIP_SECONDS = (5.0, 1.5, 4.0, 7.0, 2.0)


def _catalogue(folder: Path) -> LocalSource:
    makers = (samples.chirp, samples.noise, samples.engine, samples.clicks, samples.tone)
    for i, (seconds, make) in enumerate(zip(CLIP_SECONDS, makers, strict=True)):
        samples.write(folder / f"{i}.wav", make(seconds, 44_100), 44_100, channels=2)
    (folder / "2-broken.wav").write_bytes(b"RIFF but not really a wave file")
    return LocalSource(folder)


@pytest.mark.parametrize("resample_on", ["host", "device"])
def test_pieces_of_consecutive_files_fill_whole_batches(
    embedder: PannsEmbedder, tmp_path: Path, resample_on: str
) -> None:
    embedder = embedder.with_options(embedder.limits, batch_size=4, resample_on=resample_on)
    batch_sizes: list[int] = []
    forward = embedder.trunk_frames

    def recording_forward(rows):
        batch_sizes.append(len(rows))
        return forward(rows)

    embedder.trunk_frames = recording_forward
    source = _catalogue(tmp_path)
    outcomes = list(embed_items([(i, source) for i in source.list_items()], embedder, workers=2))

    failures = [item.path for item, o in outcomes if isinstance(o, AudioError)]
    embedded = [(item, o) for item, o in outcomes if isinstance(o, Embedded)]
    assert failures == ["2-broken.wav"]
    assert [item.path for item, _ in embedded] == [f"{i}.wav" for i in range(5)]
    assert [embedder.pieces_of(o.audio).count for _, o in embedded] == [3, 1, 2, 4, 1]
    assert batch_sizes == [4, 4, 3]  # 11 pieces: two full batches, the stream's tail

    for _, outcome in embedded:  # a file split across batches equals the file embedded alone
        alone = embedder.embed_files([embedder.pieces_of(outcome.audio)])[0]
        np.testing.assert_allclose(
            outcome.result.window_embeddings, alone.window_embeddings, rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(outcome.result.embedding, alone.embedding, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(outcome.result.probabilities, alone.probabilities, atol=1e-6)


@pytest.mark.parametrize(
    ("read", "hop_seconds"), [("into_memory", None), ("from_file", None), ("into_memory", 1.0)]
)
def test_long_files_streamed_block_by_block_equal_whole_decoding(
    embedder: PannsEmbedder,
    tmp_path: Path,
    read: str,
    hop_seconds: float | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tasks.ingest.stream as stream

    if read == "from_file":  # what a file too large to read into memory takes
        monkeypatch.setattr(stream, "IN_MEMORY_MAX_BYTES", 0)
    # overlapping windows (a hop shorter than the window): segments are kept once, across batches
    embedder = embedder.with_options(
        embedder.limits.model_copy(update={"hop_seconds": hop_seconds}), embedder.batch_size
    )
    samples.write(tmp_path / "a-short.wav", samples.chirp(3.0, 44_100), 44_100, channels=2)
    long_clip = np.concatenate([samples.engine(9.0, 44_100), samples.clicks(4.3, 44_100, 9.0)])
    samples.write(tmp_path / "b-long.wav", long_clip, 44_100, channels=2)
    samples.write(tmp_path / "c-long-silent.wav", np.zeros(44_100 * 9, np.float32), 44_100)
    samples.write(tmp_path / "d-short.wav", samples.noise(1.0, 44_100), 44_100)
    source = LocalSource(tmp_path)
    jobs = [(item, source) for item in source.list_items()]
    whole = dict(embed_items(jobs, embedder))
    streaming = embedder.with_options(
        embedder.limits.model_copy(update={"stream_above_seconds": 5.0}), embedder.batch_size
    )
    assert isinstance(stream.prepare(jobs[1][0], source, streaming), stream.LongFile)
    streamed = list(embed_items(jobs, streaming))

    assert [item.path for item, _ in streamed] == [item.path for item, _ in jobs]  # in order
    silent = dict(streamed)[jobs[2][0]]
    assert isinstance(silent, AudioError) and silent.kind == "silent"
    for item, outcome in streamed:
        if item.path == "c-long-silent.wav":
            continue
        expected = whole[item]
        np.testing.assert_array_equal(
            outcome.result.window_start_seconds, expected.result.window_start_seconds
        )
        assert outcome.audio.duration_seconds == expected.audio.duration_seconds
        np.testing.assert_allclose(
            outcome.result.window_embeddings, expected.result.window_embeddings, atol=1e-5
        )
        got, want = outcome.result.segments, expected.result.segments
        np.testing.assert_array_equal(got.start_seconds, want.start_seconds)
        cosine = (got.embeddings * want.embeddings).sum(1) / (
            np.linalg.norm(got.embeddings, axis=1) * np.linalg.norm(want.embeddings, axis=1)
        )
        assert cosine.min() >= 0.999


class _ReadCountingSource(LocalSource):
    """A local folder that counts the files its readers have started to read."""

    started = 0

    def read_bytes(self, item):
        self.started += 1
        return super().read_bytes(item)


@pytest.mark.parametrize(
    ("lookahead_files_of_bytes", "expected_ahead"),
    [
        (100, 8),  # two batches of 4 files: the byte budget is not what stops it
        (3.5, 3),  # room for 3 files' bytes
        (0.5, 2),  # never fewer than two files per reader thread
    ],
)
def test_readers_stay_within_two_batches_and_the_byte_budget(
    embedder: PannsEmbedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lookahead_files_of_bytes: float,
    expected_ahead: int,
) -> None:

    clip = samples.write(tmp_path / "c00.wav", samples.noise(1.0, 16_000), 16_000)
    for i in range(1, 20):
        (tmp_path / f"c{i:02d}.wav").write_bytes(clip.read_bytes())
    monkeypatch.setattr(
        stream, "LOOKAHEAD_BYTES", int(lookahead_files_of_bytes * clip.stat().st_size)
    )
    source = _ReadCountingSource(tmp_path)
    ahead = []
    for consumed, (_, outcome) in enumerate(
        stream.prefetch([(i, source) for i in source.list_items()], embedder, workers=1)
    ):
        assert isinstance(outcome, stream.Prepared)
        time.sleep(0.05)  # a slow model: the readers fill whatever room they are given
        ahead.append(source.started - consumed)
    assert embedder.batch_size == 4
    assert max(ahead) == expected_ahead
