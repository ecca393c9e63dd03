"""What the pool-scale benchmark counts and reads of a running point (see
:mod:`bench.pool_scale`): the hooks' counts, the actors' and the consumer's CPU, the steady
window."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.monitor import LoadMonitor, descendants
from bench.pool_scale.points import Options, Point, bound, in_flight_of
from consumer.processor import StreamProcessor
from schemas import Status
from tests.harness import Counting


class Recorder(Counting):
    """Counting, with predictions counted per batch (no per-molecule call in the consumer),
    batches, their summed round trips, and when each worker became ready."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0
        self.round_trip_s = 0.0
        self.ready_at: list[float] = []

    def predicted(self, statuses: Sequence[Status], end_to_end_s: Sequence[float | None]) -> None:
        self.predictions += len(statuses)

    def batch(self, worker: str, size: int, inference_s: float) -> None:
        super().batch(worker, size, inference_s)
        self.batches += 1
        self.round_trip_s += inference_s

    def worker_ready(self, model: str, model_version: str) -> None:
        self.ready_at.append(time.monotonic())


@dataclass(frozen=True)
class Counts:
    """The hooks' running counts at one moment."""

    at: float
    predictions: int
    batches: int
    round_trip_s: float

    @classmethod
    def of(cls, rec: Recorder) -> Counts:
        return cls(time.monotonic(), rec.predictions, rec.batches, rec.round_trip_s)


@dataclass(frozen=True)
class Window:
    """What the steady window saw: the counts at its two ends, CPU over it, and the samples
    taken in it."""

    opened: Counts
    closed: Counts
    cpu: dict[str, float]
    counted: list[tuple[float, float]]
    """(time, predictions so far)."""
    samples: list[tuple[float, float, float]]
    """:meth:`Probe.sample` every 0.1 s."""
    rss_mb: list[float]
    """The consumer's RSS every second."""
    backlog_held: bool
    lags_s: list[float]
    """How late each 0.1 s sleep of the sampler woke: the consumer's event loop's lag."""

    @property
    def seconds(self) -> float:
        return self.closed.at - self.opened.at

    @property
    def batches(self) -> int:
        return self.closed.batches - self.opened.batches

    def flow(self, point: Point, opts: Options) -> dict[str, Any]:
        """Molecules and batches through the window, against the ideal; the slots' use."""
        seconds, batches = self.seconds, max(1, self.batches)
        molecules = self.closed.predictions - self.opened.predictions
        round_trip_s = self.closed.round_trip_s - self.opened.round_trip_s
        # Batches end in bursts (workers that started together finish together): the slope
        # of the count over every sample is steadier than the two ends of the window.
        per_s = statistics.linear_regression(*zip(*self.counted, strict=True)).slope
        in_flight, awaiting, busy = (statistics.mean(c) for c in zip(*self.samples, strict=True))
        return {
            "window_s": seconds,
            "backlog_held": self.backlog_held,
            "molecules": molecules,
            "molecules_per_s": per_s,
            "molecules_per_s_window_ends": molecules / seconds,
            "ratio_to_ideal": per_s / point.ideal_per_s,
            "batches": self.batches,
            "round_trip_ms_mean": round_trip_s / batches * 1000,
            "model_ms_per_batch": point.per_molecule_ms * opts.batch_size,
            "slot_occupancy": busy / point.parallel,
            "slot_occupancy_from_round_trips": round_trip_s / seconds / point.parallel,
            "in_flight_mean": in_flight,
            "awaiting_ack_mean": awaiting,
            "loop_lag_ms_mean": statistics.mean(self.lags_s) * 1000 if self.lags_s else None,
            "loop_lag_ms_max": max(self.lags_s, default=0.0) * 1000,
        }

    def costs(self, idle_consumer: float) -> dict[str, Any]:
        """CPU of the consumer (also per batch and beyond ``idle_consumer``), the actors, the
        rest and the machine; the consumer's peak RSS."""
        cpu, consumer = self.cpu, self.cpu["consumer_cores"]
        ms_per_batch = self.seconds / max(1, self.batches) * 1000  # wall ms; × cores = CPU ms
        return {
            "consumer_cores": consumer,
            "consumer_cpu_ms_per_batch": consumer * ms_per_batch,
            "consumer_marginal_ms_per_batch": (consumer - idle_consumer) * ms_per_batch,
            "consumer_rss_mb_peak": max(self.rss_mb),
            "actors_cores": cpu["actors_cores"],
            "rest_cores": cpu["rest_cores"],
            "tree_cores": consumer + cpu["actors_cores"] + cpu["rest_cores"],
            "machine_cores": cpu["machine_cores"],
            "machine_busy_share": cpu["machine_cores"] / (os.cpu_count() or 1),
            "other_cores": max(0.0, cpu["other_cores"]),
            "load_avg_1m": cpu["load_avg_1m"],
        }


