"""Unit tests for consumer.intake.batching.Batcher (pure: the test passes the clock)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.intake.batching import Batcher


def test_full_batch_is_returned_by_the_add_that_completes_it() -> None:
    batcher: Batcher[int] = Batcher(batch_size=3, batch_wait_s=10.0)
    assert batcher.add(1, 0.0) is None
    assert batcher.add(2, 0.1) is None
    assert len(batcher) == 2
    assert batcher.add(3, 0.2) == [1, 2, 3]
    assert len(batcher) == 0
    assert batcher.deadline() is None
    assert batcher.add(4, 0.3) is None
    assert batcher.flush() == [4]


def test_batch_size_one_returns_every_item_at_once() -> None:
    batcher: Batcher[str] = Batcher(batch_size=1, batch_wait_s=5.0)
    assert batcher.add("a", 0.0) == ["a"]
    assert batcher.add("b", 0.0) == ["b"]
    assert len(batcher) == 0


def test_partial_batch_is_due_only_once_its_first_item_has_waited() -> None:
    batcher: Batcher[str] = Batcher(batch_size=10, batch_wait_s=0.5)
    assert batcher.due(100.0) is None  # nothing collected
    assert batcher.deadline() is None
    batcher.add("a", 100.0)
    assert batcher.deadline() == 100.5
    batcher.add("b", 100.4)  # later items do not move the deadline
    assert batcher.deadline() == 100.5
    assert batcher.due(100.0) is None
    assert batcher.due(100.499) is None
    assert len(batcher) == 2
    assert batcher.due(100.5) == ["a", "b"]  # due exactly at first_at + wait
    assert batcher.due(100.5) is None  # and only once
    assert batcher.deadline() is None
    # The next batch's deadline counts from its own first item.
    batcher.add("c", 200.0)
    assert batcher.deadline() == 200.5
    assert batcher.due(200.4) is None
    assert batcher.due(300.0) == ["c"]


def test_zero_wait_makes_a_partial_batch_due_immediately() -> None:
    batcher: Batcher[int] = Batcher(batch_size=5, batch_wait_s=0.0)
    batcher.add(1, 7.0)
    assert batcher.deadline() == 7.0
    assert batcher.due(7.0) == [1]


def test_deadline_after_a_full_batch_restarts_with_the_next_item() -> None:
    batcher: Batcher[int] = Batcher(batch_size=2, batch_wait_s=1.0)
    batcher.add(1, 0.0)
    assert batcher.add(2, 0.5) == [1, 2]
    batcher.add(3, 5.0)
    assert batcher.deadline() == 6.0
    assert batcher.due(5.9) is None


def test_flush_takes_everything_or_returns_none() -> None:
    batcher: Batcher[int] = Batcher(batch_size=4, batch_wait_s=1.0)
    assert batcher.flush() is None
    batcher.add(1, 0.0)
    batcher.add(2, 0.0)
    assert batcher.flush() == [1, 2]
    assert batcher.flush() is None
    assert len(batcher) == 0
    assert batcher.due(1e9) is None


def test_discard_removes_and_returns_matching_items_in_order() -> None:
    batcher: Batcher[tuple[str, int]] = Batcher(batch_size=10, batch_wait_s=1.0)
    items = [("a", 0), ("b", 1), ("a", 2), ("c", 3), ("a", 4)]
    for item in items:
        batcher.add(item, 0.0)
    taken = batcher.discard(lambda item: item[0] == "a")
    assert taken == [("a", 0), ("a", 2), ("a", 4)]
    assert len(batcher) == 2
    assert batcher.discard(lambda item: item[0] == "zzz") == []
    assert batcher.flush() == [("b", 1), ("c", 3)]


def test_discard_everything_empties_the_batcher() -> None:
    batcher: Batcher[int] = Batcher(batch_size=10, batch_wait_s=1.0)
    for i in range(3):
        batcher.add(i, 0.0)
    assert batcher.discard(lambda _: True) == [0, 1, 2]
    assert len(batcher) == 0
    assert batcher.deadline() is None
    assert batcher.due(100.0) is None
    # A new first item starts a new deadline.
    batcher.add(9, 50.0)
    assert batcher.deadline() == 51.0


def test_discard_on_empty_batcher() -> None:
    batcher: Batcher[int] = Batcher(batch_size=2, batch_wait_s=1.0)
    assert batcher.discard(lambda _: True) == []


@pytest.mark.parametrize(
    ("batch_size", "batch_wait_s", "message"),
    [
        (0, 1.0, "batch_size"),
        (-3, 1.0, "batch_size"),
        (1, -0.001, "batch_wait_s"),
        (1, -1.0, "batch_wait_s"),
    ],
)
def test_bad_arguments_raise(batch_size: int, batch_wait_s: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Batcher(batch_size=batch_size, batch_wait_s=batch_wait_s)


# -- property --------------------------------------------------------------------------------

# A step: add an item after `dt` seconds (True), or check due after `dt` seconds (False).
steps = st.lists(
    st.tuples(st.booleans(), st.floats(min_value=0.0, max_value=2.0, allow_nan=False)),
    max_size=60,
)


@given(
    batch_size=st.integers(min_value=1, max_value=8),
    wait_s=st.floats(min_value=0.0, max_value=1.5, allow_nan=False),
    plan=steps,
)
def test_every_item_comes_out_once_in_order_and_batches_are_bounded(
    batch_size: int, wait_s: float, plan: list[tuple[bool, float]]
) -> None:
    batcher: Batcher[int] = Batcher(batch_size=batch_size, batch_wait_s=wait_s)
    now = 0.0
    added: list[int] = []
    arrived: dict[int, float] = {}
    out: list[int] = []
    for is_add, dt in plan:
        now += dt
        if is_add:
            item = len(added)
            added.append(item)
            arrived[item] = now
            batch = batcher.add(item, now)
            if batch is not None:
                assert len(batch) == batch_size  # add returns only full batches
        else:
            deadline = batcher.deadline()
            batch = batcher.due(now)
            if batch is None:
                assert deadline is None or now < deadline
            else:
                assert deadline is not None and now >= deadline
                assert deadline == arrived[batch[0]] + wait_s
                assert len(batch) < batch_size  # a partial batch
        if batch is not None:
            assert 1 <= len(batch) <= batch_size
            out.extend(batch)
        assert len(batcher) == len(added) - len(out)
        assert len(batcher) < batch_size
        assert (batcher.deadline() is None) == (len(batcher) == 0)
    rest = batcher.flush()
    if rest is not None:
        assert len(rest) <= batch_size
        out.extend(rest)
    assert out == added
    assert len(batcher) == 0
