"""Unit tests for consumer.scaling.capacity's pure part: the shares of several consumers,
summed, and the shares of consumers that stopped refreshing them, dropped (no Ray)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.scaling.capacity import (
    SHARE_TTL_S,
    TTL_TICKS,
    CapacityClient,
    Share,
    live_shares,
    new_consumer_id,
    share_ttl_s,
    summed_bundles,
)
from tests.unit.fakes import until

SPOT = {"CPU": 1.0, "spot": 1.0}
GPU = {"GPU": 1.0}


def test_the_shares_of_two_consumers_add_up() -> None:
    shares = {"a": Share(SPOT, 3, refreshed_at=0.0), "b": Share(SPOT, 2, refreshed_at=0.0)}
    assert summed_bundles(shares, now=1.0) == [SPOT] * 5


def test_bundles_of_different_shapes_are_kept_apart_in_consumer_order() -> None:
    shares = {"b": Share(GPU, 1, refreshed_at=0.0), "a": Share(SPOT, 2, refreshed_at=0.0)}
    assert summed_bundles(shares, now=0.0) == [SPOT, SPOT, GPU]


def test_a_share_not_refreshed_within_its_ttl_is_dropped() -> None:
    shares = {
        "alive": Share(SPOT, 2, refreshed_at=100.0),
        "crashed": Share(SPOT, 3, refreshed_at=100.0 - SHARE_TTL_S - 0.1),
    }
    assert list(live_shares(shares, now=100.0)) == ["alive"]
    assert summed_bundles(shares, now=100.0) == [SPOT] * 2


def test_a_share_counts_up_to_its_ttl_inclusive() -> None:
    shares = {"a": Share(SPOT, 1, refreshed_at=0.0, ttl_s=5.0)}
    assert summed_bundles(shares, now=5.0) == [SPOT]
    assert summed_bundles(shares, now=5.001) == []


def test_no_shares_and_zero_counts_ask_for_nothing() -> None:
    assert summed_bundles({}, now=0.0) == []
    assert summed_bundles({"a": Share(SPOT, 0, refreshed_at=0.0)}, now=0.0) == []


def test_the_sum_is_a_copy_the_caller_may_change() -> None:
    share = Share(dict(SPOT), 2, refreshed_at=0.0)
    total = summed_bundles({"a": share}, now=0.0)
    total[0]["CPU"] = 99.0
    assert share.bundle == SPOT
    assert total[1] == SPOT


@pytest.mark.parametrize(("count", "ttl_s"), [(-1, 60.0), (1, 0.0), (1, -1.0)])
def test_a_share_rejects_a_negative_count_or_a_ttl_that_is_not_positive(
    count: int, ttl_s: float
) -> None:
    with pytest.raises(ValueError, match="count >= 0 and ttl_s > 0"):
        Share(SPOT, count, refreshed_at=0.0, ttl_s=ttl_s)


def test_a_share_outlives_many_ticks_however_long_a_tick_is() -> None:
    assert share_ttl_s(1.0) == SHARE_TTL_S
    assert share_ttl_s(30.0) == TTL_TICKS * 30.0


def test_consumer_ids_are_unique_and_name_the_group() -> None:
    first, second = new_consumer_id("g1"), new_consumer_id("g1")
    assert first != second
    assert first.startswith("g1/") and second.startswith("g1/")


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=5),
        st.tuples(st.integers(0, 20), st.floats(0, 200), st.floats(0.1, 100)),
        max_size=8,
    ),
    st.floats(0, 300),
)
def test_the_sum_is_the_live_counts_and_nothing_else(
    raw: dict[str, tuple[int, float, float]], now: float
) -> None:
    shares = {cid: Share(SPOT, n, refreshed_at=at, ttl_s=ttl) for cid, (n, at, ttl) in raw.items()}
    expected = sum(n for n, at, ttl in raw.values() if now - at <= ttl)
    assert summed_bundles(shares, now) == [SPOT] * expected


class _Remote:
    """An actor method whose calls answer when the test resolves them."""

    def __init__(self) -> None:
        self.calls: list[asyncio.Future[None]] = []

    def remote(self, *args: object) -> asyncio.Future[None]:
        self.calls.append(asyncio.get_running_loop().create_future())
        return self.calls[-1]


class _Book:
    def __init__(self) -> None:
        self.set_share = _Remote()


async def test_a_cancel_landing_as_a_capacity_request_is_answered_ends_the_request() -> None:
    """The autoscaler's stop cancels its loop in the very step the actor answers: the
    request must end cancelled (with Python 3.11's wait_for the cancel was swallowed, the
    loop ran on and the stop waited for it for good)."""
    client = CapacityClient("c-1", SPOT)
    book = _Book()
    client._book = book
    requesting = asyncio.create_task(client.request(2))
    await until(lambda: bool(book.set_share.calls))
    book.set_share.calls[0].set_result(None)
    requesting.cancel()
    done, _ = await asyncio.wait([requesting], timeout=2.0)
    assert done and requesting.cancelled()
