"""The scaling loop: reads lag and capacity, asks the policy, acts on the pool and on Ray.

Every ``interval_s``: lag per partition (end offsets minus committed), the measured rate per
worker, start-up time and the pool's occupancy (batches waiting for a slot) go into
:func:`consumer.scaling.policy.decide`; the pool is resized to its answer and Ray's autoscaler is
told the bundles wanted so Spot nodes are provisioned and released: as this consumer's share
of the cluster's one request (:mod:`consumer.scaling.capacity`), which other consumers on the
cluster add to. Nodes that Ray marks DRAINING (a preemption notice) stop getting batches. Metrics
are reported through the hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Self

import structlog

from consumer.hooks import Hooks
from consumer.lifecycle import Lifecycle
from consumer.pool.replica_pool import ReplicaPool
from consumer.scaling.capacity import CapacityClient, new_consumer_id, share_ttl_s
from consumer.scaling.policy import PolicyConfig, PolicyState, ScalingContext, decide
from consumer.settings import ConsumerSettings
from consumer.state.throughput import Throughput

log = structlog.get_logger(__name__)

LagReader = Callable[[], Awaitable[dict[tuple[str, int], int]]]


def draining_node_ids(gcs_address: str, timeout_s: float = 5.0) -> set[str]:
    """Ids of the nodes Ray marks DRAINING (blocking; run it in a thread)."""
    from ray.autoscaler.v2.sdk import get_cluster_status

    status = get_cluster_status(gcs_address, timeout=int(max(1, timeout_s)))
    nodes = [*status.active_nodes, *status.idle_nodes]
    return {n.node_id for n in nodes if n.node_status == "DRAINING" and n.node_id}


class Autoscaler(Lifecycle):
    """Runs the scaling loop in a background task; ``start``/``stop`` idempotent."""

    def __init__(
        self,
        *,
        pool: ReplicaPool,
        config: PolicyConfig,
        read_lag: LagReader,
        throughput: Throughput,
        hooks: Hooks,
        interval_s: float,
        gcs_address: Callable[[], str | None],
        capacity: CapacityClient,
        clock: Callable[[], float],
    ) -> None:
        self._pool = pool
        self._config = config
        self._read_lag = read_lag
        self._throughput = throughput
        self._hooks = hooks
        self._interval_s = interval_s
        self._gcs_address = gcs_address
        self._capacity = capacity
        self._clock = clock
        self.state = PolicyState(desired=pool.target)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_settings(
        cls,
        settings: ConsumerSettings,
        *,
        pool: ReplicaPool,
        read_lag: LagReader,
        throughput: Throughput,
        hooks: Hooks,
        clock: Callable[[], float],
    ) -> Self:
        """The loop ``molstream consume`` runs, on the cluster this process is connected to."""
        return cls(
            pool=pool,
            config=PolicyConfig(
                min_workers=settings.min_workers,
                max_workers=settings.max_workers,
                target_drain_s=settings.target_drain_s,
                upscale_delay_s=settings.upscale_delay_s,
                downscale_delay_s=settings.downscale_delay_s,
                batch_size=settings.batch_size,
            ),
            read_lag=read_lag,
            throughput=throughput,
            hooks=hooks,
            interval_s=settings.autoscale_interval_s,
            gcs_address=gcs_address_of_current_ray,
            capacity=CapacityClient(
                new_consumer_id(settings.group_id),
                pool.bundle,
                ttl_s=share_ttl_s(settings.autoscale_interval_s),
            ),
            clock=clock,
        )

    async def start(self) -> None:
        """Start the loop (the first decision is taken at once)."""
        if self._task is None:
            await self._capacity.start()
            self._task = asyncio.create_task(self._scale_routine(), name="autoscale")

    async def stop(self) -> None:
        """Stop the loop and withdraw this consumer's share of the capacity request (Ray
        keeps it until told; the other consumers' shares stay); safe twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            try:  # bounded by the client's call timeout, even with the GCS gone
                await self._capacity.stop()
            except Exception as exc:  # Ray may be gone already; nothing left to release
                log.warning("could not withdraw the capacity request", error=_described(exc))

    async def _scale_routine(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad tick (broker or GCS away) must not stop scaling
                log.warning("autoscale tick failed", error=_described(exc))
            # Every tick, failed or not: a share not refreshed within its TTL is dropped, and
            # a restarted capacity actor learns it again.
            await self._request_capacity(self.state.desired)
            await asyncio.sleep(self._interval_s)

    async def tick(self) -> None:
        """Observe, decide, resize the pool; once (the capacity request follows each tick)."""
        lags = await self._read_lag()
        ctx = ScalingContext(
            now=self._clock(),
            lag=sum(lags.values()),
            rate_per_worker=self._throughput.rate_per_replica(),
            startup_s=self._pool.startup_s() or 0.0,
            completed_per_s=self._throughput.completed_per_s(),
            occupancy=self._pool.occupancy(),
        )
        previous = self.state.desired
        self.state = decide(ctx, self.state, self._config)
        if self.state.desired != previous:
            log.info(
                "pool resized",
                desired=self.state.desired,
                previous=previous,
                lag=ctx.lag,
                rate_per_worker=ctx.rate_per_worker,
                busy_slots=ctx.occupancy.busy_slots,
                waiting_batches=ctx.occupancy.waiting,
            )
        self._pool.resize(self.state.desired)
        await self._drain_preempted()
        counts = {state.value: n for state, n in self._pool.counts().items()}
        self._hooks.pool_state(counts, self.state.desired, self._pool.worker_seconds())

    async def _request_capacity(self, desired: int) -> None:
        try:
            await self._capacity.request(desired)
        except Exception as exc:  # the actor restarting or the GCS away: sent again next tick
            log.warning("capacity request failed", desired=desired, error=_described(exc))

    async def _drain_preempted(self) -> None:
        address = self._gcs_address()
        if not address:
            return
        draining = await asyncio.to_thread(draining_node_ids, address)
        if draining:
            self._pool.drain_nodes(draining)


def _described(exc: BaseException) -> str:
    # A timeout's message is empty: the type says what happened.
    return f"{type(exc).__name__}: {exc}"


def gcs_address_of_current_ray() -> str | None:
    """The GCS address of the Ray cluster this process is connected to."""
    import ray

    if not ray.is_initialized():
        return None
    address: Any = ray.get_runtime_context().gcs_address
    return str(address) if address else None
