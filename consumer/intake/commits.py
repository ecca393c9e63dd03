"""Commits and lag: what the group learns of our progress, and what is left to do.

Per partition the consumer commits the highest offset below which everything is done (the
ledger's partition states know it); the lag counts from the last commit, ours or the group's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from consumer import traced
from consumer.hooks import Hooks, PartitionLag
from consumer.state.ledger import Ledger
from schemas.kafka_refusals import is_refusal

if TYPE_CHECKING:
    from consumer.ops.tracing import Tracer

log = structlog.get_logger(__name__)


class Committer:
    """Commits done offsets every ``interval_s`` (routine) and on demand (revoke, stop)."""

    def __init__(
        self,
        *,
        consumer: Callable[[], AIOKafkaConsumer],
        ledger: Ledger,
        hooks: Hooks,
        interval_s: float,
        broker_timeout_s: float,
        tracer: Tracer | None = None,
    ) -> None:
        self._consumer = consumer
        self._ledger = ledger
        self._hooks = hooks
        self._interval_s = interval_s
        self._timeout_s = broker_timeout_s
        self._tracer = tracer

    async def commit_routine(self) -> None:
        """Commit what is done, every interval, until cancelled."""
        while True:
            await asyncio.sleep(self._interval_s)
            await self.commit()

    async def commit(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commit the done prefix of the assigned ``partitions`` (all when None); a failure is
        logged and counted, and the next commit tries again."""
        consumer = self._consumer()
        wanted = consumer.assignment() if partitions is None else set(partitions)
        states = {tp: self._ledger.partitions.get(tp) for tp in wanted & consumer.assignment()}
        offsets = {
            tp: offset
            for tp, state in states.items()
            if state is not None and (offset := state.to_commit()) is not None
        }
        if not offsets:
            return
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancel that
            # lands as the commit ends, and a shutdown would wait for this routine for good.
            async with asyncio.timeout(self._timeout_s):
                await traced.stage(self._tracer, "molstream.commit", consumer.commit(offsets))
        except (KafkaError, TimeoutError) as exc:
            if is_refusal(exc):  # the group's rights withdrawn: ends the process
                raise
            log.warning("commit failed, will retry", error=f"{type(exc).__name__}: {exc}")
            self._hooks.broker_error("commit")
            return
        moved = 0
        for tp, offset in offsets.items():
            state = self._ledger.state(tp)
            # A first commit counts from where this consumer took the partition up.
            since = state.committed if state.committed is not None else state.first_registered
            moved += offset - (since if since is not None else offset)
            state.committed = offset
        self._hooks.committed(moved)

    def committed(self) -> dict[TopicPartition, int]:
        """Offsets this consumer committed last, per partition it holds."""
        parts = self._ledger.partitions
        return {
            tp: state.committed
            for tp in parts.partitions()
            if (state := parts.state(tp)).committed is not None
        }


class LagReader:
    """Records not yet committed per assigned partition (in-flight ones included); the hooks
    get them too, with the age of each partition's oldest record not yet done."""

    def __init__(
        self,
        *,
        consumer: Callable[[], AIOKafkaConsumer],
        ledger: Ledger,
        hooks: Hooks,
        group: str,
        broker_timeout_s: float,
    ) -> None:
        self._consumer = consumer
        self._ledger = ledger
        self._hooks = hooks
        self._group = group
        self._timeout_s = broker_timeout_s

    async def lag(self) -> dict[tuple[str, int], int]:
        """End offset (the larger of ListOffsets and the last fetch's high watermark) minus
        the last commit, per assigned partition."""
        consumer = self._consumer()
        assigned = list(consumer.assignment())
        if not assigned:
            self._hooks.lag(self._group, {})
            return {}
        # asyncio.timeout, not wait_for, here as in Committer.commit: the autoscaler's stop
        # cancels this read, and Python 3.11's wait_for may swallow that cancel.
        async with asyncio.timeout(self._timeout_s):
            ends = await consumer.end_offsets(assigned)
        lags = {}
        for tp in assigned:
            state = self._ledger.state(tp)
            if state.committed is None and state.lag_base is None:
                state.lag_base = await self._group_offset(consumer, tp)
            base = state.committed if state.committed is not None else state.lag_base or 0
            # Some brokers (Tansu 0.6) answer ListOffsets with the last record batch's base
            # offset + 1, while their fetches report the right high watermark (None before
            # one); what we hold is lag all the same.
            end = max(ends[tp], consumer.highwater(tp) or 0)
            lags[(tp.topic, tp.partition)] = max(end - base, len(state.pending), 0)
        self._report(lags, consumer.assignment())  # a revoke may have come meanwhile
        return lags

    def _report(self, lags: dict[tuple[str, int], int], held: Iterable[TopicPartition]) -> None:
        now_s = time.time()
        snapshot = {}
        for tp in held:
            if (tp.topic, tp.partition) not in lags:
                continue
            oldest = self._ledger.partitions.oldest_pending(tp)
            age_s = 0.0 if oldest is None else max(0.0, now_s - oldest)
            snapshot[(tp.topic, tp.partition)] = PartitionLag(lags[(tp.topic, tp.partition)], age_s)
        self._hooks.lag(self._group, snapshot)

    async def _group_offset(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
        async with asyncio.timeout(self._timeout_s):
            committed = await consumer.committed(tp)
        if committed is None:
            async with asyncio.timeout(self._timeout_s):
                first = await consumer.beginning_offsets([tp])
            return int(first[tp])
        return int(committed)
