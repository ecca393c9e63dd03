"""A replica: one Ray actor holding the model, as the pool knows it, and a call to it.

The Ray actor class is :class:`consumer.pool.model_actor.ModelWorker`; a :class:`Replica` is
the pool's record of one such actor (its state, where it runs), as Ray Serve names the thing a
deployment manages.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ray.exceptions import ActorUnavailableError, RayActorError, RayError, RayTaskError

from consumer.errors import BatchFailedError, ModelOutputError, WorkerLostError
from consumer.pool.model_actor import WorkerInfo
from consumer.reasons import LossReason
from consumer.state.ewma import Ewma
from consumer.state.work_messages import WorkRequest, WorkResult, pack, unpack


class ReplicaState(enum.StrEnum):
    """Life of a replica in the pool."""

    DEPLOYING = "deploying"
    READY = "ready"
    BUSY = "busy"
    DRAINING = "draining"
    STOPPED = "stopped"
    DEAD = "dead"


GONE = (ReplicaState.STOPPED, ReplicaState.DEAD)


@dataclass(eq=False)
class Replica:
    """One actor and what the pool knows of it."""

    name: str
    handle: Any
    created_at: float
    slots: int = 1
    """Batches it computes at once (``--worker-concurrency``)."""
    busy: int = 0
    """Slots computing a batch now."""
    state: ReplicaState = ReplicaState.DEPLOYING
    info: WorkerInfo | None = None
    ready_task: asyncio.Task[None] | None = field(default=None, repr=False)

    @functools.cached_property
    def process(self) -> Any:
        """The actor's ``process`` method, looked up once (Ray builds one per lookup)."""
        return self.handle.process

    @property
    def node_id(self) -> str | None:
        """The Ray node the replica runs on, once placed."""
        return self.info.node_id if self.info else None


@dataclass(frozen=True, slots=True)
class ActorOptions:
    """Resources each replica reserves from Ray."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    resources: dict[str, float] = field(default_factory=dict)

    def bundle(self) -> dict[str, float]:
        """The resource bundle of one replica, as the autoscaler counts it."""
        bundle = {"CPU": self.num_cpus, **self.resources}
        if self.num_gpus:
            bundle["GPU"] = self.num_gpus
        return {k: v for k, v in bundle.items() if v}


@dataclass(frozen=True, slots=True)
class ActorSpec:
    """What a replica's actor is: the model it loads and the resources it reserves."""

    model: str
    model_options: dict[str, str]
    actor_options: ActorOptions
    concurrency: int = 1
    """Batches one actor computes at once (Ray's ``max_concurrency``: threads)."""
    tracing_env: dict[str, str] | None = None
    """The consumer's ``OTEL_*`` variables when tracing is on: the actor traces too."""

    def spawn(self, name: str, now: float) -> Replica:
        """Ask Ray for one actor (placed whenever capacity exists); never restarted by Ray:
        the pool replaces lost replicas itself."""
        import ray

        from consumer.pool.model_actor import ModelWorker

        opts = self.actor_options
        actor_cls = ray.remote(ModelWorker).options(
            num_cpus=opts.num_cpus,
            num_gpus=opts.num_gpus,
            resources=opts.resources or None,
            max_restarts=0,
            max_task_retries=0,
            max_concurrency=self.concurrency,
            # Each batch would be reported to the GCS as a task event (the dashboard's task
            # list): a cost per batch on both sides, for a view that hundreds a second drown.
            enable_task_events=False,
        )
        handle = actor_cls.remote(name, self.model, self.model_options, self.tracing_env)
        return Replica(name=name, handle=handle, created_at=now, slots=self.concurrency)


class Lifetimes:
    """The pool's cost (worker-seconds, deploying included) and its replicas' start-up time."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._ended_s = 0.0
        self._startup = Ewma()

    def ready(self, replica: Replica) -> float:
        """A replica became ready; returns how long it took."""
        took_s = self._clock() - replica.created_at
        self._startup.update(took_s)
        return took_s

    def ended(self, replica: Replica) -> None:
        """A replica is gone: its time is counted for good."""
        self._ended_s += self._clock() - replica.created_at

    def startup_s(self) -> float | None:
        """Smoothed time from deploying a replica to its being ready (None before one was)."""
        return self._startup.value

    def worker_seconds(self, alive: list[Replica]) -> float:
        """Total time every replica existed, deploying included."""
        now = self._clock()
        return self._ended_s + sum(now - r.created_at for r in alive)


def kill(replica: Replica) -> None:
    """End a replica's actor (ignoring one that is gone already)."""
    import ray

    with contextlib.suppress(Exception):
        ray.kill(replica.handle, no_restart=True)


async def await_ref(ref: Any) -> Any:
    """Await a Ray object ref (as a coroutine, typed)."""
    return await ref


async def call_process(replica: Replica, request: WorkRequest, timeout_s: float) -> WorkResult:
    """One batch on a replica, Ray's failures told apart.

    Raises :class:`WorkerLostError` (the replica is gone or hung: the caller drops it),
    :class:`ModelOutputError` (the model returned what no prediction can hold: no retry) or
    :class:`BatchFailedError` (the model raised, or the answer is unreadable; the replica is
    fine).
    """
    ref = replica.process.remote(pack(request))
    try:
        # asyncio.timeout, not wait_for: no extra task per batch.
        async with asyncio.timeout(timeout_s):
            payload: bytes = await ref
    except RayTaskError as exc:  # first: a model's own TimeoutError arrives as one too
        if isinstance(exc.cause, ModelOutputError):
            raise ModelOutputError(str(exc.cause)) from exc
        raise BatchFailedError(f"model raised: {exc.cause!r}") from exc
    except TimeoutError:
        raise WorkerLostError(
            replica.name, LossReason.TIMEOUT, f"no answer in {timeout_s:g} s"
        ) from None
    except RayActorError as exc:
        raise WorkerLostError(replica.name, loss_reason(replica, exc), type(exc).__name__) from exc
    except RayError as exc:
        raise WorkerLostError(
            replica.name, LossReason.RAY_ERROR, f"{type(exc).__name__}: {exc}"
        ) from exc
    try:
        return unpack(payload, WorkResult)
    except Exception as exc:  # a worker of another version, say: its answer is unusable
        raise BatchFailedError(f"worker answer unreadable: {exc!r}") from exc


def loss_reason(replica: Replica, exc: RayActorError) -> LossReason:
    """Why a replica is gone: preempted (its node was draining or Ray says so), unavailable
    (its node stopped answering, the first sign of a lost node) or died."""
    if replica.state is ReplicaState.DRAINING or getattr(exc, "preempted", False):
        return LossReason.PREEMPTED
    if isinstance(exc, ActorUnavailableError):
        return LossReason.UNAVAILABLE
    return LossReason.DIED
