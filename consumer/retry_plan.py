"""What to do with a batch that failed on a worker: retry, split or fail (pure).

A batch is tried up to ``max_attempts`` times; node trouble (a preempted or vanished node)
costs no attempt, but even that is bounded, at ``NODE_LOSS_TRIES_FACTOR`` times as many tries.
Then it is split in halves to isolate the molecule that fails: a part of several molecules
gets one try, a single molecule gets ``max_attempts``. A single molecule that still fails is
FAILED and dead-lettered. A batch that timed out is split at once, in quarters: another try
at the same size would hold a worker for another whole timeout, likely on the same hanging
molecule, and the molecules beside it would wait for each try.
"""

from __future__ import annotations

import enum
import itertools
import string
from dataclasses import dataclass
from typing import TypeVar

from consumer.reasons import LossReason

T = TypeVar("T")

NODE_LOSS_TRIES_FACTOR = 3
"""A batch gets at most this many times its attempts in tries, node losses included."""

TIMEOUT_SPLIT_PARTS = 4
"""A batch that timed out is split in this many parts, not two: each level of the split costs
its hanging part another whole ``--batch-timeout-s``, and the molecules sharing that part wait
for it (64 molecules: 3 levels, not 6); the parts run at once, on different workers."""


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
    timed_out: bool = False
    """The last try ran out of ``--batch-timeout-s``."""

    def after(self, *, spent_attempt: bool, reason: LossReason | None = None) -> Tries:
        """The record after one more failed try (``reason``: its worker was lost so)."""
        return Tries(
            self.attempts,
            self.tries + 1,
            self.failures + int(spent_attempt),
            timed_out=reason is LossReason.TIMEOUT,
        )


def plan(tries: Tries, size: int) -> Step:
    """The next step for a batch of ``size`` molecules that has failed ``tries`` so far."""
    if tries.timed_out and size > 1:
        return Step.SPLIT
    if tries.failures < tries.attempts and tries.tries < tries.attempts * NODE_LOSS_TRIES_FACTOR:
        return Step.TRY
    return Step.SPLIT if size > 1 else Step.FAIL


def parts(items: list[T], tries: Tries, max_attempts: int) -> list[tuple[str, list[T], int]]:
    """The parts of a batch split after ``tries``: (log suffix, items, attempts each may
    spend), in order. Halves, or :data:`TIMEOUT_SPLIT_PARTS` parts after a timeout."""
    count = max(1, min(TIMEOUT_SPLIT_PARTS if tries.timed_out else 2, len(items)))
    bounds = [len(items) * i // count for i in range(count + 1)]
    chunks = [items[start:end] for start, end in itertools.pairwise(bounds)]
    return [
        (string.ascii_lowercase[i], chunk, 1 if len(chunk) > 1 else max_attempts)
        for i, chunk in enumerate(chunks)
    ]
