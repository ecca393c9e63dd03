"""The scaling decision: a pure function of a context and a state (no I/O, no clock).

Shaped like Ray Serve's autoscaling policy: :func:`decide` takes what the loop observed
(:class:`ScalingContext`) and what it decided before (:class:`PolicyState`) and returns the
number of workers wanted plus the next state. The loop in :mod:`consumer.scaling.autoscaler` does
the I/O; tests drive this with a fake clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from consumer.pool.occupancy import Occupancy


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Bounds and pacing of the pool."""

    min_workers: int
    max_workers: int
    target_drain_s: float
    upscale_delay_s: float
    downscale_delay_s: float
    batch_size: int

    def __post_init__(self) -> None:
        if not 0 <= self.min_workers <= self.max_workers:
            raise ValueError("need 0 <= min_workers <= max_workers")
        if self.target_drain_s <= 0 or self.batch_size < 1:
            raise ValueError("target_drain_s must be > 0 and batch_size >= 1")


@dataclass(frozen=True, slots=True)
class ScalingContext:
    """What the loop observed at ``now``."""

    now: float
    lag: int
    """Records not yet committed (end offsets minus committed offsets, in flight included)."""
    rate_per_worker: float | None
    """Smoothed molecules/s of one busy worker; None before the first batch."""
    startup_s: float = 0.0
    """Smoothed time from deploying a worker to its being ready."""
    completed_per_s: float = 0.0
    """Smoothed records finished per second by the whole pool (what it absorbs now)."""
    occupancy: Occupancy = field(default_factory=Occupancy)
    """The pool's slots now: work waiting behind busy workers counts toward the size."""


@dataclass(frozen=True, slots=True)
class PolicyState:
    """What the policy remembers between decisions."""

    desired: int
    lag: int | None = None
    at: float | None = None
    lag_trend: float = 0.0
    """Smoothed change of the lag, records/s (positive: growing)."""
    proposal: int | None = None
    proposed_at: float | None = None


MIN_RATE_PER_S = 1 / 60
"""A pool absorbing less than this is absorbing nothing."""
TREND_TIME_CONSTANT_S = 10.0
"""The lag trend forgets a sample after about this long; shorter amplifies a noisy lag."""


def work_cap(lag: int, batch_size: int) -> int:
    """Never more workers than the remaining work has batches."""
    return math.ceil(max(lag, 0) / batch_size)


def wanted(ctx: ScalingContext, cfg: PolicyConfig, lag_trend: float) -> int:
    """Workers the work calls for right now, before bounds and delays.

    The work is the backlog plus what the pool is absorbing as it drains; never more workers
    than that work has batches. The need is the inflow (absorbed now plus the lag's growth)
    plus the backlog spread over the drain time.
    """
    # A decayed average never reaches 0 on its own: below one record a minute is none.
    absorbing = ctx.completed_per_s if ctx.completed_per_s >= MIN_RATE_PER_S else 0.0
    if ctx.lag <= 0 and absorbing <= 0:
        return 0
    arriving = min(absorbing * cfg.target_drain_s, 1e15)
    cap = work_cap(math.ceil(ctx.lag + arriving), cfg.batch_size)
    if not ctx.rate_per_worker:
        return cap  # nothing measured yet: as many as there are batches, like the seed
    # Time left to drain once new workers are up; start-up eats into the target.
    drain_s = max(cfg.target_drain_s - ctx.startup_s, cfg.target_drain_s / 4)
    inflow = max(absorbing + lag_trend, 0.0)
    need = (inflow + ctx.lag / drain_s) / ctx.rate_per_worker
    if not math.isfinite(need) or need >= cap:
        return cap
    return max(1, math.ceil(need))


def decide(ctx: ScalingContext, state: PolicyState, cfg: PolicyConfig) -> PolicyState:
    """The next state; ``.desired`` is how many workers the pool should have."""
    trend = state.lag_trend
    if state.lag is not None and state.at is not None and ctx.now > state.at:
        elapsed = ctx.now - state.at
        sample = (ctx.lag - state.lag) / elapsed
        weight = 1 - math.exp(-elapsed / TREND_TIME_CONSTANT_S)
        trend = (1 - weight) * trend + weight * sample
        if not math.isfinite(trend):
            trend = state.lag_trend
    want = max(wanted(ctx, cfg, trend), ctx.occupancy.workers())
    target = min(cfg.max_workers, max(cfg.min_workers, want))
    nxt = replace(state, lag=ctx.lag, at=ctx.now, lag_trend=trend)
    if target == state.desired:
        return replace(nxt, proposal=None, proposed_at=None)
    if state.at is None or (state.desired == 0 and target > 0):
        # The first decision has no history to be patient about, and waking from zero waits
        # for nothing: there is work and no one to do it.
        return replace(nxt, desired=target, proposal=None, proposed_at=None)
    up = target > state.desired
    same_direction = state.proposal is not None and (state.proposal > state.desired) == up
    since = state.proposed_at if same_direction and state.proposed_at is not None else ctx.now
    delay = cfg.upscale_delay_s if up else cfg.downscale_delay_s
    if ctx.now - since >= delay:
        return replace(nxt, desired=target, proposal=None, proposed_at=None)
    return replace(nxt, proposal=target, proposed_at=since)
