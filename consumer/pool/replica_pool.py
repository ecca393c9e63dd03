"""The pool of replicas: Ray actors holding the model, that join as Ray places them.

States: deploying → ready ⇄ busy → (dead | draining → stopped). A replica has ``slots``
(``--worker-concurrency``): batches it computes at once; free ones wait in
:class:`~consumer.pool.slots.Slots`, taken first come first served. The pool keeps
``target`` replicas alive: a lost one is replaced in the background, where capacity exists.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable

import structlog

from consumer.errors import WorkerLostError
from consumer.lifecycle import Lifecycle
from consumer.ops_settings import tracing_env
from consumer.pool.deployer import Deployer
from consumer.pool.model_actor import WorkerInfo
from consumer.pool.occupancy import Occupancy
from consumer.pool.replica import (
    GONE,
    ActorOptions,
    ActorSpec,
    Lifetimes,
    Replica,
    ReplicaState,
    call_process,
    kill,
)
from consumer.pool.slots import Slots
from consumer.reasons import LossReason
from consumer.settings import ConsumerSettings
from consumer.state.work_messages import WorkRequest, WorkResult

log = structlog.get_logger(__name__)


class ReplicaPool(Lifecycle):
    """Deploys, hands out, replaces and stops replicas."""

    def __init__(
        self,
        *,
        model: str,
        model_options: dict[str, str],
        actor_options: ActorOptions,
        target: int,
        concurrency: int = 1,
        tracing_env: dict[str, str] | None = None,
        on_failure: Callable[[LossReason], None] = lambda reason: None,
        on_ready: Callable[[WorkerInfo], None] = lambda info: None,
        deploy_retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spec = ActorSpec(model, model_options, actor_options, concurrency, tracing_env)
        self._target = target
        self._on_failure = on_failure
        self._on_ready = on_ready
        self._workers: list[Replica] = []
        self._slots = Slots()
        self._lifetimes = Lifetimes(clock)
        self._started = False
        self._deployer = Deployer(
            self._spec,
            on_ready=self._joined,
            on_failed=self._failed_to_start,
            on_retry=self._reconcile,
            retry_s=deploy_retry_s,
            clock=clock,
        )

    async def start(self) -> None:
        """Deploy the initial workers; returns at once (they join as Ray places them)."""
        if self._started:
            return
        self._started = True
        self._reconcile()

    async def stop(self) -> None:
        """Kill every actor this pool created; safe to call twice."""
        if not self._started:
            return
        self._started = False
        for worker in list(self._workers):
            self._end(worker, ReplicaState.STOPPED)

    @property
    def bundle(self) -> dict[str, float]:
        """Resources of one worker, as Ray's autoscaler counts them."""
        return self._spec.actor_options.bundle()

    @property
    def target(self) -> int:
        """How many workers the pool keeps alive."""
        return self._target

    def resize(self, target: int) -> None:
        """Set the number of workers: deploy more, or cancel deploying ones first, idle next."""
        self._target = max(0, target)
        self._reconcile()

    def counts(self) -> Counter[ReplicaState]:
        """Workers by state (dead and stopped ones are forgotten)."""
        return Counter(w.state for w in self._workers)

    def workers(self) -> list[Replica]:
        """The live workers."""
        return list(self._workers)

    def startup_s(self) -> float | None:
        """Smoothed time from deploying a replica to its being ready (None before one was)."""
        return self._lifetimes.startup_s()

    def worker_seconds(self) -> float:
        """Total time every replica existed, deploying included: the cost of the pool."""
        return self._lifetimes.worker_seconds(self._workers)

    async def acquire(self) -> Replica:
        """Wait for a free slot of a ready or busy replica and take it."""
        return await self._slots.take()

    def occupancy(self) -> Occupancy:
        """Slots computing a batch now, and batches waiting for a free one."""
        busy = sum(w.busy for w in self._workers)
        return Occupancy(busy, self._slots.waiting, self._spec.concurrency)

    def release(self, worker: Replica) -> None:
        """Give a slot back after a batch; a draining or surplus replica stops once idle."""
        if worker.state in GONE:
            return
        worker.busy -= 1
        surplus = len(self._workers) > self._target and self._alive() > self._target
        if worker.state is ReplicaState.BUSY and surplus:
            worker.state = ReplicaState.DRAINING
        if worker.state is ReplicaState.DRAINING:
            if worker.busy == 0:
                self._end(worker, ReplicaState.STOPPED)
            return
        if worker.busy == 0:
            worker.state = ReplicaState.READY
        self._slots.put(worker)

    async def process(
        self, replica: Replica, request: WorkRequest, *, timeout_s: float
    ) -> WorkResult:
        """Run one batch on a slot of ``replica`` (released by the caller); raises what
        :func:`~consumer.pool.replica.call_process` raises, a lost replica already replaced."""
        try:
            return await call_process(replica, request, timeout_s)
        except WorkerLostError as exc:
            self.lose(replica, exc.reason)
            raise

    def lose(self, worker: Replica, reason: LossReason) -> None:
        """Drop a worker that died or hung, and deploy a replacement in the background."""
        if worker.state in GONE:
            return
        log.warning("worker lost", worker=worker.name, node=worker.node_id, reason=reason)
        self._on_failure(reason)
        self._end(worker, ReplicaState.DEAD)
        self._reconcile()

    def drain_nodes(self, node_ids: Iterable[str]) -> None:
        """Stop giving batches to workers on these nodes (a preemption notice).

        Idle ones stop now, busy ones after their batch; replacements deploy elsewhere.
        """
        nodes = set(node_ids)
        on_them = [w for w in self._workers if w.node_id in nodes]
        drained = [w for w in on_them if w.state in (ReplicaState.READY, ReplicaState.BUSY)]
        for worker in drained:
            log.info("worker draining", worker=worker.name, node=worker.node_id)
            if worker.state is ReplicaState.READY:
                self._end(worker, ReplicaState.STOPPED)
            else:
                worker.state = ReplicaState.DRAINING
        if drained:
            self._reconcile()

    def _alive(self) -> int:
        return sum(1 for w in self._workers if w.state is not ReplicaState.DRAINING)

    def _reconcile(self) -> None:
        if not self._started:
            return
        surplus = self._alive() - self._target
        if surplus < 0:
            for _ in range(-surplus):
                self._deploy()
            return
        # Too many: deploying ones first (they cost without working), then idle ones.
        for state in (ReplicaState.DEPLOYING, ReplicaState.READY):
            for worker in [w for w in reversed(self._workers) if w.state is state]:
                if surplus == 0:
                    return
                self._end(worker, ReplicaState.STOPPED)
                surplus -= 1

    def _deploy(self) -> None:
        self._workers.append(self._deployer.deploy())

    def _joined(self, worker: Replica, info: WorkerInfo) -> None:
        after_s = round(self._lifetimes.ready(worker), 3)
        worker.info = info
        worker.state = ReplicaState.READY
        log.info(
            "worker ready", worker=worker.name, node=info.node_id, pid=info.pid, after_s=after_s
        )
        self._on_ready(info)
        for _ in range(worker.slots):
            self._slots.put(worker)

    def _failed_to_start(self, worker: Replica) -> None:
        self._on_failure(LossReason.START_FAILED)
        self._end(worker, ReplicaState.DEAD)

    def _end(self, worker: Replica, state: ReplicaState) -> None:
        if worker.state in GONE:
            return
        worker.state = state
        self._lifetimes.ended(worker)
        self._workers.remove(worker)
        task = worker.ready_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
        kill(worker)


def pool_for(
    settings: ConsumerSettings,
    *,
    on_failure: Callable[[LossReason], None],
    on_ready: Callable[[WorkerInfo], None],
) -> ReplicaPool:
    """The pool ``molstream consume`` runs: its model, resources and smallest size."""
    return ReplicaPool(
        model=settings.model,
        model_options=settings.model_option,
        actor_options=ActorOptions(
            num_cpus=settings.worker_num_cpus,
            num_gpus=settings.worker_num_gpus,
            resources=settings.worker_resources,
        ),
        target=settings.min_workers,
        concurrency=settings.worker_concurrency,
        tracing_env=tracing_env(settings, os.environ),
        on_failure=on_failure,
        on_ready=on_ready,
    )
