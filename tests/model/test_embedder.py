"""The embedder on random weights: batching, shapes, precision, devices, the HEAR surface."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.audio import samples
from tasks.audio.pieces import CONTEXT_FRAMES, FRAME_SAMPLES, core_frames, cut_pieces, extended
from tasks.model.cnn14 import pool_frames
from tasks.model.constants import EMBEDDING_SIZE, MODEL_SAMPLE_RATE, NUM_CLASSES
from tasks.model.embedder import DeviceUnavailableError, PannsEmbedder, choose_device
from tasks.settings import AudioLimits
from tests.model.clips import embed_clips, file_vectors
from tests.model.clips import model_clips as _clips


def test_shapes_and_value_range(embedder: PannsEmbedder) -> None:
    files = embed_clips(embedder, _clips(3, 2.0))
    embeddings = np.stack([f.embedding for f in files])
    probabilities = np.stack([f.probabilities for f in files])
    assert embeddings.shape == (3, EMBEDDING_SIZE) and embeddings.dtype == np.float32
    assert probabilities.shape == (3, NUM_CLASSES)
    assert (embeddings >= 0).all()  # ReLU(fc1)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert files[0].segments.embeddings.shape == (2, EMBEDDING_SIZE)


def test_repeatable_run_to_run(embedder: PannsEmbedder) -> None:
    clips = _clips(2, 2.0)
    np.testing.assert_array_equal(file_vectors(embedder, clips), file_vectors(embedder, clips))


def test_batched_equals_one_by_one(embedder: PannsEmbedder) -> None:
    clips = _clips(5, 2.0)  # batch size 4: one full batch and a ragged one
    batched = file_vectors(embedder, clips)
    single = np.concatenate([file_vectors(embedder, [clip]) for clip in clips])
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("short_seconds", [0.05, 1.0, 3.3])
def test_files_of_any_length_sharing_a_batch_get_what_they_get_alone(
    embedder: PannsEmbedder, short_seconds: float
) -> None:
    """A shorter piece is padded to the batch's longest past its context: nothing changes."""
    long_clip = samples.chirp(5.0, MODEL_SAMPLE_RATE)  # 3 pieces of 2 s windows
    short_clip = samples.noise(short_seconds, MODEL_SAMPLE_RATE, 4)
    together = embed_clips(embedder, [short_clip, long_clip])
    for clip, shared in zip([short_clip, long_clip], together, strict=True):
        alone = embed_clips(embedder, [clip])[0]
        np.testing.assert_allclose(shared.embedding, alone.embedding, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(
            shared.segments.embeddings, alone.segments.embeddings, rtol=1e-4, atol=1e-5
        )
    assert together[1].window_embeddings.shape == (3, EMBEDDING_SIZE)
    # the file vector is Cnn14's pooling of all the file's frames; one window's file: its window
    if short_seconds <= embedder.limits.window_seconds:
        np.testing.assert_allclose(
            together[0].embedding, together[0].window_embeddings[0], rtol=1e-4, atol=1e-6
        )
    pieces = cut_pieces(long_clip, embedder.limits)
    whole = extended(long_clip, 0, len(long_clip), 0, (pieces.frames + 8) * FRAME_SAMPLES)
    frames = embedder.trunk_frames([whole])[0, CONTEXT_FRAMES : CONTEXT_FRAMES + pieces.frames]
    expected, _ = embedder.head(pool_frames(frames)[None])
    np.testing.assert_allclose(together[1].embedding, expected[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(together[1].window_start_seconds, [0.0, 2.0, 3.0])


@pytest.mark.parametrize("seconds", [0.3, 2.0, 2.3, 7.77, 13.0])
def test_pieces_give_the_whole_files_frames(embedder: PannsEmbedder, seconds: float) -> None:
    """Every kept frame equals the frame of one trunk pass over the whole (mirrored) file."""
    clip = samples.engine(seconds, MODEL_SAMPLE_RATE, 1500, 3)
    pieces = cut_pieces(clip, embedder.limits)
    assert pieces.count == -(-pieces.frames // core_frames(embedder.limits))
    frames = embedder.trunk_frames([pieces.audio[i] for i in range(pieces.count)])
    kept = torch.cat(
        [frames[i, slice(*pieces.piece(i).kept_offsets())] for i in range(pieces.count)]
    )
    whole = extended(clip, 0, len(clip), 0, (pieces.frames + 8) * FRAME_SAMPLES)
    reference = embedder.trunk_frames([whole])[0, CONTEXT_FRAMES : CONTEXT_FRAMES + pieces.frames]
    torch.testing.assert_close(kept, reference, rtol=1e-4, atol=1e-6)


def test_parts_packed_into_the_reused_batch_buffer_equal_one_batch(
    embedder: PannsEmbedder,
) -> None:
    """Each thread packs its pieces into its own reused buffer: what one call leaves there
    never leaks into the next call's batch, nor into another thread's."""
    rows = [clip for clip in _clips(2, 3.0)] + [clip for clip in _clips(2, 1.0)]
    expected = [embedder.trunk_frames([row])[0] for row in rows]

    def packed(order: list[int]) -> list[torch.Tensor]:
        frames = embedder.trunk_frames([rows[i] for i in order])
        return [frames[j, : len(expected[i])] for j, i in enumerate(order)]

    for order in ([0, 1, 2, 3], [3], [2, 0]):  # a shorter batch after a longer one, too
        for got, i in zip(packed(order), order, strict=True):
            torch.testing.assert_close(got[:-4], expected[i][:-4], rtol=1e-4, atol=1e-5)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(packed, [[0, 1], [2, 3], [3, 0], [1, 2]] * 2))
    for order, result in zip([[0, 1], [2, 3], [3, 0], [1, 2]] * 2, results, strict=True):
        for got, i in zip(result, order, strict=True):
            torch.testing.assert_close(got[:-4], expected[i][:-4], rtol=1e-4, atol=1e-5)


def test_different_sounds_give_different_embeddings(embedder: PannsEmbedder) -> None:
    embeddings = embedder.get_scene_embeddings(_clips(3, 2.0))
    assert not np.allclose(embeddings[0], embeddings[1])
    assert not np.allclose(embeddings[1], embeddings[2])


def test_timestamp_embeddings_shapes_and_centres(embedder: PannsEmbedder) -> None:
    embeddings, timestamps_ms = embedder.get_timestamp_embeddings(_clips(2, 6.0))
    assert embeddings.shape == (2, 3, EMBEDDING_SIZE)
    np.testing.assert_allclose(timestamps_ms, [[1000.0, 3000.0, 5000.0]] * 2)


def test_inputs_are_checked_at_the_door(embedder: PannsEmbedder) -> None:
    with pytest.raises(ValueError, match=r"\[n, samples\]"):
        embedder.get_scene_embeddings(np.zeros(32_000, dtype=np.float32))


def test_default_ten_second_window(checkpoint: Path) -> None:
    embedder = PannsEmbedder.load(checkpoint, device="cpu", limits=AudioLimits(window_seconds=10.0))
    embeddings, timestamps_ms = embedder.get_timestamp_embeddings(_clips(1, 12.0))
    assert embeddings.shape == (1, 2, EMBEDDING_SIZE)
    np.testing.assert_allclose(timestamps_ms, [[5000.0, 7000.0]])


def test_device_choice() -> None:
    assert choose_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert choose_device("auto").type == "cpu"
        with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
            choose_device("cuda:1")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(checkpoint: Path, test_limits: AudioLimits) -> None:
    clips = _clips(4, 2.0)
    cpu = PannsEmbedder.load(checkpoint, device="cpu", limits=test_limits)
    gpu = PannsEmbedder.load(checkpoint, device="cuda:0", limits=test_limits)
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(file_vectors(gpu, clips), file_vectors(cpu, clips), atol=1e-3)
    assert torch.from_numpy(gpu._batch_buffer(4, clips.shape[1])).is_pinned()


def test_bf16_autocast_stays_within_tolerance_of_fp32(
    checkpoint: Path, embedder: PannsEmbedder
) -> None:
    # The same autocast code path as on a GPU (fp16 would be very slow on this CPU).
    reduced = PannsEmbedder.load(checkpoint, device="cpu", limits=embedder.limits, precision="bf16")
    clips = _clips(2, 2.0)
    full, low = file_vectors(embedder, clips), file_vectors(reduced, clips)
    cosine = (full * low).sum(axis=1) / (np.linalg.norm(full, axis=1) * np.linalg.norm(low, axis=1))
    assert (cosine >= 0.999).all(), cosine
    assert not np.array_equal(full, low)  # autocast really ran


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_on_cuda_stays_within_tolerance(checkpoint: Path, test_limits: AudioLimits) -> None:
    clips = _clips(8, 2.0)
    full = PannsEmbedder.load(checkpoint, device="cuda", limits=test_limits)
    half = PannsEmbedder.load(checkpoint, device="cuda", limits=test_limits, precision="fp16")
    a, b = file_vectors(full, clips), file_vectors(half, clips)
    cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert (cosine >= 0.999).all(), cosine


def test_a_whole_file_embeds_as_its_pieces_do(embedder: PannsEmbedder, tmp_path: Path) -> None:
    path = samples.write(tmp_path / "q.wav", samples.chirp(5.0, 22_050), 22_050)
    whole = embedder.embed_file(path.name, path.read_bytes())
    pieces = embedder.pieces_of(embedder.decode(path.name, path.read_bytes()))
    np.testing.assert_allclose(
        whole.embedding, embedder.embed_files([pieces])[0].embedding, rtol=1e-5
    )
    assert whole.window_embeddings.shape == (3, EMBEDDING_SIZE)
