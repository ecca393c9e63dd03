"""The pool of model workers: Ray actors that join as Ray places them.

States: deploying → ready ⇄ busy → (dead | draining → stopped). Ready workers wait in an
``asyncio.Queue``; a batch takes the first ready one, so work starts on the first worker Ray
places and spreads to each one that arrives later. The pool keeps ``target`` workers alive:
a lost worker is replaced in the background, where capacity exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

import ray
import structlog
from ray.exceptions import ActorUnavailableError, RayActorError, RayError, RayTaskError

from consumer.errors import BatchFailedError, WorkerLostError
from consumer.models import ModelResult
from consumer.policy import Ewma
from consumer.worker import ModelWorker, WorkerInfo

log = structlog.get_logger(__name__)

_deploy_ids = itertools.count(1)


class WorkerState(enum.StrEnum):
    """Life of a worker in the pool."""

    DEPLOYING = "deploying"
    READY = "ready"
    BUSY = "busy"
    DRAINING = "draining"
    STOPPED = "stopped"
    DEAD = "dead"


_GONE = (WorkerState.STOPPED, WorkerState.DEAD)


@dataclass(eq=False)
class Worker:
    """One actor and what the pool knows of it."""

    name: str
    handle: Any
    created_at: float
    state: WorkerState = WorkerState.DEPLOYING
    info: WorkerInfo | None = None
    ended_at: float | None = None
    holding: tuple[tuple[str, int, int], ...] = ()
    """The in-flight ledger: (topic, partition, offset) of the batch this worker holds."""
    ready_task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def node_id(self) -> str | None:
        """The Ray node the worker runs on, once placed."""
        return self.info.node_id if self.info else None


@dataclass(frozen=True, slots=True)
class ActorOptions:
    """Resources each worker reserves from Ray."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    resources: dict[str, float] = field(default_factory=dict)

    def bundle(self) -> dict[str, float]:
        """The resource bundle of one worker, as the autoscaler counts it."""
        bundle = {"CPU": self.num_cpus, **self.resources}
        if self.num_gpus:
            bundle["GPU"] = self.num_gpus
        return {k: v for k, v in bundle.items() if v}


