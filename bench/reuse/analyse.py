"""Worker reuse, analysed: time and cost by the simulation's billing rule, the comparisons."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from consumer.dev.simulation import simulate_run

SETUP_TU = 3.0


@dataclass(frozen=True)
class Schedule:
    """One draw: when each node is provisioned (TU), in node order."""

    max_start_tu: float
    draw: int
    provision_tu: tuple[float, ...]

    def arrival_s(self, tu_s: float) -> list[float]:
        """When each node joins (s after t = 0): provisioning plus set-up."""
        return [(p + SETUP_TU) * tu_s for p in self.provision_tu]


@dataclass(frozen=True)
class Work:
    """One input on one node: seconds after t = 0."""

    node: int
    start_s: float
    end_s: float


@dataclass
class Measured:
    """One approach on one schedule."""

    approach: str
    time_s: float
    time_tu: float
    cost_tu: float
    cost_from_add_tu: float
    first_result_s: float
    inputs_per_node: list[int]
    arrived_s: list[float]
    first_fetch_s: float | None = None
    group_join_s: float | None = None
    worker_seconds: float | None = None
    """molstream only: the pool's own cost accounting (molstream_worker_seconds_total)."""
    work: list[Work] = field(default_factory=list)


def bill(billed_from: Sequence[float], work: Sequence[Work]) -> float:
    """Node time of a run, by the simulation's rule (see the module docstring)."""
    last_start = max(w.start_s for w in work)
    cost = 0.0
    for node, begin in enumerate(billed_from):
        ends = [w.end_s for w in work if w.node == node]
        cost += max(ends) - begin if ends else max(0.0, last_start - begin)
    return cost


def measure(
    approach: str,
    schedule: Schedule,
    tu_s: float,
    work: list[Work],
    end_s: float,
    arrived_s: list[float],
    first_fetch_s: float | None = None,
) -> Measured:
    """Time and cost of a run from its work intervals."""
    provisioned_s = [p * tu_s for p in schedule.provision_tu]
    added_s = schedule.arrival_s(tu_s)
    per_node = Counter(w.node for w in work)
    return Measured(
        approach=approach,
        time_s=end_s,
        time_tu=end_s / tu_s,
        cost_tu=bill(provisioned_s, work) / tu_s,
        cost_from_add_tu=bill(added_s, work) / tu_s,
        first_result_s=min(w.end_s for w in work),
        inputs_per_node=[per_node[i] for i in range(len(schedule.provision_tu))],
        arrived_s=arrived_s,
        first_fetch_s=first_fetch_s,
        work=sorted(work, key=lambda w: w.start_s),
    )


@dataclass
class Comparison:
    """Both approaches on one schedule, beside the simulation of the same schedule."""

    schedule: Schedule
    approach1: Measured
    molstream: Measured
    tu_s: float

    def improvement(self, attr: str) -> float:
        """(approach 1 - molstream) / approach 1 of a measured attribute."""
        a: float = getattr(self.approach1, attr)
        b: float = getattr(self.molstream, attr)
        return (a - b) / a

    def worker_start_tu(self) -> float:
        """Median time (TU) from a node's arrival to Approach 1's first task starting on it:
        the worker process start-up, which the simulation does not have."""
        first: dict[int, float] = {}
        for w in self.approach1.work:
            first.setdefault(w.node, w.start_s)
        waits = sorted(first[n] - self.approach1.arrived_s[n] for n in first)
        mid = len(waits) // 2
        median = waits[mid] if len(waits) % 2 else (waits[mid - 1] + waits[mid]) / 2
        return median / self.tu_s

    def simulated(self, extra_setup_tu: float = 0.0) -> dict[str, float]:
        """The simulation of the same provisioning times (TU), set-up longer by
        ``extra_setup_tu`` if given."""
        setup = SETUP_TU + extra_setup_tu
        reuse = simulate_run(self.schedule.provision_tu, reuse=True, setup_tu=setup)
        no_reuse = simulate_run(self.schedule.provision_tu, reuse=False, setup_tu=setup)
        return {
            "setup_tu": setup,
            "time_reuse": reuse.time,
            "time_no_reuse": no_reuse.time,
            "cost_reuse": reuse.cost,
            "cost_no_reuse": no_reuse.cost,
            "time_improvement": (no_reuse.time - reuse.time) / no_reuse.time,
            "cost_improvement": (no_reuse.cost - reuse.cost) / no_reuse.cost,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "max_start_tu": self.schedule.max_start_tu,
            "draw": self.schedule.draw,
            "provision_tu": list(self.schedule.provision_tu),
            "approach1": asdict(self.approach1),
            "molstream": asdict(self.molstream),
            "measured": {
                "time_improvement": self.improvement("time_s"),
                "cost_improvement": self.improvement("cost_tu"),
                "cost_from_add_improvement": self.improvement("cost_from_add_tu"),
            },
            "simulated": self.simulated(),
            "worker_start_tu": self.worker_start_tu(),
            "simulated_with_worker_start": self.simulated(self.worker_start_tu()),
        }


def summarize(comparisons: Sequence[Comparison]) -> list[dict[str, float]]:
    """Per max start: mean improvements over its draws, measured and simulated."""
    rows = []
    for s in sorted({c.schedule.max_start_tu for c in comparisons}):
        group = [c for c in comparisons if c.schedule.max_start_tu == s]
        sims = [c.simulated() for c in group]
        starts = [c.simulated(c.worker_start_tu()) for c in group]
        rows.append(
            {
                "max_start_tu": s,
                "draws": len(group),
                "time_improvement": _mean([c.improvement("time_s") for c in group]),
                "time_improvement_simulated": _mean([x["time_improvement"] for x in sims]),
                "cost_improvement": _mean([c.improvement("cost_tu") for c in group]),
                "cost_improvement_simulated": _mean([x["cost_improvement"] for x in sims]),
                "time_improvement_simulated_with_worker_start": _mean(
                    [x["time_improvement"] for x in starts]
                ),
                "cost_improvement_simulated_with_worker_start": _mean(
                    [x["cost_improvement"] for x in starts]
                ),
                "cost_from_add_improvement": _mean(
                    [c.improvement("cost_from_add_tu") for c in group]
                ),
            }
        )
    return rows


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
