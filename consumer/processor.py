"""The stream processor: fetch → batch → replica (decode, model, encode) → produce → commit.

Offsets are committed only after the outputs of their records are acknowledged, so a lost
replica, node or consumer loses nothing (at-least-once). Memory stays flat at any lag: at most
``max_in_flight`` molecules are fetched and not yet done; at the bound, fetching pauses.

Each step is its own object, in the order the data flows:
:class:`~consumer.intake.fetch_loop.Intake`,
:class:`~consumer.dispatch.Dispatcher` (over the :class:`~consumer.pool.replica_pool.ReplicaPool`),
:class:`~consumer.sink.publish.Sink`, :class:`~consumer.intake.commits.Committer`; the
:class:`~consumer.state.ledger.Ledger` is their shared book. This class only wires and runs them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from aiokafka import TopicPartition

from consumer.hooks import Hooks
from consumer.intake.group_client import group_consumer, until_connected
from consumer.lifecycle import Lifecycle
from consumer.models import resolve_model_class
from consumer.ops.health import Health
from consumer.pipeline import Pipeline, Wiring
from consumer.pool import ray_runtime
from consumer.pool.ray_watchdog import RayWatchdog
from consumer.pool.replica import ReplicaState
from consumer.scaling.autoscaler import Autoscaler
from consumer.settings import ConsumerSettings
from consumer.state.jobs import log_crash
from schemas.registry import subject_of

log = structlog.get_logger(__name__)


class StreamProcessor(Lifecycle):
    """``molstream consume`` as an object: ``start``, ``stop`` (safe twice), ``async with``."""

    def __init__(
        self,
        settings: ConsumerSettings,
        *,
        hooks: Hooks | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.hooks = hooks = hooks or Hooks()
        self._clock = clock
        self._started = False
        self._ray_owned = False
        self._routines: list[asyncio.Task[None]] = []
        wiring = Wiring.for_settings(
            settings, consumer=lambda: self.consumer, hooks=hooks, clock=clock
        )
        self.ledger = wiring.ledger
        self.pool = wiring.pool
        self.registry = wiring.registry
        self.output = wiring.output
        self.throughput = wiring.throughput
        self.tracer = wiring.tracer
        self.ray_watchdog = RayWatchdog(settings.ray_timeout_s, on_error=hooks.ray_head_error)
        self.consumer = group_consumer(settings)
        self.pipeline = Pipeline.build(wiring)
        self.autoscaler = Autoscaler.for_settings(
            settings,
            pool=self.pool,
            read_lag=self.pipeline.lag_reader.lag,
            throughput=self.throughput,
            hooks=hooks,
            clock=clock,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the model, join Ray, start the pool, connect to Kafka, start the routines."""
        if self._started:
            return
        resolve_model_class(self.settings.model)  # fail fast on a typo, before any I/O
        self._started = True
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        # Ray installs signal handlers from the main thread only, so connect here, blocking.
        s = self.settings
        self._ray_owned = ray_runtime.connect(s.ray_address, s.ray_node_ip, s.ray_auth_token_file)
        await self.pool.start()
        if self.registry is not None:  # waits (retrying) while the registry is away
            await self.registry.start()
            await self.registry.prime(subject_of(self.settings.input_topic))
        await self._until_connected("producer", self.output.start)
        await self._until_connected("consumer", self._start_consumer)
        self.consumer.subscribe([self.settings.input_topic], listener=self.pipeline.listener)
        await self.autoscaler.start()
        self._routines = [
            asyncio.create_task(self.pipeline.intake.fetch_routine(), name="fetch"),
            asyncio.create_task(self.pipeline.committer.commit_routine(), name="commit"),
            asyncio.create_task(self.ray_watchdog.watch(), name="ray-watchdog"),
            asyncio.create_task(self.output.refused(), name="output"),  # write refused: exit
        ]
        token_provider = self.settings.kafka_token_provider()
        if token_provider is not None:  # a token refused on a reconnect: exit
            self._routines.append(asyncio.create_task(token_provider.refused(), name="token"))
        if self.registry is not None:  # credentials refused for a record's schema: exit
            self._routines.append(asyncio.create_task(self.registry.refused(), name="registry"))
        for routine in self._routines:
            routine.add_done_callback(log_crash)
        log.info(
            "consumer started",
            topic=self.settings.input_topic,
            group=self.settings.group_id,
            workers=self.pool.target,
        )

    async def _start_consumer(self) -> None:
        # Subscribe after start (by the caller): start() then returns once connected, not
        # after the first group join, which may take longer than a broker call should.
        try:
            async with asyncio.timeout(self.settings.broker_timeout_s):
                await self.consumer.start()
        except BaseException:
            await self.consumer.stop()
            self.consumer = group_consumer(self.settings)  # a stopped one cannot start again
            raise

    async def _until_connected(self, what: str, connect: Callable[[], Awaitable[None]]) -> None:
        def alive() -> None:  # retrying to connect is alive, not hung
            self.pipeline.intake.last_poll = self._clock()

        await until_connected(
            what,
            connect,
            kafka=self.settings,
            on_error=self.hooks.broker_error,
            on_attempt=alive,
        )

    async def stop(self) -> None:
        """Graceful shutdown, in this order (each step bounded):

        1. stop fetching: nothing new enters, so the drain below can finish;
        2. withdraw the batches no replica has started (never produced: the next owner reads
           them again) and wait for the ones running, up to ``shutdown_timeout_s``: finished
           work is committed, not redone by the next owner;
        3. flush the producer: every prediction sent is acknowledged before its commit;
        4. commit: the next owner starts right after the last finished record (no duplicates);
        5. leave the group: partitions move to the remaining consumers at once;
        6. stop the replicas and leave Ray last: nothing needs them any more.

        With the Ray head lost, steps 2 and 6 are skipped: no batch can finish and Ray calls
        would hang until Ray aborts the process.
        """
        if not self._started:
            return
        self._started = False
        ray_lost = self.ray_watchdog.lost
        if not ray_lost:
            await self.autoscaler.stop()  # 0. no resizing while the pool drains
        routines, self._routines = self._routines, []
        for task in routines[:1]:  # the fetch routine
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.pipeline.intake.drop_batched()
        await self.pipeline.dispatcher.drain(0.0 if ray_lost else self.settings.shutdown_timeout_s)
        for task in routines[1:]:
            task.cancel()
        await asyncio.gather(*routines[1:], return_exceptions=True)
        await self.output.stop()
        try:  # a refused commit ends the process, but only once the rest is shut down too
            await self.pipeline.committer.commit()
        finally:
            await self._after_commit(ray_lost)

    async def _after_commit(self, ray_lost: bool) -> None:
        """Steps 5 and 6 of :meth:`stop`."""
        await self._leave_group()
        if self.tracer is not None:  # bounded by the exporter's timeout (OTEL_*_TIMEOUT)
            await asyncio.to_thread(self.tracer.shutdown)
        if self.registry is not None:
            await self.registry.stop()
        if ray_lost:
            log.error("stopped without the Ray cluster", in_flight=self.ledger.in_flight)
            return
        await self.pool.stop()
        if self._ray_owned:
            await asyncio.to_thread(ray_runtime.disconnect)
        log.info("consumer stopped", in_flight=self.ledger.in_flight)

    async def _leave_group(self) -> None:
        try:
            async with asyncio.timeout(self.settings.broker_timeout_s):
                await self.consumer.stop()
        except TimeoutError:
            log.warning("consumer did not leave the group in time")

    async def run_until(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set; re-raises if a routine died (after shutting down)."""
        waiter = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([waiter, *self._routines], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        crashed = [t for t in self._routines if t.done() and not t.cancelled() and t.exception()]
        log.info("shutting down", reason="stop requested" if stop.is_set() else "routine failed")
        if crashed:
            await self.stop()
            raise crashed[0].exception()  # type: ignore[misc]

    # -- what it tells -----------------------------------------------------------------------

    def health(self) -> Health:
        """Liveness and readiness as the health endpoints report them."""
        counts = self.pool.counts()
        return Health(
            polled_s_ago=self._clock() - self.pipeline.intake.last_poll,
            assigned=bool(self._started and self.consumer.assignment()),
            workers=sum(n for state, n in counts.items() if state is not ReplicaState.DRAINING),
            scaled_to_zero=self.pool.target == 0,
            ray_head=self.ray_watchdog.state,
            ray_answered_s_ago=self.ray_watchdog.answered_s_ago(),
        )

    @property
    def committed(self) -> dict[TopicPartition, int]:
        """Offsets this consumer committed last, per partition."""
        return self.pipeline.committer.committed()

    @property
    def revokes(self) -> int:
        """Rebalances that took partitions from this consumer."""
        return self.pipeline.listener.revokes
