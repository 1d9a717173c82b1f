"""Admission control for queries that need the model: a bounded line, bounded decoding, and a
deadline per request.

A query with audio (an upload, a blob) is admitted only while fewer than ``max_decodes +
max_queued`` such queries are in the service; past that it is refused at once (503 with
Retry-After), so a burst never piles up behind the model. Once admitted it waits for one of
``max_decodes`` decode slots, is decoded, then waits for the shared forward pass. The request's
``Deadline`` bounds every wait: past it the request is answered 504 and its work, if not yet in
a forward pass, is dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: What a refused client is told to wait before trying again (s).
RETRY_AFTER_SECONDS = 1


class ServiceBusyError(Exception):
    """The service has as many queries in hand as it may hold; try again after a second."""

    retry_after_seconds = RETRY_AFTER_SECONDS


class DeadlineExceededError(Exception):
    """A request ran past its deadline; what it was waiting for is dropped."""


@dataclass(frozen=True)
class Deadline:
    """The moment (``time.monotonic()``) a request must be answered by, and its budget (s)."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def remaining(self) -> float:
        """Seconds left (0 once past)."""
        return max(self.at - time.monotonic(), 0.0)

    def check(self, waiting_for: str = "work") -> None:
        """Raise ``DeadlineExceededError`` once the deadline has passed."""
        if time.monotonic() >= self.at:
            raise self.exceeded(waiting_for)

    def exceeded(self, waiting_for: str) -> DeadlineExceededError:
        return DeadlineExceededError(
            f"the request was not answered within {self.seconds:g} s (still {waiting_for}; "
            "AUDIO_EMBEDDINGS_SERVE_REQUEST_TIMEOUT_SECONDS)"
        )


class Admission:
    """Counts the queries in hand and the decodes running; thread-safe."""

    def __init__(self, max_decodes: int, max_queued: int) -> None:
        self.max_decodes, self.max_queued = max_decodes, max_queued
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(max_decodes)
        self._in_hand = 0
        self._decoding = 0

    @property
    def in_hand(self) -> int:
        """Queries admitted and not yet answered."""
        return self._in_hand

    @property
    def decoding(self) -> int:
        """Queries being decoded now."""
        return self._decoding

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold a place for one query while the block runs, or raise ``ServiceBusyError``."""
        with self._lock:
            if self._in_hand >= self.max_decodes + self.max_queued:
                raise ServiceBusyError(
                    f"the service has {self._in_hand} queries in hand, as many as it may hold "
                    "(AUDIO_EMBEDDINGS_SERVE_MAX_DECODES + AUDIO_EMBEDDINGS_SERVE_MAX_QUEUED); "
                    f"try again in {RETRY_AFTER_SECONDS} s"
                )
            self._in_hand += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_hand -= 1

    @contextmanager
    def decode_slot(self, deadline: Deadline) -> Iterator[None]:
        """Hold one of the decode slots while the block runs, waiting for one no longer than
        the deadline allows."""
        if not self._slots.acquire(timeout=deadline.remaining()):
            raise deadline.exceeded("waiting to be decoded")
        with self._lock:
            self._decoding += 1
        try:
            yield
        finally:
            with self._lock:
                self._decoding -= 1
            self._slots.release()
