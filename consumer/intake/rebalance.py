"""The rebalance listener: a revoke finishes what replicas compute, commits, forgets the rest.

A revoke runs inside the rebalance, which waits at most ``--rebalance-timeout-s`` for this
member: batches no replica has started are withdrawn at once (never produced, so the new
owner's re-read duplicates nothing), the running ones finish within ``--shutdown-timeout-s``
and are committed. Each revoked partition's state is one object, dropped at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from aiokafka import ConsumerRebalanceListener, TopicPartition

from consumer.dispatch import Dispatcher
from consumer.hooks import Hooks
from consumer.intake.commits import Committer
from consumer.intake.fetch_loop import Intake
from consumer.state.ledger import Ledger

log = structlog.get_logger(__name__)


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's callbacks, for one consumer's intake, dispatch and commits."""

    def __init__(
        self,
        *,
        intake: Intake,
        dispatcher: Dispatcher,
        committer: Committer,
        ledger: Ledger,
        hooks: Hooks,
        drain_timeout_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._intake = intake
        self._dispatcher = dispatcher
        self._committer = committer
        self._ledger = ledger
        self._hooks = hooks
        self._drain_timeout_s = drain_timeout_s
        self._clock = clock
        self.revokes = 0
        """Rebalances that took partitions from this consumer."""

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Withdraw, drain (bounded), commit, forget."""
        revoked = set(revoked)
        if not revoked:
            return
        started = self._clock()
        dropped = self._intake.drop_batched(revoked)
        withdrawn = await self._dispatcher.drain(self._drain_timeout_s, revoked)
        try:  # a refused commit is raised (it ends the process): forget them all the same
            await self._committer.commit(revoked)
        finally:
            self._ledger.forget(revoked)
            self.revokes += 1
            self._hooks.revoked(sorted((tp.topic, tp.partition) for tp in revoked))
        log.info(
            "partitions revoked",
            partitions=sorted(str(tp) for tp in revoked),
            dropped_undispatched=dropped,
            withdrawn=withdrawn,
            took_s=round(self._clock() - started, 3),
        )

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """New partitions start paused while the in-flight window is full."""
        self._intake.pause_if_full(set(assigned))
        log.info("partitions assigned", partitions=sorted(str(tp) for tp in assigned))
