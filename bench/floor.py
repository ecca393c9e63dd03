"""Ray's own cost per call: the floor under the consumer's cost per batch.

A bare asyncio driver, no molstream code: ``actors`` Ray actors, each answering a call of
``payload_bytes`` after sleeping ``compute_ms`` (the model's time) with as many bytes; one
loop per actor sends a call, awaits its answer and sends the next at most ``rate_per_s /
actors`` times a second. It is what the consumer's dispatch does per batch with nothing of its
own: the same actor options (fractional CPUs, no restarts, no task events), the same shape of
traffic. The CPU of this process over the window, per call, is the floor.

It runs in the calling process, which must be connected to Ray (``ray.init``): the consumer
it is compared with is measured in the same process, on the same Ray driver.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.profiling import profiled


class Echo:
    """The floor's actor: sleeps, then answers bytes (wrapped with ``ray.remote``)."""

    def __init__(self, compute_s: float, answer_bytes: int) -> None:
        self._compute_s = compute_s
        self._answer = b"x" * answer_bytes

    def ready(self) -> bool:
        """Answers once the actor is placed."""
        return True

    def call(self, payload: bytes) -> bytes:
        """One call: the model's time, then an answer of the configured size."""
        time.sleep(self._compute_s)
        return self._answer


@dataclass(frozen=True)
class FloorOptions:
    """The traffic of the floor: as the consumer's run it is set beside."""

    actors: int = 16
    rate_per_s: float = 200.0
    compute_ms: float = 80.0
    payload_bytes: int = 1500
    num_cpus: float = 0.125
    seconds: float = 20.0
    idle_s: float = 3.0
    profile_to: Path | None = None
    """A py-spy profile of the window (:mod:`bench.profiling`)."""


@dataclass(frozen=True)
class Floor:
    """What the floor measured."""

    calls: int
    window_s: float
    calls_per_s: float
    cpu_ms_per_call: float
    idle_cores: float
    marginal_cpu_ms_per_call: float
    """Beyond the driver's CPU with no call (``idle_cores``)."""
    round_trip_ms_mean: float

    def as_dict(self) -> dict[str, Any]:
        """For the result file."""
        return asdict(self)


def _cpu_s(me: psutil.Process) -> float:
    times = me.cpu_times()
    return float(times.user + times.system)


async def measure_floor(opts: FloorOptions) -> Floor:
    """Start the actors, measure idle then ``seconds`` of calls, kill the actors."""
    import ray

    actor_cls = ray.remote(Echo).options(
        num_cpus=opts.num_cpus, max_restarts=0, max_task_retries=0, enable_task_events=False
    )
    actors: list[Any] = [
        actor_cls.remote(opts.compute_ms / 1000, opts.payload_bytes) for _ in range(opts.actors)
    ]
    try:
        await asyncio.gather(*(a.ready.remote() for a in actors))
        me = psutil.Process()
        t0, cpu0 = time.monotonic(), _cpu_s(me)
        await asyncio.sleep(opts.idle_s)
        idle_cores = (_cpu_s(me) - cpu0) / (time.monotonic() - t0)
        payload = b"m" * opts.payload_bytes
        period_s = opts.actors / opts.rate_per_s
        end = time.monotonic() + opts.seconds
        round_trips: list[float] = []

        async def loop(actor: Any, first_s: float) -> None:
            due = time.monotonic() + first_s
            while (now := time.monotonic()) < end:
                if due > now:
                    await asyncio.sleep(due - now)
                sent = time.monotonic()
                await actor.call.remote(payload)
                round_trips.append(time.monotonic() - sent)
                due = max(due + period_s, sent)

        with profiled(opts.profile_to, opts.seconds):
            t0, cpu0 = time.monotonic(), _cpu_s(me)
            await asyncio.gather(*(loop(a, i / opts.rate_per_s) for i, a in enumerate(actors)))
            window_s, cpu_s = time.monotonic() - t0, _cpu_s(me) - cpu0
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
    calls = len(round_trips)
    return Floor(
        calls=calls,
        window_s=window_s,
        calls_per_s=calls / window_s,
        cpu_ms_per_call=cpu_s / calls * 1000,
        idle_cores=idle_cores,
        marginal_cpu_ms_per_call=(cpu_s - idle_cores * window_s) / calls * 1000,
        round_trip_ms_mean=sum(round_trips) / calls * 1000,
    )
