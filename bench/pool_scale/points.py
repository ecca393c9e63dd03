"""The points of the pool-scale benchmark (pure): their sizes, targets and what bounds them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

SETTLE_S = 1.0
"""After the backlog is published, before the steady window opens."""


PUBLISH_PER_S = 20_000.0
"""A low estimate of the publishing rate while the consumer works (36,000/s alone): sizes
the backlog so that ``--steady-s`` of it is left once publishing is done."""

IDEAL_RATIO = 0.9


CONSUMER_BOUND_CORES = 0.9


MACHINE_BOUND_SHARE = 0.9


FULL_OCCUPANCY = 0.95
"""Of the slots, the mean share holding a batch (sampled every 0.1 s in the window)."""


PRODUCE_BOUND_SHARE = 0.5


CPU_QUANTUM = 1e-4
"""Ray counts fractional resources in steps of 0.0001."""


@dataclass(frozen=True)
class Target:
    """An acceptance target of a point."""

    ratio: float
    consumer_cores: float | None = None


TARGETS = {"32x4": Target(0.95), "128@40": Target(0.9, consumer_cores=0.3)}


DEFAULT_POINTS = "8,32,64,128,32x4,128@40"


@dataclass(frozen=True)
class Point:
    """W workers with K slots each, at ``per_molecule_ms``."""

    workers: int
    slots: int = 1
    per_molecule_ms: float = 20.0

    @property
    def name(self) -> str:
        slots = f"x{self.slots}" if self.slots > 1 else ""
        cost = f"@{self.per_molecule_ms:g}" if self.per_molecule_ms != 20.0 else ""
        return f"{self.workers}{slots}{cost}"

    @property
    def parallel(self) -> int:
        """Batches computed at once when every slot works."""
        return self.workers * self.slots

    @property
    def ideal_per_s(self) -> float:
        """Molecules/s with every slot computing all the time."""
        return self.parallel * 1000.0 / self.per_molecule_ms

    @property
    def target(self) -> Target | None:
        return TARGETS.get(self.name)


def parse_points(text: str) -> list[Point]:
    """``8,32x4,128@40`` → points (W, x slots, @ per-molecule ms)."""
    points = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        match = re.fullmatch(r"(\d+)(?:x(\d+))?(?:@(\d+(?:\.\d+)?))?", part)
        if match is None or int(match[1]) < 1 or int(match[2] or 1) < 1:
            raise ValueError(f"point {part!r} is not W[xK][@MS], e.g. 32x4 or 128@40")
        points.append(Point(int(match[1]), int(match[2] or 1), float(match[3] or 20.0)))
    return points


def bound(
    consumer_cores: float,
    machine_share: float,
    ratio: float,
    occupancy: float,
    awaiting_share: float,
) -> str:
    """Which bound a point hit (the rules of :mod:`bench.pool_scale`, in order);
    ``awaiting_share``: molecules computed and waiting for their produce acks, as a share of
    the in-flight bound."""
    if consumer_cores > CONSUMER_BOUND_CORES:
        return "consumer CPU"
    if machine_share > MACHINE_BOUND_SHARE:
        return "machine CPU"
    if ratio >= IDEAL_RATIO:
        return "ideal"
    if occupancy >= FULL_OCCUPANCY:
        return "round trip"
    return "produce" if awaiting_share >= PRODUCE_BOUND_SHARE else "feed"


@dataclass(frozen=True)
class Options:
    steady_s: float
    idle_s: float
    batch_size: int
    node_cpus: int
    startup_concurrency: int
    ready_timeout_s: float
    profile_to: Path | None = None
    """A py-spy profile of the steady window (:mod:`bench.profiling`)."""
    profile_actor: bool = False
    """With ``profile_to``: one actor's profile too, every thread's whole time, beside it."""


def backlog_of(point: Point, opts: Options) -> int:
    """Molecules that keep every slot busy for the steady window after publishing them."""
    ideal = point.ideal_per_s
    lead = max(0.1, 1.0 - ideal / PUBLISH_PER_S)
    wanted = ideal * (opts.steady_s + SETTLE_S + 2.0) / lead
    return max(math.ceil(wanted), 4 * in_flight_of(point, opts))


def in_flight_of(point: Point, opts: Options) -> int:
    return point.parallel * opts.batch_size * 2


def worker_cpus(point: Point, opts: Options) -> float:
    """Each worker's share of the node's CPUs, rounded down to Ray's quantum."""
    return math.floor(opts.node_cpus / point.workers / CPU_QUANTUM) * CPU_QUANTUM
