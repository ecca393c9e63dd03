"""What to do with a batch that failed on a worker: retry, split or fail (pure).

A batch is tried up to ``max_attempts`` times; node trouble (a preempted or vanished node)
costs no attempt, but even that is bounded, at ``NODE_LOSS_TRIES_FACTOR`` times as many tries.
Then it is split in halves to isolate the molecule that fails: a half of several molecules
gets one try, a single molecule gets ``max_attempts``. A single molecule that still fails is
FAILED and dead-lettered.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

NODE_LOSS_TRIES_FACTOR = 3
"""A batch gets at most this many times its attempts in tries, node losses included."""


class Step(enum.StrEnum):
    """The next step for a batch: (another) try on a worker, a split, or the end."""

    TRY = "try"
    SPLIT = "split"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Tries:
    """A batch's record so far: tries made and how many of them spent an attempt."""

    attempts: int
    """Attempts this batch may spend."""
    tries: int = 0
    failures: int = 0

    def after(self, *, spent_attempt: bool) -> Tries:
        """The record after one more failed try."""
        return Tries(self.attempts, self.tries + 1, self.failures + int(spent_attempt))


def plan(tries: Tries, size: int) -> Step:
    """The next step for a batch of ``size`` molecules that has failed ``tries`` so far."""
    if tries.failures < tries.attempts and tries.tries < tries.attempts * NODE_LOSS_TRIES_FACTOR:
        return Step.TRY
    return Step.SPLIT if size > 1 else Step.FAIL


def halves(items: list[T], max_attempts: int) -> list[tuple[str, list[T], int]]:
    """The two parts of a split batch: (log suffix, items, attempts each may spend)."""
    half = len(items) // 2
    parts = (("a", items[:half]), ("b", items[half:]))
    return [(suffix, part, 1 if len(part) > 1 else max_attempts) for suffix, part in parts]
