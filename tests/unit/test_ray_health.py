"""The Ray watchdog tells a slow head from a lost one (fake probe, fake clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from ray.exceptions import RpcError

from consumer.errors import RayLostError
from consumer.pool.ray_watchdog import HeadErrorKind, RayWatchdog, classify_gcs_error


def _rpc_error(message: str, rpc_code: int | None = None) -> Exception:
    """Ray's own exception type, as its GCS client raises it."""
    return RpcError(message, rpc_code=rpc_code)  # type: ignore[no-untyped-call]


TIMEOUT_S = 0.6  # probes every 0.1 s (real time); the probes move the fake clock
INTERVAL_S = TIMEOUT_S / 6
# What Ray 2.60's GcsClient.internal_kv_exists raised against a real local cluster:
SLOW = _rpc_error("RPC error: Deadline Exceeded", rpc_code=4)  # gcs_server SIGSTOPped
GONE = _rpc_error("Timed out while waiting for GCS to become available.", rpc_code=4)  # killed


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (SLOW, "slow"),
        (_rpc_error("RPC error: Deadline Exceeded"), "slow"),
        (TimeoutError(), "slow"),  # the watchdog's own guard around a stuck probe
        (GONE, "unreachable"),
        (
            _rpc_error("failed to connect to all addresses; Connection refused", rpc_code=14),
            "unreachable",
        ),
        (RuntimeError("GCS client disconnected"), "unreachable"),
        (_rpc_error("RPC error: Deadline Exceeded; GCS unavailable", rpc_code=4), "unreachable"),
        (ValueError("anything else"), "unreachable"),
    ],
)
def test_gcs_errors_are_classified(exc: BaseException, kind: HeadErrorKind) -> None:
    assert classify_gcs_error(exc) == kind


class FakeGcs:
    """A probe that answers from a script of (seconds it takes, error or None), then for
    ever the last entry; each call moves the fake clock by the seconds it takes, and one that
    takes longer than its timeout raises Deadline Exceeded at the timeout, as Ray's does."""

    def __init__(self, script: list[tuple[float, Exception | None]]) -> None:
        self.now = 0.0
        self._script: Iterator[tuple[float, Exception | None]] = iter(script)
        self._last = script[-1]
        self.timeouts: list[float] = []

    def clock(self) -> float:
        return self.now

    def probe(self, timeout_s: float) -> None:
        self.timeouts.append(timeout_s)
        took_s, error = next(self._script, self._last)
        self.now += min(took_s, timeout_s)
        if took_s > timeout_s:
            raise SLOW
        if error is not None:
            raise error


def _watchdog(gcs: FakeGcs, errors: list[HeadErrorKind]) -> RayWatchdog:
    on_error: Callable[[HeadErrorKind], None] = errors.append
    return RayWatchdog(timeout_s=TIMEOUT_S, probe=gcs.probe, clock=gcs.clock, on_error=on_error)


async def _runs_for(watchdog: RayWatchdog, gcs: FakeGcs, fake_s: float) -> None:
    task = asyncio.create_task(watchdog.watch())
    async with asyncio.timeout(10):
        while gcs.now < fake_s:
            assert not task.done(), task
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_slow_answers_for_longer_than_the_timeout_do_not_raise() -> None:
    # Every answer takes 0.4 s (4 probe intervals): late, but the head is alive.
    gcs = FakeGcs([(0.4, None)])
    errors: list[HeadErrorKind] = []
    watchdog = _watchdog(gcs, errors)
    await _runs_for(watchdog, gcs, 3 * TIMEOUT_S)
    assert not watchdog.lost and watchdog.state == "slow"
    assert errors and set(errors) == {"slow"}
    # After a deadline, the probes wait (up to the silence limit) for the late answers.
    assert gcs.timeouts[0] == INTERVAL_S
    assert all(t >= 0.4 for t in gcs.timeouts[1:]), gcs.timeouts


async def test_unreachable_for_the_timeout_raises() -> None:
    gcs = FakeGcs([(0.0, None), (INTERVAL_S, GONE)])
    errors: list[HeadErrorKind] = []
    watchdog = _watchdog(gcs, errors)
    with pytest.raises(RayLostError, match="Ray cluster lost"):
        await asyncio.wait_for(watchdog.watch(), 10)
    assert watchdog.lost and watchdog.state == "unreachable"
    assert TIMEOUT_S / 2 <= gcs.now <= TIMEOUT_S / 2 + INTERVAL_S
    assert set(errors) == {"unreachable"}


async def test_a_head_that_answers_nothing_for_the_timeout_is_lost() -> None:
    # A stopped gcs_server: every probe runs out of time, nothing ever answers.
    gcs = FakeGcs([(0.0, None), (10.0, SLOW)])
    watchdog = _watchdog(gcs, [])
    with pytest.raises(RayLostError):
        await asyncio.wait_for(watchdog.watch(), 10)
    assert TIMEOUT_S <= gcs.now <= TIMEOUT_S + INTERVAL_S, gcs.now


async def test_an_answer_resets_the_count_towards_lost() -> None:
    # Unreachable for just under the limit, an answer, then again: never lost.
    blip, answer = [(INTERVAL_S, GONE)] * 2, (0.01, None)
    gcs = FakeGcs([*blip, answer, *blip, answer, *blip, answer])
    errors: list[HeadErrorKind] = []
    watchdog = _watchdog(gcs, errors)
    await _runs_for(watchdog, gcs, 0.7)
    assert not watchdog.lost and watchdog.state == "ok"
    assert watchdog.answered_s_ago() < 0.1
    assert errors.count("unreachable") == 6
