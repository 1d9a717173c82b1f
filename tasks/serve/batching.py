"""Micro-batching: queries that arrive together share one forward pass.

Each request thread decodes and windows its own audio (host work, in parallel), then hands the
windows to one batching thread. That thread takes the first waiting query, gathers whatever else
arrives within ``max_wait_seconds`` (up to ``max_windows`` windows), embeds them all in one call
(the embedder fills its batches with windows of several files) and hands each request its own
result. A lone query waits at most ``max_wait_seconds``; under load the model runs full batches.

Requests announce themselves while they decode (``arriving``): a batch also waits, up to
``max_wait_for_arriving_seconds``, for queries that are already being decoded. Without it, 8
clients querying back to back settled into alternating half batches (the replies of one batch
come back while the next runs), about 4 queries per forward pass.

A query whose caller gave up (its future cancelled, past the request's deadline) before its
batch ran is dropped from the batch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class BatchingStats:
    """What the batcher has done: queries answered and forward calls made for them."""

    queries: int = 0
    passes: int = 0
    largest_batch: int = 0


class MicroBatcher(Generic[Item, Result]):
    """Runs ``run(items) -> results`` (same order, same length) over items submitted together.

    ``size(item)`` is how many windows an item adds to a batch. Thread-safe; ``close`` stops the
    batching thread after the queries already waiting.
    """

    def __init__(
        self,
        run: Callable[[Sequence[Item]], Sequence[Result]],
        size: Callable[[Item], int],
        max_wait_seconds: float,
        max_windows: int,
        max_wait_for_arriving_seconds: float = 0.1,
        on_pass: Callable[[int, float], None] | None = None,
    ) -> None:
        """``on_pass(queries, seconds)`` is told of each forward pass (for metrics)."""
        self._run, self._size, self._on_pass = run, size, on_pass
        self.max_wait_seconds, self.max_windows = max_wait_seconds, max_windows
        self.max_wait_for_arriving_seconds = max_wait_for_arriving_seconds
        self._waiting: queue.Queue[tuple[Item, Future[Result]] | None] = queue.Queue()
        self._arriving = 0
        self._arriving_lock = threading.Lock()
        self.stats = BatchingStats()
        self._thread = threading.Thread(target=self._serve, name="micro-batcher", daemon=True)
        self._thread.start()

    def submit(self, item: Item) -> Future[Result]:
        """Queue ``item``; the future holds its result (or the error its batch raised)."""
        future: Future[Result] = Future()
        self._waiting.put((item, future))
        return future

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Say that a query is on its way (being decoded) while the block runs."""
        with self._arriving_lock:
            self._arriving += 1
        try:
            yield
        finally:
            with self._arriving_lock:
                self._arriving -= 1

    @property
    def waiting(self) -> int:
        """Queries queued for a forward pass and not yet taken into one."""
        return self._waiting.qsize()

    def __call__(self, item: Item) -> Result:
        """``submit`` and wait for the result."""
        return self.submit(item).result()

    def close(self) -> None:
        self._waiting.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                return
            batch, windows = [first], self._size(first[0])
            start = time.monotonic()
            stop = False
            while windows < self.max_windows:
                waited = time.monotonic() - start
                if waited < self.max_wait_seconds:
                    timeout = self.max_wait_seconds - waited
                elif self._arriving and waited < self.max_wait_for_arriving_seconds:
                    timeout = 0.002  # poll: the arriving query may fail before it is queued
                else:
                    break
                try:
                    more = self._waiting.get(timeout=timeout)
                except queue.Empty:
                    continue
                if more is None:
                    stop = True
                    break
                batch.append(more)
                windows += self._size(more[0])
            self._answer(batch)
            if stop:
                return

    def _answer(self, batch: list[tuple[Item, Future[Result]]]) -> None:
        # a cancelled future's caller has gone: its item is dropped; the rest can no longer be
        # cancelled
        batch = [(item, future) for item, future in batch if future.set_running_or_notify_cancel()]
        if not batch:
            return
        started = time.perf_counter()
        try:
            results = self._run([item for item, _ in batch])
        except Exception as error:  # every query of the batch gets the batch's error
            for _, future in batch:
                future.set_exception(error)
            return
        if self._on_pass is not None:
            self._on_pass(len(batch), time.perf_counter() - started)
        self.stats.queries += len(batch)
        self.stats.passes += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
