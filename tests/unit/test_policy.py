"""Unit tests for consumer.scaling.policy: the scaling decision, driven by a fake clock.

The clock is a plain float advanced by the test; every tick feeds one ScalingContext to
``decide`` and keeps the returned state, as the autoscaler loop does.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.pool.occupancy import Occupancy
from consumer.scaling.policy import (
    MIN_RATE_PER_S,
    TREND_TIME_CONSTANT_S,
    PolicyConfig,
    PolicyState,
    ScalingContext,
    decide,
    wanted,
    work_cap,
)
from consumer.state.ewma import Ewma

UP_S = 5.0
IDLE = Occupancy()
DOWN_S = 30.0


def _cfg(
    *,
    min_workers: int = 1,
    max_workers: int = 10,
    target_drain_s: float = 60.0,
    upscale_delay_s: float = UP_S,
    downscale_delay_s: float = DOWN_S,
    batch_size: int = 100,
) -> PolicyConfig:
    return PolicyConfig(
        min_workers=min_workers,
        max_workers=max_workers,
        target_drain_s=target_drain_s,
        upscale_delay_s=upscale_delay_s,
        downscale_delay_s=downscale_delay_s,
        batch_size=batch_size,
    )


@dataclass
class Sim:
    """The policy on a fake clock: ``now`` is a float the test advances."""

    cfg: PolicyConfig
    state: PolicyState = field(default_factory=lambda: PolicyState(desired=0))
    now: float = 0.0
    history: list[tuple[float, int]] = field(default_factory=list)
    """(now, desired) after every tick."""

    def tick(
        self,
        lag: int,
        *,
        rate: float | None = None,
        startup_s: float = 0.0,
        completed_per_s: float = 0.0,
        occupancy: Occupancy = IDLE,
        dt: float = 1.0,
    ) -> int:
        """Decide at ``now``, then advance the clock by ``dt``; returns the new desired."""
        ctx = ScalingContext(
            now=self.now,
            lag=lag,
            rate_per_worker=rate,
            startup_s=startup_s,
            completed_per_s=completed_per_s,
            occupancy=occupancy,
        )
        self.state = decide(ctx, self.state, self.cfg)
        self.history.append((self.now, self.state.desired))
        self.now += dt
        return self.state.desired

    def changes(self) -> list[tuple[float, int, int]]:
        """(when, before, after) for every change of desired after the first decision."""
        out: list[tuple[float, int, int]] = []
        for (_, before), (when, after) in itertools.pairwise(self.history):
            if after != before:
                out.append((when, before, after))
        return out


# --- PolicyConfig -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lo", "hi", "drain", "batch"),
    [
        (5, 4, 60.0, 100),  # min > max
        (-1, 4, 60.0, 100),  # negative min
        (-1, -1, 60.0, 100),
        (1, 10, 0.0, 100),  # target_drain_s <= 0
        (1, 10, -1.0, 100),
        (1, 10, 60.0, 0),  # batch_size < 1
        (1, 10, 60.0, -3),
    ],
)
def test_config_rejects_invalid_values(lo: int, hi: int, drain: float, batch: int) -> None:
    with pytest.raises(ValueError):
        _cfg(min_workers=lo, max_workers=hi, target_drain_s=drain, batch_size=batch)


def test_config_accepts_the_edges() -> None:
    assert _cfg(min_workers=0, max_workers=0).max_workers == 0
    assert _cfg(min_workers=3, max_workers=3).min_workers == 3
    assert _cfg(batch_size=1, target_drain_s=1e-3).batch_size == 1


# --- Ewma -------------------------------------------------------------------------------------


def test_ewma_takes_the_first_sample_as_is_then_smooths_by_alpha() -> None:
    avg = Ewma(alpha=0.5)
    assert avg.value is None
    assert avg.update(10.0) == 10.0
    assert avg.update(20.0) == 15.0  # 0.5 * 10 + 0.5 * 20
    assert avg.update(0.0) == 7.5
    assert avg.value == 7.5


def test_ewma_default_alpha_is_point_two() -> None:
    avg = Ewma()
    assert avg.update(100.0) == 100.0
    assert avg.update(200.0) == pytest.approx(120.0)  # 0.8 * 100 + 0.2 * 200
    assert avg.update(120.0) == pytest.approx(120.0)


@given(
    alpha=st.floats(min_value=0.01, max_value=1.0),
    samples=st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=30),
)
def test_ewma_stays_within_the_range_of_its_samples(alpha: float, samples: list[float]) -> None:
    avg = Ewma(alpha=alpha)
    assert avg.update(samples[0]) == samples[0]
    for sample in samples[1:]:
        avg.update(sample)
    assert avg.value is not None
    assert min(samples) - 1e-6 <= avg.value <= max(samples) + 1e-6


# --- work_cap and wanted ----------------------------------------------------------------------


@given(lag=st.integers(min_value=-(10**9), max_value=10**12), batch=st.integers(1, 10**5))
def test_work_cap_is_the_number_of_batches_left(lag: int, batch: int) -> None:
    cap = work_cap(lag, batch)
    if lag <= 0:
        assert cap == 0
    else:
        assert cap * batch >= lag  # enough workers for every remaining record
        assert (cap - 1) * batch < lag  # and not one more than a batch each
    assert work_cap(lag + 1, batch) >= cap  # monotone in the lag


@given(
    lag=st.integers(min_value=0, max_value=10**9),
    batch=st.integers(1, 10**4),
    rate=st.none() | st.floats(min_value=1e-9, max_value=1e7),
    trend=st.floats(min_value=-1e9, max_value=1e9),
    startup=st.floats(min_value=0.0, max_value=1e5),
    drain=st.floats(min_value=1e-3, max_value=1e5),
)
def test_wanted_never_exceeds_the_work_and_never_idles_with_work(
    lag: int, batch: int, rate: float | None, trend: float, startup: float, drain: float
) -> None:
    cfg = _cfg(batch_size=batch, target_drain_s=drain)
    ctx = ScalingContext(now=0.0, lag=lag, rate_per_worker=rate, startup_s=startup)
    n = wanted(ctx, cfg, trend)
    assert n <= work_cap(lag, batch)
    assert (n >= 1) == (lag > 0)


def test_wanted_drain_formula_by_hand() -> None:
    cfg = _cfg(max_workers=1000, target_drain_s=60.0, batch_size=100)

    def w(lag: int, rate: float, *, startup: float = 0.0, trend: float = 0.0) -> int:
        return wanted(ScalingContext(0.0, lag, rate, startup), cfg, trend)

    # 12000 records at 50/s per worker to be drained in 60 s: 12000 / (50 * 60) = 4.
    assert w(12000, 50.0) == 4
    # One more record tips it over: ceil(12001 / 3000) = 5.
    assert w(12001, 50.0) == 5
    # A 20 s start-up leaves 40 s to drain: 12000 / (50 * 40) = 6.
    assert w(12000, 50.0, startup=20.0) == 6
    # A start-up longer than 3/4 of the target leaves a floor of 60 / 4 = 15 s: 12000 / 750 = 16.
    assert w(12000, 50.0, startup=50.0) == 16
    assert w(12000, 50.0, startup=500.0) == 16
    # A lag growing by 125/s needs 125 / 50 = 2.5 more workers: ceil(4 + 2.5) = 7.
    assert w(12000, 50.0, trend=125.0) == 7
    # Start-up and trend together: 6 + 100 / 50 = 8.
    assert w(12000, 50.0, startup=20.0, trend=100.0) == 8
    # A shrinking lag is not credited: still 4.
    assert w(12000, 50.0, trend=-500.0) == 4
    # A tiny backlog still gets one worker.
    assert w(1, 50.0) == 1
    assert w(0, 50.0) == 0
    # Nothing measured yet (None, or a 0.0 rate): one worker per batch left.
    assert wanted(ScalingContext(0.0, 12000, None), cfg, 0.0) == 120
    assert wanted(ScalingContext(0.0, 12000, 0.0), cfg, 0.0) == 120


def test_decide_uses_the_smoothed_trend_in_the_formula() -> None:
    """Trend after two ticks, by hand: sample (12500 - 12000) / 1 s, weighted by
    1 - exp(-1 s / 10 s) = 0.0952 -> 47.6 records/s."""
    sim = Sim(_cfg(min_workers=0, max_workers=50, upscale_delay_s=0.0))
    assert sim.tick(12000, rate=50.0) == 4  # first decision: no trend yet
    assert sim.state.lag_trend == 0.0
    weight = 1 - math.exp(-1.0 / TREND_TIME_CONSTANT_S)
    # (47.6 + 12500 / 60) / 50 = (47.6 + 208.3) / 50 = 5.12 -> 6
    assert sim.tick(12500, rate=50.0) == 6
    assert sim.state.lag_trend == pytest.approx(500.0 * weight)


# --- bounds -----------------------------------------------------------------------------------

configs = st.builds(
    lambda lo, extra, drain, up, down, batch: _cfg(
        min_workers=lo,
        max_workers=lo + extra,
        target_drain_s=drain,
        upscale_delay_s=up,
        downscale_delay_s=down,
        batch_size=batch,
    ),
    st.integers(0, 20),
    st.integers(0, 50),
    st.floats(min_value=0.1, max_value=3600.0),
    st.floats(min_value=0.0, max_value=600.0),
    st.floats(min_value=0.0, max_value=600.0),
    st.integers(1, 10_000),
)
# Realistic domain: ticks at least 1 ms apart, rates between 1e-6 and 1e7 molecules/s
# (see test_degenerate_inputs_do_not_crash for what lies outside it).
ticks = st.lists(
    st.tuples(
        st.floats(min_value=1e-3, max_value=3600.0),
        st.integers(min_value=0, max_value=10**9),
        st.none() | st.floats(min_value=1e-6, max_value=1e7),
        st.floats(min_value=0.0, max_value=1e4),
    ),
    min_size=1,
    max_size=60,
)


@settings(deadline=None)
@given(
    cfg=configs,
    initial=st.integers(0, 100),
    seq=ticks,
    start=st.floats(min_value=0.0, max_value=1e6),
)
def test_every_decision_is_within_bounds(
    cfg: PolicyConfig,
    initial: int,
    seq: list[tuple[float, int, float | None, float]],
    start: float,
) -> None:
    sim = Sim(cfg, PolicyState(desired=initial), now=start)
    for dt, lag, rate, startup in seq:
        desired = sim.tick(lag, rate=rate, startup_s=startup, dt=dt)
        assert cfg.min_workers <= desired <= cfg.max_workers
        # Whatever it settles on is what the work asked for, clamped: never an invented number.
        ctx = ScalingContext(sim.state.at or 0.0, lag, rate, startup)
        target = min(cfg.max_workers, max(cfg.min_workers, wanted(ctx, cfg, sim.state.lag_trend)))
        changed = len(sim.history) == 1 or sim.history[-2][1] != desired
        if changed:
            assert desired == target
        assert sim.state.at is not None


# --- delays -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dt", [1.0, 0.5, 0.25])
def test_upscale_waits_for_upscale_delay(dt: float) -> None:
    # No rate measured: wanted = one worker per batch of 100, no trend involved.
    sim = Sim(_cfg())
    assert sim.tick(100, dt=dt) == 1
    first_wanted = sim.now
    while sim.now - first_wanted < UP_S:
        assert sim.tick(500, dt=dt) == 1, f"scaled up early at {sim.now}"
    assert sim.now - first_wanted == UP_S
    assert sim.tick(500, dt=dt) == 5  # wanted for exactly upscale_delay_s


@pytest.mark.parametrize("dt", [1.0, 0.5, 0.25])
def test_downscale_waits_for_downscale_delay(dt: float) -> None:
    sim = Sim(_cfg())
    assert sim.tick(800) == 8
    sim.now += 100.0  # long after: no proposal pending
    first_wanted = sim.now
    while sim.now - first_wanted < DOWN_S:
        assert sim.tick(200, dt=dt) == 8, f"scaled down early at {sim.now}"
    assert sim.tick(200, dt=dt) == 2


def test_a_single_tick_without_the_want_restarts_the_upscale_clock() -> None:
    sim = Sim(_cfg())
    sim.tick(100)
    for _ in range(4):
        assert sim.tick(500) == 1
    assert sim.tick(100) == 1  # satisfied for one tick: proposal dropped
    assert sim.state.proposal is None
    for _ in range(5):
        assert sim.tick(500) == 1
    assert sim.tick(500) == 5


def test_a_reversal_restarts_the_delay_in_the_other_direction() -> None:
    sim = Sim(_cfg())
    sim.tick(500)
    for _ in range(3):
        assert sim.tick(900) == 5  # up proposed
    for _ in range(int(DOWN_S)):
        assert sim.tick(100) == 5  # down proposed from its own start, not the up's
    assert sim.tick(100) == 1


def test_a_growing_want_applies_the_latest_target_after_the_first_want_waited() -> None:
    sim = Sim(_cfg())
    sim.tick(100)
    for lag in (300, 400, 500, 600, 700):
        assert sim.tick(lag) == 1
    assert sim.tick(800) == 8  # 5 s after 300 was first wanted; takes the current want


def test_first_decision_applies_at_once_both_ways() -> None:
    up = Sim(_cfg(), PolicyState(desired=1), now=1000.0)
    assert up.tick(100_000) == 10
    down = Sim(_cfg(), PolicyState(desired=8), now=1000.0)
    assert down.tick(0) == 1


def test_waking_from_zero_applies_at_once() -> None:
    sim = Sim(_cfg(min_workers=0))
    assert sim.tick(0) == 0
    for _ in range(10):
        assert sim.tick(0) == 0
    assert sim.tick(300) == 3  # no upscale delay: work and no one to do it
    assert sim.state.proposal is None


def test_zero_delays_apply_at_once() -> None:
    sim = Sim(_cfg(upscale_delay_s=0.0, downscale_delay_s=0.0))
    sim.tick(100)
    assert sim.tick(500) == 5
    assert sim.tick(200) == 2


# --- scale to zero and wake up ----------------------------------------------------------------


@pytest.mark.parametrize("rate", [None, 100.0])
def test_scales_to_zero_after_downscale_delay_and_wakes_at_once(rate: float | None) -> None:
    sim = Sim(_cfg(min_workers=0))
    assert sim.tick(300, rate=None) == 3
    drained_at = sim.now
    while sim.now - drained_at < DOWN_S:
        assert sim.tick(0, rate=rate) == 3
    assert sim.tick(0, rate=rate) == 0
    for _ in range(100):
        assert sim.tick(0, rate=rate) == 0
    assert sim.tick(250, rate=None) == 3  # new work: straight back, no upscale delay
    assert sim.tick(50, rate=rate) == 3  # and not straight down again


def test_min_workers_floor_holds_with_no_work() -> None:
    sim = Sim(_cfg(min_workers=2))
    for _ in range(200):
        assert sim.tick(0, rate=100.0) == 2


# --- never more than the remaining work needs -------------------------------------------------


@pytest.mark.parametrize("rate", [None, 1e-6, 0.01])
def test_three_batches_never_ask_for_more_than_three_workers(rate: float | None) -> None:
    sim = Sim(_cfg(max_workers=10, batch_size=100))
    assert sim.tick(300, rate=rate) == 3
    for lag in [0, 300, 10, 300, 299, 300] * 20:  # a jumpy lag: large positive trend samples
        assert sim.tick(lag, rate=rate) <= 3
    assert max(d for _, d in sim.history) == 3


@given(
    lag=st.integers(min_value=0, max_value=10**6),
    batch=st.integers(1, 1000),
    rate=st.none() | st.floats(min_value=1e-6, max_value=1e6),
    hi=st.integers(0, 100),
)
def test_first_decision_never_exceeds_the_work(
    lag: int, batch: int, rate: float | None, hi: int
) -> None:
    cfg = _cfg(min_workers=0, max_workers=hi, batch_size=batch)
    sim = Sim(cfg, PolicyState(desired=hi))
    desired = sim.tick(lag, rate=rate)
    assert desired <= min(hi, work_cap(lag, batch))
    if rate is None:
        assert desired == min(hi, work_cap(lag, batch))


# --- growth under rising lag ------------------------------------------------------------------


def test_rising_lag_grows_desired_up_to_max() -> None:
    sim = Sim(_cfg(min_workers=1, max_workers=10))
    lag = 0
    for n in range(120):
        sim.tick(lag, rate=100.0)
        if n >= 1:
            # Every trend sample is exactly +500/s, 1 s apart: 500 (1 - exp(-n s / 10 s)).
            expected = 500.0 * (1 - math.exp(-n / TREND_TIME_CONSTANT_S))
            assert sim.state.lag_trend == pytest.approx(expected)
        lag += 500
    desired = [d for _, d in sim.history]
    assert desired == sorted(desired)  # never shrinks while the lag grows
    assert desired[-1] == 10
    assert len(set(desired)) >= 4  # grew in steps, not one jump
    assert sim.state.lag_trend > 450
    # Needs lag / (100 * 60) + 500 / 100 >= 10, i.e. lag >= 30000, at 60 s; plus delays.
    reached = next(t for t, d in sim.history if d == 10)
    assert 50.0 <= reached <= 75.0


def test_draining_backlog_asks_for_lag_over_rate_times_drain() -> None:
    """A flat (or shrinking) backlog with a measured rate: ceil(lag / (rate * drain))."""
    sim = Sim(_cfg(min_workers=1, max_workers=50, target_drain_s=60.0))
    assert sim.tick(48_000, rate=100.0) == 8  # 48000 / 6000
    for _ in range(40):
        assert sim.tick(48_000, rate=100.0) == 8
    # With a 30 s start-up the drain window is 30 s: 48000 / 3000 = 16 (after the delay).
    for _ in range(6):
        sim.tick(48_000, rate=100.0, startup_s=30.0)
    assert sim.state.desired == 16


# --- no flapping on a noisy lag ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "rate"),
    [
        (500, None),  # no rate: wanted = ceil(lag / 100), between 4 and 7 on ±30%
        (6_000, 100.0),  # about 1 worker's drain need, plus trend noise
        (30_000, 100.0),  # about 5 workers' drain need, plus trend noise
    ],
)
@pytest.mark.parametrize("seed", range(10))
def test_noisy_lag_does_not_flap(level: int, rate: float | None, seed: int) -> None:
    """Ten minutes of 1 s ticks, lag uniform in level ± 30%; upscale 5 s, downscale 30 s.

    Bound: the first decision applies at once, ups need 5 s of uninterrupted want and downs
    30 s. A ±30% band spans at most four worker counts, so climbing to its top takes at most
    three ups; a down from a count the noise reaches needs 30 straight draws below it (for
    the level 500 case, (5/6)^30 ~ 0.4% per start at the band's top, ~1e-9 one below),
    and each such excursion costs two changes. So a handful of changes (6: 1% of the ticks)
    while the raw want changes on most ticks.
    """
    rng = random.Random(seed)
    cfg = _cfg(min_workers=1, max_workers=10, upscale_delay_s=UP_S, downscale_delay_s=DOWN_S)
    sim = Sim(cfg, PolicyState(desired=1))
    raw: list[int] = []
    for _ in range(600):
        lag = round(level * (1 + rng.uniform(-0.3, 0.3)))
        raw.append(wanted(ScalingContext(sim.now, lag, rate), cfg, sim.state.lag_trend))
        sim.tick(lag, rate=rate)
    raw_flips = sum(a != b for a, b in itertools.pairwise(raw))
    changes = sim.changes()
    assert raw_flips > 150  # the input really is noisy
    assert len(changes) <= 6, changes
    _assert_no_quick_reversals(changes, DOWN_S)


def _assert_no_quick_reversals(changes: Sequence[tuple[float, int, int]], down_s: float) -> None:
    previous_at = -math.inf
    for when, before, after in changes:
        if after < before:
            assert when - previous_at >= down_s, f"down at {when}, {when - previous_at}s after"
        previous_at = when
    for a, b, c in zip(changes, changes[1:], changes[2:], strict=False):
        if a[2] > a[1] and b[2] < b[1] and c[2] > c[1]:
            assert c[0] - a[0] > down_s, (a, b, c)


@settings(deadline=None, max_examples=50)
@given(
    lags=st.lists(st.integers(0, 5_000), min_size=2, max_size=300),
    rate=st.none() | st.floats(min_value=1.0, max_value=1_000.0),
)
def test_any_lag_sequence_never_reverses_within_the_downscale_delay(
    lags: list[int], rate: float | None
) -> None:
    sim = Sim(_cfg(min_workers=0, max_workers=20))
    for lag in lags:
        sim.tick(lag, rate=rate)
    _assert_no_quick_reversals(sim.changes(), DOWN_S)


# --- steady inflow and degenerate inputs ----------------------------------------------------


def test_a_pool_keeping_up_with_a_steady_inflow_is_not_cut_below_what_it_needs() -> None:
    inflow, rate = 1000.0, 100.0  # needs 10 workers, no more, no fewer
    sim = Sim(_cfg(min_workers=0, max_workers=20))
    lag = 0.0
    kept_up = False
    for _ in range(900):
        done = min(lag + inflow, sim.state.desired * rate)  # workers start at once
        lag = lag + inflow - done
        desired = sim.tick(int(lag), rate=rate, completed_per_s=done)
        kept_up = kept_up or desired >= 10
        if kept_up:
            assert desired >= 10, f"cut to {desired} at t={sim.now - 1} with lag {int(lag)}"


@pytest.mark.parametrize("case", ["denormal rate", "denormal tick"])
def test_degenerate_inputs_do_not_crash(case: str) -> None:
    sim = Sim(_cfg(min_workers=0, max_workers=10))
    if case == "denormal rate":
        desired = sim.tick(10**6, rate=5e-324)
    else:
        sim.tick(0, rate=100.0, dt=5e-324)
        desired = sim.tick(1000, rate=100.0)
    assert 0 <= desired <= 10


def test_a_decayed_absorption_rate_lets_the_pool_reach_zero() -> None:
    """An average that decays toward zero never gets there: below MIN_RATE_PER_S it is none."""
    cfg = _cfg(min_workers=0, max_workers=4)
    state = PolicyState(desired=1)
    rate = Ewma(alpha=0.3, value=50.0)
    for second in range(3000):
        rate.update(0.0)
        ctx = ScalingContext(float(second), 0, 100.0, completed_per_s=rate.value or 0.0)
        state = decide(ctx, state, cfg)
    assert rate.value is not None and 0 < rate.value < MIN_RATE_PER_S
    assert state.desired == 0


# --- work waiting behind busy workers ---------------------------------------------------------


def test_work_waiting_behind_busy_workers_grows_the_pool_whatever_the_lag_reads() -> None:
    # A batch hangs the only worker; the rate measured before says one worker drains the lag
    # in no time, and the lag reads low (a broker's stale end offset): the waiting batches
    # ask for workers all the same.
    sim = Sim(_cfg(min_workers=1, max_workers=4), PolicyState(desired=1))
    assert sim.tick(5, rate=1000.0) == 1
    stuck = Occupancy(busy_slots=1, waiting=6)
    desired = [sim.tick(5, rate=1000.0, occupancy=stuck) for _ in range(10)]
    assert desired[: int(UP_S)] == [1] * int(UP_S)  # the upscale delay still applies
    assert desired[-1] == 4  # capped by max_workers


@pytest.mark.parametrize("rate", [None, 1000.0])
def test_waiting_batches_count_before_any_batch_completed(rate: float | None) -> None:
    sim = Sim(_cfg(min_workers=1, max_workers=10, upscale_delay_s=0.0), PolicyState(desired=1))
    assert sim.tick(0, rate=rate, occupancy=Occupancy(busy_slots=1, waiting=2)) == 3


def test_occupancy_counts_replicas_worth_and_nothing_when_none_waits() -> None:
    assert Occupancy(busy_slots=4, waiting=0).workers() == 0
    assert Occupancy(busy_slots=4, waiting=3, slots_per_worker=2).workers() == 4
    assert Occupancy(busy_slots=0, waiting=1, slots_per_worker=8).workers() == 1


@given(
    busy=st.integers(0, 50),
    waiting=st.integers(0, 50),
    slots=st.integers(1, 8),
    lag=st.integers(0, 10**5),
    rate=st.none() | st.floats(min_value=1e-6, max_value=1e6),
    hi=st.integers(1, 20),
)
def test_occupancy_never_takes_the_pool_past_max_workers(
    busy: int, waiting: int, slots: int, lag: int, rate: float | None, hi: int
) -> None:
    sim = Sim(_cfg(min_workers=1, max_workers=hi, upscale_delay_s=0.0), PolicyState(desired=1))
    occupancy = Occupancy(busy, waiting, slots)
    desired = sim.tick(lag, rate=rate, occupancy=occupancy)
    assert min(hi, occupancy.workers()) <= desired <= hi
