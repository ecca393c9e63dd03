"""Throughput, measured in one place: what the autoscaler reads of the pipeline.

Per-replica rate (molecules/s while computing, from each batch) and the rate at which
records complete (from the ledger's count, between two reads).
"""

from __future__ import annotations

from collections.abc import Callable

from consumer.state.ewma import Ewma


class Throughput:
    """Rates of the pipeline; ``completed`` reads the ledger's running count."""

    def __init__(
        self, *, completed: Callable[[], int], clock: Callable[[], float], slots: int = 1
    ) -> None:
        self._completed = completed
        self._slots = slots
        self._clock = clock
        self._per_replica = Ewma()
        self._completion = Ewma(alpha=0.3)
        self._last: tuple[float, int] | None = None

    def batch_done(self, size: int, elapsed_s: float) -> None:
        """A replica computed ``size`` molecules in ``elapsed_s``."""
        if elapsed_s > 0:
            self._per_replica.update(size / elapsed_s)

    def rate_per_replica(self) -> float | None:
        """Smoothed molecules/s of one replica while it computes (None before a batch): a
        slot's rate times the slots, which run in parallel (what concurrency is for)."""
        rate = self._per_replica.value
        return None if rate is None else rate * self._slots

    def completed_per_s(self) -> float:
        """Smoothed records completed per second since the previous call."""
        now, done = self._clock(), self._completed()
        if self._last is not None and now > self._last[0]:
            then, done_then = self._last
            self._completion.update((done - done_then) / (now - then))
        self._last = (now, done)
        return self._completion.value or 0.0
