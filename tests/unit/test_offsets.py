"""Unit tests for consumer.state.offsets.OffsetTracker (pure: no broker)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.state.offsets import OffsetTracker, PartitionState

# -- strategies ------------------------------------------------------------------------------

Event = tuple[str, int, int]  # ("register" | "done", partition, offset)


@st.composite
def offset_sequences(draw: st.DrawFn) -> dict[int, list[int]]:
    """Per partition: a strictly increasing list of offsets, gaps allowed."""
    n_parts = draw(st.integers(min_value=1, max_value=4))
    seqs: dict[int, list[int]] = {}
    for part in range(n_parts):
        start = draw(st.integers(min_value=0, max_value=1_000))
        gaps = draw(st.lists(st.integers(min_value=1, max_value=5), min_size=0, max_size=20))
        offsets = [start]
        for gap in gaps:
            offsets.append(offsets[-1] + gap)
        seqs[part] = offsets
    return seqs


@dataclass(frozen=True)
class Scenario:
    offsets: dict[int, list[int]]
    events: list[Event]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Offsets, a random completion order, and registrations interleaved with completions.

    Registrations of a partition come in offset order; a completion always comes after its
    registration (as with a real consumer: a record is fetched before it can finish).
    """
    seqs = draw(offset_sequences())
    pairs = [(p, o) for p, offs in seqs.items() for o in offs]
    completion_order = draw(st.permutations(pairs))
    next_reg = dict.fromkeys(seqs, 0)
    registered: set[tuple[int, int]] = set()
    events: list[Event] = []
    i = 0
    while i < len(completion_order):
        p, o = completion_order[i]
        can_complete = (p, o) in registered
        unregistered = [q for q in seqs if next_reg[q] < len(seqs[q])]
        if can_complete and (not unregistered or draw(st.booleans())):
            events.append(("done", p, o))
            i += 1
            continue
        # Register the next offset of some partition: the needed one, or any other.
        q = p if not can_complete and draw(st.booleans()) else draw(st.sampled_from(unregistered))
        off = seqs[q][next_reg[q]]
        next_reg[q] += 1
        registered.add((q, off))
        events.append(("register", q, off))
    return Scenario(seqs, events)


# -- properties ------------------------------------------------------------------------------


@given(scenarios())
def test_never_commits_past_an_unfinished_offset(scenario: Scenario) -> None:
    tracker: OffsetTracker[int] = OffsetTracker()
    done: set[tuple[int, int]] = set()
    registered: dict[int, list[int]] = {p: [] for p in scenario.offsets}
    previous: dict[int, int] = {}

    for kind, p, o in scenario.events:
        if kind == "register":
            tracker.register(p, o)
            registered[p].append(o)
        else:
            tracker.done(p, o)
            done.add((p, o))

        committable = tracker.committable()
        for part, offsets in scenario.offsets.items():
            unfinished = [x for x in offsets if (part, x) not in done]
            # The exact expectation: one past the longest fully done prefix of the fetched.
            prefix = 0
            while prefix < len(registered[part]) and (part, registered[part][prefix]) in done:
                prefix += 1
            expected = registered[part][prefix - 1] + 1 if prefix else None
            assert committable.get(part) == expected
            if part in committable:
                # Never past an unfinished offset (fetched or not yet fetched).
                if unfinished:
                    assert committable[part] <= min(unfinished)
                # Monotone non-decreasing.
                assert committable[part] >= previous.get(part, committable[part])
                previous[part] = committable[part]
            else:
                assert part not in previous  # once committable, it stays present
            assert tracker.pending_count(part) == len(registered[part]) - prefix

    final = tracker.committable()
    assert final == {p: offs[-1] + 1 for p, offs in scenario.offsets.items()}
    assert tracker.pending_count() == 0
    for p in scenario.offsets:
        assert tracker.pending_count(p) == 0


@given(offset_sequences(), st.data())
def test_completion_order_does_not_change_the_final_commit(
    seqs: dict[int, list[int]], data: st.DataObject
) -> None:
    tracker: OffsetTracker[int] = OffsetTracker()
    for p, offs in seqs.items():
        for o in offs:
            tracker.register(p, o)
    assert tracker.pending_count() == sum(len(offs) for offs in seqs.values())
    assert tracker.committable() == {}
    order = data.draw(st.permutations([(p, o) for p, offs in seqs.items() for o in offs]))
    for p, o in order:
        tracker.done(p, o)
    assert tracker.committable() == {p: offs[-1] + 1 for p, offs in seqs.items()}
    assert tracker.pending_count() == 0
    assert sorted(tracker.partitions()) == sorted(seqs)


# -- examples --------------------------------------------------------------------------------


