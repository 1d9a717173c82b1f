"""The embedder on random weights: batching, shapes, precision, devices, the HEAR surface."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.audio import samples
from tasks.audio.windows import cut_windows
from tasks.model.constants import EMBEDDING_SIZE, MODEL_SAMPLE_RATE, NUM_CLASSES
from tasks.model.embedder import DeviceUnavailableError, PannsEmbedder, choose_device
from tasks.settings import AudioLimits
from tests.model.clips import model_clips as _clips


def test_shapes_and_value_range(embedder: PannsEmbedder) -> None:
    out = embedder.embed_windows(_clips(3, 2.0))
    embeddings, probabilities = out.embeddings, out.probabilities
    assert embeddings.shape == (3, EMBEDDING_SIZE) and embeddings.dtype == np.float32
    assert probabilities.shape == (3, NUM_CLASSES)
    assert (embeddings >= 0).all()  # ReLU(fc1)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_repeatable_run_to_run(embedder: PannsEmbedder) -> None:
    clips = _clips(2, 2.0)
    np.testing.assert_array_equal(
        embedder.embed_windows(clips).embeddings, embedder.embed_windows(clips).embeddings
    )


def test_batched_equals_one_by_one(embedder: PannsEmbedder) -> None:
    clips = _clips(5, 2.0)  # batch size 4: one full batch and a ragged one
    batched = embedder.embed_windows(clips).embeddings
    single = np.concatenate([embedder.embed_windows(clip[None]).embeddings for clip in clips])
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-5)


def test_files_sharing_a_batch_get_the_same_embedding_as_alone(embedder: PannsEmbedder) -> None:
    limits = embedder.limits
    long_clip = samples.chirp(5.0, MODEL_SAMPLE_RATE)  # 3 windows of 2 s
    short_clip = samples.noise(1.0, MODEL_SAMPLE_RATE, 4)  # padded to 1 window
    together = embedder.embed_files(
        [cut_windows(long_clip, limits), cut_windows(short_clip, limits)]
    )
    alone = embedder.embed_files([cut_windows(long_clip, limits)])
    np.testing.assert_allclose(together[0].embedding, alone[0].embedding, rtol=1e-4, atol=1e-5)
    assert together[0].window_embeddings.shape == (3, EMBEDDING_SIZE)
    np.testing.assert_allclose(together[0].embedding, together[0].window_embeddings.mean(axis=0))
    np.testing.assert_allclose(together[0].window_start_seconds, [0.0, 2.0, 3.0])


def test_parts_packed_into_the_reused_batch_buffer_equal_one_batch(
    embedder: PannsEmbedder,
) -> None:
    """Each thread packs its parts into its own reused buffer: what one call leaves there never
    leaks into the next call's batch, nor into another thread's."""
    clips = _clips(4, 2.0)
    expected = embedder.embed_batch(clips).embeddings

    def packed(order: list[int]) -> np.ndarray:
        parts = [clips[: order[0]], clips[order[0] : order[1]], clips[order[1] :]]
        return embedder.embed_window_parts([part for part in parts if len(part)]).embeddings

    np.testing.assert_allclose(packed([1, 3]), expected, rtol=1e-4, atol=1e-5)
    # a shorter batch after a full one: the buffer's stale rows must not be embedded
    np.testing.assert_allclose(
        embedder.embed_window_parts([clips[3:]]).embeddings, expected[3:], rtol=1e-4, atol=1e-5
    )
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(packed, [[1, 3], [2, 2], [0, 4], [3, 4]] * 2))
    for result in results:
        np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-5)


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
    np.testing.assert_allclose(
        gpu.embed_windows(clips).embeddings, cpu.embed_windows(clips).embeddings, atol=1e-3
    )
    packed = gpu.embed_window_parts([clips[:1], clips[1:]]).embeddings
    assert torch.from_numpy(gpu._batch_buffer(4, clips.shape[1])).is_pinned()
    np.testing.assert_allclose(packed, cpu.embed_windows(clips).embeddings, atol=1e-3)


def test_bf16_autocast_stays_within_tolerance_of_fp32(
    checkpoint: Path, embedder: PannsEmbedder
) -> None:
    # The same autocast code path as on a GPU (fp16 would be very slow on this CPU).
    reduced = PannsEmbedder.load(checkpoint, device="cpu", limits=embedder.limits, precision="bf16")
    clips = _clips(2, 2.0)
    full = embedder.embed_windows(clips).embeddings
    low = reduced.embed_windows(clips).embeddings
    cosine = (full * low).sum(axis=1) / (np.linalg.norm(full, axis=1) * np.linalg.norm(low, axis=1))
    assert (cosine >= 0.999).all(), cosine
    assert not np.array_equal(full, low)  # autocast really ran


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_on_cuda_stays_within_tolerance(checkpoint: Path, test_limits: AudioLimits) -> None:
    clips = _clips(8, 2.0)
    full = PannsEmbedder.load(checkpoint, device="cuda", limits=test_limits)
    half = PannsEmbedder.load(checkpoint, device="cuda", limits=test_limits, precision="fp16")
    a, b = full.embed_windows(clips).embeddings, half.embed_windows(clips).embeddings
    cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert (cosine >= 0.999).all(), cosine


def test_a_whole_file_embeds_as_its_windows_do(embedder: PannsEmbedder, tmp_path: Path) -> None:
    path = samples.write(tmp_path / "q.wav", samples.chirp(5.0, 22_050), 22_050)
    whole = embedder.embed_file(path.name, path.read_bytes())
    windows = embedder.windows_of(embedder.decode(path.name, path.read_bytes()))
    np.testing.assert_allclose(
        whole.embedding, embedder.embed_files([windows])[0].embedding, rtol=1e-5
    )
    assert whole.window_embeddings.shape == (3, EMBEDDING_SIZE)