class WorkerPool:
    """Deploys, hands out, replaces and stops model workers."""

    def __init__(
        self,
        *,
        model: str,
        model_options: dict[str, str],
        actor_options: ActorOptions,
        target: int,
        on_failure: Callable[[str], None] = lambda reason: None,
        on_ready: Callable[[WorkerInfo], None] = lambda info: None,
        deploy_retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._model = model
        self._model_options = model_options
        self._actor_options = actor_options
        self._target = target
        self._on_failure = on_failure
        self._on_ready = on_ready
        self._deploy_retry_s = deploy_retry_s
        self._clock = clock
        self._workers: list[Worker] = []
        self._ready: asyncio.Queue[Worker] = asyncio.Queue()
        self._ended_seconds = 0.0
        self._started = False
        self._deploy_failures = 0
        self._startup = Ewma()

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
            self._end(worker, WorkerState.STOPPED)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def bundle(self) -> dict[str, float]:
        """Resources of one worker, as Ray's autoscaler counts them."""
        return self._actor_options.bundle()

    @property
    def target(self) -> int:
        """How many workers the pool keeps alive."""
        return self._target

    def resize(self, target: int) -> None:
        """Set the number of workers: deploy more, or cancel deploying ones first, idle next."""
        self._target = max(0, target)
        self._reconcile()

    def counts(self) -> Counter[WorkerState]:
        """Workers by state (dead and stopped ones are forgotten)."""
        return Counter(w.state for w in self._workers)

    def workers(self) -> list[Worker]:
        """The live workers."""
        return list(self._workers)

    def startup_s(self) -> float | None:
        """Smoothed time from deploying a worker to its being ready (None before one was)."""
        return self._startup.value

    def worker_seconds(self) -> float:
        """Total time every worker existed, deploying included: the cost of the pool."""
        now = self._clock()
        return self._ended_seconds + sum(now - w.created_at for w in self._workers)

    async def acquire(self) -> Worker:
        """Wait for a ready worker and mark it busy."""
        while True:
            worker = await self._ready.get()
            if worker.state is WorkerState.READY:
                worker.state = WorkerState.BUSY
                return worker

    def release(self, worker: Worker) -> None:
        """Give a worker back after a batch; a draining or surplus one is stopped instead."""
        worker.holding = ()
        if worker.state is WorkerState.DRAINING:
            self._end(worker, WorkerState.STOPPED)
            return
        if worker.state is not WorkerState.BUSY:
            return
        if self._alive() > self._target:
            self._end(worker, WorkerState.STOPPED)
            return
        worker.state = WorkerState.READY
        self._ready.put_nowait(worker)

    async def predict(
        self, worker: Worker, smiles: list[str], *, timeout_s: float
    ) -> list[ModelResult]:
        """Run one batch on a busy worker. The caller releases it afterwards.

        Raises :class:`WorkerLostError` (the worker is gone and already replaced) or
        :class:`BatchFailedError` (the model raised; the worker is fine).
        """
        ref = worker.handle.predict.remote(smiles)
        try:
            results: list[ModelResult] = await asyncio.wait_for(_await_ref(ref), timeout_s)
        except TimeoutError:
            self.lose(worker, "timeout")
            raise WorkerLostError(worker.name, "timeout", f"no answer in {timeout_s:g} s") from None
        except RayTaskError as exc:
            raise BatchFailedError(f"model raised: {exc.cause!r}") from exc
        except RayActorError as exc:
            reason = _loss_reason(worker, exc)
            self.lose(worker, reason)
            raise WorkerLostError(worker.name, reason, type(exc).__name__) from exc
        except RayError as exc:
            self.lose(worker, "ray_error")
            raise WorkerLostError(worker.name, "ray_error", f"{type(exc).__name__}: {exc}") from exc
        return results

    def lose(self, worker: Worker, reason: str) -> None:
        """Drop a worker that died or hung, and deploy a replacement in the background."""
        if worker.state in _GONE:
            return
        log.warning("worker lost", worker=worker.name, node=worker.node_id, reason=reason)
        self._on_failure(reason)
        self._end(worker, WorkerState.DEAD)
        self._reconcile()

    def drain_nodes(self, node_ids: Iterable[str]) -> None:
        """Stop giving batches to workers on these nodes (a preemption notice).

        Idle ones stop now, busy ones after their batch; replacements deploy elsewhere.
        """
        nodes = set(node_ids)
        drained = False
        for worker in list(self._workers):
            if worker.node_id in nodes and worker.state in (WorkerState.READY, WorkerState.BUSY):
                drained = True
                if worker.state is WorkerState.READY:
                    self._end(worker, WorkerState.STOPPED)
                else:
                    worker.state = WorkerState.DRAINING
                log.info("worker draining", worker=worker.name, node=worker.node_id)
        if drained:
            self._reconcile()

    def _alive(self) -> int:
        return sum(1 for w in self._workers if w.state is not WorkerState.DRAINING)

    def _reconcile(self) -> None:
        if not self._started:
            return
        surplus = self._alive() - self._target
        if surplus < 0:
            for _ in range(-surplus):
                self._deploy()
            return
        # Too many: deploying ones first (they cost without working), then idle ones.
        for state in (WorkerState.DEPLOYING, WorkerState.READY):
            for worker in [w for w in reversed(self._workers) if w.state is state]:
                if surplus == 0:
                    return
                self._end(worker, WorkerState.STOPPED)
                surplus -= 1

    def _deploy(self) -> None:
        opts = self._actor_options
        actor_cls = ray.remote(ModelWorker).options(
            num_cpus=opts.num_cpus,
            num_gpus=opts.num_gpus,
            resources=opts.resources or None,
            max_restarts=0,
            max_task_retries=0,
        )
        worker = Worker(
            name=f"worker-{next(_deploy_ids)}",
            handle=actor_cls.remote(self._model, self._model_options),
            created_at=self._clock(),
        )
        self._workers.append(worker)
        worker.ready_task = asyncio.create_task(self._ready_routine(worker), name=worker.name)

    async def _ready_routine(self, worker: Worker) -> None:
        try:
            info: WorkerInfo = await _await_ref(worker.handle.info.remote())
        except asyncio.CancelledError:
            raise
        except RayError as exc:
            if worker.state in _GONE:
                return
            self._deploy_failures += 1
            log.error("worker failed to start", worker=worker.name, error=str(exc)[:2000])
            self._on_failure("start_failed")
            self._end(worker, WorkerState.DEAD)
            # Back off so a model that cannot load does not spin the cluster.
            await asyncio.sleep(
                min(30.0, self._deploy_retry_s * 2 ** min(self._deploy_failures, 5))
            )
            self._reconcile()
            return
        if worker.state is not WorkerState.DEPLOYING:
            return
        self._deploy_failures = 0
        self._startup.update(self._clock() - worker.created_at)
        worker.info = info
        worker.state = WorkerState.READY
        log.info(
            "worker ready",
            worker=worker.name,
            node=info.node_id,
            pid=info.pid,
            after_s=round(self._clock() - worker.created_at, 3),
        )
        self._on_ready(info)
        self._ready.put_nowait(worker)

    def _end(self, worker: Worker, state: WorkerState) -> None:
        if worker.state in _GONE:
            return
        worker.state = state
        worker.ended_at = self._clock()
        self._ended_seconds += worker.ended_at - worker.created_at
        self._workers.remove(worker)
        task = worker.ready_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
        with contextlib.suppress(Exception):
            ray.kill(worker.handle, no_restart=True)


async def _await_ref(ref: Any) -> Any:
    return await ref


def _loss_reason(worker: Worker, exc: RayActorError) -> str:
    """Why a worker is gone: ``preempted`` (its node was draining or Ray says so),
    ``unavailable`` (its node stopped answering, the first sign of a lost node) or ``died``."""
    if worker.state is WorkerState.DRAINING or getattr(exc, "preempted", False):
        return "preempted"
    if isinstance(exc, ActorUnavailableError):
        return "unavailable"
    return "died"