def test_out_of_order_completion_holds_the_commit_at_the_gap() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for o in (10, 11, 15):
        tracker.register("p", o)
    tracker.done("p", 11)
    tracker.done("p", 15)
    assert tracker.committable() == {}
    assert tracker.pending_count("p") == 3
    tracker.done("p", 10)
    assert tracker.committable() == {"p": 16}
    assert tracker.pending_count("p") == 0


@pytest.mark.parametrize("second", [4, 5])
def test_register_out_of_order_raises(second: int) -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.register("p", 5)
    with pytest.raises(ValueError, match="registered after 5"):
        tracker.register("p", second)
    assert tracker.pending_count("p") == 1


def test_register_at_or_below_committed_offset_raises() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.register("p", 5)
    tracker.done("p", 5)
    assert tracker.committable() == {"p": 6}
    with pytest.raises(ValueError):
        tracker.register("p", 3)


def test_committable_never_goes_backwards_after_a_seek_back() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.register("p", 5)
    tracker.done("p", 5)
    with contextlib.suppress(ValueError):  # rejecting the registration is a fine fix too
        tracker.register("p", 3)
        tracker.done("p", 3)
    assert tracker.committable() == {"p": 6}


def test_forget_drops_the_partition_and_ignores_late_completions() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for o in (0, 1, 2):
        tracker.register("a", o)
        tracker.register("b", o)
    tracker.done("a", 0)
    tracker.done("b", 0)
    assert tracker.committable() == {"a": 1, "b": 1}

    tracker.forget("a")
    assert tracker.partitions() == ["b"]
    assert tracker.committable() == {"b": 1}
    assert tracker.pending_count("a") == 0
    assert tracker.pending_count() == 2

    tracker.done("a", 1)  # late completion of a revoked partition
    tracker.done("a", 2)
    assert tracker.partitions() == ["b"]
    assert tracker.committable() == {"b": 1}

    tracker.forget("a")  # forgetting twice, or an unknown partition, is harmless
    tracker.forget("never-seen")
    assert tracker.partitions() == ["b"]


def test_partition_starts_fresh_after_forget() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.register("a", 7)
    tracker.forget("a")
    tracker.register("a", 3)  # the new owner may re-read from an older committed offset
    tracker.done("a", 3)
    assert tracker.committable() == {"a": 4}


def test_partitions_are_independent() -> None:
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    a, b, c = ("t", 0), ("t", 1), ("u", 0)
    for o in range(3):
        tracker.register(a, o)
    for o in (100, 200):
        tracker.register(b, o)
    tracker.register(c, 42)
    # b's offsets being lower than a's elsewhere is irrelevant; so is a blocked partition.
    tracker.done(b, 100)
    tracker.done(a, 1)
    assert tracker.committable() == {b: 101}
    tracker.done(c, 42)
    assert tracker.committable() == {b: 101, c: 43}
    assert tracker.pending_count(a) == 3
    assert tracker.pending_count(b) == 1
    assert tracker.pending_count(c) == 0
    assert tracker.pending_count() == 4
    tracker.done(a, 0)
    assert tracker.committable() == {a: 2, b: 101, c: 43}
    assert tracker.pending_count(("nope", 9)) == 0


def test_done_for_unknown_partition_is_ignored_and_duplicates_are_harmless() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.done("ghost", 1)
    assert tracker.partitions() == []
    assert tracker.committable() == {}
    tracker.register("p", 0)
    tracker.register("p", 1)
    tracker.done("p", 0)
    tracker.done("p", 0)
    assert tracker.committable() == {"p": 1}
    tracker.done("p", 1)
    tracker.done("p", 1)
    assert tracker.committable() == {"p": 2}
    assert tracker.pending_count() == 0


def test_oldest_pending_is_the_timestamp_of_the_first_offset_not_done() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    assert tracker.oldest_pending("p") is None
    for offset, timestamp in ((10, 100.0), (11, 101.0), (12, 102.0)):
        tracker.register("p", offset, timestamp)
    tracker.done("p", 11)  # out of order: 10 still holds the partition back
    assert tracker.oldest_pending("p") == 100.0
    tracker.done("p", 10)
    assert tracker.oldest_pending("p") == 102.0
    tracker.done("p", 12)
    assert tracker.oldest_pending("p") is None
    tracker.register("p", 13, 103.0)
    tracker.forget("p")
    assert tracker.oldest_pending("p") is None


def test_a_partition_remembers_where_this_consumer_took_it_up() -> None:
    state = PartitionState()
    assert state.first_registered is None
    for offset in (40, 41, 43):
        state.register(offset)
    assert state.first_registered == 40 and state.last_registered == 43
