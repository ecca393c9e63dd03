"""Deploying replicas: each waits in the background until Ray placed it and its model loaded;
while replicas keep failing to start, the next deploy waits longer."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import structlog
from ray.exceptions import RayError

from consumer.pool.model_actor import WorkerInfo
from consumer.pool.replica import GONE, ActorSpec, Replica, ReplicaState, await_ref

log = structlog.get_logger(__name__)

_deploy_ids = itertools.count(1)


class Deployer:
    """Spawns replicas and reports each one as ready or failed to start."""

    def __init__(
        self,
        spec: ActorSpec,
        *,
        on_ready: Callable[[Replica, WorkerInfo], None],
        on_failed: Callable[[Replica], None],
        on_retry: Callable[[], None],
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spec = spec
        self._on_ready = on_ready
        self._on_failed = on_failed
        self._on_retry = on_retry
        self._retry_s = retry_s
        self._clock = clock
        self._failures = 0

    def deploy(self) -> Replica:
        """A new replica, deploying; ``on_ready`` or ``on_failed`` tells how it went."""
        worker = self._spec.spawn(f"worker-{next(_deploy_ids)}", self._clock())
        worker.ready_task = asyncio.create_task(self._ready_routine(worker), name=worker.name)
        return worker

    async def _ready_routine(self, worker: Replica) -> None:
        try:
            info: WorkerInfo = await await_ref(worker.handle.info.remote())
        except RayError as exc:
            if worker.state in GONE:
                return
            self._failures += 1
            log.error("worker failed to start", worker=worker.name, error=str(exc)[:2000])
            self._on_failed(worker)
            # Back off so a model that cannot load does not spin the cluster.
            await asyncio.sleep(min(30.0, self._retry_s * 2 ** min(self._failures, 5)))
            self._on_retry()
            return
        if worker.state is not ReplicaState.DEPLOYING:
            return
        self._failures = 0
        self._on_ready(worker, info)
