"""The free slots of a pool's replicas, and the batches waiting for one.

One entry per free slot. A batch takes a slot of the least busy replica among the free ones
(the first freed of those), so work starts on the first replica Ray places and spreads to each
one that arrives later, and batches taken together (the parts of a split batch) go to
different replicas when several have a free slot, even with several slots each. Entries of a
replica gone or draining since are stale and dropped. How many batches wait tells the
autoscaler that work is queued behind busy workers, whatever the lag reads.
"""

from __future__ import annotations

import asyncio

from consumer.pool.replica import Replica, ReplicaState

LOOKAHEAD = 64
"""Free slots compared per take, at most: a bound on the work of a take in an idle big pool."""


class Slots:
    """Free slots (one entry each) and a count of the batches waiting for one."""

    def __init__(self) -> None:
        self._free: asyncio.Queue[Replica] = asyncio.Queue()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Batches waiting for a free slot now."""
        return self._waiting

    def put(self, replica: Replica) -> None:
        """One slot of ``replica`` is free."""
        self._free.put_nowait(replica)

    async def take(self) -> Replica:
        """Wait for a free slot of a ready or busy replica and take the least busy one's."""
        self._waiting += 1
        try:
            while True:
                free = [await self._free.get()]
                while not self._free.empty() and len(free) < LOOKAHEAD:
                    free.append(self._free.get_nowait())
                live = [r for r in free if r.state in (ReplicaState.READY, ReplicaState.BUSY)]
                if not live:
                    continue
                replica = min(live, key=lambda r: r.busy)  # the first freed of the least busy
                live.remove(replica)
                for other in live:
                    self._free.put_nowait(other)
                replica.busy += 1
                replica.state = ReplicaState.BUSY
                return replica
        finally:
            self._waiting -= 1
