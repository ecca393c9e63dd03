"""The retry / split / fail rule of a failing batch (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consumer.reasons import LossReason
from consumer.retry_plan import NODE_LOSS_TRIES_FACTOR, Step, Tries, halves, plan


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


@given(items=st.lists(st.integers(), min_size=2, max_size=100), max_attempts=st.integers(1, 5))
def test_halves_keep_every_item_once_in_order(items: list[int], max_attempts: int) -> None:
    parts = halves(items, max_attempts)
    assert [s for s, _, _ in parts] == ["a", "b"]
    assert parts[0][1] + parts[1][1] == items
    for _, part, attempts in parts:
        assert part
        assert attempts == (1 if len(part) > 1 else max_attempts)


def test_only_node_trouble_spends_no_attempt() -> None:
    free = {r for r in LossReason if not r.spends_attempt}
    assert free == {LossReason.PREEMPTED, LossReason.UNAVAILABLE}
