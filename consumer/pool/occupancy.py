"""How full the pool is: what the scaling policy reads of it (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Occupancy:
    """The pool's slots at one moment: those computing a batch, and batches waiting for one."""

    busy_slots: int = 0
    waiting: int = 0
    slots_per_worker: int = 1

    def workers(self) -> int:
        """Workers the batches on a slot or waiting for one fill, when some wait (every
        slot is taken); 0 when none waits. Each is a batch of real work, so this is capped
        by the work whatever the lag reads: a stuck worker's batch and the batches queued
        behind it ask for workers even before any batch completed."""
        if self.waiting <= 0:
            return 0
        return math.ceil((max(self.busy_slots, 0) + self.waiting) / max(self.slots_per_worker, 1))
