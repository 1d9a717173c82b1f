"""Retraining a label set's classifier from the page, in the background: cross-validated
training, then predictions for the catalogue and the index's predicted labels, as ``classify
train`` and ``classify run`` do. A retrain takes seconds to minutes (its predictions cover the
whole catalogue under the new model), longer than a request may last: the request starts it and
the page asks how it went. One retrain runs at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from tasks.classify.training import Evaluation


@dataclass(frozen=True)
class Retrained:
    """What a retrain changed: the cross-validated evaluation before (None: no classifier
    yet) and after, and how many files the new model labelled."""

    before: Evaluation | None
    after: Evaluation
    stored: bool
    predicted: int


@dataclass(frozen=True)
class RetrainState:
    """``idle`` (never asked), ``running``, ``done`` (with ``result``) or ``failed`` (``error``)."""

    status: str
    result: Retrained | None = None
    error: str | None = None


class RetrainJobs:
    """At most one retrain at a time, and the outcome of the last one per label set."""

    def __init__(self, retrain: Callable[[str], Retrained]) -> None:
        self._retrain = retrain
        self._lock = threading.Lock()
        self._states: dict[str, RetrainState] = {}
        self._thread: threading.Thread | None = None

    def state(self, name: str) -> RetrainState:
        with self._lock:
            return self._states.get(name, RetrainState("idle"))

    def start(self, name: str) -> RetrainState:
        """Start retraining ``name`` unless a retrain runs (of any set): its state now."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self._states.get(name, RetrainState("idle"))
            self._states[name] = RetrainState("running")
            self._thread = threading.Thread(
                target=self._run, args=(name,), name=f"retrain-{name}", daemon=True
            )
            self._thread.start()
            return self._states[name]

    def wait(self, timeout: float | None = None) -> None:
        """Until the running retrain ends (tests and shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, name: str) -> None:
        try:
            outcome = RetrainState("done", result=self._retrain(name))
        except Exception as error:  # reported to the page; the service goes on
            outcome = RetrainState("failed", error=str(error))
        with self._lock:
            self._states[name] = outcome
