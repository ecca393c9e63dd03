"""The retry / split / fail rule of a failing batch (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.reasons import LossReason
from consumer.retry_plan import (
    NODE_LOSS_TRIES_FACTOR,
    TIMEOUT_SPLIT_PARTS,
    Step,
    Tries,
    parts,
    plan,
)

TIMED_OUT = Tries(3).after(spent_attempt=True, reason=LossReason.TIMEOUT)


def _run(attempts: int, size: int, spent: list[bool]) -> tuple[Step, int]:
    """Fail every try (spending an attempt or not, in turn); the final step and tries made."""
    tries = Tries(attempts)
    made = 0
    while (step := plan(tries, size)) is Step.TRY:
        tries = tries.after(spent_attempt=spent[made % len(spent)])
        made += 1
    return step, made


def test_a_fresh_batch_is_tried() -> None:
    assert plan(Tries(3), 64) is Step.TRY


def test_a_batch_that_fails_every_attempt_is_split_then_a_single_molecule_fails() -> None:
    assert _run(3, 64, [True]) == (Step.SPLIT, 3)
    assert _run(3, 1, [True]) == (Step.FAIL, 3)


def test_node_losses_cost_no_attempt_but_are_bounded() -> None:
    assert _run(3, 8, [False]) == (Step.SPLIT, 3 * NODE_LOSS_TRIES_FACTOR)


@given(
    attempts=st.integers(1, 6),
    size=st.integers(1, 200),
    spent=st.lists(st.booleans(), min_size=1, max_size=10),
)
def test_every_batch_ends_within_its_bounds(attempts: int, size: int, spent: list[bool]) -> None:
    step, made = _run(attempts, size, spent)
    assert step is (Step.SPLIT if size > 1 else Step.FAIL)
    assert attempts <= made <= attempts * NODE_LOSS_TRIES_FACTOR
    assert sum(spent[i % len(spent)] for i in range(made)) <= attempts


@given(
    items=st.lists(st.integers(), min_size=2, max_size=100),
    max_attempts=st.integers(1, 5),
    timed_out=st.booleans(),
)
def test_parts_keep_every_item_once_in_order(
    items: list[int], max_attempts: int, timed_out: bool
) -> None:
    tries = TIMED_OUT if timed_out else Tries(3).after(spent_attempt=True)
    split = parts(items, tries, max_attempts)
    count = min(TIMEOUT_SPLIT_PARTS if timed_out else 2, len(items))
    assert [s for s, _, _ in split] == ["a", "b", "c", "d"][:count]
    assert [i for _, part, _ in split for i in part] == items
    sizes = [len(part) for _, part, _ in split]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    for _, part, attempts in split:
        assert attempts == (1 if len(part) > 1 else max_attempts)


def test_only_node_trouble_spends_no_attempt() -> None:
    free = {r for r in LossReason if not r.spends_attempt}
    assert free == {LossReason.PREEMPTED, LossReason.UNAVAILABLE}


def test_a_timed_out_batch_is_split_at_once_in_quarters() -> None:
    assert plan(TIMED_OUT, 64) is Step.SPLIT
    assert [len(p) for _, p, _ in parts(list(range(64)), TIMED_OUT, 3)] == [16] * 4
    assert [len(p) for _, p, _ in parts(list(range(2)), TIMED_OUT, 3)] == [1, 1]


def test_a_single_molecule_that_times_out_keeps_its_attempts() -> None:
    tries = Tries(3)
    made = 0
    while plan(tries, 1) is Step.TRY:
        tries = tries.after(spent_attempt=True, reason=LossReason.TIMEOUT)
        made += 1
    assert (plan(tries, 1), made) == (Step.FAIL, 3)


@pytest.mark.parametrize("reason", [r for r in LossReason if r is not LossReason.TIMEOUT])
def test_other_losses_retry_at_the_same_size_then_split_in_halves(reason: LossReason) -> None:
    tries = Tries(3).after(spent_attempt=reason.spends_attempt, reason=reason)
    assert plan(tries, 64) is Step.TRY
    assert len(parts(list(range(64)), tries, 3)) == 2


def test_one_hanging_molecule_of_64_costs_six_timeouts() -> None:
    """With max_attempts 3: one try at 64, 16 and 4, then 3 alone (11 before: 3 tries at 64,
    one at each half down to 2, 3 alone); the parts without it pass meanwhile elsewhere."""
    timeouts, size, tries = 0, 64, Tries(3)
    while (step := plan(tries, size)) is not Step.FAIL:
        if step is Step.SPLIT:
            (_, part, attempts), *_ = parts(list(range(size)), tries, 3)
            size, tries = len(part), Tries(attempts)
            continue
        timeouts += 1
        tries = tries.after(spent_attempt=True, reason=LossReason.TIMEOUT)
    assert timeouts == 3 + 3