@dataclass
class Probe:
    """Reads the running processor, its hooks and its actors' processes."""

    proc: StreamProcessor
    rec: Recorder
    actors: list[psutil.Process]
    me: psutil.Process = field(default_factory=psutil.Process)

    def monitor(self) -> LoadMonitor:
        """CPU from now to its next ``sample()``: ``actors``, ``rest`` (the broker and Ray's
        own processes: every other descendant of this one) and ``consumer`` (this process;
        reading the others, a few ms, counts as its CPU only at the close)."""
        actors = [p.pid for p in self.actors]
        return LoadMonitor(
            {
                "actors": lambda: actors,
                "rest": lambda: descendants(*actors),
                "consumer": lambda: [self.me.pid],
            }
        )

    async def idle(self, seconds: float) -> dict[str, float]:
        monitor = self.monitor()
        await asyncio.sleep(seconds)
        return monitor.sample()

    def sample(self) -> tuple[float, float, float]:
        """(molecules in flight, molecules computed and not yet acknowledged, busy slots)."""
        awaiting = self.rec.molecules - self.rec.predictions
        busy = sum(w.busy for w in self.proc.pool.workers())
        return float(self.proc.ledger.in_flight), float(awaiting), float(busy)

    async def steady(
        self, point: Point, opts: Options, backlog: int, idle_consumer: float
    ) -> dict[str, Any]:
        """The steady window: closes after ``steady_s`` or when the backlog left could no
        longer fill the in-flight window twice (the slots would start to wait).
        ``idle_consumer`` (cores) is the consumer's CPU with nothing to do: beyond it is the
        marginal cost of batches."""
        in_flight = in_flight_of(point, opts)
        window = await self.window(opts.steady_s, backlog, 2 * in_flight)
        flow, costs = window.flow(point, opts), window.costs(idle_consumer)
        consumer, ratio = costs["consumer_cores"], flow["ratio_to_ideal"]
        target = point.target
        meets = None
        if target is not None:
            cpu_ok = target.consumer_cores is None or consumer < target.consumer_cores
            meets = ratio >= target.ratio and cpu_ok
        occupancy, awaiting = flow["slot_occupancy"], flow["awaiting_ack_mean"] / in_flight
        return {
            **flow,
            **costs,
            "bound": bound(consumer, costs["machine_busy_share"], ratio, occupancy, awaiting),
            "target_ratio": target.ratio if target else None,
            "target_consumer_cores": target.consumer_cores if target else None,
            "meets_target": meets,
        }

    async def window(self, seconds: float, backlog: int, low: int) -> Window:
        """Sample every 0.1 s for ``seconds``, or until no more than ``low`` molecules of
        the ``backlog`` are left to predict."""
        rec = self.rec
        rss_mb = [self.me.memory_info().rss / 2**20]
        samples: list[tuple[float, float, float]] = []
        monitor, opened = self.monitor(), Counts.of(rec)
        counted = [(opened.at, float(opened.predictions))]
        end, next_rss = opened.at + seconds, opened.at + 1.0
        backlog_held = True
        lags_s: list[float] = []
        while (now := time.monotonic()) < end:
            if backlog - rec.predictions <= low:
                backlog_held = False
                break
            counted.append((now, float(rec.predictions)))
            samples.append(self.sample())
            if now >= next_rss:
                rss_mb.append(self.me.memory_info().rss / 2**20)
                next_rss += 1.0
            slept = time.monotonic()
            await asyncio.sleep(0.1)
            lags_s.append(time.monotonic() - slept - 0.1)
        closed = Counts.of(rec)
        cpu = monitor.sample()
        counted.append((closed.at, float(closed.predictions)))
        return Window(opened, closed, cpu, counted, samples, rss_mb, backlog_held, lags_s)
