"""Micro-batching: queries that arrive together share a forward pass, and each gets its own
answer, equal to what it would get alone."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from tasks.audio import samples
from tasks.audio.pieces import cut_pieces
from tasks.serve.batching import MicroBatcher


def test_items_submitted_together_run_in_one_call_in_order() -> None:
    calls: list[list[int]] = []

    def square(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        return [i * i for i in items]

    batcher = MicroBatcher(square, size=lambda _: 1, max_wait_seconds=0.5, max_windows=64)
    futures = [batcher.submit(i) for i in range(6)]
    assert [f.result(timeout=10) for f in futures] == [0, 1, 4, 9, 16, 25]
    assert calls == [[0, 1, 2, 3, 4, 5]]
    assert batcher.stats.queries == 6 and batcher.stats.passes == 1
    batcher.close()


def test_a_batch_stops_growing_at_max_windows() -> None:
    calls: list[list[int]] = []

    def run(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        return list(items)

    batcher = MicroBatcher(run, size=lambda windows: windows, max_wait_seconds=0.5, max_windows=5)
    futures = [batcher.submit(n) for n in (3, 2, 4, 1)]
    assert [f.result(timeout=10) for f in futures] == [3, 2, 4, 1]
    assert calls == [[3, 2], [4, 1]]
    batcher.close()


def test_a_lone_query_waits_no_longer_than_the_batch_window() -> None:
    batcher = MicroBatcher(list, size=lambda _: 1, max_wait_seconds=0.05, max_windows=64)
    start = time.monotonic()
    assert batcher("x") == "x"
    assert time.monotonic() - start < 2.0  # generous: a stuck batcher would wait forever
    batcher.close()


def test_a_failing_batch_fails_each_of_its_queries() -> None:
    def broken(items: Sequence[int]) -> list[int]:
        raise RuntimeError("out of memory")

    batcher = MicroBatcher(broken, size=lambda _: 1, max_wait_seconds=0.2, max_windows=8)
    futures = [batcher.submit(i) for i in range(3)]
    for future in futures:
        with pytest.raises(RuntimeError, match="out of memory"):
            future.result(timeout=10)
    batcher.close()


def test_the_batcher_keeps_serving_after_a_failed_batch() -> None:
    fail = [True]

    def flaky(items: Sequence[int]) -> list[int]:
        if fail.pop() if fail else False:
            raise RuntimeError("transient")
        return list(items)

    batcher = MicroBatcher(flaky, size=lambda _: 1, max_wait_seconds=0.01, max_windows=8)
    with pytest.raises(RuntimeError):
        batcher(1)
    assert batcher(2) == 2
    batcher.close()


def test_files_embedded_in_one_shared_pass_equal_files_embedded_alone(embedder) -> None:
    clips = [
        samples.tone(3.0, 32_000, 440.0),
        samples.noise(2.0, 32_000, 3),
        samples.chirp(5.0, 32_000),
        samples.clicks(4.0, 32_000, 6.0),
    ]
    windows = [cut_pieces(clip, embedder.limits) for clip in clips]
    alone = [embedder.embed_files([w])[0].embedding for w in windows]
    batcher = MicroBatcher(
        embedder.embed_files, size=lambda w: w.count, max_wait_seconds=1.0, max_windows=64
    )
    results: dict[int, np.ndarray] = {}

    def ask(i: int) -> None:
        results[i] = batcher(windows[i]).embedding

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(windows))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert batcher.stats.passes == 1 and batcher.stats.largest_batch == len(windows)
    for i, vector in enumerate(alone):
        np.testing.assert_allclose(results[i], vector, rtol=1e-4, atol=1e-5)
    batcher.close()


@pytest.mark.parametrize("announced", [True, False])
def test_a_batch_waits_for_queries_still_being_decoded(announced: bool) -> None:
    calls: list[list[str]] = []

    def run(items: Sequence[str]) -> list[str]:
        calls.append(list(items))
        return list(items)

    batcher = MicroBatcher(
        run,
        size=lambda _: 1,
        max_wait_seconds=0.005,
        max_windows=8,
        max_wait_for_arriving_seconds=2,
    )
    decoding = threading.Event()

    def slow_query() -> None:
        with batcher.arriving() if announced else contextlib.nullcontext():
            decoding.set()
            time.sleep(0.3)  # decoding
            future = batcher.submit("slow")
        future.result(timeout=10)

    thread = threading.Thread(target=slow_query)
    thread.start()
    decoding.wait(5)
    assert batcher("fast") == "fast"
    thread.join()
    # announced: one pass for both; not announced: the fast query went alone after 5 ms
    assert calls == ([["fast", "slow"]] if announced else [["fast"], ["slow"]])
    batcher.close()
