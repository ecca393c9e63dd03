"""Discrete simulation of worker reuse against one stateless task per input.

Model (time in TU, cost in node-TU): a job with N inputs requests N nodes at t = 0. Node i is
provisioned at p_i ~ Uniform(0, S) and needs ``setup_tu`` before it can work. In reuse mode a
node then creates one model worker (``worker_create_tu``) and runs one inference per input
(``inference_tu``); in no-reuse mode it runs one task per input that loads the model and infers
(``load_tu + inference_tu``). Inputs go, in order, to whichever node is free first. A node that
ran inputs is billed from p_i to its last finish; a node that ran none is billed from p_i to the
moment the last input started (nothing if it was provisioned later). A run's time is when the
last input finishes and its cost is the total billed node time.

This module is the pure core (``simulate_run``, ``simulate_grid``, ``completed_by``);
:mod:`consumer.dev.simulate_cli` does the I/O and is ``molstream simulate``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

COLUMNS = (
    "inputs",
    "max_start",
    "time_improvement",
    "cost_improvement",
    "time_reuse",
    "time_no_reuse",
    "cost_reuse",
    "cost_no_reuse",
)


@dataclass(frozen=True)
class RunResult:
    """Outcome of one simulated job: makespan (TU) and billed node time (node-TU)."""

    time: float
    cost: float


@dataclass(frozen=True)
class GridRow:
    """Run-averaged time and cost of both modes for one (inputs, max start) cell."""

    inputs: int
    max_start: float
    time_reuse: float
    time_no_reuse: float
    cost_reuse: float
    cost_no_reuse: float

    @property
    def time_improvement(self) -> float:
        """Fraction of the no-reuse time saved by reuse."""
        return (self.time_no_reuse - self.time_reuse) / self.time_no_reuse

    @property
    def cost_improvement(self) -> float:
        """Fraction of the no-reuse cost saved by reuse."""
        return (self.cost_no_reuse - self.cost_reuse) / self.cost_no_reuse

    def to_dict(self) -> dict[str, float]:
        """The row as a mapping keyed by ``COLUMNS``, in that order."""
        return {
            "inputs": self.inputs,
            "max_start": self.max_start,
            "time_improvement": self.time_improvement,
            "cost_improvement": self.cost_improvement,
            "time_reuse": self.time_reuse,
            "time_no_reuse": self.time_no_reuse,
            "cost_reuse": self.cost_reuse,
            "cost_no_reuse": self.cost_no_reuse,
        }


def simulate_run(
    provision_times: Sequence[float],
    *,
    reuse: bool,
    setup_tu: float = 3.0,
    worker_create_tu: float = 1.0,
    inference_tu: float = 1.0,
    load_tu: float = 1.0,
) -> RunResult:
    """Simulate one job with one input per node, nodes provisioned at ``provision_times``."""
    if not provision_times:
        raise ValueError("provision_times must not be empty")
    provisioned = sorted(provision_times)
    # Worker creation happens once per node, so in reuse mode it belongs to the node's warm-up
    # and every input afterwards costs the same fixed task time.
    warmup = setup_tu + worker_create_tu if reuse else setup_tu
    task = inference_tu if reuse else load_tu + inference_tu
    ready = [p + warmup for p in provisioned]
    # Free times of the nodes that took an input. Idle nodes are picked in ready order, so the
    # nodes used are always a prefix of `ready` and need no heap entry until their first input.
    # With one node per input a fresh node always exists; on a tie the fresh node wins.
    busy: list[float] = []
    used = 0
    start = 0.0
    for _ in range(len(ready)):
        if not busy or ready[used] <= busy[0]:
            start = ready[used]
            heapq.heappush(busy, start + task)
            used += 1
        else:
            start = busy[0]
            heapq.heapreplace(busy, start + task)
    last_start = start
    cost = sum(busy) - sum(provisioned[:used])
    cost += sum(max(0.0, last_start - p) for p in provisioned[used:])
    return RunResult(time=max(busy), cost=cost)


def completed_by(
    provision_times: Sequence[float],
    t: float,
    *,
    wait_for_all: bool,
    setup_tu: float = 3.0,
    worker_create_tu: float = 1.0,
    inference_tu: float = 1.0,
) -> int:
    """Count inferences a reuse pool with unlimited inputs has finished by time ``t``.

    Each instance starts as soon as it is provisioned, or, with ``wait_for_all``, all start
    together at the last provisioning time.
    """
    last = max(provision_times)
    done = 0
    for p in provision_times:
        begin = (last if wait_for_all else p) + setup_tu + worker_create_tu
        if t >= begin:
            # The epsilon keeps an inference that ends exactly at t from being lost to rounding.
            done += math.floor((t - begin) / inference_tu + 1e-9)
    return done


def simulate_grid(
    inputs: Sequence[int], max_starts: Sequence[float], *, runs: int, seed: int
) -> list[GridRow]:
    """Average both modes over ``runs`` shared draws for every (inputs, max start) pair."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    if any(n < 1 for n in inputs):
        raise ValueError(f"input counts must be at least 1, got {list(inputs)}")
    if any(not 0.0 <= s < math.inf for s in max_starts):
        raise ValueError(f"max starts must be finite and non-negative, got {list(max_starts)}")
    rng = np.random.default_rng(seed)
    rows: list[GridRow] = []
    for n in inputs:
        for s in max_starts:
            draws = rng.uniform(0.0, s, size=(runs, n)).tolist()
            reuse = [simulate_run(d, reuse=True) for d in draws]
            no_reuse = [simulate_run(d, reuse=False) for d in draws]
            rows.append(
                GridRow(
                    inputs=n,
                    max_start=float(s),
                    time_reuse=_mean([r.time for r in reuse]),
                    time_no_reuse=_mean([r.time for r in no_reuse]),
                    cost_reuse=_mean([r.cost for r in reuse]),
                    cost_no_reuse=_mean([r.cost for r in no_reuse]),
                )
            )
    return rows


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)
