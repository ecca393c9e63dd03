"""The data path's steps, traced when tracing is on (:mod:`consumer.ops.tracing`).

No OpenTelemetry module is imported here: with no tracer every helper hands the step on
untouched, so a consumer that does not trace pays one ``is None`` test per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from consumer.state.work_messages import WorkRequest, WorkResult

if TYPE_CHECKING:
    from consumer.ops.tracing import Headers, Tracer
    from consumer.pool.replica import Replica
    from consumer.pool.replica_pool import ReplicaPool

T = TypeVar("T")


def tracer_for(env: dict[str, str] | None) -> Tracer | None:
    """The consumer's tracer when tracing is on (``env``: its OTEL_* variables), else None
    (and nothing of OpenTelemetry imported)."""
    if env is None:
        return None
    from consumer.ops.tracing import Tracer

    return Tracer("molstream")


def batch(
    tracer: Tracer | None,
    headers: Callable[[], Sequence[Headers]],
    routine: Coroutine[Any, Any, T],
) -> Coroutine[Any, Any, T]:
    """A batch's routine, inside a ``molstream.batch`` span linked to its inputs (their
    ``headers``, only read when tracing)."""
    if tracer is None:
        return routine

    async def traced() -> T:
        with tracer.batch(headers()):
            return await routine

    return traced()


def stage(tracer: Tracer | None, name: str, step: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """``step`` inside a span ``name`` (of the current one); ``step`` itself when not
    tracing (no coroutine of its own: these wrap every batch)."""
    if tracer is None:
        return step
    return _staged(tracer, name, step)


async def _staged(tracer: Tracer, name: str, step: Coroutine[Any, Any, T]) -> T:
    with tracer.stage(name):
        return await step


def process(
    tracer: Tracer | None, pool: ReplicaPool, replica: Replica, work: WorkRequest, timeout_s: float
) -> Coroutine[Any, Any, WorkResult]:
    """One call to a worker; traced, inside ``molstream.compute``, whose context the request
    carries to the worker."""
    if tracer is None:
        return pool.process(replica, work, timeout_s=timeout_s)
    return _traced_process(tracer, pool, replica, work, timeout_s)


async def _traced_process(
    tracer: Tracer, pool: ReplicaPool, replica: Replica, work: WorkRequest, timeout_s: float
) -> WorkResult:
    with tracer.stage("molstream.compute"):
        carried = dataclasses.replace(work, trace=tracer.traceparent())
        return await pool.process(replica, carried, timeout_s=timeout_s)
